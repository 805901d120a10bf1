"""Per-case results (``agentensor_case_results``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .._checks import check_json, require_run, without_nul
from .._db import Repository, transaction
from .._errors import InvalidValueError
from .._models import CaseResultModel
from .._records import CaseRow
from .._rows import case_row

_CASE_UPDATE_COLUMNS = (
    "thread_id",
    "epoch",
    "version",
    "input",
    "expected",
    "output",
    "scores",
    "passed",
    "error",
    "latency_seconds",
    "reasons",
    "usage",
)


class CaseRepository(Repository):
    """Case rows keyed by ``(run_id, stage, case_id)``."""

    @transaction("record_cases", write=True)
    def upsert(self, s: Session, run_id: str, values: list[dict[str, Any]]) -> None:
        """Upsert prepared rows of an existing run in one statement."""
        require_run(s, run_id)
        stmt = self.db.upsert(CaseResultModel)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CaseResultModel.run_id, CaseResultModel.stage, CaseResultModel.case_id],
            set_={c: stmt.excluded[c] for c in _CASE_UPDATE_COLUMNS},
        )
        s.execute(stmt, values)

    @transaction("list_cases")
    def list_rows(self, s: Session, run_id: str, stage: str | None, errors_only: bool) -> list[CaseRow]:
        """A run's case results in recording order, optionally of one stage or errors only."""
        stmt = select(CaseResultModel).where(CaseResultModel.run_id == run_id).order_by(CaseResultModel.id)
        if stage is not None:
            stmt = stmt.where(CaseResultModel.stage == stage)
        if errors_only:
            stmt = stmt.where(CaseResultModel.error.is_not(None))
        return [case_row(r) for r in s.scalars(stmt)]

    @transaction("iter_cases")
    def batch(self, s: Session, run_id: str, stage: str | None, after_id: int, size: int) -> list[CaseRow]:
        """At most ``size`` rows with an id above ``after_id``, by id (one keyset page)."""
        stmt: Select[CaseResultModel] = select(CaseResultModel).where(
            CaseResultModel.run_id == run_id, CaseResultModel.id > after_id
        )
        if stage is not None:
            stmt = stmt.where(CaseResultModel.stage == stage)
        return [case_row(r) for r in s.scalars(stmt.order_by(CaseResultModel.id).limit(size))]


def case_values(run_id: str, rows: Sequence[CaseRow], now: datetime) -> list[dict[str, Any]]:
    """The insert values of ``rows``, the last of a repeated ``(stage, case_id)`` winning.

    Raises:
        InvalidValueError: a non-finite latency, or a value that is not JSON (NaN too).
    """
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if not math.isfinite(r.latency_seconds):
            raise InvalidValueError(f"case {r.case_id!r}: latency_seconds must be finite, got {r.latency_seconds}")
        for label in ("input", "expected", "output", "scores", "reasons", "usage"):
            check_json(f"case {r.case_id!r} {label}", getattr(r, label))
        by_key[(r.stage, r.case_id)] = {
            "run_id": run_id,
            "stage": r.stage,
            "case_id": r.case_id,
            "thread_id": r.thread_id,
            "epoch": r.epoch,
            "version": r.version,
            "input": without_nul(r.input),
            "expected": without_nul(r.expected),
            "output": without_nul(r.output),
            "scores": dict(r.scores),
            "passed": r.passed,
            "error": without_nul(r.error),
            "latency_seconds": float(r.latency_seconds),
            "reasons": without_nul(r.reasons),
            "usage": r.usage,
            "created_at": now,
        }
    return list(by_key.values())
