"""Reflecting a started run from its Job(s) and the runner's rows, and Auto promotion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentensor_api import (
    TERMINAL_PHASES,
    CheckpointSummary,
    ConditionType,
    EvaluatorResults,
    PassCriterion,
    Phase,
    PhaseValue,
    Reason,
    RunStatus,
    condition_of,
    mark_failed,
    mark_pass_criteria,
    mark_succeeded,
    set_condition,
)

from ._job_state import JobPhase, JobState
from ._names import RunRef, job_name
from ._status import parse_run_status


@dataclass(frozen=True, slots=True)
class FailedCase:
    """The runner's latest error row: which case, at which stage and epoch, and why."""

    case_id: str
    stage: str
    epoch: int | None
    error: str


_PROGRESS_FIELDS = (
    "epoch",
    "epochs",
    "cases_completed",
    "cases_total",
    "cases_failed",
    "scores",
    "baseline_score",
    "best_score",
    "holdout",
    "best_version",
    "best_checksum",
    "dataset_hash",
    "start_time",
    "completion_time",
    "message",
    "usage",
)
_RUNNER_CONDITIONS = (
    ConditionType.RUNNING,
    ConditionType.SUCCEEDED,
    ConditionType.FAILED,
    ConditionType.FINISHED,
    ConditionType.PROMOTABLE,
    ConditionType.PASSED,
)
"""Conditions the runner owns: its copy replaces the operator's."""


def reflect_run(
    prev: RunStatus,
    ref: RunRef,
    *,
    job: JobState | None,
    job_name_: str,
    runner: Mapping[str, Any] | None,
    checkpoints: Sequence[CheckpointSummary],
    failed_case: FailedCase | None,
    kept: int,
    now: str,
) -> RunStatus:
    """The status of a started run from its Job and the runner's rows.

    Args:
        prev: current ``.status``.
        job: the runner Job's state; ``None`` if the Job is gone (only the runner's verdict counts).
        runner: the ``status`` dict the runner wrote to the database (``None``: not started).
        checkpoints: the run's checkpoints, oldest first (only the last ``kept`` are listed).
        failed_case: the runner's latest error row, named in the message when the Job fails.

    The runner's verdict (Succeeded/Failed in the database) wins; otherwise a failed Job fails
    the run, naming the epoch and the failing case from the rows; otherwise it is Running.
    """
    s = prev.model_copy(deep=True)
    s.run_id = ref.uid
    rs = parse_run_status(runner) if runner else None
    if rs is not None:
        _copy_runner_progress(s, rs)
    s.checkpoints = list(checkpoints)[-kept:] if kept and checkpoints else None
    if rs is not None and rs.phase in TERMINAL_PHASES:
        return _runner_verdict(s, rs.phase, now=now)
    if job is not None and job.phase in (JobPhase.ACTIVE, JobPhase.STOPPED):
        return _job_running(s, job, runner_started=rs is not None, job_name_=job_name_, now=now)
    reason, detail = _no_verdict(job, job_name_)
    return mark_failed(s, reason, failure_message(detail, epoch=s.epoch, failed_case=failed_case), now=now)


def _runner_verdict(s: RunStatus, phase: PhaseValue, *, now: str) -> RunStatus:
    """The runner's verdict (Succeeded or Failed), which wins over whatever the Job says."""
    s.phase = phase
    s.completion_time = s.completion_time or now
    if phase == Phase.FAILED and not s.message:
        s.message = "the runner recorded the run as Failed"
    return s


def _job_running(s: RunStatus, job: JobState, *, runner_started: bool, job_name_: str, now: str) -> RunStatus:
    """Running while the Job is active or stopped (suspended, being deleted) and the runner has no verdict.

    An active Job whose runner has not written a status yet, or has no ``Running`` condition,
    gets ``Running=True`` reason JobCreated.
    """
    s.phase = Phase.RUNNING
    if job.phase == JobPhase.ACTIVE and (condition_of(s, ConditionType.RUNNING) is None or not runner_started):
        message = f"runner Job {job_name_} created; waiting for the runner"
        s.conditions = set_condition(s.conditions, ConditionType.RUNNING, "True", Reason.JOB_CREATED, message, now=now)
    return s


def _copy_runner_progress(s: RunStatus, rs: RunStatus) -> None:
    """Copy the runner's progress fields (those it set) and its conditions into ``s``."""
    for name in _PROGRESS_FIELDS:
        value = getattr(rs, name)
        if value is not None:
            setattr(s, name, value)
    for c in rs.conditions:
        if c.type in _RUNNER_CONDITIONS:
            s.conditions = [x for x in s.conditions if x.type != c.type] + [c]


def _no_verdict(job: JobState | None, name: str) -> tuple[str, str]:
    """``(reason, detail)`` for a Job that finished (or vanished) without a verdict from the runner."""
    if job is None:
        return Reason.JOB_MISSING, f"runner Job {name} disappeared before the runner recorded a verdict"
    if job.phase == JobPhase.SUCCEEDED:
        return Reason.NO_VERDICT, f"runner Job {name} completed but the runner recorded no verdict"
    reason = job.reason or Reason.JOB_FAILED
    return reason, f"runner Job {name} failed ({reason}: {job.message or 'no message'})"


def reflect_sharded(
    prev: RunStatus,
    ref: RunRef,
    *,
    shards: Sequence[tuple[JobState | None, Mapping[str, Any] | None]],
    failed_case: FailedCase | None,
    now: str,
    pass_criteria: Sequence[PassCriterion] = (),
) -> RunStatus:
    """The status of a sharded EvaluationRun from each shard's Job state and runner status.

    Counts add up; ``scores`` and the objective (``bestScore``/``baselineScore``) are means
    weighted by each shard's case count, i.e. the mean over all cases, and ``results`` are
    combined the same way (weighted by each shard's scored cases ``n``; ``parseFailures``
    summed). The run succeeds when every shard's runner recorded Succeeded, and fails on the
    first shard that failed (by verdict, or by its Job failing or vanishing without one), naming
    the shard. A succeeded run's ``Passed`` comes from ``pass_criteria`` (``spec.passCriteria``)
    over the combined ``results``, never from one shard's.
    """
    s = prev.model_copy(deep=True)
    s.run_id = ref.uid
    parsed = [(job, parse_run_status(runner) if runner else None) for job, runner in shards]
    runners = [rs for _, rs in parsed if rs is not None]
    _aggregate_shards(s, runners)
    failure = _first_shard_failure(ref, parsed, failed_case)
    if failure is not None:
        return mark_failed(s, failure[0], failure[1], now=now)
    if len(runners) == len(shards) and all(rs.phase == Phase.SUCCEEDED for rs in runners):
        return _shards_succeeded(s, runners, pass_criteria, now=now)
    return _shards_running(s, runners, shards=len(shards), now=now)


def _shards_succeeded(
    s: RunStatus, runners: Sequence[RunStatus], pass_criteria: Sequence[PassCriterion], *, now: str
) -> RunStatus:
    """Every shard's runner recorded Succeeded: the run succeeds, with ``Passed`` over the combined
    results, and completes when its last shard did."""
    total = sum(rs.cases_total or 0 for rs in runners)
    scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted((s.scores or {}).items()))
    mark_succeeded(s, f"{scores} over {total} cases in {len(runners)} shards, {s.cases_failed} error(s)", now=now)
    mark_pass_criteria(s, pass_criteria, now=now)
    ends = [rs.completion_time for rs in runners if rs.completion_time]
    s.completion_time = max(ends) if ends else now
    return s


def _shards_running(s: RunStatus, runners: Sequence[RunStatus], *, shards: int, now: str) -> RunStatus:
    """Some shard has no verdict yet: Running, with the cases done and the shards finished."""
    total = sum(rs.cases_total or 0 for rs in runners)
    done = sum(1 for rs in runners if rs.phase == Phase.SUCCEEDED)
    message = f"{s.cases_completed}/{total or '?'} cases; {done}/{shards} shards finished"
    s.phase = Phase.RUNNING
    s.conditions = set_condition(s.conditions, ConditionType.RUNNING, "True", Reason.EVALUATING, message, now=now)
    return s


def _aggregate_shards(s: RunStatus, runners: Sequence[RunStatus]) -> None:
    """Counts summed, scores and objective weighted by case count, first best version, earliest start."""
    total = sum(rs.cases_total or 0 for rs in runners)
    s.cases_total = total if runners else s.cases_total
    s.cases_completed = sum(rs.cases_completed or 0 for rs in runners)
    s.cases_failed = sum(rs.cases_failed or 0 for rs in runners)
    weights = [(rs.cases_total or 0, rs) for rs in runners if (rs.cases_total or 0) > 0]  # empty shards: no say
    s.scores = _weighted([(w, rs.scores or {}) for w, rs in weights]) or None
    objective = _weighted([(w, {"o": rs.best_score}) for w, rs in weights if rs.best_score is not None]).get("o")
    if objective is not None and all(rs.best_score is not None for _, rs in weights):
        s.best_score = s.baseline_score = objective
    s.results = _combined_results([rs.results or {} for rs in runners]) or s.results
    first = next((rs for rs in runners if rs.best_version is not None), None)
    if first is not None:
        s.best_version, s.best_checksum = first.best_version, first.best_checksum
    starts = [rs.start_time for rs in runners if rs.start_time]
    s.start_time = min(starts) if starts else s.start_time


def _combined_results(shards: Sequence[Mapping[str, EvaluatorResults]]) -> dict[str, EvaluatorResults]:
    """Per evaluator, the shards' aggregates as one: mean and passRate weighted by ``n`` (so they
    are the mean over every scored case), ``n`` and ``parseFailures`` summed."""
    out: dict[str, EvaluatorResults] = {}
    for name in sorted({k for r in shards for k in r}):
        parts = [r[name] for r in shards if name in r]
        n = sum(p.n for p in parts)
        out[name] = EvaluatorResults(
            mean=sum(p.mean * p.n for p in parts) / n if n else 0.0,
            pass_rate=sum(p.pass_rate * p.n for p in parts) / n if n else 0.0,
            n=n,
            parse_failures=sum(p.parse_failures for p in parts),
        )
    return out


def _first_shard_failure(
    ref: RunRef, parsed: Sequence[tuple[JobState | None, RunStatus | None]], failed_case: FailedCase | None
) -> tuple[str, str] | None:
    """``(reason, message)`` of the first shard that failed, by verdict or by its Job; else None.

    A shard without a verdict whose Job is still active (or stopped) is not a failure; the search
    goes on past it.
    """
    n = len(parsed)
    for i, (job, rs) in enumerate(parsed):
        verdict = rs.phase if rs is not None else None
        if verdict == Phase.FAILED:
            cond = condition_of(rs, ConditionType.FAILED) if rs is not None else None
            reason = cond.reason if cond is not None else Reason.SHARD_FAILED
            return reason, f"shard {i}/{n}: {(rs.message if rs else None) or 'failed'}"
        if verdict == Phase.SUCCEEDED:
            continue
        if job is None or job.phase == JobPhase.SUCCEEDED:
            reason = Reason.JOB_MISSING if job is None else Reason.NO_VERDICT
            detail = f"shard {i}/{n}: runner Job {job_name(ref, i)} ended without a verdict from the runner"
            return reason, failure_message(detail, epoch=None, failed_case=failed_case)
        if job.phase == JobPhase.FAILED:
            detail = (
                f"shard {i}/{n}: runner Job {job_name(ref, i)} failed ({job.reason}: {job.message or 'no message'})"
            )
            return job.reason or Reason.JOB_FAILED, failure_message(detail, epoch=None, failed_case=failed_case)
    return None


def _weighted(rows: Iterable[tuple[int, Mapping[str, float]]]) -> dict[str, float]:
    """Per key, the mean of shard means weighted by each shard's case count (= the overall mean)."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for weight, row in rows:
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v * weight
            weights[k] = weights.get(k, 0) + weight
    return {k: sums[k] / weights[k] for k in sums if weights[k] > 0}


def failure_message(detail: str, *, epoch: int | None, failed_case: FailedCase | None) -> str:
    """``detail``, the epoch reached, and the latest failing case with its error.

    The epoch is the later of the status's and the failing row's: a runner killed between
    recording rows and writing its status leaves the rows ahead.
    """
    parts = [detail]
    reached = max((e for e in (epoch, failed_case.epoch if failed_case else None) if e is not None), default=None)
    if reached:
        parts.append(f"during epoch {reached}")
    if failed_case is not None:
        where = f"case {failed_case.case_id} ({failed_case.stage})"
        parts.append(f"last error: {where}: {failed_case.error[:300]}")
    return "; ".join(parts)


def promotion_target(status: RunStatus, pc_spec: Mapping[str, Any]) -> int | None:
    """The version a finished TrainingRun promotes under ``spec.promotion.policy: Auto``, if any."""
    policy = ((pc_spec.get("promotion") or {}).get("policy")) or "Manual"
    promotable = condition_of(status, ConditionType.PROMOTABLE)
    if (
        policy != "Auto"
        or status.phase != Phase.SUCCEEDED
        or promotable is None
        or promotable.status != "True"
        or status.best_version is None
    ):
        return None
    if pc_spec.get("activeVersion") == status.best_version:
        return None
    return status.best_version
