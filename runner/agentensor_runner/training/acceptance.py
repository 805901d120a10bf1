"""Acceptance: which of one step's candidates the loop keeps.

:class:`StepAcceptance` judges one step's candidates in turn, each by its validation objective:

- greedy (the selector does not keep a pool): the first candidate must beat the parent (the
  current config) by more than ``optimizer.minDelta``, a later one the best so far; the best
  kept becomes ``state.current``;
- pareto: every candidate that beats *its parent* by more than ``minDelta`` joins the pool
  (descended from the parent), and ``state.current`` becomes the best of them only if it beats
  the current config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .state import LoopState, Scored

Better = Callable[[float, float, float], bool]
"""``better(a, b, min_delta)``: does score ``a`` beat ``b`` by more than ``min_delta`` in the objective's direction?"""


@dataclass
class StepAcceptance:
    """One step's acceptance; call :meth:`judge` per validated candidate, then :meth:`settle` once.

    Attributes:
        state: the loop state (its pool grows and its ``current`` changes here).
        parent: the config the candidates were proposed from, and its pool index.
        better: the objective's comparison (``RunContext.better``).
        min_delta: ``optimizer.minDelta``.
        keeps_pool: ``selection: pareto``.
        best: the best candidate kept so far in this step.
    """

    state: LoopState
    parent: Scored
    parent_index: int | None
    better: Better
    min_delta: float
    keeps_pool: bool
    best: Scored | None = None

    def judge(self, candidate: Scored) -> bool:
        """Is ``candidate`` kept? Pareto: a kept one joins the pool at once."""
        pareto = self.keeps_pool
        target = self.best if self.best is not None and not pareto else self.parent
        min_delta = self.min_delta if self.best is None or pareto else 0.0
        ok = self.better(candidate.objective, target.objective, min_delta)
        if ok and pareto:
            self.state.keep(candidate, self.parent_index)
        if ok and (self.best is None or not pareto or self.better(candidate.objective, self.best.objective, 0.0)):
            self.best = candidate
        return ok

    def settle(self) -> bool:
        """End the step: make the best kept candidate current (pareto: if it beats it); was any kept?"""
        if self.best is None:
            return False
        if not self.keeps_pool or self.better(self.best.objective, self.state.current.objective, 0.0):
            self.state.current = self.best
        return True
