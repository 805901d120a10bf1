"""Parent selection for the training loop: a per-case Pareto front, as in GEPA.

GEPA (Agrawal et al. 2025, "GEPA: Reflective Prompt Evolution Can Outperform Reinforcement
Learning", arXiv:2507.19457, Algorithm 2 "SelectCandidate") keeps, for every validation case,
the candidates that reach the best score on it. A candidate that is best on at least one case
is on the front (the union of the per-case winners), candidates dominated by another front
member are removed, and a parent is sampled with probability proportional to the number of
cases it wins. A config that is best on a few hard cases thus keeps a chance to be improved,
instead of the greedy loop's single incumbent.

Also here: ``merge``, GEPA's system-aware crossover reduced to prompts: for each prompt, take
the text of one of two front members (the one that differs from their common ancestor, else
either), and ``gate``, the minibatch acceptance test (a candidate reaches the full validation
split only if it beats its parent on the minibatch it came from).

All functions are pure; scores are "higher is better" (negate a minimised objective first).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

ScoreTable = Mapping[str, Sequence[float]]
"""Candidate id -> its per-case scores on the validation split (same case order for every id)."""


def case_winners(table: ScoreTable, tol: float = 1e-12) -> list[frozenset[str]]:
    """For each case, the ids that reach the best score on it (within ``tol``).

    Raises:
        ValueError: the table is empty or its rows have different lengths.
    """
    if not table:
        raise ValueError("the score table is empty")
    lengths = {len(v) for v in table.values()}
    if len(lengths) != 1:
        raise ValueError(f"every candidate needs a score for every case; row lengths {sorted(lengths)}")
    out: list[frozenset[str]] = []
    for j in range(lengths.pop()):
        top = max(row[j] for row in table.values())
        out.append(frozenset(k for k, row in table.items() if row[j] >= top - tol))
    return out


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good on every case and strictly better on one."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def pareto_front(table: ScoreTable) -> dict[str, int]:
    """The front: id -> number of cases it wins, for every non-dominated per-case winner.

    A candidate is kept if it is best on at least one case and no other candidate dominates it
    (GEPA's ``remove_dominated_programs``); identical rows are all kept. Ids are returned in the
    table's order.

    Raises:
        ValueError: as :func:`case_winners`.
    """
    winners = case_winners(table)
    wins: dict[str, int] = {k: 0 for k in table}
    for w in winners:
        for k in w:
            wins[k] += 1
    front = [k for k in table if wins[k] > 0]
    kept = [k for k in front if not any(_dominates(table[o], table[k]) for o in front if o != k)]
    # a case whose winners were all dominated is won by a dominator, so recount over the kept set
    recount = {k: sum(1 for w in winners if k in w) for k in kept}
    return {k: n for k, n in recount.items() if n > 0}


def sample_parent(front: Mapping[str, int], rng: random.Random) -> str:
    """An id from ``front`` with probability proportional to its number of won cases.

    Raises:
        ValueError: an empty front or no positive count.
    """
    ids = [k for k, n in front.items() if n > 0]
    if not ids:
        raise ValueError("the Pareto front is empty")
    return rng.choices(ids, weights=[front[k] for k in ids], k=1)[0]


def merge(
    a: Mapping[str, str], b: Mapping[str, str], ancestor: Mapping[str, str], rng: random.Random
) -> dict[str, str]:
    """Per-prompt crossover of two configs' texts.

    For each prompt: if only one of ``a``/``b`` changed it from ``ancestor``, take that text
    (so the merge combines both members' improvements); if both changed it, pick one at random.

    Raises:
        ValueError: the configs do not have the same prompts.
    """
    if set(a) != set(b):
        raise ValueError(f"cannot merge configs with different prompts: {sorted(set(a) ^ set(b))}")
    out: dict[str, str] = {}
    for name in sorted(a):
        base = ancestor.get(name)
        if a[name] == b[name] or b[name] == base:
            out[name] = a[name]
        elif a[name] == base:
            out[name] = b[name]
        else:
            out[name] = a[name] if rng.random() < 0.5 else b[name]
    return out


def gate(candidate: Sequence[float], parent: Sequence[float], min_delta: float = 0.0) -> bool:
    """Minibatch gate: does the candidate's mean beat its parent's on the same minibatch cases?

    Raises:
        ValueError: different lengths or no cases.
    """
    if len(candidate) != len(parent) or not candidate:
        raise ValueError("candidate and parent need scores on the same, non-empty minibatch")
    return sum(candidate) / len(candidate) > sum(parent) / len(parent) + min_delta
