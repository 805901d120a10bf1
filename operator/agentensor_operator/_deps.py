"""What handlers depend on, passed in (never imported as globals): settings, API, store, metrics."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from agentensor_api import now_rfc3339
from agentensor_store import OperatorStore

from ._changes import Changes
from ._decisions import RunCensus, RunFacts
from ._k8s import Kube
from ._metrics import Metrics
from ._settings import OperatorSettings

P = ParamSpec("P")
R = TypeVar("R")

DB_THREADS = 8
"""Worker threads for (synchronous) store calls: a bounded pool of its own, not asyncio's
default executor shared with everything else. The store's engine pools 5 connections plus 10
overflow, so 8 threads never wait for a connection; reads are milliseconds, so 8 in flight
serve hundreds of reflections per second."""

CENSUS_INDEXES = ("trainingruns_census", "evaluationruns_census")
"""Ids of the kopf indexes (one per run kind) that map ``"all"`` to every run's census."""


@dataclass
class Deps:
    """Dependencies of every handler.

    Attributes:
        changes: what wakes a run's reconcile, the sorted queue, admissions in flight and the Job
            cache (:class:`~agentensor_operator._changes.Changes`). Admission decides and
            reserves its slots with no ``await`` in between, so two runs cannot both take the
            last slot without a lock (one operator replica; the Deployment uses strategy Recreate).
        indexes: kopf's census indexes, captured from handler kwargs for the metrics task.
        now: the clock (RFC 3339 strings), injectable for tests.
    """

    settings: OperatorSettings
    kube: Kube
    store: OperatorStore
    metrics: Metrics
    changes: Changes = field(default_factory=Changes)
    indexes: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], str] = now_rfc3339
    validated: dict[tuple[str, int], RunFacts] = field(default_factory=dict)
    """Facts of validated specs by ``(uid, generation)``: a spec only changes with its
    generation, and a queued run's timer would otherwise re-validate it every tick."""

    db_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="agentensor-db")
    )

    async def db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a (synchronous) store call in the store's worker pool (:data:`DB_THREADS`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_pool, functools.partial(fn, *args, **kwargs))

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
