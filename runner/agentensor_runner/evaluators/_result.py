"""Result, protocol and error types shared by every evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, get_args, runtime_checkable

from agentensor_api import EvaluatorSpec, ManifestError

Outcome = Literal["scored", "parseFailure"]
"""``scored``: ``score`` is the evaluator's judgement. ``parseFailure``: the evaluator could not
read its own judge's reply (``llm_judge``), so the case has no score for it; see :func:`aggregate`."""


@dataclass(frozen=True, slots=True)
class EvalResult:
    """The score of one evaluator on one case.

    Attributes:
        score: in ``[0, 1]``; 1 is best. Binary evaluators give exactly 0.0 or 1.0. 0.0 and
            meaningless when ``outcome`` is ``parseFailure``.
        passed: ``score >= spec.threshold`` (a ``python`` evaluator may decide it explicitly);
            always False for a ``parseFailure``.
        reason: the textual loss: why the case failed and what was expected. ``""`` (or a short
            note from a ``python`` evaluator) when it passed. Used as the optimizer's feedback.
            For a ``parseFailure`` it says the judge failed and keeps the raw reply, clipped.
        outcome: ``scored`` (default) or ``parseFailure``: an unscored result, left out of
            means and pass rates and counted as ``parseFailures`` instead.

    Raises:
        ValueError: if ``score`` is NaN or outside ``[0, 1]``, ``outcome`` is not an
            :data:`Outcome`, or a ``parseFailure`` has ``passed`` True or a non-zero score.
    """

    score: float
    passed: bool
    reason: str
    outcome: Outcome = "scored"

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0):  # also rejects NaN
            raise ValueError(f"EvalResult.score must be in [0, 1], got {self.score!r}")
        if self.outcome not in get_args(Outcome):
            raise ValueError(f"EvalResult.outcome must be one of {get_args(Outcome)}, got {self.outcome!r}")
        if self.outcome != "scored" and (self.passed or self.score != 0.0):
            raise ValueError(f"an unscored EvalResult ({self.outcome}) must have score 0.0 and passed False")

    @property
    def scored(self) -> bool:
        """False for a ``parseFailure`` (no score to count)."""
        return self.outcome == "scored"


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
    """Mean score over the scored results, in ``[0, 1]``; 0.0 when none was scored."""
    passRate: float
    """Fraction of the scored results that passed, in ``[0, 1]``; 0.0 when none was scored."""
    n: int
    """Number of scored results (the denominator of ``mean`` and ``passRate``)."""
    parseFailures: int
    """Unscored results (``outcome == "parseFailure"``), not in ``n``."""


class Tally:
    """Running sums for :class:`Aggregate`, one result at a time (constant memory).

    ``add(score, passed, scored=...)``; :meth:`result` gives the aggregate so far. The mean is
    the plain running sum over ``n`` (the same float as ``sum(scores) / n``).
    """

    __slots__ = ("_sum", "n", "parse_failures", "passes")

    def __init__(self) -> None:
        self._sum = 0.0
        self.n = 0
        self.passes = 0
        self.parse_failures = 0

    def add(self, score: float, passed: bool, *, scored: bool = True) -> None:
        """Count one result; an unscored one only in ``parse_failures``."""
        if not scored:
            self.parse_failures += 1
            return
        self.n += 1
        self.passes += bool(passed)
        self._sum += score

    def result(self) -> Aggregate:
        """``{"mean", "passRate", "n", "parseFailures"}``; mean and passRate 0.0 when ``n`` is 0."""
        if self.n == 0:
            return {"mean": 0.0, "passRate": 0.0, "n": 0, "parseFailures": self.parse_failures}
        mean = self._sum / self.n
        return {
            "mean": min(1.0, max(0.0, mean)),
            "passRate": self.passes / self.n,
            "n": self.n,
            "parseFailures": self.parse_failures,
        }


def aggregate(results: Sequence[EvalResult]) -> Aggregate:
    """Summarise results as ``{"mean": float, "passRate": float, "n": int, "parseFailures": int}``.

    Unscored results (parse failures) are left out of ``mean``, ``passRate`` and ``n`` and
    counted in ``parseFailures``: a judge that could not be read says nothing about the output.
    No scored result gives ``mean`` and ``passRate`` 0.0 with ``n`` 0.
    """
    tally = Tally()
    for r in results:
        tally.add(r.score, r.passed, scored=r.scored)
    return tally.result()
