"""Reconcile of a TrainingRun or EvaluationRun: one level-based pass, run when the run changes.

Each unfinished run has a kopf daemon that runs a pass, then sleeps until something about the
run changes (its watch events, its Jobs' events, a database NOTIFY from its runner: see
``_changes``) or a slow safety resync is due. Each pass reads the world (the run body, its Jobs
from the watch's cache, the runner's rows), asks ``_decisions`` what
it should look like, and applies the difference: create the ConfigMap and Job(s) when admitted,
stop or delete Jobs when suspended or failed, patch ``.status``, post Events. The pass is
idempotent, so a restart simply carries on. A sharded EvaluationRun has one Job per shard, all
admitted together; each shard's runner writes its own rows (run id ``<uid>-s<i>``) and the
aggregate is written under the run's uid when it finishes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from agentensor_api import (
    TERMINAL_PHASES,
    WAITING_PHASES,
    CheckpointSummary,
    ConditionType,
    EventType,
    ManifestError,
    PassCriterion,
    Phase,
    Reason,
    RunStatus,
    condition_of,
    display_of,
    set_condition,
)
from agentensor_store import DatabaseUnavailableError, RunRecord

from .. import _decisions as d
from .._deps import Deps
from .._errors import KubernetesApiError, kopf_errors
from . import _events

log = logging.getLogger("agentensor_operator")

OnSucceeded = Callable[[Deps, Mapping[str, Any], RunStatus], Awaitable[None]]


DB_CONDITION = ConditionType.DATABASE_AVAILABLE
"""Condition set to False (reason DatabaseUnavailable) while the operator cannot read the run's rows."""


def needs_reconcile(body: Mapping[str, Any], **_: Any) -> bool:
    """Daemon filter: unfinished runs, and finished ones whose spec changed since last looked at
    (kopf stops a run's daemon once this turns False)."""
    status = d.parse_run_status(body.get("status"))
    if status.phase not in TERMINAL_PHASES:
        return True
    accepted = condition_of(status, ConditionType.ACCEPTED)
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    return accepted is None or accepted.observed_generation != generation


RETRY_SECONDS = 5.0
"""Seconds before a pass that failed unexpectedly (or could not patch status) runs again."""


def register(registry: kopf.OperatorRegistry, deps: Deps, *, kind: str, on_succeeded: OnSucceeded | None) -> None:
    """Register the census index and the reconcile daemon for one run kind.

    No change handlers: kopf would then keep a copy of every spec (inline datasets included)
    in an annotation. Deleted runs leave the census, which prunes their metrics and caches.
    The census index also feeds the sorted queue and wakes a run on a new generation.
    """
    plural = d.PLURALS[kind]
    jobs = deps.settings.jobs
    changes = deps.changes

    # Index and event handlers are coroutines so that kopf runs them on the event loop, where every
    # pass also reads and writes ``deps.changes``: kopf runs a sync handler in a thread of its
    # executor, and one that popped a reservation while a pass iterated the reservations raised
    # "dictionary changed size during iteration" (2 of 2,000 runs admitted at once never got a Job).
    async def census(body: kopf.Body, **_: Any) -> dict[str, d.RunCensus]:
        entry = d.census(body, per_pod=jobs.shard_concurrency, cap=jobs.max_concurrent_jobs)
        meta = body.get("metadata") or {}
        generation = int(meta.get("generation") or 1)
        if changes.run_seen(entry.uid, generation, bool(meta.get("deletionTimestamp")), entry.entry):
            changes.wake_queue_head(jobs.max_concurrent_jobs)
        return {"all": entry}

    kopf.index(d.GROUP_NAME, d.API_VERSION_NAME, plural, id=f"{plural}_census", registry=registry)(census)

    reconcile = deps.metrics.timed(kind, kopf_errors(reconcile_run))

    async def daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        deps.capture_indexes(kwargs)
        await _run_daemon(deps, body, stopped, plural=plural, reconcile=reconcile, on_succeeded=on_succeeded)

    kopf.daemon(
        d.GROUP_NAME,
        d.API_VERSION_NAME,
        plural,
        id=f"{plural}_reconcile",
        when=needs_reconcile,
        cancellation_timeout=RETRY_SECONDS,
        registry=registry,
    )(daemon)


def register_job_watch(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    """Feed the Job cache from kopf's Job watch: an index (filled before any run is reconciled,
    so the cap is counted right after a restart) and a handler for deletions (which an index
    drops silently). Each event wakes the Job's run; a freed slot wakes the queue's head."""
    changes = deps.changes
    cap = deps.settings.jobs.max_concurrent_jobs
    selector = {d.LABEL_MANAGED_BY: d.MANAGED_BY, d.LABEL_COMPONENT: "runner"}

    async def runner_jobs(body: kopf.Body, **_: Any) -> dict[str, str]:
        uid, freed = changes.jobs.seen(body)
        changes.reserved.pop(uid, None)  # its Jobs are seen: they count themselves now
        changes.wake(uid)
        if freed:
            changes.wake_queue_head(cap)
        return {uid: str((body.get("metadata") or {}).get("name") or "")}

    kopf.index("batch", "v1", "jobs", labels=selector, id="runner_jobs", registry=registry)(runner_jobs)

    def deleted(type: str, **_: Any) -> bool:
        return type == "DELETED"

    async def job_deleted(body: kopf.Body, **_: Any) -> None:
        uid, held = changes.jobs.gone(body)
        changes.wake(uid)
        if held:
            changes.wake_queue_head(cap)

    kopf.on.event("batch", "v1", "jobs", labels=selector, when=deleted, registry=registry)(job_deleted)


Reconcile = Callable[..., Awaitable[None]]


async def _run_daemon(
    deps: Deps,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    *,
    plural: str,
    reconcile: Reconcile,
    on_succeeded: OnSucceeded | None,
) -> None:
    """Reconcile a run, then sleep until it changes; until kopf stops the daemon (finished/deleted).

    At most one status patch per pass, and only when the status changed. ``body`` is kopf's live
    view of the run; until the watch shows our last patch, the pass reads the status it sent.
    """
    ref = d.run_ref(body)
    changes = deps.changes
    flag = changes.register(ref.uid)
    resync = deps.settings.status.resync_seconds * (
        0.75 + 0.5 * (int(ref.uid.replace("-", "")[:8] or "0", 16) / 0xFFFFFFFF)
    )
    sent: tuple[str, dict[str, Any]] | None = None  # (resourceVersion patched, status after it)
    try:
        while not stopped:
            flag.clear()
            delay, view = resync, _view(body, sent)
            patch: dict[str, Any] = {}
            try:
                await reconcile(deps, view, patch, on_succeeded=on_succeeded)
            except kopf.TemporaryError as e:
                delay = float(e.delay or RETRY_SECONDS)
            except kopf.PermanentError as e:
                log.warning("%s %s/%s: %s", ref.kind, ref.namespace, ref.name, e)
            except Exception:
                log.exception("%s %s/%s: reconcile failed", ref.kind, ref.namespace, ref.name)
                delay = RETRY_SECONDS
            status = patch.get("status")
            if _retry_soon(_merged(dict(view.get("status") or {}), status or {})):
                delay = min(delay, RETRY_SECONDS)
            if status and not stopped:
                version = str((body.get("metadata") or {}).get("resourceVersion") or "")
                try:
                    await deps.kube.patch_status(ref.namespace, plural, ref.name, status)
                    sent = (version, _merged(dict(view.get("status") or {}), status))
                except KubernetesApiError as e:
                    log.warning("%s %s/%s: %s", ref.kind, ref.namespace, ref.name, e)
                    delay = RETRY_SECONDS
            await changes.wait(ref.uid, stopped, delay)
    finally:
        changes.unregister(ref.uid)


_RETRY_SOON = {
    (DB_CONDITION, Reason.DATABASE_UNAVAILABLE),
    (ConditionType.ACCEPTED, Reason.PROMPT_CONFIG_NOT_FOUND),
}
"""``(condition, reason)`` with status False that nothing would wake the run from: the database
coming back (the listener is down with it) or its PromptConfig appearing. Such runs are
looked at again every :data:`RETRY_SECONDS` instead of at the resync."""


def _retry_soon(status: Mapping[str, Any]) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("status") == "False" and (c.get("type"), c.get("reason")) in _RETRY_SOON
        for c in status.get("conditions") or []
    )


def _view(body: Mapping[str, Any], sent: tuple[str, dict[str, Any]] | None) -> Mapping[str, Any]:
    """The run as the pass should see it: the live body, with the status we last patched while
    the watch has not delivered that patch yet (same resourceVersion as before it)."""
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    if sent is None or sent[0] != version:
        return body
    return {**dict(body), "status": sent[1]}


def _merged(target: Any, patch: Any) -> Any:
    """``target`` after a JSON merge patch (RFC 7386): what the API server stores."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merged(out.get(k), v)
    return out


async def reconcile_run(
    deps: Deps, body: Mapping[str, Any], patch: dict[str, Any], *, on_succeeded: OnSucceeded | None = None
) -> None:
    """One pass over a run; status changes go into ``patch`` (kopf applies it after the pass)."""
    ref = d.run_ref(body)
    now = deps.now()
    raw = dict(body.get("status") or {})
    prev = d.parse_run_status(raw)

    def commit(new: RunStatus, *, events: bool = True) -> None:
        new.display = display_of(new)  # the rounded printer-column strings
        change = d.status_patch(raw, new)
        if change:
            patch.setdefault("status", {}).update(change)
        for type_, reason, message in d.milestones(prev, new) if events else ():
            _events.post(body, type_, reason, message)
        if new.phase in TERMINAL_PHASES and prev.phase not in TERMINAL_PHASES:
            deps.metrics.run_completed(ref.kind, new.phase)

    if prev.phase in TERMINAL_PHASES:
        accepted = condition_of(prev, ConditionType.ACCEPTED)
        if accepted is None or accepted.reason != Reason.INVALID_SPEC:
            commit(await _review_spec(deps, body, ref, prev, now))  # finished: only note spec edits
            return
        prev = RunStatus()  # never started: a corrected spec starts afresh
    try:
        facts = _validated(deps, body, ref)
    except ManifestError as e:
        invalid = d.invalid_status(prev, ref, e, now=now)
        commit(invalid, events=False)  # one Event, InvalidSpec, not also "Failed" with the same text
        _events.post(body, EventType.WARNING, Reason.INVALID_SPEC, invalid.message or str(e))
        return
    new, reflected = await _next_status(deps, body, ref, prev, facts, now)
    if not reflected:  # deep in the queue, or the database is down: nothing else to do
        commit(new)
        return
    if new.phase == Phase.SUCCEEDED and prev.phase != Phase.SUCCEEDED and on_succeeded is not None:
        await on_succeeded(deps, body, new)
    commit(new)
    _set_run_metrics(deps, ref, new)


async def _next_status(
    deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, facts: d.RunFacts, now: str
) -> tuple[RunStatus, bool]:
    """``(status after this pass, reflected)``: queued, started or reflected from the Jobs and rows.

    ``reflected`` is False when the pass stopped early: a run deep in the queue (no API call at
    all), or an unreachable database, which the status then names (``DatabaseAvailable=False``)
    while nothing else moves; the daemon tries again in :data:`RETRY_SECONDS`, runners ride
    the outage out.
    """
    cap = deps.settings.jobs.max_concurrent_jobs
    changes = deps.changes
    deep = ref.uid in changes.queue and changes.queue.position(ref.uid) - len(changes.reserved) >= cap
    if prev.phase == Phase.QUEUED and not facts.suspend and deep:  # no API call at all
        return d.queued_status(prev, ref, Reason.WAITING, _waiting(cap), now=now), False
    jobs = changes.jobs.of(ref.uid)  # the watch's Job cache: no list call
    if not jobs and ref.uid in changes.reserved:  # admitted; its Jobs are not in the cache yet
        return prev, False
    try:
        if not jobs:
            new = await _without_job(deps, body, ref, prev, facts, now)
        else:
            new = await _with_jobs(deps, body, ref, prev, jobs, facts.suspend, now)
    except DatabaseUnavailableError as e:
        down = prev.model_copy(deep=True)
        down.conditions = set_condition(
            down.conditions, DB_CONDITION, "False", Reason.DATABASE_UNAVAILABLE, str(e)[:1000], now=now
        )
        return down, False
    if any(c.type == DB_CONDITION and c.status == "False" for c in new.conditions):
        new.conditions = set_condition(
            new.conditions, DB_CONDITION, "True", Reason.DATABASE_REACHABLE, "the database answers again", now=now
        )
    return new, True


def _set_run_metrics(deps: Deps, ref: d.RunRef, status: RunStatus) -> None:
    """The per-run gauges from a reflected status (usage: reported by LLM-backed runners)."""
    usage = status.usage
    deps.metrics.set_run(
        ref.kind,
        ref.namespace,
        ref.name,
        best_score=status.best_score,
        cases_completed=status.cases_completed,
        tokens=float(usage.input_tokens + usage.output_tokens) if usage is not None else 0.0,
        cost=float(usage.cost) if usage is not None else 0.0,
    )


VALIDATED_CACHE_SIZE = 4096
"""Parsed specs kept in memory; beyond this many live runs the oldest are parsed again."""


def _validated(deps: Deps, body: Mapping[str, Any], ref: d.RunRef) -> d.RunFacts:
    key = (ref.uid, ref.generation)
    facts: d.RunFacts | None = deps.validated.get(key)
    if facts is None:
        facts = d.run_facts(body)
        d.check_runner(facts.runner, deps.settings.jobs)  # chart limits: InvalidSpec naming the field
        d.check_grants(facts.grants, facts.runner, facts.image, deps.settings.jobs, deps.settings.database)
        if len(deps.validated) >= VALIDATED_CACHE_SIZE:
            deps.validated.pop(next(iter(deps.validated)))
        deps.validated[key] = facts
    return facts


def _waiting(cap: int) -> str:
    return f"waiting for a runner slot (maxConcurrentJobs={cap})"


async def _without_job(
    deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, facts: d.RunFacts, now: str
) -> RunStatus:
    if prev.phase == Phase.RUNNING:  # it had Jobs: has the runner finished meanwhile?
        runner = await deps.db(deps.store.get_run, ref.uid)
        if runner is not None and runner.phase in TERMINAL_PHASES:
            return await _reflect(deps, ref, prev, None, runner.status, now)
    if facts.suspend:
        return d.queued_status(
            prev, ref, Reason.SUSPENDED, "spec.suspend is true: no runner Job until it is false", now=now
        )
    settings = deps.settings.jobs
    cap = settings.max_concurrent_jobs
    changes = deps.changes
    # A refused run (no PromptConfig yet) is not in the queue: check its PromptConfig first, or it
    # would flip between Queued and refused.
    if ref.uid in changes.queue and changes.queue.position(ref.uid) - len(changes.reserved) >= cap:
        return d.queued_status(prev, ref, Reason.WAITING, _waiting(cap), now=now)
    pc = await deps.kube.get_custom(ref.namespace, "promptconfigs", facts.prompt_config)
    if pc is None:  # refused runs leave the queue, so the runs behind them move up
        return d.refused_status(
            prev,
            ref,
            Reason.PROMPT_CONFIG_NOT_FOUND,
            f"spec.promptConfigRef.name: no PromptConfig {facts.prompt_config!r} in namespace {ref.namespace!r}",
            now=now,
        )
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


async def _with_jobs(
    deps: Deps,
    body: Mapping[str, Any],
    ref: d.RunRef,
    prev: RunStatus,
    jobs: list[dict[str, Any]],
    suspend: bool,
    now: str,
) -> RunStatus:
    reviewed = await _review_spec(deps, body, ref, prev, now)
    shards = d.job_shards(jobs)
    states = {d.job_shard(j): d.job_state(j) for j in jobs}
    ids = [d.shard_run_id(ref.uid, i) for i in range(shards)] if shards > 1 else [ref.uid]
    runners = [await deps.db(deps.store.get_run, run_id) for run_id in ids]
    verdicts = [r.phase if r is not None else None for r in runners]
    finished = all(v in TERMINAL_PHASES for v in verdicts)
    live = [j for j in jobs if d.job_state(j).phase in ("Active", "Stopped")]
    if suspend and live and not finished:
        for job in jobs:
            await deps.kube.delete_job(ref.namespace, job["metadata"]["name"])
        message = f"spec.suspend is true: {len(jobs)} runner Job(s) deleted; the run resumes later"
        return d.queued_status(reviewed, ref, Reason.SUSPENDED, message, now=now)
    if prev.phase in WAITING_PHASES:  # Jobs from before a restart: adopt them
        reviewed = d.started_status(reviewed, ref, jobs[0]["metadata"]["name"], now=now)
    if shards == 1:
        runner = runners[0]
        new = await _reflect(deps, ref, reviewed, states.get(None), runner.status if runner else None, now)
    else:
        failed_case = None
        if any(s.phase == Phase.FAILED for s in states.values()):
            failed_case = await _last_error(deps, ids)
        pairs = [(states.get(i), r.status if r is not None else None) for i, r in enumerate(runners)]
        criteria = _pass_criteria(body)
        new = d.reflect_sharded(reviewed, ref, shards=pairs, failed_case=failed_case, now=now, pass_criteria=criteria)
        if new.phase in TERMINAL_PHASES and prev.phase not in TERMINAL_PHASES:
            await _record_aggregate(deps, ref, dict(body.get("spec") or {}), runners, new)
    if new.phase == Phase.FAILED:
        # The verdict is final: stop Pod retries (and the other shards), keep the Pods' logs.
        for job in live:
            if d.job_state(job).phase == "Active":
                await deps.kube.patch_job(ref.namespace, job["metadata"]["name"], {"spec": {"parallelism": 0}})
    return new


def _pass_criteria(body: Mapping[str, Any]) -> list[PassCriterion]:
    """``spec.passCriteria`` of an EvaluationRun (the whole spec was validated before any Job)."""
    raw = (body.get("spec") or {}).get("passCriteria") or []
    return [PassCriterion.model_validate(c) for c in raw]


async def _last_error(deps: Deps, run_ids: list[str]) -> d.FailedCase | None:
    """The most recent error row among the given run ids (a run, or a sharded run's shards)."""
    last = None
    for run_id in run_ids:
        errors = await deps.db(deps.store.list_cases, run_id, errors_only=True)
        if errors and (last is None or (errors[-1].id or 0) > (last.id or 0)):  # ids grow with time
            last = errors[-1]
    return d.FailedCase(last.case_id, last.stage, last.epoch, last.error or "") if last is not None else None


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


async def _reflect(
    deps: Deps,
    ref: d.RunRef,
    prev: RunStatus,
    state: d.JobState | None,
    runner_status: Mapping[str, Any] | None,
    now: str,
) -> RunStatus:
    rows = await deps.db(deps.store.list_checkpoints, run_id=ref.uid)
    kept = deps.settings.status.checkpoints_kept
    summaries = [
        CheckpointSummary(epoch=c.epoch, version=c.version, score=c.score, checksum=c.checksum, accepted=c.accepted)
        for c in rows[-kept:]
    ]
    failed_case = None
    if (state is not None and state.phase == Phase.FAILED) or (runner_status or {}).get("phase") == Phase.FAILED:
        failed_case = await _last_error(deps, [ref.uid])
    return d.reflect_run(
        prev,
        ref,
        job=state,
        job_name_=d.job_name(ref),
        runner=runner_status,
        checkpoints=summaries,
        failed_case=failed_case,
        kept=kept,
        now=now,
    )


async def _review_spec(deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, now: str) -> RunStatus:
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
