"""Prometheus metrics of the operator, served on ``/metrics``.

Controller-style:
    agentensor_reconcile_total{kind,result}          counter; result: success|retry|permanent|error
    agentensor_reconcile_duration_seconds{kind}      histogram of one reconcile (handler or timer tick)
Outcomes (counted once per run, when it reaches a terminal phase; alert on these, not on gauges):
    agentensor_run_completions_total{kind,outcome}   counter; outcome: Succeeded|Failed
Fleet (refreshed by the census task every poll interval, from kopf's indexes and the API):
    agentensor_runs{kind,namespace,phase}            runs by phase (Pending, Queued, Running, ...)
    agentensor_jobs_running                          active runner Jobs (what the cap counts)
    agentensor_jobs_queued                           runs waiting for a runner slot
Per run (set on each reflection; removed when the run is deleted):
    agentensor_run_best_score{kind,namespace,name}
    agentensor_run_cases_completed{kind,namespace,name}
    agentensor_run_tokens{kind,namespace,name}       LLM tokens (input + output) used so far (status.usage)
    agentensor_run_cost_usd{kind,namespace,name}     LLM cost so far, in US dollars (spec.pricing prices)
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import ParamSpec, TypeVar

import kopf
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agentensor_api import RUN_KINDS, Phase

from ._decisions import RunCensus

P = ParamSpec("P")
R = TypeVar("R")

RUN_LABELS = ("kind", "namespace", "name")
OUTCOMES = (Phase.SUCCEEDED, Phase.FAILED)


def _reconcile_metrics(r: CollectorRegistry) -> tuple[Counter, Histogram]:
    """``agentensor_reconcile_total{kind,result}`` and ``agentensor_reconcile_duration_seconds{kind}``."""
    total = Counter("agentensor_reconcile", "Reconciles by kind and result.", ["kind", "result"], registry=r)
    duration = Histogram(
        "agentensor_reconcile_duration_seconds",
        "Duration of one reconcile (handler call or timer tick).",
        ["kind"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        registry=r,
    )
    return total, duration


def _completions(r: CollectorRegistry) -> Counter:
    """``agentensor_run_completions_total{kind,outcome}``, every series created at 0 so that
    ``increase()`` sees the first completion."""
    completions = Counter(
        "agentensor_run_completions",
        "Runs that reached a terminal phase, by kind and outcome (Succeeded or Failed).",
        ["kind", "outcome"],
        registry=r,
    )
    for kind in RUN_KINDS:
        for outcome in OUTCOMES:
            completions.labels(kind, outcome)
    return completions


def _run_gauges(r: CollectorRegistry) -> tuple[Gauge, Gauge, Gauge, Gauge]:
    """The per-run gauges ``{kind,namespace,name}``: best score, cases completed, tokens, cost in USD."""
    best_score = Gauge("agentensor_run_best_score", "Best validation objective of a run.", RUN_LABELS, registry=r)
    cases = Gauge("agentensor_run_cases_completed", "Case invocations a run has finished.", RUN_LABELS, registry=r)
    tokens = Gauge("agentensor_run_tokens", "LLM tokens a run has used.", RUN_LABELS, registry=r)
    cost = Gauge(
        "agentensor_run_cost_usd",
        "LLM cost of a run so far in US dollars (status.usage.cost, priced by spec.pricing).",
        RUN_LABELS,
        registry=r,
    )
    return best_score, cases, tokens, cost


class Metrics:
    """The operator's metrics in their own registry (no process/platform collectors mixed in)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_total, self.reconcile_duration = _reconcile_metrics(r)
        self.completions = _completions(r)
        self.runs = Gauge(
            "agentensor_runs", "Runs by kind, namespace and phase.", ["kind", "namespace", "phase"], registry=r
        )
        self.jobs_running = Gauge("agentensor_jobs_running", "Active runner Jobs (counted by the cap).", registry=r)
        self.jobs_queued = Gauge("agentensor_jobs_queued", "Runs waiting for a runner slot.", registry=r)
        self.best_score, self.cases_completed, self.tokens, self.cost = _run_gauges(r)
        self._run_gauges = (self.best_score, self.cases_completed, self.tokens, self.cost)
        self._seen_runs: set[tuple[str, str, str]] = set()

    def serve(self, port: int, address: str) -> None:
        """Serve ``/metrics`` on ``address:port`` from a daemon thread (prometheus_client's server)."""
        start_http_server(port, addr=address, registry=self.registry)

    def timed(self, kind: str, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Wrap a handler: count its outcome and observe its duration."""

        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            result = "error"
            try:
                value = await fn(*args, **kwargs)
                result = "success"
                return value
            except kopf.TemporaryError:
                result = "retry"
                raise
            except kopf.PermanentError:
                result = "permanent"
                raise
            finally:
                self.reconcile_total.labels(kind, result).inc()
                self.reconcile_duration.labels(kind).observe(time.perf_counter() - started)

        wrapper.__name__ = getattr(fn, "__name__", "handler")
        wrapper.__qualname__ = getattr(fn, "__qualname__", wrapper.__name__)
        return wrapper

    def run_completed(self, kind: str, outcome: str) -> None:
        """Count one run of ``kind`` reaching ``outcome`` (``Succeeded`` or ``Failed``)."""
        self.completions.labels(kind, outcome).inc()

    def set_run(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        best_score: float | None,
        cases_completed: int | None,
        tokens: float = 0.0,
        cost: float = 0.0,
    ) -> None:
        """Set a run's gauges: best validation objective, cases done, LLM tokens, cost in US dollars."""
        key = (kind, namespace, name)
        self._seen_runs.add(key)
        if best_score is not None:
            self.best_score.labels(*key).set(best_score)
        self.cases_completed.labels(*key).set(cases_completed or 0)
        self.tokens.labels(*key).set(tokens)
        self.cost.labels(*key).set(cost)

    def prune_runs(self, live: Iterable[tuple[str, str, str]]) -> None:
        """Drop the per-run series of runs that no longer exist (deleted objects)."""
        for key in self._seen_runs - set(live):
            self.forget_run(*key)

    def forget_run(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key not in self._seen_runs:
            return
        self._seen_runs.discard(key)
        for gauge in self._run_gauges:
            with contextlib.suppress(KeyError):
                gauge.remove(*key)

    def set_census(self, runs: Iterable[RunCensus], active_jobs: int) -> None:
        """Refresh the fleet gauges from one census of every watched run."""
        tally: Tally[tuple[str, str, str]] = Tally()
        queued = 0
        for run in runs:
            tally[(run.kind, run.namespace, run.phase)] += 1
            queued += run.entry is not None
        self.runs.clear()  # a (kind, namespace, phase) with no runs left disappears
        for (kind, namespace, phase), n in tally.items():
            self.runs.labels(kind, namespace, phase).set(n)
        self.jobs_running.set(active_jobs)
        self.jobs_queued.set(queued)
