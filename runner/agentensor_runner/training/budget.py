"""Budgets and graceful stop for the training loop: what a run has spent, and whether it must stop.

:class:`BudgetMeter` adds up the five budgets of ``spec.budget``:

- ``maxMetricCalls``: case evaluations actually run (the trainer adds them as it runs cases;
  evaluation-cache and in-run memo hits are not runs);
- ``maxModelCalls``, ``maxTokens``, ``maxCostUSD``: read from the run's usage ledger
  (:class:`agentensor_runner.llm.UsageLedger`), which already counts task, judge and optimizer
  (``gradient``, ``rewrite``) calls; response-cache hits are neither calls nor tokens nor cost;
- ``maxDurationSeconds``: wall-clock seconds on an injected monotonic clock.

What earlier processes of the same run spent is restored from the latest checkpoint
(:meth:`BudgetMeter.restore`, the ``extra["budget"]`` that :meth:`BudgetMeter.to_extra` wrote), so
a resumed run does not get a fresh budget. :class:`StopPoller` reads the store's stop request
(``agentensor.dev/stop=true`` -> :meth:`agentensor_store.Store.request_stop`) at most once every
``interval_seconds``, unless forced.

The trainer checks both at candidate boundaries (before each minibatch and before each
candidate's gate or validation), so a limit can be overshot by the step in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from agentensor_api import BudgetSpec, BudgetStatus, BudgetUse
from agentensor_store import Store

from ..llm import Usage

BUDGET_KEY: Final = "budget"
"""Checkpoint ``extra`` key: the budgets used up to that checkpoint (camelCase, as status.budget)."""

STOP_POLL_SECONDS: Final = 2.0
"""Least time between two stop-request reads: one indexed primary-key read per 2 s is negligible
next to the case rows the loop writes, and a stop lands within a candidate of the request."""

_FIELDS: Final = (
    ("metric_calls", "max_metric_calls", "maxMetricCalls"),
    ("model_calls", "max_model_calls", "maxModelCalls"),
    ("tokens", "max_tokens", "maxTokens"),
    ("cost_usd", "max_cost_usd", "maxCostUSD"),
    ("duration_seconds", "max_duration_seconds", "maxDurationSeconds"),
)
"""(status field, spec field, manifest name) of each budget."""

_WIRE: Final = {
    "metric_calls": "metricCalls",
    "model_calls": "modelCalls",
    "tokens": "tokens",
    "cost_usd": "costUSD",
    "duration_seconds": "durationSeconds",
}
"""Status field -> its camelCase name in status.budget and checkpoint extra."""


@dataclass
class BudgetMeter:
    """Spent against ``spec.budget``; see the module docstring.

    Args:
        spec: the run's ``spec.budget``.
        clock: monotonic seconds (injected; default :func:`time.monotonic`).
    """

    spec: BudgetSpec
    clock: Callable[[], float] = time.monotonic
    metric_calls: int = field(default=0, init=False)
    """Case evaluations run by this process (the trainer adds to it)."""

    def __post_init__(self) -> None:
        self._started = self.clock()
        self._offset: dict[str, float] = {}

    def restore(self, stored: Any) -> None:
        """Add what earlier processes spent (a checkpoint's ``extra["budget"]``; ignored if absent)."""
        if not isinstance(stored, Mapping):
            return
        for name, wire in _WIRE.items():
            value = stored.get(wire)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                self._offset[name] = float(value)

    def used(self, usage: Usage | None) -> dict[str, float]:
        """Status field -> amount used (this process plus restored), from the ledger's ``usage``."""
        u = usage or Usage()
        mine = {
            "metric_calls": float(self.metric_calls),
            "model_calls": float(sum(u.calls.values())),
            "tokens": float(u.input_tokens + u.output_tokens),
            "cost_usd": u.cost,
            "duration_seconds": self.clock() - self._started,
        }
        return {k: v + self._offset.get(k, 0.0) for k, v in mine.items()}

    def exhausted(self, usage: Usage | None) -> tuple[str, str] | None:
        """``(manifest name, message)`` of the first budget used up (used >= limit), or None."""
        used = self.used(usage)
        for name, spec_field, wire in _FIELDS:
            limit = getattr(self.spec, spec_field)
            if limit is not None and used[name] >= limit:
                return wire, f"budget {wire} exhausted: used {_fmt(used[name])} of {_fmt(limit)}"
        return None

    def to_status(self, usage: Usage | None, exhausted: str | None = None) -> BudgetStatus:
        """``status.budget``: used against limit for each budget."""
        used = self.used(usage)
        items = {
            name: BudgetUse(used=round(used[name], 6), limit=getattr(self.spec, spec_field))
            for name, spec_field, _ in _FIELDS
        }
        return BudgetStatus(**items, exhausted=exhausted)

    def to_extra(self, usage: Usage | None) -> dict[str, float]:
        """The used amounts for a checkpoint's ``extra["budget"]`` (camelCase keys)."""
        return {_WIRE[k]: round(v, 6) for k, v in self.used(usage).items()}


def _fmt(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() or abs(value) >= 1 else f"{value:.6g}"


class StopPoller:
    """Reads the run's stop request from the store, at most once every ``interval_seconds``.

    Once a request is seen it stays seen (the store keeps the first request's time).
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        interval_seconds: float = STOP_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._run_id, self._interval, self._clock = store, run_id, interval_seconds, clock
        self._last: float | None = None
        self.requested = False

    def poll(self, *, force: bool = False) -> bool:
        """True if a stop was requested; reads the store if forced or ``interval_seconds`` passed."""
        if self.requested:
            return True
        now = self._clock()
        if force or self._last is None or now - self._last >= self._interval:
            self._last = now
            self.requested = self._store.stop_requested(self._run_id) is not None
        return self.requested
