"""Paired significance tests for "is the best config really better than the baseline?".

Both configs are scored on the same holdout cases, so the comparison is paired: each case
gives one score for the baseline and one for the best config.

- **0/1 scores** (accuracy-like objectives): McNemar's exact test. Only the discordant cases
  count: ``b`` cases the best config gets right and the baseline wrong, ``c`` the reverse.
  Under "no difference" ``b ~ Binomial(b + c, 1/2)``, so the one-sided p-value is
  ``P(X >= b)`` (``scipy.stats.binomtest``). Sources: McNemar, Q. (1947), "Note on the
  sampling error of the difference between correlated proportions or percentages",
  Psychometrika 12(2); Dietterich, T. G. (1998), "Approximate statistical tests for comparing
  supervised classification learning algorithms", Neural Computation 10(7), which recommends
  McNemar's test for comparing two classifiers on one test set.
- **Other scores**: a paired bootstrap of the mean difference (cases resampled with
  replacement, both scores of a case kept together; ``scipy.stats.bootstrap(paired=True)``,
  BCa interval, seeded). Source: Efron, B. & Tibshirani, R. J. (1993), "An Introduction to the
  Bootstrap", Chapman & Hall, ch. 14 (BCa) and ch. 16 (bootstrap hypothesis tests); the
  p-value is the bootstrap's share of resampled differences at or below 0 (one-sided),
  ``(k + 1) / (B + 1)``.

The interval is always the paired bootstrap interval of the mean difference, so a McNemar
decision also shows a confidence interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

if TYPE_CHECKING:
    from ..execution import Evaluation

Test = Literal["mcnemar-exact", "paired-bootstrap"]


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """The outcome of :func:`compare_paired`.

    Attributes:
        test: ``mcnemar-exact`` or ``paired-bootstrap``.
        n: number of paired cases.
        delta: mean(best - baseline), in objective units, signed (not direction-adjusted).
        low, high: the ``confidence`` bootstrap interval of ``delta``.
        p_value: one-sided p-value of "best is no better than baseline" (direction-adjusted).
        confidence: the confidence level used (e.g. 0.95).
        min_improvement: the smallest improvement that counts (objective units, >= 0).
        significant: the improvement is larger than ``min_improvement`` and ``p_value`` is below
            ``1 - confidence`` (McNemar), or the interval's worse end is beyond
            ``min_improvement`` (bootstrap).
        discordant: ``(b, c)`` for McNemar (best-only right, baseline-only right), else ``None``.
    """

    test: Test
    n: int
    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    min_improvement: float
    significant: bool
    discordant: tuple[int, int] | None = None


def _mean_diff(base: npt.NDArray[np.float64], best: npt.NDArray[np.float64], axis: int = -1) -> npt.NDArray[np.float64]:
    return np.asarray(np.mean(best - base, axis=axis), dtype=np.float64)


def _bootstrap(
    base: npt.NDArray[np.float64], best: npt.NDArray[np.float64], confidence: float, seed: int, n_resamples: int
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """``(low, high, bootstrap distribution of mean(best - base))``; degenerate data -> point interval."""
    diff = best - base
    if np.all(diff == diff[0]):  # every resample has the same mean: the interval is a point
        d = float(diff[0])
        return d, d, np.full(n_resamples, d)
    res = stats.bootstrap(
        (base, best),
        _mean_diff,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa can fail on near-degenerate data
        low, high = (
            float(q) for q in np.quantile(res.bootstrap_distribution, [(1 - confidence) / 2, (1 + confidence) / 2])
        )
    return low, high, np.asarray(res.bootstrap_distribution, dtype=np.float64)


def compare_paired(
    baseline: Sequence[float],
    best: Sequence[float],
    *,
    direction: str = "maximize",
    confidence: float = 0.95,
    min_improvement: float = 0.0,
    seed: int = 0,
    n_resamples: int = 9999,
) -> PairedComparison:
    """Is ``best`` better than ``baseline`` on the same cases by more than noise?

    Args:
        baseline, best: per-case objective scores, same length and case order (at least 1).
        direction: ``maximize`` or ``minimize`` (the objective's direction).
        confidence: confidence level in (0, 1); the test's alpha is ``1 - confidence``.
        min_improvement: smallest improvement that counts, in objective units (>= 0).
        seed: seed of the bootstrap's generator (the result is deterministic).
        n_resamples: bootstrap resamples.

    Returns:
        A :class:`PairedComparison`; McNemar's exact test when every score is 0 or 1, else the
        paired bootstrap (see the module docstring).

    Raises:
        ValueError: different lengths, no cases, non-finite scores, or an argument out of range.
    """
    a, b = _paired(baseline, best)
    _check_settings(direction, confidence, min_improvement)
    sign = 1.0 if direction == "maximize" else -1.0
    low, high, dist = _bootstrap(a, b, confidence, seed, n_resamples)
    interval = PairedComparison(
        "paired-bootstrap", int(a.size), float(np.mean(b - a)), low, high, 1.0, confidence, min_improvement, False
    )
    if np.all(np.isin(a, (0.0, 1.0))) and np.all(np.isin(b, (0.0, 1.0))):
        return _mcnemar(interval, a, b, sign)
    return _bootstrap_test(interval, dist, sign)


Scores = npt.NDArray[np.float64]
"""Per-case scores, one float per case."""


def _paired(baseline: Sequence[float], best: Sequence[float]) -> tuple[Scores, Scores]:
    """Both score lists as float arrays.

    Raises:
        ValueError: different lengths, no cases, or a score that is not a finite number.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(best, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"baseline and best need the same cases: got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("no paired cases to compare")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("scores must be finite numbers")
    return a, b


def _check_settings(direction: str, confidence: float, min_improvement: float) -> None:
    """Raises ValueError for a confidence outside (0, 1), a negative floor or an unknown direction."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if min_improvement < 0:
        raise ValueError(f"min_improvement must be >= 0, got {min_improvement}")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be maximize or minimize, got {direction!r}")


def _mcnemar(interval: PairedComparison, a: Scores, b: Scores, sign: float) -> PairedComparison:
    """McNemar's exact test on the discordant cases, one-sided in the objective's direction (``sign``)."""
    gains, losses = int(np.sum((b == 1) & (a == 0))), int(np.sum((b == 0) & (a == 1)))
    wins, n_disc = (gains, gains + losses) if sign > 0 else (losses, gains + losses)
    p = float(stats.binomtest(wins, n_disc, 0.5, alternative="greater").pvalue) if n_disc else 1.0
    ok = sign * interval.delta > interval.min_improvement and p < 1.0 - interval.confidence
    return replace(interval, test="mcnemar-exact", p_value=p, significant=ok, discordant=(gains, losses))


def _bootstrap_test(interval: PairedComparison, dist: Scores, sign: float) -> PairedComparison:
    """The bootstrap's one-sided p-value, and significance from the interval's worse end."""
    p = float((np.sum(sign * dist <= 0.0) + 1) / (dist.size + 1))
    worse_end = interval.low if sign > 0 else -interval.high
    ok = worse_end > interval.min_improvement and sign * interval.delta > interval.min_improvement
    return replace(interval, p_value=p, significant=ok)


def paired_case_scores(baseline: Evaluation, best: Evaluation, evaluator: str) -> tuple[list[float], list[float]]:
    """Per-case ``evaluator`` scores of two evaluations of the same cases, paired by case id.

    An errored case scores 0, as in the evaluation's mean. Cases present in only one evaluation
    are left out (the trainer scores both configs on the same holdout, so there are none), and
    so is a case either side left unscored (a judge parse failure): excluded pairwise, since a
    pair needs two scores.
    """
    best_by_id = {r.case.case_id: r.score(evaluator) for r in best.cases if r.scored(evaluator)}
    pairs = [
        (r.score(evaluator), best_by_id[r.case.case_id])
        for r in baseline.cases
        if r.case.case_id in best_by_id and r.scored(evaluator)
    ]
    return [a for a, _ in pairs], [b for _, b in pairs]


def describe(c: PairedComparison) -> str:
    """One line for the ``Promotable`` condition's message, e.g. ``delta +0.0300 [0.012, 0.048] ...``."""
    extra = f", discordant {c.discordant[0]}/{c.discordant[1]}" if c.discordant else ""
    floor = f", minImprovement {c.min_improvement:g}" if c.min_improvement else ""
    return (
        f"delta {c.delta:+.4f} [{c.low:+.4f}, {c.high:+.4f}] at {c.confidence:g}, "
        f"{c.test} p={c.p_value:.3g} on {c.n} cases{extra}{floor}"
    )


def status_fields(c: PairedComparison) -> dict[str, float | str]:
    """The ``status.holdout`` fields of a comparison (snake_case names of ``HoldoutScores``)."""
    return {
        "delta": c.delta,
        "delta_low": c.low,
        "delta_high": c.high,
        "confidence": c.confidence,
        "p_value": c.p_value,
        "test": c.test,
    }
