"""Run phases and kinds: the ``status.phase`` vocabulary, named once (like :mod:`._conditions`)."""

from __future__ import annotations

from typing import Final, Literal

PhaseValue = Literal["Pending", "Queued", "Running", "Succeeded", "Failed"]
"""The type of ``status.phase`` (the values of :class:`Phase`)."""


class Phase:
    """The ``status.phase`` values: a summary of the conditions, for printer columns and quick checks."""

    PENDING: Final = "Pending"
    """Created; not yet admitted or refused."""
    QUEUED: Final = "Queued"
    """Waiting for a runner slot, or held by ``spec.suspend``."""
    RUNNING: Final = "Running"
    """A runner is working on it."""
    SUCCEEDED: Final = "Succeeded"
    """Finished with a verdict."""
    FAILED: Final = "Failed"
    """Finished without a verdict it could stand by."""


TERMINAL_PHASES: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED})
"""Phases a run never leaves."""
WAITING_PHASES: Final = frozenset({Phase.PENDING, Phase.QUEUED})
"""Phases of a run that waits for admission."""
RUN_KINDS: Final = ("TrainingRun", "EvaluationRun")
"""The kinds of run (the resources that get runner Jobs), in this order wherever they are listed."""
