"""Operator cost at N live runs, on a real API server (EnvTest) and real PostgreSQL.

    .venv/bin/python benchmarks/operator_scale.py --live 50,200,1000,2000 [--measure-seconds 30] \
        [--update-docs docs/benchmarks.md]

For each N, in one run (one API server, one database), the operator runs as
``python -m agentensor_cli operator`` in its own process, in a fresh namespace per phase:

1. **queued**: N TrainingRuns under ``maxConcurrentJobs=4`` (4 get a Job, the rest are Queued).
   Once every run has a phase and 5 s have passed, nothing changes; over ``--measure-seconds``
   we read the operator's CPU (% of one core, from /proc), the API server's CPU, the operator's
   RSS and its reconciles/s (``agentensor_reconcile_total`` from /metrics).
2. **admitted**: N TrainingRuns under a cap above N, so every run gets a Job. Runs are created
   one request each from 8 threads; apply -> Job is the time from just before the create request
   to the Job's ADDED event on a watch. No node agent: Jobs stay pending, and this process plays
   every runner, writing each run's row straight into the store (``create_run``/``update_run``).
   Then: an idle window (nothing changes), and a window in which checkpoints are written
   (``Store.add_checkpoint``) for random runs at ``--checkpoint-rate`` per second;
   checkpoint -> status is the time from the write to the epoch showing in
   ``.status.checkpoints`` on a watch of the runs.

Prints one JSON line per N (keys ``n``, ``operator_cpu_pct`` (queued, idle), ``rss_mb`` (the
larger of both phases), ``ckpt_to_status_p95_s``, and per-phase details). CPU-seconds are read
from /proc, so the figures hold on a shared machine; wall-clock latencies do not, quite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root: `tests.k8s` helpers import by package path

from tests.k8s.envtest import EnvTest  # noqa: E402
from tests.k8s.operator_harness import (  # noqa: E402
    Cluster,
    OperatorProcess,
    fresh_database,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

GROUP, VERSION = "agentensor.dev", "v1alpha1"
SETTLE_SECONDS = 5.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reconciles(op: OperatorProcess) -> float:
    total = 0.0
    for line in op.metrics().splitlines():
        if line.startswith("agentensor_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Watcher:
    """First-seen times of keys derived from watch events (a thread per watch)."""

    def __init__(self, stream: Any, key: Any) -> None:
        self.seen: dict[str, float] = {}
        self._stream, self._key = stream, key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def _loop(self) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in w.stream(self._stream, timeout_seconds=30, deserialize=False):  # type: ignore[no-untyped-call]
                    now = time.perf_counter()
                    for k in self._key(event.get("object") or {}):
                        self.seen.setdefault(k, now)
                    if self._stop.is_set():
                        break
            except Exception:
                time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


def measure(op: OperatorProcess, apiserver_pid: int, seconds: float) -> dict[str, float]:
    """CPU of the operator and the API server, RSS and reconciles/s over ``seconds``."""
    assert op.process is not None
    pid = op.process.pid
    cpu0, api0, rec0, t0 = cpu_seconds(pid), cpu_seconds(apiserver_pid), reconciles(op), time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - t0
    return {
        "operator_cpu_pct": round(100 * (cpu_seconds(pid) - cpu0) / wall, 2),
        "apiserver_cpu_pct": round(100 * (cpu_seconds(apiserver_pid) - api0) / wall, 2),
        "rss_mb": round(rss_mb(pid), 1),
        "reconciles_per_s": round((reconciles(op) - rec0) / wall, 2),
    }


def create_runs(api: Any, ns: str, names: list[str]) -> dict[str, float]:
    """Create TrainingRuns, one request each from 8 threads; ``{uid: time before its request}``."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)

    def create(name: str) -> tuple[str, float]:
        body = synthetic(name, "bench-pc", n_per_intent=2)
        body["metadata"]["namespace"] = ns
        t0 = time.perf_counter()
        created: Any = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "trainingruns", body)
        return str(created["metadata"]["uid"]), t0

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return dict(pool.map(create, names))


def phased(cluster: Cluster, n: int, want: set[str]) -> bool:
    items = cluster.items("trainingruns")
    return len(items) == n and all((r.get("status") or {}).get("phase") in want for r in items)


def queued_phase(env: EnvTest, url: str, workdir: Path, api: Any, n: int, seconds: float) -> dict[str, float]:
    with Cluster(env, f"scale-q{n}", url, workdir) as cluster:
        stop_agent(cluster)
        cluster.apply(synthetic_promptconfig("bench-pc", "bench-router"))
        op = cluster.operator(max_concurrent_jobs=4).start()
        try:
            t0 = time.perf_counter()
            create_runs(api, cluster.namespace, [f"q-{i:04d}" for i in range(n)])
            wait_for(lambda: phased(cluster, n, {"Queued", "Running"}), 900, f"{n} runs phased", interval=2.0)
            to_phase = time.perf_counter() - t0
            time.sleep(SETTLE_SECONDS)
            out = measure(op, apiserver_pid(env), seconds)
            out["all_phased_s"] = round(to_phase, 1)
            drain(cluster)
            return out
        finally:
            op.stop()


def drain(cluster: Cluster, timeout_seconds: float = 900) -> None:
    """Delete the phase's runs while its operator still runs (it removes their finalizers and
    Jobs), so that the next phase starts on an API server with nothing left over."""
    ns = cluster.namespace
    cluster.env.kubectl("delete", "trainingruns", "--all", "-n", ns, "--wait=false", timeout_seconds=600)
    wait_for(
        lambda: not cluster.env.kubectl("get", "trainingruns,jobs", "-n", ns, "-o", "name").stdout.strip(),
        timeout_seconds,
        "the phase's runs and Jobs to be deleted",
        interval=2.0,
    )


def stop_agent(cluster: Cluster) -> None:
    assert cluster.agent is not None
    cluster.agent.stop()  # Jobs stay pending: only the control plane is measured
    cluster.agent = None


def apiserver_pid(env: EnvTest) -> int:
    return next(p.pid for name, p in env._processes if name == "kube-apiserver")


def fake_runners(url: str, ns: str, uids: list[str]) -> Any:
    """Play every runner: a Running row per run (the operator reflects it), one prompt version."""
    from agentensor_store import Store

    store = Store(url)
    for i, uid in enumerate(uids):
        store.create_run(run_id=uid, kind="TrainingRun", namespace=ns, name=f"a-{i:04d}", workflow="bench", spec={})
        store.update_run(uid, phase="Running", status={"phase": "Running", "epochs": 1000})
    return store, store.register_version("bench", {"p": "v"}, {}, namespace=ns)


def checkpoint_window(
    store: Any, version: Any, seen: Watcher, uids: list[str], rate: float, seconds: float
) -> list[float]:
    """Write checkpoints for random runs at ``rate``/s; their checkpoint -> status latencies."""
    rng = random.Random(0)
    epochs: dict[str, int] = {}
    written: dict[str, float] = {}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        uid = rng.choice(uids)
        epoch = epochs[uid] = epochs.get(uid, -1) + 1
        t0 = time.perf_counter()
        store.add_checkpoint(uid, epoch=epoch, version=version, score=0.5, scores={})
        written[f"{uid}/{epoch}"] = t0
        time.sleep(max(0.0, 1.0 / rate - (time.perf_counter() - t0)))
    wait_for(lambda: all(k in seen.seen for k in written), 120, "every checkpoint in status", interval=0.5)
    return [seen.seen[k] - t0 for k, t0 in written.items()]


def admitted_phase(env: EnvTest, url: str, workdir: Path, api: Any, n: int, args: argparse.Namespace) -> dict[str, Any]:
    from kubernetes import client

    batch, custom = client.BatchV1Api(api), client.CustomObjectsApi(api)
    with Cluster(env, f"scale-a{n}", url, workdir) as cluster:
        stop_agent(cluster)
        ns = cluster.namespace
        cluster.apply(synthetic_promptconfig("bench-pc", "bench-router"))
        jobs = Watcher(
            lambda **kw: batch.list_namespaced_job(ns, **kw),
            lambda obj: [(obj.get("metadata", {}).get("labels") or {}).get("agentensor.dev/run-uid", "")],
        ).start()
        seen = Watcher(
            lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, ns, "trainingruns", **kw),
            lambda obj: [
                f"{obj['metadata']['uid']}/{c['epoch']}" for c in (obj.get("status") or {}).get("checkpoints") or []
            ],
        ).start()
        op = cluster.operator(max_concurrent_jobs=n + 10).start()
        try:
            created = create_runs(api, ns, [f"a-{i:04d}" for i in range(n)])
            wait_for(lambda: all(u in jobs.seen for u in created), 900, f"{n} Jobs", interval=1.0)
            apply_to_job = [jobs.seen[u] - t0 for u, t0 in created.items()]
            uids = sorted(created)
            store, version = fake_runners(url, ns, uids)
            wait_for(lambda: phased(cluster, n, {"Running"}), 900, f"{n} runs Running", interval=2.0)
            time.sleep(SETTLE_SECONDS)
            idle = measure(op, apiserver_pid(env), args.measure_seconds)
            box: dict[str, Any] = {}
            writer = threading.Thread(
                target=lambda: box.update(
                    lat=checkpoint_window(store, version, seen, uids, args.checkpoint_rate, args.measure_seconds)
                )
            )
            writer.start()
            busy = measure(op, apiserver_pid(env), args.measure_seconds)
            writer.join()
            store.close()
            drain(cluster)
            return summarize_admitted(apply_to_job, box["lat"], idle, busy)
        finally:
            op.stop()
            jobs.stop()
            seen.stop()


def summarize_admitted(
    apply_to_job: list[float], ckpt: list[float], idle: dict[str, float], busy: dict[str, float]
) -> dict[str, Any]:
    return {
        "apply_to_job_p50_s": round(statistics.median(apply_to_job), 3),
        "apply_to_job_p95_s": round(percentile(apply_to_job, 0.95), 3),
        "ckpt_to_status_p50_s": round(statistics.median(ckpt), 3),
        "ckpt_to_status_p95_s": round(percentile(ckpt, 0.95), 3),
        "checkpoints": len(ckpt),
        "idle": idle,
        "checkpointing": busy,
    }


def markdown_rows(results: list[dict[str, Any]]) -> str:
    lines = [
        "| live runs | queued: operator CPU | queued: API server CPU | queued: RSS | queued: reconciles/s "
        "| admitted idle: operator CPU | admitted idle: RSS | checkpointing: operator CPU | "
        "checkpointing: reconciles/s | apply -> Job p50 / p95 | checkpoint -> status p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        q, a = r["queued"], r["admitted"]
        i, b = a["idle"], a["checkpointing"]
        lines.append(
            f"| {r['n']} | {q['operator_cpu_pct']:.1f} % | {q['apiserver_cpu_pct']:.1f} % | {q['rss_mb']:.0f} MB "
            f"| {q['reconciles_per_s']:.1f} | {i['operator_cpu_pct']:.1f} % | {i['rss_mb']:.0f} MB "
            f"| {b['operator_cpu_pct']:.1f} % | {b['reconciles_per_s']:.1f} "
            f"| {a['apply_to_job_p50_s']:.2f} / {a['apply_to_job_p95_s']:.2f} s "
            f"| {a['ckpt_to_status_p50_s']:.2f} / {a['ckpt_to_status_p95_s']:.2f} s |"
        )
    return "\n".join(lines) + "\n"


def _old_position(census: list[Any], uid: str) -> int:
    from agentensor_operator import _decisions as d

    return d.queue_position([c.entry for c in census if c.entry is not None], uid)


def queue_cost(sizes: list[int]) -> list[dict[str, float]]:
    """In-process: microseconds per "where is this run in the queue" question at each size,
    the old way (rebuild the list of entries from the census, then scan: ``queue_position``)
    against the sorted index (``QueueIndex.position``). No API server needed."""
    import timeit

    from agentensor_operator import _decisions as d

    rows = []
    for n in sizes:
        entries = [
            d.QueueEntry(created=f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z", uid=f"u{i:06d}") for i in range(n)
        ]
        census = [d.RunCensus(kind="TrainingRun", namespace="ns", name=e.uid, phase="Queued", entry=e) for e in entries]
        index = d.QueueIndex()
        for e in entries:
            index.put(e.uid, e)
        probe = entries[n // 2].uid
        reps = max(3, 20_000 // n)
        scan = functools.partial(_old_position, census, probe)
        old_us = 1e6 * timeit.timeit(scan, number=reps) / reps
        new_us = 1e6 * timeit.timeit(functools.partial(index.position, probe), number=reps * 50) / (reps * 50)
        rows.append({"n": n, "old_position_us": round(old_us, 2), "indexed_position_us": round(new_us, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", default="50,200,1000,2000", help="comma-separated N (run in this order)")
    parser.add_argument("--measure-seconds", type=float, default=30.0, help="length of each measured window")
    parser.add_argument("--checkpoint-rate", type=float, default=10.0, help="checkpoints written per second")
    parser.add_argument("--phases", default="queued,admitted", help="which phases to run")
    parser.add_argument("--markdown", type=Path, help="write the results table (Markdown) here")
    parser.add_argument("--queue-cost", action="store_true", help="only the in-process queue cost (no API server)")
    args = parser.parse_args()
    if args.queue_cost:
        for cost in queue_cost([int(x) for x in args.live.split(",")]):
            print(json.dumps(cost), flush=True)
        return

    from kubernetes import config

    results: list[dict[str, Any]] = []
    phases = set(args.phases.split(","))
    with EnvTest() as env:
        env.kubectl("apply", "-f", str(REPO / "crds"))
        workdir = Path(env.tmpdir) / "bench"
        workdir.mkdir()
        api = config.new_client_from_config(config_file=str(env.kubeconfig))  # type: ignore[no-untyped-call]
        with fresh_database() as url:
            for n in [int(x) for x in args.live.split(",")]:
                q = queued_phase(env, url, workdir, api, n, args.measure_seconds) if "queued" in phases else {}
                print(json.dumps({"n": n, "phase": "queued", **q}), file=sys.stderr, flush=True)
                a = admitted_phase(env, url, workdir, api, n, args) if "admitted" in phases else {}
                row = {
                    "n": n,
                    "operator_cpu_pct": q.get("operator_cpu_pct"),
                    "rss_mb": max(q.get("rss_mb", 0.0), a.get("idle", {}).get("rss_mb", 0.0)),
                    "ckpt_to_status_p95_s": a.get("ckpt_to_status_p95_s"),
                    "queued": q,
                    "admitted": a,
                }
                results.append(row)
                print(json.dumps(row), flush=True)
        api.close()
    if args.markdown and "queued" in phases and "admitted" in phases:
        args.markdown.write_text(markdown_rows(results), encoding="utf-8")


if __name__ == "__main__":
    main()
