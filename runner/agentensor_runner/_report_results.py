"""``status.results`` from an evaluation's per-evaluator aggregates."""

from __future__ import annotations

from collections.abc import Mapping

from agentensor_api import EvaluatorResults

from .evaluators import Aggregate


def status_results(aggregates: Mapping[str, Aggregate]) -> dict[str, EvaluatorResults]:
    """``{evaluator: EvaluatorResults}`` from ``Evaluation.aggregates`` (mean, passRate, n, parseFailures)."""
    return {name: EvaluatorResults.model_validate(dict(agg)) for name, agg in sorted(aggregates.items())}
