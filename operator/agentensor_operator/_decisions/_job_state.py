"""What a runner Job says: its phase (named once, :class:`JobPhase`), its failure reason, its shard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from agentensor_api import Reason

from ._names import ANNOTATION_SHARDS, LABEL_SHARD


def job_shards(jobs: Sequence[Mapping[str, Any]]) -> int:
    """How many shards a run's Jobs were created for (1 when unsharded or unknown)."""
    for job in jobs:
        value = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SHARDS)
        if value and str(value).isdigit():
            return max(1, int(value))
    return 1


def job_shard(job: Mapping[str, Any]) -> int | None:
    """The shard index of a runner Job (``None`` when unsharded)."""
    value = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_SHARD)
    return int(value) if value is not None and str(value).isdigit() else None


JobPhaseValue = Literal["Active", "Succeeded", "Failed", "Stopped"]
"""The type of :attr:`JobState.phase` (the values of :class:`JobPhase`)."""


class JobPhase:
    """What a runner Job is doing, as the operator reads it (:func:`job_state`), named once."""

    ACTIVE: Final = "Active"
    """Running or about to: it holds a slot of ``maxConcurrentJobs``."""
    SUCCEEDED: Final = "Succeeded"
    """Its Pod exited 0 (Job condition ``Complete``); the runner's verdict is in the database."""
    FAILED: Final = "Failed"
    """Job condition ``Failed``: retries spent, or the deadline passed."""
    STOPPED: Final = "Stopped"
    """Scaled to ``parallelism: 0`` (a suspended or stopped run) or being deleted: holds no slot."""


class JobConditionType:
    """The Job conditions (``batch/v1``) :func:`job_state` reads."""

    COMPLETE: Final = "Complete"
    FAILED: Final = "Failed"


@dataclass(frozen=True, slots=True)
class JobState:
    """What a runner Job says: Active, Succeeded, Failed (with reason), or Stopped (parallelism 0)."""

    phase: JobPhaseValue
    reason: str = ""
    message: str = ""
    failed_pods: int = 0


def job_state(job: Mapping[str, Any]) -> JobState:
    """Read a Job's conditions (Complete/Failed) and counters."""
    status = job.get("status") or {}
    failed = int(status.get("failed") or 0)
    for c in status.get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == JobConditionType.COMPLETE:
            return JobState(JobPhase.SUCCEEDED, c.get("reason") or Reason.COMPLETED, c.get("message") or "", failed)
        if c.get("type") == JobConditionType.FAILED:
            return JobState(JobPhase.FAILED, c.get("reason") or Reason.JOB_FAILED, c.get("message") or "", failed)
    if (job.get("spec") or {}).get("parallelism") == 0 or (job.get("metadata") or {}).get("deletionTimestamp"):
        return JobState(JobPhase.STOPPED, JobPhase.STOPPED, "", failed)  # the reason is the phase: nothing failed
    return JobState(JobPhase.ACTIVE, "", "", failed)


def count_active(jobs: Iterable[Mapping[str, Any]]) -> int:
    """How many runner Jobs hold a slot of the cap (neither finished, stopped nor being deleted)."""
    return sum(1 for j in jobs if job_state(j).phase == JobPhase.ACTIVE)
