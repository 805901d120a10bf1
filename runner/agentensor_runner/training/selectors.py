"""Candidate selectors: which config a step edits (``optimizer.selection``).

A selector is a small strategy object (gepa's ``strategies/candidate_selector.py``):
:class:`CurrentBest` (``greedy``) always edits the current best config; :class:`Pareto`
(``pareto``) samples a parent from the per-case Pareto front of the pool
(:func:`agentensor_runner.stats.selection.pareto_front`), in proportion to the validation cases it
wins. :func:`selector_for` picks one by name.
"""

from __future__ import annotations

import random
from typing import Literal, Protocol

from ..stats.selection import pareto_front, sample_parent
from .state import LoopState, Scored

Direction = Literal["maximize", "minimize"] | str


class CandidateSelector(Protocol):
    """Picks the parent of one step: the config to edit and its pool index (None when not pooled)."""

    name: str
    keeps_pool: bool
    """Whether every candidate that beats its parent joins the pool (else only the best is kept)."""

    def parent(self, state: LoopState, rng: random.Random) -> tuple[Scored, int | None]: ...


def front(pool: list[Scored], direction: Direction) -> dict[str, int]:
    """The Pareto front of ``pool``: pool index (as a string) -> validation cases it wins.

    Scores are sign-adjusted so that higher is better for a ``minimize`` objective too.

    Raises:
        ValueError: the pool is empty, or its members were scored on different numbers of cases.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    return pareto_front({str(i): [sign * s for s in m.case_scores] for i, m in enumerate(pool)})


class CurrentBest:
    """``greedy``: the parent is always ``state.current``."""

    name = "greedy"
    keeps_pool = False

    def parent(self, state: LoopState, rng: random.Random) -> tuple[Scored, int | None]:
        """``(state.current, None)``; ``rng`` is not used."""
        return state.current, None


class Pareto:
    """``pareto``: the parent is drawn from the pool's Pareto front, weighted by the cases each member wins.

    Args:
        direction: the objective's direction (``maximize`` or ``minimize``).
    """

    name = "pareto"
    keeps_pool = True

    def __init__(self, direction: Direction) -> None:
        self.direction = direction

    def parent(self, state: LoopState, rng: random.Random) -> tuple[Scored, int | None]:
        """A front member and its pool index; the root (``state.current``, index 0) while the pool has one member.

        Raises:
            ValueError: the pool is empty (call :meth:`LoopState.seed_pool` first).
        """
        if not state.pool:
            raise ValueError("the pool is empty; seed it with the current config first")
        if len(state.pool) < 2:
            return state.current, 0
        i = int(sample_parent(front(state.pool, self.direction), rng))
        return state.pool[i], i


def selector_for(selection: str, direction: Direction) -> CandidateSelector:
    """The selector for ``optimizer.selection`` (``greedy`` or ``pareto``).

    Raises:
        ValueError: an unknown selection (the API schema admits only these two).
    """
    if selection == "greedy":
        return CurrentBest()
    if selection == "pareto":
        return Pareto(direction)
    raise ValueError(f"spec.optimizer.selection: unknown selection {selection!r}; known: greedy, pareto")
