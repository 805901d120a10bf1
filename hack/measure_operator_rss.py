"""Measure the operator's resident memory, to size the chart's `resources` (docs/install.md).

    .venv/bin/python hack/measure_operator_rss.py [--runs 4]

Starts a real API server (EnvTest), a fresh PostgreSQL database and `agentensor operator` (cap 2,
runner Pods as local processes), samples the operator process's VmRSS every 0.2 s while it serves
``--runs`` synthetic TrainingRuns, and prints idle and peak RSS in MB (MiB) as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root: `tests.k8s` helpers import by package path


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()

    from tests.k8s.envtest import EnvTest
    from tests.k8s.operator_harness import Cluster, fresh_database, phase, synthetic, synthetic_promptconfig, wait_for

    with tempfile.TemporaryDirectory() as tmp, EnvTest() as env, fresh_database() as url:
        env.kubectl("apply", "-f", str(REPO / "crds"))
        for crd in ("promptconfigs", "trainingruns", "evaluationruns"):
            env.kubectl("wait", "--for=condition=Established", f"crd/{crd}.agentensor.dev", "--timeout=60s")
        with Cluster(env, "rss", url, Path(tmp)) as cluster:
            operator = cluster.operator(max_concurrent_jobs=2).start()
            assert operator.process is not None
            pid = operator.process.pid
            idle, peak = rss_mb(pid), 0
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_mb(pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            names = [f"t{i}" for i in range(args.runs)]
            cluster.apply(
                synthetic_promptconfig("router", "rss-router"),
                *(synthetic(n, "router", n_per_intent=30, epochs=2) for n in names),
            )
            for n in names:
                wait_for(lambda n=n: phase(cluster.get("trainingrun", n)) in ("Succeeded", "Failed"), 600, n)
            stop.set()
            sampler.join()
            phases = [phase(cluster.get("trainingrun", n)) for n in names]
            operator.stop()
    print(json.dumps({"idle_rss_mb": idle, "peak_rss_mb": peak, "runs": phases}))


if __name__ == "__main__":
    main()
