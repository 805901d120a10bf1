"""What running cases produces: one case's outcome, and the aggregates of many.

:class:`CaseResult` is one case's output, per-evaluator results, error, latency and LLM usage;
:class:`Aggregator` counts results one at a time (constant memory; also from stored rows, for a
resumed evaluation); :class:`Evaluation` is all results of one (config, split) evaluation with its
per-evaluator aggregates, and :func:`status_results` is how those aggregates appear in
``status.results``. An error row scores 0 and fails for every evaluator; an unscored result (a judge
reply that did not parse) counts only in that evaluator's ``parseFailures``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentensor_api import EvaluatorResults

from ..data import Case
from ..evaluators import Aggregate, EvalResult, Evaluator, Tally
from ..llm import Usage


def jsonable(value: Any) -> Any:
    """``value`` as a case row or cache entry stores it: unchanged if it is JSON (no NaN), else its ``repr``."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """Outcome of one case: output, per-evaluator results, error, latency in seconds."""

    case: Case
    stage: str
    thread_id: str
    output: Any
    results: Mapping[str, EvalResult]
    error: str | None
    latency_seconds: float
    used_prompts: frozenset[str]
    usage: Usage | None = None
    """LLM usage of this case (workflow and judge calls), from LangChain usage metadata."""

    def score(self, evaluator: str) -> float:
        """The evaluator's score; 0.0 for an error row, a missing result or an unscored one."""
        r = self.results.get(evaluator)
        return r.score if r is not None and self.error is None else 0.0

    def passed(self, evaluator: str) -> bool:
        r = self.results.get(evaluator)
        return bool(r is not None and self.error is None and r.passed)

    def scored(self, evaluator: str) -> bool:
        """False only when the evaluator's result is a parse failure (an error row scores 0: True)."""
        r = self.results.get(evaluator)
        return self.error is not None or r is None or r.scored


class Aggregator:
    """Per-evaluator aggregates and the error count, one case at a time (constant memory).

    An error row scores 0 and fails for every evaluator; an unscored result (parse failure)
    counts only in that evaluator's ``parseFailures``.
    """

    def __init__(self, evaluators: Sequence[str]) -> None:
        self.tallies = {name: Tally() for name in evaluators}
        self.errors = 0
        self.count = 0
        self.first_error: tuple[str, str] | None = None
        """``(case id, error)`` of the first error row counted."""

    def add(self, r: CaseResult) -> None:
        self._count_error(r.case.case_id, r.error)
        for name, tally in self.tallies.items():
            tally.add(r.score(name), r.passed(name), scored=r.scored(name))

    def add_row(
        self, case_id: str, scores: Mapping[str, float], reasons: Mapping[str, str] | None, error: str | None
    ) -> None:
        """Count a case from its stored row (a resumed evaluation), as :meth:`add` counted it.

        A row keeps the scores of the scored evaluators and the reasons of those that did not
        pass (:meth:`.context.RunContext.case_row`): an evaluator with a score passed unless it has a
        reason; one without a score (and no error) was unscored.
        """
        self._count_error(case_id, error)
        for name, tally in self.tallies.items():
            if error is not None:
                tally.add(0.0, False)
            elif name in scores:
                tally.add(float(scores[name]), name not in (reasons or {}))
            else:
                tally.add(0.0, False, scored=False)

    def _count_error(self, case_id: str, error: str | None) -> None:
        self.count += 1
        if error is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = (case_id, error)

    def aggregates(self) -> dict[str, Aggregate]:
        return {name: t.result() for name, t in self.tallies.items()}


@dataclass(frozen=True)
class Evaluation:
    """All case results of one (config, split) evaluation with per-evaluator aggregates.

    ``means`` is ``{evaluator: mean}`` over the scored cases (see :class:`Aggregator`);
    ``aggregates`` adds ``passRate``, ``n`` and ``parseFailures``. ``cases`` may be empty when
    the evaluation streamed its rows to the store instead of keeping them (``run_cases(stream=...)``).
    """

    cases: list[CaseResult]
    means: dict[str, float]
    errors: int
    aggregates: dict[str, Aggregate] = field(default_factory=dict)
    count: int | None = None
    """Cases evaluated (``len(cases)`` unless the rows were not kept)."""

    def objective(self, evaluator: str) -> float:
        return self.means.get(evaluator, 0.0)

    @property
    def size(self) -> int:
        return self.count if self.count is not None else len(self.cases)

    @property
    def parse_failures(self) -> dict[str, int]:
        """``{evaluator: unscored results}``, only evaluators with at least one."""
        return {k: a["parseFailures"] for k, a in self.aggregates.items() if a["parseFailures"]}


def summarize(results: Sequence[CaseResult], evaluators: Sequence[Evaluator]) -> Evaluation:
    """Aggregates per evaluator over all cases; an error row scores 0 for every evaluator.

    A parse failure is left out of its evaluator's mean (and counted in ``parseFailures``), so
    ``means[e]`` is the mean over the cases that ``e`` actually scored; 0.0 if it scored none.
    """
    agg = Aggregator([ev.name for ev in evaluators])
    for r in results:
        agg.add(r)
    return evaluation_of(list(results), agg)


def evaluation_of(cases: list[CaseResult], agg: Aggregator) -> Evaluation:
    """The :class:`Evaluation` of ``cases`` (empty when they were streamed) with ``agg``'s aggregates."""
    aggregates = agg.aggregates()
    means = {k: a["mean"] for k, a in aggregates.items()}
    return Evaluation(cases, means, agg.errors, aggregates, agg.count)


def status_results(aggregates: Mapping[str, Aggregate]) -> dict[str, EvaluatorResults]:
    """``{evaluator: EvaluatorResults}`` from ``Evaluation.aggregates`` (mean, passRate, n, parseFailures)."""
    return {name: EvaluatorResults.model_validate(dict(agg)) for name, agg in sorted(aggregates.items())}


__all__ = [
    "Aggregator",
    "CaseResult",
    "Evaluation",
    "evaluation_of",
    "jsonable",
    "status_results",
    "summarize",
]
