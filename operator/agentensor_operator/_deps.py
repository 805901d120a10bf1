"""What handlers depend on, passed in (never imported as globals): settings, API, store, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from agentensor_api import now_rfc3339
from agentensor_store import Store

from ._decisions import QueueEntry, RunCensus, RunFacts
from ._k8s import Kube
from ._metrics import Metrics
from ._settings import OperatorSettings

P = ParamSpec("P")
R = TypeVar("R")

CENSUS_INDEXES = ("trainingruns_census", "evaluationruns_census")
"""Ids of the kopf indexes (one per run kind) that map ``"all"`` to every run's census."""


@dataclass
class Deps:
    """Dependencies of every handler.

    Attributes:
        admission_lock: serialises "count active Jobs, then create one" so two runs cannot both
            take the last slot (one operator replica; the Deployment uses strategy Recreate).
        indexes: kopf's census indexes, captured from handler kwargs for the metrics task.
        now: the clock (RFC 3339 strings), injectable for tests.
    """

    settings: OperatorSettings
    kube: Kube
    store: Store
    metrics: Metrics
    admission_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    indexes: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], str] = now_rfc3339
    validated: dict[tuple[str, int], RunFacts] = field(default_factory=dict)
    """Facts of validated specs by ``(uid, generation)``: a spec only changes with its
    generation, and a queued run's timer would otherwise re-validate it every tick."""

    async def db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a (synchronous) store call in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def capture_indexes(self, kwargs: dict[str, Any]) -> None:
        for name in CENSUS_INDEXES:
            if name in kwargs:
                self.indexes[name] = kwargs[name]

    def census(self) -> list[RunCensus]:
        """Every watched run as the indexes see it now."""
        out: list[RunCensus] = []
        for index in self.indexes.values():
            out.extend(index.get("all", ()))
        return out

    def queue(self) -> list[QueueEntry]:
        """Runs waiting for a runner slot, across kinds (unordered; decisions order them)."""
        return [c.entry for c in self.census() if c.entry is not None]
