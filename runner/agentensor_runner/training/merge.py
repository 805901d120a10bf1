"""Merge (``optimizer.maxMerges``, with ``selection: pareto``): GEPA's crossover of two front members.

GEPA (Agrawal et al. 2025, arXiv:2507.19457, section 3 "Merge"): two members of the pool's
Pareto front that share an ancestor and where neither descends from the other
(:func:`merge_pair`) are crossed per prompt: each prompt comes from the member that changed it
from the common ancestor, a prompt both changed from either
(:func:`agentensor_runner.stats.selection.merge`). A merge that repeats a pooled config is not
proposed (:func:`propose`); a proposed one is kept only if it beats both members by more than
``optimizer.minDelta`` (:func:`kept`). The loop scores it and keeps the bookkeeping
(``state.merges``, ``calls.mergeProposals``, ``calls.mergesAccepted``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..prompts import PromptSet
from ..stats.selection import merge
from .acceptance import Better
from .selectors import Direction, front
from .state import LoopState, Scored


@dataclass(frozen=True)
class Proposal:
    """A merged config and the pool indices of the two members it crosses."""

    prompts: PromptSet
    a: int
    b: int


def merge_pair(
    front: Mapping[str, int], parents: Sequence[int | None], rng: random.Random
) -> tuple[int, int, int] | None:
    """Two front members (pool indices, drawn in proportion to the cases they win) and their
    nearest common ancestor, or None when the front has no pair where neither descends from the other.

    ``parents[i]`` is pool entry ``i``'s parent index (None for the root).
    """

    def chain(i: int) -> list[int]:
        out = [i]
        while (p := parents[out[-1]]) is not None:
            out.append(p)
        return out

    chains = {int(k): chain(int(k)) for k in front}
    pairs = [(x, y) for x, y in itertools.combinations(sorted(chains), 2) if x not in chains[y] and y not in chains[x]]
    if not pairs:
        return None
    x, y = rng.choices(pairs, weights=[front[str(x)] + front[str(y)] for x, y in pairs], k=1)[0]
    on_y = set(chains[y])
    return x, y, next(i for i in chains[x] if i in on_y)


def propose(state: LoopState, direction: Direction, seed: str) -> Proposal | None:
    """The merge of this step, or None (no eligible pair, or the merge repeats a pooled config).

    ``seed`` (``"{dataset.seed}:{epoch}:{batch}"``) seeds the pair draw (``:merge``) and the
    per-prompt coin of prompts both members changed (``:merge-texts``).
    """
    pair = merge_pair(front(state.pool, direction), state.parents, random.Random(f"{seed}:merge"))
    if pair is None:
        return None
    a, b, ancestor = (state.pool[i].prompts for i in pair)
    texts = merge(a.texts, b.texts, ancestor.texts, random.Random(f"{seed}:merge-texts"))
    merged = a.with_texts({k: v for k, v in texts.items() if k in a.trainable})
    if merged.checksum() in {m.prompts.checksum() for m in state.pool}:
        return None
    return Proposal(merged, pair[0], pair[1])


def kept(merged: Scored, proposal: Proposal, state: LoopState, better: Better, min_delta: float) -> bool:
    """Does ``merged`` beat both members by more than ``min_delta``?"""
    return all(better(merged.objective, state.pool[i].objective, min_delta) for i in (proposal.a, proposal.b))


def admit(merged: Scored, proposal: Proposal, state: LoopState, better: Better) -> None:
    """Pool a kept merge (descended from member ``a``); it becomes current if it beats the current config."""
    state.keep(merged, proposal.a)
    if better(merged.objective, state.current.objective, 0.0):
        state.current = merged
