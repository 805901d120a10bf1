"""The paired significance tests of the holdout guard, on constructed per-case score tables."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from agentensor_runner.stats.significance import compare_paired


def _flip(scores: list[int], gains: int, losses: int) -> list[int]:
    """``scores`` with ``gains`` wrong cases made right and ``losses`` right cases made wrong."""
    out = list(scores)
    wrong = [i for i, s in enumerate(out) if s == 0]
    right = [i for i, s in enumerate(out) if s == 1]
    for i in wrong[:gains]:
        out[i] = 1
    for i in right[:losses]:
        out[i] = 0
    return out


def test_mcnemar_refuses_a_noise_level_improvement() -> None:
    base = [1] * 450 + [0] * 150
    best = _flip(base, gains=12, losses=8)  # +4 cases of 600: +0.0067 accuracy
    r = compare_paired(base, best)
    assert r.test == "mcnemar-exact" and r.discordant == (12, 8)
    assert r.delta == pytest.approx(4 / 600)
    assert r.p_value == pytest.approx(stats.binomtest(12, 20, 0.5, alternative="greater").pvalue)
    assert r.p_value > 0.05 and not r.significant
    assert r.low < 0 < r.high  # the interval contains "no difference"


def test_mcnemar_accepts_a_real_improvement() -> None:
    base = [1] * 450 + [0] * 150
    best = _flip(base, gains=40, losses=10)
    r = compare_paired(base, best, confidence=0.99)
    assert r.discordant == (40, 10) and r.delta == pytest.approx(30 / 600)
    assert r.p_value < 0.01 and r.significant
    assert 0 < r.low < r.delta < r.high


def test_min_improvement_is_required_on_top_of_significance() -> None:
    base = [1] * 450 + [0] * 150
    best = _flip(base, gains=40, losses=10)  # delta 0.05, highly significant
    assert compare_paired(base, best, min_improvement=0.04).significant
    assert not compare_paired(base, best, min_improvement=0.06).significant


def test_minimize_direction_counts_decreases_as_gains() -> None:
    base = [0] * 300 + [1] * 300  # e.g. an error indicator
    best = [0] * 340 + [1] * 260
    r = compare_paired(base, best, direction="minimize")
    assert r.delta == pytest.approx(-40 / 600) and r.significant
    assert not compare_paired(best, base, direction="minimize").significant


def test_no_discordant_pairs_is_not_significant() -> None:
    r = compare_paired([1, 0, 1], [1, 0, 1])
    assert r.p_value == 1.0 and not r.significant and r.low == r.high == 0.0


def test_bootstrap_for_continuous_scores_noise_vs_real() -> None:
    rng = random.Random(3)
    base = [rng.random() for _ in range(300)]
    noise = [b + rng.gauss(0, 0.2) for b in base]  # no systematic gain
    real = [b + 0.05 + rng.gauss(0, 0.05) for b in base]
    rn = compare_paired(base, noise, seed=1)
    rr = compare_paired(base, real, seed=1)
    assert rn.test == rr.test == "paired-bootstrap"
    assert not (rn.significant and rn.low > 0)
    assert rr.significant and rr.low > 0.03 and rr.p_value < 0.001
    assert compare_paired(base, real, seed=1) == rr  # seeded: deterministic


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": [1, 0], "best": [1]}, "same cases"),
        ({"baseline": [], "best": []}, "no paired cases"),
        ({"baseline": [1.0], "best": [float("nan")]}, "finite"),
        ({"baseline": [1], "best": [1], "confidence": 1.0}, "confidence"),
        ({"baseline": [1], "best": [1], "min_improvement": -0.1}, "min_improvement"),
        ({"baseline": [1], "best": [1], "direction": "up"}, "direction"),
    ],
)
def test_bad_input_names_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_paired(**kwargs)  # type: ignore[arg-type]
