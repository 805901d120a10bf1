"""The operator reflects on change, not on a clock (real API server, real PostgreSQL).

The safety resync is minutes (``AGENTENSOR_STATUS_RESYNC_SECONDS``, default 300), so a status
that follows a database write within the test's wait came from the store's NOTIFY; a run that
changes nothing is not patched (its resourceVersion stays put) and is barely reconciled at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_operator import StatusSettings
from agentensor_store import Store
from tests.k8s.operator_harness import (
    Cluster,
    OperatorProcess,
    fresh_database,
    phase,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

WAIT_SECONDS = 60.0
"""Generous for a loaded machine, and still well under the resync: only a notification explains it."""


@pytest.fixture
def cluster(k8s_with_crds: Any, tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database() as url, Cluster(k8s_with_crds, "op-changes", url, tmp_path) as c:
        assert c.agent is not None
        c.agent.stop()  # no runner Pods: this test plays the runner through the store
        c.agent = None
        yield c


def _reconciles(op: OperatorProcess) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in op.metrics().splitlines()
        if line.startswith("agentensor_reconcile_total{")
    )


def test_database_writes_reach_status_by_notify_and_idle_runs_are_not_patched(cluster: Cluster) -> None:
    assert StatusSettings().resync_seconds * 0.75 > WAIT_SECONDS  # the earliest resync of any run
    cluster.apply(synthetic_promptconfig("pc", "changes-router"))
    op = cluster.operator(max_concurrent_jobs=1).start()
    store = Store(cluster.db_url)
    try:
        cluster.apply(*(synthetic(f"run-{i}", "pc") for i in range(3)))

        # One slot: the oldest run (ties in the creation second broken by uid) runs, two wait.
        def split() -> dict[str, list[str]] | None:
            by: dict[str, list[str]] = {}
            for r in cluster.items("trainingruns"):
                by.setdefault(phase(r) or "", []).append(r["metadata"]["name"])
            return by if len(by.get("Running", [])) == 1 and len(by.get("Queued", [])) == 2 else None

        running = wait_for(split, WAIT_SECONDS, "one run Running and two Queued")["Running"][0]
        first = cluster.get("trainingrun", running)
        assert first is not None
        uid = first["metadata"]["uid"]
        store.create_run(
            run_id=uid, kind="TrainingRun", namespace=cluster.namespace, name=running, workflow="w", spec={}
        )
        store.update_run(uid, phase="Running", status={"phase": "Running", "epochs": 3, "casesCompleted": 7})
        version = store.register_version("w", {"p": "v"}, {}, namespace=cluster.namespace)
        store.add_checkpoint(uid, epoch=1, version=version, score=0.25, scores={})

        def reflected() -> bool:
            status = (cluster.get("trainingrun", running) or {}).get("status") or {}
            return status.get("casesCompleted") == 7 and [c["epoch"] for c in status.get("checkpoints") or []] == [1]

        wait_for(reflected, WAIT_SECONDS, "the runner's row and checkpoint in the running run's status")

        time.sleep(3)  # let the patches' own watch events settle
        before = {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in cluster.items("trainingruns")}
        count = _reconciles(op)
        time.sleep(10)
        after = {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in cluster.items("trainingruns")}
        assert after == before, "a run that changed nothing was patched"
        # A 1 s clock would be 30 passes (3 runs x 10 s); a Job status update (the job controller
        # noting its Pod) may still wake its run once or twice, which then patches nothing.
        assert _reconciles(op) - count <= 5, "idle runs were reconciled on a clock"
    finally:
        store.close()
        op.stop()
