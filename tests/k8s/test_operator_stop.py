"""``kubectl annotate trainingrun NAME agentensor.dev/stop=true`` on the real API server: the
operator records the request in PostgreSQL, the runner stops at its next candidate boundary, and
the run still ends Succeeded with its holdout comparison (reason StopRequested, one Event)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.operator_harness import (
    Cluster,
    condition,
    fresh_database,
    phase,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def cluster(k8s_with_crds: Any, tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database() as url, Cluster(k8s_with_crds, "op-stop-annotation", url, tmp_path) as c:
        yield c


def test_the_stop_annotation_ends_a_running_run_gracefully(cluster: Cluster) -> None:
    epochs = 8
    run = synthetic("stopme", "stop-pc", n_per_intent=40, epochs=epochs)
    run["spec"]["optimizer"]["batchSize"] = 8  # many candidate boundaries per epoch
    op = cluster.operator().start()
    try:
        cluster.apply(synthetic_promptconfig("stop-pc", "stop-router"), run)
        wait_for(
            lambda: ((cluster.get("trainingrun", "stopme") or {}).get("status") or {}).get("checkpoints"),
            90,
            "the first checkpoint in status",
        )
        cluster.env.kubectl("annotate", "trainingrun", "stopme", "agentensor.dev/stop=true", "-n", cluster.namespace)
        done = wait_for(
            lambda: (r := cluster.get("trainingrun", "stopme")) and phase(r) in ("Succeeded", "Failed") and r,
            180,
            "the stopped run to finish",
            interval=0.5,
        )
        events = cluster.events("stopme")
    finally:
        op.stop()
    status = done["status"]
    assert phase(done) == "Succeeded", status.get("message")
    succeeded = condition(done, "Succeeded")
    assert succeeded is not None and succeeded["reason"] == "StopRequested", succeeded
    assert "stop requested" in succeeded["message"]
    # stopped early: fewer epochs checkpointed than configured, and the holdout still compared
    epochs_done = max(c["epoch"] for c in status["checkpoints"])
    assert 1 <= epochs_done < epochs, status["checkpoints"]
    assert status["holdout"]["baseline"] is not None and status["holdout"]["best"] is not None
    assert condition(done, "Promotable") is not None
    stop_events = [e for e in events if e.get("reason") == "StopRequested"]
    assert len(stop_events) == 1 and stop_events[0]["source"].get("component") == "agentensor-operator", stop_events
