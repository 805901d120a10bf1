"""A run that has Job(s): suspend them, adopt them, reflect them, stop them, aggregate shards.

The runner's rows are read here (``deps.db``) and handed to ``_decisions`` (``reflect_run``,
``reflect_sharded``, ``latest_error``, ``checkpoint_summaries``). A sharded EvaluationRun has one
Job per shard; each shard's runner writes its own rows (run id ``<uid>-s<i>``) and the aggregate
is written under the run's uid when it finishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentensor_api import (
    TERMINAL_PHASES,
    WAITING_PHASES,
    ConditionType,
    EventType,
    Phase,
    Reason,
    RunStatus,
    condition_of,
)
from agentensor_store import RunRecord

from .. import _decisions as d
from .._deps import Deps
from . import _events


async def with_jobs(
    deps: Deps,
    body: Mapping[str, Any],
    ref: d.RunRef,
    prev: RunStatus,
    jobs: list[dict[str, Any]],
    suspend: bool,
    now: str,
) -> RunStatus:
    """The status of a run from its Jobs (from the watch's cache) and its runner rows."""
    reviewed = await review_spec(deps, body, ref, prev, now)
    shards = d.job_shards(jobs)
    states = {d.job_shard(j): d.job_state(j) for j in jobs}
    ids = d.shard_run_ids(ref.uid, shards)
    runners = [await deps.db(deps.store.get_run, run_id) for run_id in ids]
    finished = all((r.phase if r is not None else None) in TERMINAL_PHASES for r in runners)
    live = [j for j in jobs if d.job_state(j).phase in (d.JobPhase.ACTIVE, d.JobPhase.STOPPED)]
    if suspend and live and not finished:
        for job in jobs:
            await deps.kube.delete_job(ref.namespace, job["metadata"]["name"])
        message = f"spec.suspend is true: {len(jobs)} runner Job(s) deleted; the run resumes later"
        return d.queued_status(reviewed, ref, Reason.SUSPENDED, message, now=now)
    if prev.phase in WAITING_PHASES:  # Jobs from before a restart: adopt them
        reviewed = d.started_status(reviewed, ref, jobs[0]["metadata"]["name"], now=now)
    if shards == 1:
        runner = runners[0]
        new = await reflect(deps, ref, reviewed, states.get(None), runner.status if runner else None, now)
    else:
        new = await _reflect_shards(deps, body, ref, prev, reviewed, states, ids, runners, now)
    if new.phase == Phase.FAILED:
        # The verdict is final: stop Pod retries (and the other shards), keep the Pods' logs.
        for job in live:
            if d.job_state(job).phase == d.JobPhase.ACTIVE:
                await deps.kube.patch_job(ref.namespace, job["metadata"]["name"], {"spec": {"parallelism": 0}})
    return new


async def _reflect_shards(
    deps: Deps,
    body: Mapping[str, Any],
    ref: d.RunRef,
    prev: RunStatus,
    reviewed: RunStatus,
    states: Mapping[int | None, d.JobState],
    ids: list[str],
    runners: list[RunRecord | None],
    now: str,
) -> RunStatus:
    """A sharded run's status from its shards; the aggregate rows are written when it finishes."""
    failed_case = None
    if any(s.phase == Phase.FAILED for s in states.values()):
        failed_case = await _last_error(deps, ids)
    pairs = d.shard_pairs(states, [r.status if r is not None else None for r in runners])
    criteria = d.pass_criteria(body.get("spec"))
    new = d.reflect_sharded(reviewed, ref, shards=pairs, failed_case=failed_case, now=now, pass_criteria=criteria)
    if new.phase in TERMINAL_PHASES and prev.phase not in TERMINAL_PHASES:
        await _record_aggregate(deps, ref, dict(body.get("spec") or {}), runners, new)
    return new


async def _last_error(deps: Deps, run_ids: list[str]) -> d.FailedCase | None:
    """The most recent error row among the given run ids (a run, or a sharded run's shards)."""
    errors = [await deps.db(deps.store.list_cases, run_id, errors_only=True) for run_id in run_ids]
    return d.latest_error(errors)


async def _record_aggregate(
    deps: Deps, ref: d.RunRef, spec: dict[str, Any], runners: list[RunRecord | None], status: RunStatus
) -> None:
    """Write a sharded run's aggregate under its own uid (the shards' rows keep ``<uid>-s<i>``)."""
    first = next((r for r in runners if r is not None), None)
    if first is None:
        return
    await deps.db(
        deps.store.record_verdict,
        run_id=ref.uid,
        kind=ref.kind,
        namespace=ref.namespace,
        name=ref.name,
        workflow=first.workflow,
        spec=spec,
        seed=first.seed,
        status=status,
    )


async def reflect(
    deps: Deps,
    ref: d.RunRef,
    prev: RunStatus,
    state: d.JobState | None,
    runner_status: Mapping[str, Any] | None,
    now: str,
) -> RunStatus:
    """An unsharded run's status from its Job state (None: no Job) and its runner's status row."""
    rows = await deps.db(deps.store.list_checkpoints, run_id=ref.uid)
    kept = deps.settings.status.checkpoints_kept
    failed_case = None
    if (state is not None and state.phase == Phase.FAILED) or (runner_status or {}).get("phase") == Phase.FAILED:
        failed_case = await _last_error(deps, [ref.uid])
    return d.reflect_run(
        prev,
        ref,
        job=state,
        job_name_=d.job_name(ref),
        runner=runner_status,
        checkpoints=d.checkpoint_summaries(rows, kept),
        failed_case=failed_case,
        kept=kept,
        now=now,
    )


async def review_spec(deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, now: str) -> RunStatus:
    """Accept a new generation of a started run, or say which changed fields are ignored."""
    accepted = condition_of(prev, ConditionType.ACCEPTED)
    if accepted is not None and accepted.observed_generation == ref.generation:
        return prev
    cm = await deps.kube.get_config_map(ref.namespace, d.job_name(ref))
    spec = d.accepted_spec(((cm or {}).get("data") or {}).get(d.MANIFEST_KEY, "")) if cm else None
    changes = d.rejected_changes(spec, body.get("spec") or {}) if spec is not None else []
    if not changes:
        return d.accepted_status(prev, ref, now=now)
    message = (
        f"changes to {', '.join(changes[:5])} are ignored: a started run only takes changes to "
        "spec.suspend and spec.parallelism; revert them or create a new run"
    )
    _events.post(body, EventType.WARNING, Reason.SPEC_CHANGE_REJECTED, message)
    return d.spec_change_rejected(prev, ref, message, now=now)
