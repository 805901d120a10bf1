"""The operator loses its database for 30 s: the run's status says why, and the run still finishes.

The operator reaches PostgreSQL through a cuttable TCP proxy; the runner Pod reaches it directly
(as in a cluster where only the operator's path to the database breaks) and, with the default
AGENTENSOR_DB_OUTAGE_RETRY_SECONDS, would ride out an outage on its own path too
(tests/reliability/test_db_outage.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from ._proxy import CuttableProxy

pytestmark = [pytest.mark.k8s, pytest.mark.slow]
OUTAGE_SECONDS = 30.0


def test_status_says_the_database_is_unavailable_and_the_run_recovers(cluster: Any, tmp_path: Path) -> None:
    from tests.k8s.operator_harness import (
        OperatorProcess,
        condition,
        phase,
        synthetic,
        synthetic_promptconfig,
        wait_for,
    )

    url = make_url(cluster.db_url)
    with CuttableProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        op = OperatorProcess(
            cluster.env, namespace=cluster.namespace, db_url=via_proxy, log_path=tmp_path / "operator.log"
        ).start()
        try:
            cluster.apply(
                synthetic_promptconfig("outage-pc", "outage-router"),
                synthetic("outage", "outage-pc", n_per_intent=40, epochs=6),
            )
            wait_for(lambda: phase(cluster.get("trainingrun", "outage")) == "Running", 90, "Running")
            proxy.cut()
            cut_at = time.monotonic()
            down = wait_for(
                lambda: (
                    (c := condition(cluster.get("trainingrun", "outage"), "DatabaseAvailable"))
                    and c["status"] == "False"
                    and c
                ),
                30,
                "DatabaseAvailable=False",
            )
            noticed = time.monotonic() - cut_at
            assert down["reason"] == "DatabaseUnavailable" and down["message"], down
            remaining = OUTAGE_SECONDS - (time.monotonic() - cut_at)
            if remaining > 0:
                time.sleep(remaining)
            assert op.process is not None and op.process.poll() is None, "the operator keeps running"
            proxy.restore()
            restored_at = time.monotonic()
            wait_for(lambda: phase(cluster.get("trainingrun", "outage")) == "Succeeded", 180, "Succeeded")
            recovered = time.monotonic() - restored_at
            final = cluster.get("trainingrun", "outage")
            up = condition(final, "DatabaseAvailable")
            assert up is not None and up["status"] == "True" and up["reason"] == "DatabaseReachable"
            assert final["status"]["bestVersion"] >= 1
            assert len(final["status"]["checkpoints"]) >= 1
        finally:
            op.stop()
    print(f"condition after {noticed:.1f} s of outage; Succeeded {recovered:.1f} s after the database came back")
