"""``status.display``: rounded strings for ``kubectl get`` printer columns.

A CRD printer column of ``type: number`` prints the float as stored (``0.6045751633986928``):
the 1.20 API server's table convertor has no rounding, and ``format: float`` does not change the
printed digits. So the operator publishes these pre-formatted strings beside the numbers, and
the columns read them. They are derived from the other status fields by :func:`display_of`,
never written by hand.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from ._base import ApiModel
from ._phases import Phase

SCORE_DECIMALS = 3
"""Digits after the point in display scores: evaluator means lie in [0, 1], and a difference in the
fourth digit is below what a few hundred cases can resolve."""


class StatusDisplay(ApiModel):
    """Pre-formatted values for printer columns (strings; the numbers stay in their own fields)."""

    best_score: str | None = Field(default=None, description="bestScore rounded to 3 decimals, e.g. 0.605.")
    baseline_score: str | None = Field(default=None, description="baselineScore rounded to 3 decimals.")
    holdout_score: str | None = Field(default=None, description="holdout.best rounded to 3 decimals.")
    epoch: str | None = Field(default=None, description="TrainingRun: current/planned epochs, e.g. 2/3.")
    progress: str | None = Field(
        default=None,
        description="casesCompleted / casesTotal as a whole percentage, e.g. 45%; 100% once Succeeded "
        "(a TrainingRun's casesTotal is an upper bound: early stopping leaves it unreached).",
    )


class _Holdout(Protocol):
    @property
    def best(self) -> float | None: ...


class _Shown(Protocol):
    """What :func:`display_of` reads of a ``RunStatus`` (a protocol: ``_status`` imports this module)."""

    @property
    def phase(self) -> str: ...
    @property
    def epoch(self) -> int | None: ...
    @property
    def epochs(self) -> int | None: ...
    @property
    def cases_completed(self) -> int | None: ...
    @property
    def cases_total(self) -> int | None: ...
    @property
    def best_score(self) -> float | None: ...
    @property
    def baseline_score(self) -> float | None: ...
    @property
    def holdout(self) -> _Holdout | None: ...


def _score(value: float | None) -> str | None:
    return None if value is None else f"{value:.{SCORE_DECIMALS}f}"


def _progress(status: _Shown) -> str | None:
    if status.phase == Phase.SUCCEEDED:
        return "100%"
    done, total = status.cases_completed, status.cases_total
    if done is None or not total:
        return None
    return f"{min(100, int(100 * done / total))}%"


def display_of(status: _Shown) -> StatusDisplay | None:
    """The display strings of ``status`` (None when there is nothing to show yet).

    Scores are rounded half-to-even to :data:`SCORE_DECIMALS` digits (Python's format); progress
    is truncated, so 99.9 % of the cases shows ``99%``, never ``100%`` before the end.
    """
    epoch = None
    if status.epoch is not None:
        epoch = f"{status.epoch}/{status.epochs}" if status.epochs is not None else str(status.epoch)
    shown = StatusDisplay(
        best_score=_score(status.best_score),
        baseline_score=_score(status.baseline_score),
        holdout_score=_score(status.holdout.best if status.holdout is not None else None),
        epoch=epoch,
        progress=_progress(status),
    )
    return shown if shown.to_wire() else None
