"""Result, protocol and error types shared by every evaluator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

from agentensor_api import EvaluatorSpec, ManifestError


@dataclass(frozen=True, slots=True)
class EvalResult:
    """The score of one evaluator on one case.

    Attributes:
        score: in ``[0, 1]``; 1 is best. Binary evaluators give exactly 0.0 or 1.0.
        passed: ``score >= spec.threshold`` (a ``python`` evaluator may decide it explicitly).
        reason: the textual loss: why the case failed and what was expected. ``""`` (or a short
            note from a ``python`` evaluator) when it passed. Used as the optimizer's feedback.

    Raises:
        ValueError: if ``score`` is NaN or outside ``[0, 1]``.
    """

    score: float
    passed: bool
    reason: str

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0):  # also rejects NaN
            raise ValueError(f"EvalResult.score must be in [0, 1], got {self.score!r}")


@runtime_checkable
class Evaluator(Protocol):
    """A scorer built from one ``spec.evaluators[i]`` entry.

    Attributes:
        name: ``spec.name``, unique within the run.
        spec: the manifest entry it was built from.
    """

    name: str
    spec: EvaluatorSpec

    async def evaluate(self, *, input: Any, output: Any, expected: Any) -> EvalResult:
        """Score one case.

        Args:
            input: the case input (passed through to ``python`` evaluators only).
            output: the whole workflow output; ``spec.outputField`` is resolved inside.
            expected: the dataset's expected value for this case (already picked from the
                ``expectedField`` column by the runner); ``None`` when the case has none.

        Returns:
            The result. Never raises for a bad case (missing field, unparsable output, an
            exception in the scorer): that becomes ``EvalResult(0.0, False, reason)``.
        """
        ...


class EvaluatorConfigError(ManifestError):
    """An evaluator entry cannot be built.

    ``field`` names the offending manifest field, e.g. ``spec.evaluators[2].options.pattern``;
    ``reason`` says why and, where possible, how to fix it.
    """


class Aggregate(TypedDict):
    """Summary of one evaluator over many cases (a plain ``dict`` at runtime)."""

    mean: float
    """Mean score in ``[0, 1]``; 0.0 when there are no results."""
    passRate: float
    """Fraction of results that passed, in ``[0, 1]``; 0.0 when there are no results."""
    n: int
    """Number of results."""


def aggregate(results: Sequence[EvalResult]) -> Aggregate:
    """Summarise results as ``{"mean": float, "passRate": float, "n": int}``.

    An empty sequence gives ``{"mean": 0.0, "passRate": 0.0, "n": 0}``.
    """
    n = len(results)
    if n == 0:
        return {"mean": 0.0, "passRate": 0.0, "n": 0}
    mean = math.fsum(r.score for r in results) / n
    pass_rate = sum(1 for r in results if r.passed) / n
    return {"mean": min(1.0, max(0.0, mean)), "passRate": pass_rate, "n": n}
