"""Stop rules: each a small object answering "must the loop stop, and why?" (gepa's ``StopperProtocol``).

- :class:`MaxEpochs`: ``optimizer.epochs`` trained (the planned end, reason ``Completed``);
- :class:`GoalReached`: the current validation score reached ``objective.goal``;
- :class:`NoImprovement`: ``optimizer.patience`` epochs in a row accepted no candidate;
- :class:`BudgetOrStop`: a ``spec.budget`` limit is used up (``BudgetExhausted``) or a stop was
  requested (``agentensor.dev/stop=true``, ``StopRequested``). Polled at every candidate
  boundary (:meth:`BudgetOrStop.poll`) and sticky;
- :class:`AnyOf`: the first of several that says stop.

``check(state)`` returns a :class:`~agentensor_api.Reason` constant, or None to go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from agentensor_api import Reason

from ..llm import Usage
from .acceptance import Better
from .budget import BudgetMeter, StopPoller
from .state import LoopState

log = logging.getLogger(__name__)


class Stopper(Protocol):
    """A stop rule: the reason to stop after ``state``, or None."""

    def check(self, state: LoopState) -> str | None: ...


class MaxEpochs:
    """Stop once ``epochs`` epochs are trained."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def check(self, state: LoopState) -> str | None:
        """``Completed`` when ``state.epoch >= epochs``."""
        return Reason.COMPLETED if state.epoch >= self.epochs else None


class GoalReached:
    """Stop once the current validation score reaches ``goal`` (None: never)."""

    def __init__(self, goal: float | None, better: Better) -> None:
        self.goal, self.better = goal, better

    def check(self, state: LoopState) -> str | None:
        """``GoalReached`` when the goal does not beat the current score."""
        if self.goal is not None and not self.better(self.goal, state.current.objective, 0.0):
            return Reason.GOAL_REACHED
        return None


class NoImprovement:
    """Stop once ``patience`` epochs in a row accepted no candidate (None: never)."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience

    def check(self, state: LoopState) -> str | None:
        """``PatienceExhausted`` when ``state.stale >= patience``."""
        return Reason.PATIENCE_EXHAUSTED if self.patience is not None and state.stale >= self.patience else None


class BudgetOrStop:
    """A budget used up or a stop requested; sticky once seen.

    Args:
        meter: the run's :class:`~agentensor_runner.training.budget.BudgetMeter`.
        poller: reads the store's stop request at most every few seconds.
        usage: the run's usage so far (the LLM ledger's total; None without models).
        run_id: for the log line.
    """

    def __init__(self, meter: BudgetMeter, poller: StopPoller, usage: Callable[[], Usage | None], run_id: str) -> None:
        self.meter, self.poller, self.usage, self.run_id = meter, poller, usage, run_id
        self.halted: tuple[str, str, str | None] | None = None
        """``(reason, message, exhausted budget or None)`` once stopped."""

    def poll(self, *, force: bool = False) -> bool:
        """Must the loop stop at this candidate boundary? Reads the store only if forced or due."""
        if self.halted is None:
            hit = self.meter.exhausted(self.usage())
            if hit is not None:
                self.halted = (Reason.BUDGET_EXHAUSTED, hit[1], hit[0])
            elif self.poller.poll(force=force):
                self.halted = (Reason.STOP_REQUESTED, "stop requested (agentensor.dev/stop=true)", None)
            if self.halted is not None:
                log.info("run %s stops at a candidate boundary: %s", self.run_id, self.halted[1])
        return self.halted is not None

    def check(self, state: LoopState) -> str | None:
        """The reason of an earlier :meth:`poll` that said stop (no new poll), or None."""
        return self.halted[0] if self.halted is not None else None

    @property
    def exhausted(self) -> str | None:
        """The manifest name of the budget used up (``maxMetricCalls``...), or None."""
        return self.halted[2] if self.halted is not None else None


class AnyOf:
    """The first of ``stoppers`` (in order) that says stop."""

    def __init__(self, *stoppers: Stopper) -> None:
        self.stoppers = stoppers

    def check(self, state: LoopState) -> str | None:
        """The first non-None reason, or None."""
        return next((r for s in self.stoppers if (r := s.check(state)) is not None), None)
