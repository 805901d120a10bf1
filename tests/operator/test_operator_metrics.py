"""Metrics: names follow Prometheus conventions and parse with prometheus-client's parser."""

from __future__ import annotations

import kopf
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agentensor_operator._decisions import QueueEntry, RunCensus
from agentensor_operator._metrics import Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(m.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


async def test_timed_counts_outcomes() -> None:
    m = Metrics()

    async def ok() -> int:
        return 1

    async def retry() -> None:
        raise kopf.TemporaryError("later")

    assert await m.timed("TrainingRun", ok)() == 1
    with pytest.raises(kopf.TemporaryError):
        await m.timed("TrainingRun", retry)()
    got = samples(m)
    assert got[("agentensor_reconcile_total", (("kind", "TrainingRun"), ("result", "success")))] == 1
    assert got[("agentensor_reconcile_total", (("kind", "TrainingRun"), ("result", "retry")))] == 1
    assert got[("agentensor_reconcile_duration_seconds_count", (("kind", "TrainingRun"),))] == 2


def test_census_and_run_gauges() -> None:
    m = Metrics()
    entry = QueueEntry("t", "u")
    runs = [
        RunCensus("TrainingRun", "a", "r1", "Queued", entry),
        RunCensus("TrainingRun", "a", "r2", "Queued", entry),
        RunCensus("EvaluationRun", "b", "e1", "Succeeded", None),
    ]
    m.set_census(runs, active_jobs=3)
    m.set_run("TrainingRun", "a", "r1", best_score=0.75, cases_completed=12, tokens=100, cost=0.5)
    got = samples(m)
    assert got[("agentensor_runs", (("kind", "TrainingRun"), ("namespace", "a"), ("phase", "Queued")))] == 2
    assert got[("agentensor_jobs_running", ())] == 3 and got[("agentensor_jobs_queued", ())] == 2
    key = (("kind", "TrainingRun"), ("name", "r1"), ("namespace", "a"))
    assert got[("agentensor_run_best_score", key)] == 0.75
    assert got[("agentensor_run_cases_completed", key)] == 12
    assert got[("agentensor_run_tokens", key)] == 100 and got[("agentensor_run_cost_usd", key)] == 0.5
    m.set_census(runs[2:], active_jobs=0)
    m.prune_runs([("EvaluationRun", "b", "e1")])  # r1 was deleted
    got = samples(m)
    assert ("agentensor_runs", (("kind", "TrainingRun"), ("namespace", "a"), ("phase", "Queued"))) not in got
    assert ("agentensor_run_best_score", key) not in got
