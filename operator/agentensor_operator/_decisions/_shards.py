"""What the reflection of a run's Job(s) needs from the runner's rows, decided without the store.

The handler (``handlers/_started.py``) reads the rows and passes them in; these functions pick
from them. Row types are Protocols so that this package does not import the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from agentensor_api import CheckpointSummary, PassCriterion

from ._job_state import JobState
from ._names import shard_run_id
from ._reflect import FailedCase


class ErrorRow(Protocol):
    """The fields of a case row (``agentensor_store.CaseRow``) an error report needs."""

    @property
    def id(self) -> int | None: ...
    @property
    def case_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def epoch(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...


class CheckpointRow(Protocol):
    """The fields of a checkpoint row (``agentensor_store.CheckpointRecord``) the status shows."""

    @property
    def epoch(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def score(self) -> float | None: ...
    @property
    def checksum(self) -> str: ...
    @property
    def accepted(self) -> int: ...


def shard_run_ids(uid: str, shards: int) -> list[str]:
    """The database run ids holding a run's rows: ``<uid>-s<i>`` per shard, or ``[uid]`` unsharded."""
    return [shard_run_id(uid, i) for i in range(shards)] if shards > 1 else [uid]


def shard_pairs(
    states: Mapping[int | None, JobState], statuses: Sequence[Mapping[str, Any] | None]
) -> list[tuple[JobState | None, Mapping[str, Any] | None]]:
    """``(Job state, runner status)`` per shard index ``0..len(statuses)-1``; None where absent."""
    return [(states.get(i), status) for i, status in enumerate(statuses)]


def pass_criteria(spec: Mapping[str, Any] | None) -> list[PassCriterion]:
    """``spec.passCriteria`` of an EvaluationRun (the whole spec was validated before any Job).

    Raises pydantic's ``ValidationError`` on a malformed entry (not reached after validation).
    """
    raw = (spec or {}).get("passCriteria") or []
    return [PassCriterion.model_validate(c) for c in raw]


def latest_error(errors_per_run: Iterable[Sequence[ErrorRow]]) -> FailedCase | None:
    """The most recent error row among several runs' error rows (each list in id order).

    Row ids grow with time, so the last row of each list is compared by id; a tie keeps the
    earlier run's row. None when no list has a row.
    """
    last: ErrorRow | None = None
    for errors in errors_per_run:
        if errors and (last is None or (errors[-1].id or 0) > (last.id or 0)):
            last = errors[-1]
    return FailedCase(last.case_id, last.stage, last.epoch, last.error or "") if last is not None else None


def checkpoint_summaries(rows: Sequence[CheckpointRow], kept: int) -> list[CheckpointSummary]:
    """The last ``kept`` checkpoint rows (in row order) as ``status.checkpoints`` entries."""
    return [
        CheckpointSummary(epoch=c.epoch, version=c.version, score=c.score, checksum=c.checksum, accepted=c.accepted)
        for c in rows[-kept:]
    ]
