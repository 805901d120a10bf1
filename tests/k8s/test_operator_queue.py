"""The operator-wide cap on a real API server: never more active runner Jobs than
``maxConcurrentJobs`` (sampled continuously), queued runs all finish, and a SIGKILLed operator
restarts without duplicating Jobs or exceeding the cap. Also the run lifecycle around it: a
crashed runner retried from its checkpoint, and a run stopped by its annotation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

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

SELECTOR = "app.kubernetes.io/managed-by=agentensor-operator,app.kubernetes.io/component=runner"


def _finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


class JobSampler:
    """Counts unfinished runner Jobs (and live runner processes) every ~50 ms in a thread."""

    def __init__(self, cluster: Cluster) -> None:
        from kubernetes import client, config

        self.cluster = cluster
        self._api = config.new_client_from_config(config_file=str(cluster.env.kubeconfig))  # type: ignore[no-untyped-call]
        self._batch = client.BatchV1Api(self._api)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-sampler", daemon=True)
        self.max_jobs = 0
        self.max_processes = 0
        self.samples = 0
        self.errors: list[str] = []

    def __enter__(self) -> JobSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._api.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                response = self._batch.list_namespaced_job(
                    self.cluster.namespace, label_selector=SELECTOR, _preload_content=False
                )
                jobs = json.loads(cast(Any, response).data)["items"]
                active = sum(1 for j in jobs if not _finished(j) and (j["spec"].get("parallelism") != 0))
                assert self.cluster.agent is not None
                alive = sum(1 for r in self.cluster.agent.runs() if r.process is not None and r.process.poll() is None)
                self.max_jobs = max(self.max_jobs, active)
                self.max_processes = max(self.max_processes, alive)
                self.samples += 1
            except Exception as e:  # reported by the test, not lost in the thread
                self.errors.append(repr(e))
            self._stop.wait(0.05)


@pytest.fixture
def cluster(k8s_with_crds: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    namespace = "op-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    with fresh_database() as url, Cluster(k8s_with_crds, namespace, url, tmp_path) as c:
        yield c


def _all_finished(cluster: Cluster, names: list[str]) -> bool:
    runs = {r["metadata"]["name"]: r for r in cluster.items("trainingruns")}
    return all(phase(runs.get(n)) in ("Succeeded", "Failed") for n in names)


def _jobs_per_run(cluster: Cluster) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in cluster.items("jobs", SELECTOR):
        uid = job["metadata"]["labels"]["agentensor.dev/run-uid"]
        counts[uid] = counts.get(uid, 0) + 1
    return counts


def test_twenty_runs_never_exceed_a_cap_of_three(cluster: Cluster) -> None:
    cap, n = 3, 20
    names = [f"q{i:02d}" for i in range(n)]
    op = cluster.operator(max_concurrent_jobs=cap).start()
    try:
        with JobSampler(cluster) as sampler:
            runs = [synthetic(name, "queue-pc", n_per_intent=4, epochs=1) for name in names]
            cluster.apply(synthetic_promptconfig("queue-pc", "queue-router"), *runs)
            queued = wait_for(
                lambda: sum(phase(r) == "Queued" for r in cluster.items("trainingruns")), 30, "some runs Queued"
            )
            assert queued >= 1
            wait_for(lambda: _all_finished(cluster, names), 240, "all 20 runs to finish", interval=1.0)
        assert not sampler.errors, sampler.errors[:3]
    finally:
        op.stop()
    by_name = {r["metadata"]["name"]: r for r in cluster.items("trainingruns")}
    assert {phase(by_name[n]) for n in names} == {"Succeeded"}
    assert sampler.samples > 100
    assert sampler.max_jobs <= cap, f"{sampler.max_jobs} active runner Jobs at once (cap {cap})"
    assert sampler.max_processes <= cap
    assert sampler.max_jobs >= 2, "the cap was never used: the test proves nothing"
    per_run = _jobs_per_run(cluster)
    assert sorted(per_run.values()) == [1] * n, "exactly one Job per run"
    reasons = {e["reason"] for e in cluster.items("events")}
    assert "Waiting" in reasons  # the Queued milestone was posted


def test_operator_killed_mid_run_restarts_without_duplicates(cluster: Cluster) -> None:
    cap = 2
    names = [f"r{i}" for i in range(4)]
    op = cluster.operator(max_concurrent_jobs=cap).start()
    with JobSampler(cluster) as sampler:
        cluster.apply(
            synthetic_promptconfig("restart-pc", "restart-router"),
            *[synthetic(name, "restart-pc", n_per_intent=10, epochs=2) for name in names],
        )
        wait_for(lambda: len(cluster.items("jobs", SELECTOR)) >= cap, 30, f"{cap} runner Jobs")
        op.kill()  # SIGKILL: no cleanup, no status patch in flight survives
        killed_at = time.monotonic()
        running = [r for r in cluster.items("trainingruns") if phase(r) == "Running"]
        assert running, "the kill happened mid-run"
        time.sleep(2.0)  # runners keep going (or finish) while no operator watches
        restarted = cluster.operator(max_concurrent_jobs=cap).start()
        try:
            wait_for(lambda: _all_finished(cluster, names), 120, "all runs to finish after the restart", interval=0.5)
        finally:
            restarted.stop()
    assert not sampler.errors, sampler.errors[:3]
    assert time.monotonic() - killed_at > 2.0
    runs = {r["metadata"]["name"]: r for r in cluster.items("trainingruns")}
    assert {phase(runs[n]) for n in names} == {"Succeeded"}
    per_run = _jobs_per_run(cluster)
    assert sorted(per_run.values()) == [1] * len(names), f"duplicate Jobs: {per_run}"
    assert cluster.agent is not None
    pods_per_job: dict[str, int] = {}
    for r in cluster.agent.runs():
        job = r.name.rsplit("-", 1)[0]
        pods_per_job[job] = pods_per_job.get(job, 0) + 1
    assert set(pods_per_job.values()) == {1}, f"a runner ran twice: {pods_per_job}"
    assert sampler.max_jobs <= cap, f"{sampler.max_jobs} active runner Jobs across the restart (cap {cap})"


def _slow_run(name: str, pc: str) -> dict[str, Any]:
    """A run long enough to be killed mid-way, with a few unusable rows (recorded as error rows)."""
    run = synthetic(name, pc, n_per_intent=40, epochs=6)
    rows = run["spec"]["dataset"]["inline"]
    for row in rows[:8]:
        del row["text"]  # no input field: the runner records an error row for the case
    run["spec"]["optimizer"]["batchSize"] = 8
    return run


def _kill_runner_after_first_checkpoint(cluster: Cluster, name: str) -> None:
    import os
    import signal

    wait_for(
        lambda: ((cluster.get("trainingrun", name) or {}).get("status") or {}).get("checkpoints"),
        60,
        f"{name}'s first checkpoint in status",
    )
    assert cluster.agent is not None
    alive = [r for r in cluster.agent.runs() if r.process is not None and r.process.poll() is None]
    assert len(alive) == 1, "the runner is still running when killed"
    os.killpg(alive[0].process.pid, signal.SIGKILL)  # type: ignore[union-attr]


def test_crashed_runner_without_retries_fails_naming_epoch_and_case(cluster: Cluster) -> None:
    op = cluster.operator(extra_env={"AGENTENSOR_JOB_BACKOFF_LIMIT": "0"}).start()
    try:
        cluster.apply(synthetic_promptconfig("crash-pc", "crash-router"), _slow_run("crash", "crash-pc"))
        _kill_runner_after_first_checkpoint(cluster, "crash")
        run = wait_for(lambda: (r := cluster.get("trainingrun", "crash")) and phase(r) == "Failed" and r, 60, "Failed")
    finally:
        op.stop()
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    message = run["status"]["message"]
    assert "runner Job" in message and "BackoffLimitExceeded" in message
    assert "during epoch" in message and "last error: case c" in message, message
    print(message)  # shown with -s; e.g. in docs/operator.md


def test_crashed_runner_is_retried_and_resumes_from_its_checkpoint(cluster: Cluster) -> None:
    op = cluster.operator().start()  # backoffLimit 3: the Job controller starts a second Pod
    try:
        cluster.apply(synthetic_promptconfig("resume-pc", "resume-router"), _slow_run("resume", "resume-pc"))
        _kill_runner_after_first_checkpoint(cluster, "resume")
        run = wait_for(
            lambda: (r := cluster.get("trainingrun", "resume")) and phase(r) in ("Succeeded", "Failed") and r,
            120,
            "the retried runner to finish",
            interval=0.5,
        )
    finally:
        op.stop()
    assert phase(run) == "Succeeded", run["status"].get("message")
    assert cluster.agent is not None
    pods = cluster.agent.runs()
    # the runner records its verdict before its process exits: wait for the exit, not the phase
    assert all(p.finished.wait(30) for p in pods), [p.name for p in pods if not p.finished.is_set()]
    assert [p.exit_code for p in pods] == [137, 0], "one killed Pod (SIGKILL), one retry that succeeded"
    from agentensor_store import Store

    store = Store(cluster.db_url)
    try:
        epochs = [c.epoch for c in store.list_checkpoints(run_id=run["metadata"]["uid"])]
    finally:
        store.close()
    assert epochs == list(range(7)), f"one checkpoint per epoch, none repeated: {epochs}"
    assert len(_jobs_per_run(cluster)) == 1


def test_the_stop_annotation_ends_a_running_run_gracefully(cluster: Cluster) -> None:
    """``kubectl annotate trainingrun NAME agentensor.dev/stop=true``: the operator records the
    request in PostgreSQL, the runner stops at its next candidate boundary, and the run still ends
    Succeeded with its holdout comparison (reason StopRequested, one Event)."""
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
