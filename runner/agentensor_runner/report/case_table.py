"""What the report shows, read from the store in bounded memory.

The case rows of the shown stage are read in one pass (:func:`collect`). During that pass only
counters are kept for the aggregates (per-class accuracy, confusion pairs, latency and token
totals); full rows are kept for at most ``max_rows`` cases (failures first, then passes, in
recording order). A TrainingRun's ``holdout/baseline`` rows are then read in a second pass that
keeps only the baseline outcome of the shown cases plus two counters (cases the best config
fixed and broke).

Classification is detected from the data: the objective evaluator's expected values and
predictions (``resolve_path(output, outputField)``) are scalars (str, int, bool) and there are
at most :data:`MAX_CLASSES` distinct expected labels. Otherwise ``classes`` is None.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentensor_store import CaseRow, Store

from ..evaluators import resolve_path

MAX_TABLE_ROWS = 2000
"""Case rows shown in the report's table (the rest are counted, never held)."""
MAX_CLASSES = 200
"""More distinct expected labels than this and the data is not treated as classification."""
MAX_CONFUSION_PAIRS = 30
"""Most frequent (expected, predicted) mismatches listed."""


@dataclass(slots=True)
class CaseView:
    """One shown case: the best (or evaluated) config's row and, on holdout, the baseline's outcome."""

    row: CaseRow
    predicted: Any
    baseline_passed: bool | None = None
    baseline_predicted: Any = None


@dataclass(slots=True)
class ClassStats:
    """Per expected label: cases, cases the objective evaluator passed, and the summed score."""

    label: str
    n: int = 0
    passed: int = 0
    score_sum: float = 0.0

    @property
    def accuracy(self) -> float:
        """Mean objective score of the label's cases (an error row scores 0)."""
        return self.score_sum / self.n if self.n else 0.0


@dataclass(slots=True)
class CaseTable:
    """The result of one pass over a stage's rows."""

    stage: str
    total: int = 0
    failures: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    shown: list[CaseView] = field(default_factory=list)
    classes: dict[str, ClassStats] | None = field(default_factory=dict)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    fixed: int = 0
    """Holdout cases the baseline failed and the best config passes."""
    broken: int = 0
    """Holdout cases the baseline passed and the best config fails."""
    baseline_stage: str | None = None

    @property
    def hidden(self) -> int:
        return self.total - len(self.shown)


@dataclass(frozen=True, slots=True)
class Objective:
    """The evaluator the report classifies by: name and the output path it reads."""

    evaluator: str | None
    output_field: str | None


def objective_of(spec: Mapping[str, Any]) -> Objective:
    """The objective evaluator and its ``outputField`` from a stored run spec (wire form)."""
    name = (spec.get("objective") or {}).get("evaluator")
    for ev in spec.get("evaluators") or []:
        if ev.get("name") == name:
            return Objective(name, ev.get("outputField"))
    return Objective(name, None)


def _label(value: Any) -> str | None:
    """A label's text, or None when ``value`` is not a scalar label."""
    if isinstance(value, bool | int | str):
        return str(value)
    return None


def _predicted(row: CaseRow, objective: Objective) -> Any:
    if row.error is not None or row.output is None:
        return None
    with contextlib.suppress(KeyError, ValueError, TypeError):
        return resolve_path(row.output, objective.output_field)
    return None


def _passed(row: CaseRow) -> bool:
    """The case passed every evaluator (``CaseRow.passed``) and did not raise."""
    return row.error is None and bool(row.passed)


def _count(table: CaseTable, row: CaseRow, objective: Objective, predicted: Any) -> bool:
    """Add ``row`` to the counters; returns whether it passed."""
    ok = _passed(row)
    table.total += 1
    table.failures += not ok
    table.errors += row.error is not None
    table.latency_sum += row.latency_seconds or 0.0
    usage = row.usage or {}
    table.input_tokens += int(usage.get("inputTokens") or 0)
    table.output_tokens += int(usage.get("outputTokens") or 0)
    table.cost += float(usage.get("cost") or 0.0)
    if table.classes is not None:
        expected = _label(row.expected)
        if expected is None or (expected not in table.classes and len(table.classes) >= MAX_CLASSES):
            table.classes, table.confusion = None, Counter()
        else:
            stats = table.classes.setdefault(expected, ClassStats(expected))
            stats.n += 1
            stats.passed += ok
            stats.score_sum += 0.0 if row.error else float((row.scores or {}).get(objective.evaluator or "", 0.0))
            guess = "(error)" if row.error else (_label(predicted) or "(none)")
            if guess != expected:
                table.confusion[(expected, guess)] += 1
    return ok


def collect(
    rows: Iterable[CaseRow],
    stage: str,
    objective: Objective,
    *,
    max_rows: int = MAX_TABLE_ROWS,
) -> tuple[CaseTable, set[str]]:
    """One pass over ``rows``: counters for every row, full views of at most ``max_rows``.

    Failures are kept first (up to ``max_rows``), then passes fill what is left, each in
    recording order. Returns the table and the ids of the passing cases (for the fixed/broken
    counts against the baseline; ids only).
    """
    table = CaseTable(stage)
    fails: list[CaseView] = []
    passes: list[CaseView] = []
    passing: set[str] = set()
    for row in rows:
        predicted = _predicted(row, objective)
        ok = _count(table, row, objective, predicted)
        if ok:
            passing.add(row.case_id)
            if len(fails) + len(passes) < max_rows:
                passes.append(CaseView(row, predicted))
        elif len(fails) < max_rows:
            fails.append(CaseView(row, predicted))
            if len(fails) + len(passes) > max_rows:
                passes.pop()
    table.shown = fails + passes
    return table, passing


def add_baseline(
    table: CaseTable, rows: Iterable[CaseRow], stage: str, objective: Objective, passing: set[str]
) -> None:
    """Second pass (TrainingRun holdout): the baseline outcome of the shown cases, fixed/broken counts."""
    shown = {v.row.case_id: v for v in table.shown}
    table.baseline_stage = stage
    for row in rows:
        ok = _passed(row)
        best_ok = row.case_id in passing
        table.fixed += best_ok and not ok
        table.broken += ok and not best_ok
        view = shown.get(row.case_id)
        if view is not None:
            view.baseline_passed = ok
            view.baseline_predicted = _predicted(row, objective)


def stage_rows(store: Store, run_id: str, stage: str) -> Iterator[CaseRow]:
    """The stage's rows, one at a time, for :func:`collect`.

    Read in pages of 1,000 rows (``Store.iter_cases``, keyset pagination), so the report holds
    one page plus what :func:`collect` keeps, however large the run.
    """
    yield from store.iter_cases(run_id, stage=stage)
