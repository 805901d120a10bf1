"""Admission of a run that has no Job yet: suspended, waiting in the queue, refused, or started.

The queue and the cap live in ``deps.changes`` (fed by the watches); the decisions are
``QueueIndex.beyond_cap`` and ``QueueIndex.admission``. A sharded EvaluationRun is admitted as a
gang (all its shards' slots at once) and gets one Job per shard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentensor_api import EventType, Reason, RunStatus

from .. import _decisions as d
from .._deps import Deps
from . import _events


def waiting_in_queue(deps: Deps, ref: d.RunRef, prev: RunStatus, now: str) -> RunStatus | None:
    """The Queued/Waiting status of a run too deep in the queue to be admitted now, else None.

    The one queue-depth check of the operator: cheap (a bisection, no API call), so a pass over a
    run far back in a long queue stops here.
    """
    cap = deps.settings.jobs.max_concurrent_jobs
    changes = deps.changes
    if not changes.queue.beyond_cap(ref.uid, cap=cap, reserved=len(changes.reserved)):
        return None
    return d.queued_status(prev, ref, Reason.WAITING, _waiting(cap), now=now)


async def admit(
    deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, facts: d.RunFacts, now: str
) -> RunStatus:
    """Queued (suspended or waiting), refused (no PromptConfig), or started with its Job(s) created."""
    if facts.suspend:
        return d.queued_status(
            prev, ref, Reason.SUSPENDED, "spec.suspend is true: no runner Job until it is false", now=now
        )
    # A refused run (no PromptConfig yet) is not in the queue: check its PromptConfig first, or it
    # would flip between Queued and refused.
    waiting = waiting_in_queue(deps, ref, prev, now)
    if waiting is not None:
        return waiting
    pc = await deps.kube.get_custom(ref.namespace, "promptconfigs", facts.prompt_config)
    if pc is None:  # refused runs leave the queue, so the runs behind them move up
        return d.refused_status(
            prev,
            ref,
            Reason.PROMPT_CONFIG_NOT_FOUND,
            f"spec.promptConfigRef.name: no PromptConfig {facts.prompt_config!r} in namespace {ref.namespace!r}",
            now=now,
        )
    return await _start(deps, body, ref, prev, facts, pc, now)


async def _start(
    deps: Deps,
    body: Mapping[str, Any],
    ref: d.RunRef,
    prev: RunStatus,
    facts: d.RunFacts,
    pc: Mapping[str, Any],
    now: str,
) -> RunStatus:
    """Admit under the cap and reserve the slots, then create the Job(s); Waiting if it does not fit."""
    settings = deps.settings.jobs
    cap = settings.max_concurrent_jobs
    changes = deps.changes
    shards = d.shard_count(ref.kind, facts.parallelism, per_pod=settings.shard_concurrency, cap=cap)
    # Decide and reserve with no await in between: no other pass runs meanwhile, so no lock.
    verdict = changes.queue.admission(ref.uid, in_use=changes.in_use(), cap=cap, slots=shards, skip=changes.reserved)
    if not verdict.admit:
        return d.queued_status(prev, ref, Reason.WAITING, _waiting(cap), now=now)
    changes.reserved[ref.uid] = shards
    try:  # whatever fails before the Jobs exist gives the slot back, or the run would wait for them forever
        changes.wake_queue_head(cap)  # the next runs that fit are admitted in the same batch
        created = await _create_jobs(deps, body, ref, facts, pc, shards)
    except BaseException:
        changes.reserved.pop(ref.uid, None)
        raise
    if created:
        _events.post(body, EventType.NORMAL, Reason.JOB_CREATED, f"runner Job(s) {', '.join(created)} created")
    name = d.job_name(ref) if shards == 1 else f"{d.job_name(ref, 0)} (+{shards - 1} shards)"
    return d.started_status(prev, ref, name, now=now)


def _waiting(cap: int) -> str:
    return f"waiting for a runner slot (maxConcurrentJobs={cap})"


async def _create_jobs(
    deps: Deps, body: Mapping[str, Any], ref: d.RunRef, facts: d.RunFacts, pc: Mapping[str, Any], shards: int
) -> list[str]:
    """Write the run's ConfigMap and create its Job(s); the names of the Jobs created (not 409)."""
    settings = deps.settings.jobs
    manifest = d.runner_manifest(body, pc)
    await deps.kube.apply_config_map(ref.namespace, d.runner_config_map(ref, manifest))
    created = []
    for shard in range(shards) if shards > 1 else [None]:
        job = d.runner_job(
            ref,
            image=facts.image,
            jobs=settings,
            database=deps.settings.database,
            secret_env=facts.secret_env,
            shard=(shard, shards) if shard is not None else None,
            runner=facts.runner,
            run_labels=(body.get("metadata") or {}).get("labels"),
        )
        if await deps.kube.create_job(ref.namespace, job):
            created.append(job["metadata"]["name"])
    return created
