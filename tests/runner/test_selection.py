"""Pareto selection, parent sampling, merge and the minibatch gate on hand-made score tables."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from agentensor_runner.stats.selection import case_winners, gate, merge, pareto_front, sample_parent

# five validation cases, per-case scores of five candidates
TABLE = {
    "base": [0, 0, 1, 0, 0],  # wins case 2 together with A; dominated by A
    "A": [1, 1, 1, 0, 0],  # wins cases 0, 1, 2
    "B": [0, 1, 0, 1, 0],  # wins cases 1, 3
    "C": [0, 0, 0, 0, 1],  # wins case 4 only
    "D": [0, 0, 0, 1, 0],  # wins case 3 with B, but B dominates it
}


def test_front_computed_right_on_a_hand_made_table() -> None:
    assert case_winners(TABLE) == [
        frozenset({"A"}),
        frozenset({"A", "B"}),
        frozenset({"base", "A"}),
        frozenset({"B", "D"}),
        frozenset({"C"}),
    ]
    assert pareto_front(TABLE) == {"A": 3, "B": 2, "C": 1}


def test_identical_rows_are_both_kept_and_continuous_scores_work() -> None:
    assert pareto_front({"x": [0.5, 0.2], "y": [0.5, 0.2], "z": [0.1, 0.1]}) == {"x": 2, "y": 2}
    assert pareto_front({"x": [0.9, 0.2], "y": [0.3, 0.8]}) == {"x": 1, "y": 1}


def test_parents_sampled_in_proportion_to_cases_won() -> None:
    front = pareto_front(TABLE)
    rng = random.Random(0)
    counts = Counter(sample_parent(front, rng) for _ in range(6000))
    assert set(counts) == {"A", "B", "C"}
    assert counts["A"] / 6000 == pytest.approx(3 / 6, abs=0.03)
    assert counts["B"] / 6000 == pytest.approx(2 / 6, abs=0.03)
    assert counts["C"] / 6000 == pytest.approx(1 / 6, abs=0.03)


def test_merge_takes_each_members_own_edit() -> None:
    ancestor = {"p1": "a", "p2": "b", "p3": "c"}
    x = {"p1": "a*", "p2": "b", "p3": "c1"}
    y = {"p1": "a", "p2": "b*", "p3": "c2"}
    merged = merge(x, y, ancestor, random.Random(1))
    assert merged["p1"] == "a*" and merged["p2"] == "b*" and merged["p3"] in {"c1", "c2"}
    with pytest.raises(ValueError, match="different prompts"):
        merge({"p1": "a"}, {"p2": "b"}, {}, random.Random(0))


def test_minibatch_gate() -> None:
    assert gate([1, 1, 0, 1], [1, 0, 0, 1])
    assert not gate([1, 0, 0, 1], [1, 0, 0, 1]), "a tie does not pass"
    with pytest.raises(ValueError):
        gate([1], [1, 0])


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        pareto_front({})
    with pytest.raises(ValueError, match="row lengths"):
        pareto_front({"a": [1, 0], "b": [1]})
    with pytest.raises(ValueError, match="empty"):
        sample_parent({}, random.Random(0))
