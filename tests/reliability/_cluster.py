"""Shared pieces of the operator fault tests: a namespace fixture and a recorder that samples the
API server continuously (active Jobs, live runner processes, every Job and status change)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any, cast

from tests.k8s.operator_harness import Cluster, phase

SELECTOR = "app.kubernetes.io/managed-by=agentensor-operator,app.kubernetes.io/component=runner"
RUN_UID_LABEL = "agentensor.dev/run-uid"


def _items(response: object) -> list[dict[str, Any]]:
    """``items`` of a list call made with ``_preload_content=False`` (a raw urllib3 response)."""
    return list(json.loads(cast(Any, response).data)["items"])


def finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


class Recorder:
    """Lists runner Jobs and TrainingRuns every ``interval_seconds`` in a thread.

    Keeps: the maximum of active (unfinished, not stopped) Jobs and of live runner processes; every
    Job ever seen (uid -> run uid); the times of Job creations, Job completions and run status
    changes (all operator actions but the completions, which are the runners')."""

    def __init__(self, cluster: Cluster, interval_seconds: float = 0.1) -> None:
        from kubernetes import client, config

        self.cluster = cluster
        self.interval_seconds = interval_seconds
        self._api = config.new_client_from_config(config_file=str(cluster.env.kubeconfig))  # type: ignore[no-untyped-call]
        self._batch = client.BatchV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self.max_jobs = 0
        self.max_processes = 0
        self.samples = 0
        self.errors: list[str] = []
        self.jobs: dict[str, str] = {}  # Job uid -> run uid
        self.finished_jobs: set[str] = set()
        self.changes: list[tuple[float, str]] = []  # (monotonic time, "job" | "status")
        self.completions: list[float] = []
        self.statuses: dict[str, str] = {}  # run name -> JSON of .status
        self.phases: dict[str, str | None] = {}

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._api.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as e:  # e.g. the API server is restarting: reported, not fatal
                self.errors.append(repr(e))
            self._stop.wait(self.interval_seconds)

    def _tick(self) -> None:
        ns = self.cluster.namespace
        jobs = _items(self._batch.list_namespaced_job(ns, label_selector=SELECTOR, _preload_content=False))
        runs = _items(
            self._custom.list_namespaced_custom_object(
                "agentensor.dev", "v1alpha1", ns, "trainingruns", _preload_content=False
            )
        )
        now = time.monotonic()
        assert self.cluster.agent is not None
        alive = sum(1 for r in self.cluster.agent.runs() if r.process is not None and r.process.poll() is None)
        with self._lock:
            for job in jobs:
                uid = job["metadata"]["uid"]
                if uid not in self.jobs:
                    self.jobs[uid] = job["metadata"]["labels"][RUN_UID_LABEL]
                    self.changes.append((now, "job"))
                if finished(job) and uid not in self.finished_jobs:
                    self.finished_jobs.add(uid)
                    self.completions.append(now)
            for run in runs:
                name = run["metadata"]["name"]
                status = json.dumps(run.get("status"), sort_keys=True)
                if self.statuses.get(name, "null") != status:
                    self.changes.append((now, "status"))
                self.statuses[name] = status
                self.phases[name] = phase(run)
            active = sum(1 for j in jobs if not finished(j) and j["spec"].get("parallelism") != 0)
            self.max_jobs = max(self.max_jobs, active)
            self.max_processes = max(self.max_processes, alive)
            self.samples += 1

    def first_change_after(self, t: float) -> float | None:
        with self._lock:
            return next((when for when, _ in self.changes if when > t), None)

    def waiting(self) -> int:
        """Runs not yet given a Job (Pending or Queued), as last sampled."""
        with self._lock:
            return sum(1 for p in self.phases.values() if p in (None, "Pending", "Queued"))

    def all_done(self, names: list[str]) -> bool:
        with self._lock:
            return all(self.phases.get(n) in ("Succeeded", "Failed") for n in names)

    def jobs_per_run(self) -> Counter[str]:
        with self._lock:
            return Counter(self.jobs.values())


def pods_per_job(cluster: Cluster) -> Counter[str]:
    """Runner processes the NodeAgent started, per Job (a Pod is named ``<job>-<suffix>``)."""
    assert cluster.agent is not None
    return Counter(r.name.rsplit("-", 1)[0] for r in cluster.agent.runs())
