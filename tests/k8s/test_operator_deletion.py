"""Deleting a resource while its kopf timer is mid-pass finishes in seconds, not a polling minute.

Regression: kopf only gave a running timer ten event-loop cycles to exit; a reflection pass
awaiting the database or the API server took longer, and kopf then re-checked after
``cancellation_polling`` (60 s by default), so ``kubectl delete`` hung for up to a minute
(seen in CI as a 30 s ``kubectl delete --timeout`` failure). The operator here reflects
PromptConfigs every 20 ms, so nearly every deletion lands while a pass is running.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.k8s.operator_harness import Cluster, OperatorProcess, synthetic_promptconfig, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS = "op-delete"
COUNT = 6


@pytest.fixture(scope="module")
def operator_options() -> dict[str, Any]:
    return {"max_concurrent_jobs": 4, "extra_env": {"AGENTENSOR_STATUS_PROMPTCONFIG_INTERVAL_SECONDS": "0.02"}}


def test_deleting_promptconfigs_with_busy_timers_is_prompt(cluster: Cluster, operator: OperatorProcess) -> None:
    names = [f"busy-{i}" for i in range(COUNT)]
    cluster.apply(*(synthetic_promptconfig(n, f"delete-{n}") for n in names))
    for n in names:

        def materialized(n: str = n) -> bool:
            return cluster.get("configmap", f"{n}-active") is not None

        wait_for(materialized, 60, f"{n} materialized")
        pc = cluster.get("promptconfig", n)
        assert pc is not None
        assert "agentensor.dev/operator" in (pc["metadata"].get("finalizers") or []), pc["metadata"]

    seconds: list[float] = []
    for n in names:
        started = time.monotonic()
        done = cluster.env.kubectl(
            "delete", "promptconfig", n, "-n", NS, "--timeout=45s", timeout_seconds=60, check=False
        )
        seconds.append(time.monotonic() - started)
        log = operator.log()[-3000:]
        assert done.returncode == 0, f"deleting {n} failed after {seconds[-1]:.1f} s: {done.stderr}\n{log}"
    print(f"\ndeletion seconds with a 20 ms PromptConfig timer: {[round(s, 2) for s in seconds]}")
    assert max(seconds) < 10, f"a deletion waited on kopf's polling: {seconds}"
