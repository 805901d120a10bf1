"""Reflecting a started run from its Job(s) and the runner's rows, and Auto promotion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentensor_api import (
    CheckpointSummary,
    RunStatus,
)

from ._jobs import JobState
from ._names import TERMINAL_PHASES, RunRef, job_name
from ._status import condition_of, parse_run_status, put_condition


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
_RUNNER_CONDITIONS = ("Running", "Succeeded", "Failed", "Promotable")


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
        for name in _PROGRESS_FIELDS:
            value = getattr(rs, name, None)  # ``usage`` exists once runners report LLM usage
            if value is not None:
                setattr(s, name, value)
        for c in rs.conditions:
            if c.type in _RUNNER_CONDITIONS:
                s.conditions = [x for x in s.conditions if x.type != c.type] + [c]
    s.checkpoints = list(checkpoints)[-kept:] if kept and checkpoints else None
    runner_phase = rs.phase if rs is not None else None

    if runner_phase in TERMINAL_PHASES:
        s.phase = runner_phase
        s.completion_time = s.completion_time or now
        if runner_phase == "Failed" and not s.message:
            s.message = "the runner recorded the run as Failed"
        return s
    if job is not None and job.phase == "Active":
        s.phase = "Running"
        if condition_of(s, "Running") is None or rs is None:
            put_condition(
                s, "Running", "True", "JobCreated", f"runner Job {job_name_} created; waiting for the runner", now
            )
        return s
    if job is not None and job.phase == "Stopped":
        s.phase = "Running"
        return s
    # The Job finished (or vanished) without a verdict from the runner.
    if job is None:
        reason, detail = "JobMissing", f"runner Job {job_name_} disappeared before the runner recorded a verdict"
    elif job.phase == "Succeeded":
        reason, detail = "NoVerdict", f"runner Job {job_name_} completed but the runner recorded no verdict"
    else:
        reason = job.reason or "JobFailed"
        detail = f"runner Job {job_name_} failed ({reason}: {job.message or 'no message'})"
    s.message = failure_message(detail, epoch=s.epoch, failed_case=failed_case)
    s.phase = "Failed"
    s.completion_time = now
    put_condition(s, "Running", "False", reason, s.message, now)
    put_condition(s, "Succeeded", "False", reason, s.message, now)
    put_condition(s, "Failed", "True", reason, s.message, now)
    return s


def reflect_sharded(
    prev: RunStatus,
    ref: RunRef,
    *,
    shards: Sequence[tuple[JobState | None, Mapping[str, Any] | None]],
    failed_case: FailedCase | None,
    now: str,
) -> RunStatus:
    """The status of a sharded EvaluationRun from each shard's Job state and runner status.

    Counts add up; ``scores`` and the objective (``bestScore``/``baselineScore``) are means
    weighted by each shard's case count, i.e. the mean over all cases. The run succeeds when
    every shard's runner recorded Succeeded, and fails on the first shard that failed (by
    verdict, or by its Job failing or vanishing without one), naming the shard.
    """
    s = prev.model_copy(deep=True)
    s.run_id = ref.uid
    parsed = [(job, parse_run_status(runner) if runner else None) for job, runner in shards]
    runners = [rs for _, rs in parsed if rs is not None]
    total = sum(rs.cases_total or 0 for rs in runners)
    s.cases_total = total if runners else s.cases_total
    s.cases_completed = sum(rs.cases_completed or 0 for rs in runners)
    s.cases_failed = sum(rs.cases_failed or 0 for rs in runners)
    weights = [(rs.cases_total or 0, rs) for rs in runners if (rs.cases_total or 0) > 0]  # empty shards: no say
    s.scores = _weighted([(w, rs.scores or {}) for w, rs in weights]) or None
    objective = _weighted([(w, {"o": rs.best_score}) for w, rs in weights if rs.best_score is not None]).get("o")
    if objective is not None and all(rs.best_score is not None for _, rs in weights):
        s.best_score = s.baseline_score = objective
    first = next((rs for rs in runners if rs.best_version is not None), None)
    if first is not None:
        s.best_version, s.best_checksum = first.best_version, first.best_checksum
    starts = [rs.start_time for rs in runners if rs.start_time]
    s.start_time = min(starts) if starts else s.start_time
    n = len(shards)

    for i, (job, rs) in enumerate(parsed):
        verdict = rs.phase if rs is not None else None
        if verdict == "Failed":
            cond = condition_of(rs, "Failed") if rs is not None else None
            reason = cond.reason if cond is not None else "ShardFailed"
            return _failed(s, reason, f"shard {i}/{n}: {(rs.message if rs else None) or 'failed'}", now)
        if verdict == "Succeeded":
            continue
        if job is None or job.phase == "Succeeded":
            reason = "JobMissing" if job is None else "NoVerdict"
            detail = f"shard {i}/{n}: runner Job {job_name(ref, i)} ended without a verdict from the runner"
            return _failed(s, reason, failure_message(detail, epoch=None, failed_case=failed_case), now)
        if job.phase == "Failed":
            detail = (
                f"shard {i}/{n}: runner Job {job_name(ref, i)} failed ({job.reason}: {job.message or 'no message'})"
            )
            return _failed(
                s, job.reason or "JobFailed", failure_message(detail, epoch=None, failed_case=failed_case), now
            )
    if len(runners) == n and all(rs.phase == "Succeeded" for rs in runners):
        s.phase = "Succeeded"
        ends = [rs.completion_time for rs in runners if rs.completion_time]
        s.completion_time = max(ends) if ends else now
        scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted((s.scores or {}).items()))
        message = f"{scores} over {total} cases in {n} shards, {s.cases_failed} error(s)"
        put_condition(s, "Running", "False", "Completed", message, now)
        put_condition(s, "Succeeded", "True", "Completed", message, now)
        return s
    s.phase = "Running"
    done = sum(1 for rs in runners if rs.phase == "Succeeded")
    message = f"{s.cases_completed}/{total or '?'} cases; {done}/{n} shards finished"
    put_condition(s, "Running", "True", "Evaluating", message, now)
    return s


def _weighted(rows: Iterable[tuple[int, Mapping[str, float]]]) -> dict[str, float]:
    """Per key, the mean of shard means weighted by each shard's case count (= the overall mean)."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for weight, row in rows:
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v * weight
            weights[k] = weights.get(k, 0) + weight
    return {k: sums[k] / weights[k] for k in sums if weights[k] > 0}


def _failed(s: RunStatus, reason: str, message: str, now: str) -> RunStatus:
    s.phase = "Failed"
    s.message = message
    s.completion_time = now
    put_condition(s, "Running", "False", reason, message, now)
    put_condition(s, "Succeeded", "False", reason, message, now)
    put_condition(s, "Failed", "True", reason, message, now)
    return s


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
    promotable = condition_of(status, "Promotable")
    if (
        policy != "Auto"
        or status.phase != "Succeeded"
        or promotable is None
        or promotable.status != "True"
        or status.best_version is None
    ):
        return None
    if pc_spec.get("activeVersion") == status.best_version:
        return None
    return status.best_version
