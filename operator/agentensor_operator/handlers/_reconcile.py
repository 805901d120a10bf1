"""One reconcile pass over a TrainingRun or EvaluationRun: read the world, decide, apply.

A pass reads the run body, its Jobs from the watch's cache and the runner's rows, asks
``_decisions`` what it should look like, and applies the difference: admission and Job
creation (``_admission``), reflection of started Jobs (``_started``), ``.status`` changes into
the pass's patch (the daemon applies it), Events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentensor_api import (
    TERMINAL_PHASES,
    ConditionType,
    EventType,
    ManifestError,
    Phase,
    Reason,
    RunStatus,
    condition_of,
    display_of,
    set_condition,
)
from agentensor_store import DatabaseUnavailableError

from .. import _decisions as d
from .._deps import Deps
from . import _admission, _events, _started
from ._daemon import OnSucceeded

DB_CONDITION = ConditionType.DATABASE_AVAILABLE
"""Condition set to False (reason DatabaseUnavailable) while the operator cannot read the run's rows."""

VALIDATED_CACHE_SIZE = 4096
"""Parsed specs kept in memory; beyond this many live runs the oldest are parsed again."""


async def reconcile_run(
    deps: Deps, body: Mapping[str, Any], patch: dict[str, Any], *, on_succeeded: OnSucceeded | None = None
) -> None:
    """One pass over a run; status changes go into ``patch`` (the daemon applies it after the pass)."""
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
            commit(await _started.review_spec(deps, body, ref, prev, now))  # finished: only note spec edits
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
    while nothing else moves; the daemon tries again in ``_daemon.RETRY_SECONDS``, runners ride
    the outage out.
    """
    if prev.phase == Phase.QUEUED and not facts.suspend:
        waiting = _admission.waiting_in_queue(deps, ref, prev, now)
        if waiting is not None:  # deep in the queue: no API call at all
            return waiting, False
    changes = deps.changes
    jobs = changes.jobs.of(ref.uid)  # the watch's Job cache: no list call
    if not jobs and ref.uid in changes.reserved:  # admitted; its Jobs are not in the cache yet
        return prev, False
    try:
        if not jobs:
            new = await _without_job(deps, body, ref, prev, facts, now)
        else:
            new = await _started.with_jobs(deps, body, ref, prev, jobs, facts.suspend, now)
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


async def _without_job(
    deps: Deps, body: Mapping[str, Any], ref: d.RunRef, prev: RunStatus, facts: d.RunFacts, now: str
) -> RunStatus:
    """A run with no Job in the cache: reflect a runner that finished meanwhile, else admission."""
    if prev.phase == Phase.RUNNING:  # it had Jobs: has the runner finished meanwhile?
        runner = await deps.db(deps.store.get_run, ref.uid)
        if runner is not None and runner.phase in TERMINAL_PHASES:
            return await _started.reflect(deps, ref, prev, None, runner.status, now)
    return await _admission.admit(deps, body, ref, prev, facts, now)


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


def _validated(deps: Deps, body: Mapping[str, Any], ref: d.RunRef) -> d.RunFacts:
    """The run's parsed spec, cached per ``(uid, generation)``; raises ``ManifestError`` (InvalidSpec)."""
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
