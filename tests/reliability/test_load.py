"""Load: 100 TrainingRuns applied at once (tiny synthetic datasets) with ``maxConcurrentJobs`` 8.

The cap holds (active Jobs and live runner processes sampled every 100 ms), every run succeeds
with exactly one Job, and the figures are printed (``-s``) for docs/reliability.md: the maximum of
concurrent Jobs seen, the total time, and the operator's CPU seconds and peak RSS from /proc
(the operator process itself; its one short-lived ``db upgrade`` child is not counted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.k8s.operator_harness import Cluster, synthetic, synthetic_promptconfig, wait_for

from ._cluster import Recorder, pods_per_job

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

RUNS, CAP = 100, 8


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_hundred_runs_with_a_cap_of_eight(cluster: Cluster) -> None:
    names = [f"l{i:03d}" for i in range(RUNS)]
    op = cluster.operator(max_concurrent_jobs=CAP).start()
    assert op.process is not None
    pid = op.process.pid
    try:
        with Recorder(cluster) as rec:
            began = time.monotonic()
            cluster.apply(
                synthetic_promptconfig("load-pc", "load-router"),
                *[synthetic(name, "load-pc", n_per_intent=4, epochs=1) for name in names],
            )
            wait_for(lambda: rec.all_done(names), 600, f"all {RUNS} runs to finish", interval=1.0)
            total = time.monotonic() - began
        cpu, rss = _cpu_seconds(pid), _peak_rss_mib(pid)
    finally:
        op.stop()
    per_run = rec.jobs_per_run()
    print(
        f"{RUNS} runs, cap {CAP}: max concurrent Jobs {rec.max_jobs} (runner processes {rec.max_processes}), "
        f"total {total:.0f} s, operator CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB, samples {rec.samples}"
    )
    assert {rec.phases[n] for n in names} == {"Succeeded"}
    assert len(per_run) == RUNS and set(per_run.values()) == {1}
    assert set(pods_per_job(cluster).values()) == {1}
    assert rec.max_jobs <= CAP and rec.max_processes <= CAP
    assert rec.samples > 100
