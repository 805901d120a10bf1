"""The product as a user runs it, on a real kubelet: the image built from the Dockerfile, `helm install`
of the chart (the operator runs as a pod under its own ServiceAccount and RBAC), `kubectl apply -f
examples/banking77/`, and the TrainingRun carried to Succeeded by runner Jobs whose pods are
containerd + runc containers on the node (non-root, read-only root filesystem). One runner pod is
force-deleted mid-run; the Job's next pod resumes after the last checkpoint.

The example's TrainingRun (3070 cases, 3 epochs) and EvaluationRun run unchanged. PostgreSQL is
the host's, reached by pods at the node IP through hack/real-node.sh's relay; the test uses a
database of its own. Timings are printed (pytest -s) and recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_store import Store
from tests._wait import wait_for
from tests.cluster.node import REPO, kube_env, run

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CHART = REPO / "charts" / "agentensor-operator"
EXAMPLE = REPO / "examples" / "banking77"
RELEASE, RELEASE_NS, RUNS_NS = "agentensor", "agentensor-system", "banking77"
TRAINING, PROMPT_CONFIG = "banking77-router-train", "banking77-router"
DEPLOYMENT = f"deployment/{RELEASE}-agentensor-operator"
TIMINGS: dict[str, float] = {}


class Kube:
    """kubectl against the node."""

    def __init__(self, node: dict[str, str]) -> None:
        self.env = kube_env(node)
        self.kubeconfig = node["KUBECONFIG"]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> str:
        return run("kubectl", *args, env=self.env, timeout=timeout, check=check, input=input).stdout

    def get(self, *args: str) -> Any:
        return json.loads(self("get", *args, "-o", "json"))


@pytest.fixture(scope="module")
def kube(node: dict[str, str]) -> Kube:
    return Kube(node)


@pytest.fixture(scope="module")
def database(create_pg_database: Any, node: dict[str, str]) -> dict[str, str]:
    """A database of its own: the host URL (for the test) and the pod URL (through the relay)."""
    host_url = create_pg_database()
    pod_url = host_url.replace("@127.0.0.1:", f"@{node['AGENTENSOR_REALNODE_NODE_IP']}:")
    assert pod_url != host_url, host_url
    return {"host": host_url, "pod": pod_url}


@pytest.fixture(scope="module")
def release(kube: Kube, example_image: dict[str, Any], database: dict[str, str]) -> Iterator[Any]:
    import helm_python as helm

    secret = base64.b64encode(database["pod"].encode()).decode()
    for ns in (RELEASE_NS, RUNS_NS):
        kube("create", "namespace", ns)
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "agentensor-db", "namespace": ns},
            "data": {"url": secret},
        }
        kube("apply", "-f", "-", input=json.dumps(doc))
    # No LimitRange: the chart's runner.resources default gives every runner container requests,
    # so on a busy node runners are Burstable, not BestEffort with cpu.shares=2 (_assert_runner_pod).
    repository, _, tag = example_image["ref"].rpartition(":")
    values = {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}, "watchNamespaces": [RUNS_NS]}
    with helm.Config(kubeconfig_path=kube.kubeconfig, namespace=RELEASE_NS) as config:
        started = time.monotonic()
        config.install(CHART, RELEASE, values, wait="watcher", timeout=600)
        TIMINGS["helm install --wait"] = time.monotonic() - started
        yield config
        config.uninstall(RELEASE, ignore_not_found=True)
        wait_for(lambda: not kube.get("pods", "-n", RELEASE_NS)["items"], 120, "the operator pod to go", interval=0.5)


def _ended_pods_but(kube: Kube, killed: str) -> list[dict[str, Any]] | None:
    """The TrainingRun's runner pods other than ``killed``, once every one of them has ended; else None."""
    pods = [p for p in _runner_pods(kube, TRAINING) if p["metadata"]["name"] != killed]
    return pods if pods and all(p["status"].get("phase") in ("Succeeded", "Failed") for p in pods) else None


def _runner_pods(kube: Kube, run_name: str) -> list[dict[str, Any]]:
    """The run's runner pods, by the labels every runner pod carries (what `kubectl logs -l` uses)."""
    selector = f"agentensor.dev/run={run_name},agentensor.dev/kind=TrainingRun"
    pods: list[dict[str, Any]] = kube.get("pods", "-n", RUNS_NS, "-l", selector)["items"]
    return pods


def test_operator_pod_runs_non_root_with_a_read_only_root(kube: Kube, release: Any) -> None:
    kube("rollout", "status", DEPLOYMENT, "-n", RELEASE_NS, "--timeout=300s", timeout=320)
    assert kube("exec", DEPLOYMENT, "-n", RELEASE_NS, "--", "id", "-u").strip() == "10001"
    touched = run("kubectl", "exec", DEPLOYMENT, "-n", RELEASE_NS, "--", "touch", "/app/x", env=kube.env, check=False)
    assert touched.returncode != 0 and "Read-only file system" in touched.stderr, touched
    pod = kube.get("pods", "-n", RELEASE_NS, "-l", "app.kubernetes.io/component=operator")["items"][0]
    assert pod["spec"]["serviceAccountName"] == f"{RELEASE}-agentensor-operator"
    assert pod["spec"]["nodeName"] == "localhost"
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_banking77_to_succeeded_with_a_pod_killed_mid_run(kube: Kube, release: Any, database: dict[str, str]) -> None:
    applied = time.monotonic()
    kube("apply", "-n", RUNS_NS, "-f", str(EXAMPLE))
    first = wait_for(lambda: _running(_runner_pods(kube, TRAINING)), 300, "the first runner pod Running", interval=0.5)
    TIMINGS["kubectl apply -> first runner pod Running"] = time.monotonic() - applied
    name = first["metadata"]["name"]
    _assert_runner_pod(kube, first)

    # Kill it mid-run, after a checkpoint of a finished epoch and before the last epoch's.
    uid = kube.get("trainingrun", TRAINING, "-n", RUNS_NS)["metadata"]["uid"]
    store = Store(database["host"])
    try:
        epochs = 3
        done_epochs = wait_for(lambda: _epochs_if_ge1(store, uid), 1200, "a checkpoint of epoch >= 1", interval=0.3)
        assert max(done_epochs) < epochs, f"the run finished its epochs before the kill: {done_epochs}"
        kube("delete", "pod", name, "-n", RUNS_NS, "--grace-period=0", "--force", "--wait=false")
        killed_at = max(done_epochs)
        second = wait_for(
            lambda: _running([p for p in _runner_pods(kube, TRAINING) if p["metadata"]["name"] != name]),
            300,
            "the Job's next pod Running",
            interval=0.5,
        )
        # read while the next pod runs: at Succeeded the Running condition turns False and drops it
        resumed = wait_for(lambda: _resumed(kube), 600, "the Resumed condition", interval=0.5)
        kube(
            "wait",
            "--for=condition=Succeeded",
            f"trainingrun/{TRAINING}",
            "-n",
            RUNS_NS,
            "--timeout=1800s",
            timeout=1900,
        )
        TIMINGS["kubectl apply -> TrainingRun Succeeded"] = time.monotonic() - applied
        checkpoints = store.list_checkpoints(run_id=uid)
    finally:
        store.close()
    # resumed, not restarted: every epoch checkpointed exactly once, including those before the kill
    assert sorted(c.epoch for c in checkpoints) == list(range(epochs + 1)), [c.epoch for c in checkpoints]
    assert killed_at >= 1
    # the next pod continued after the checkpoint the killed one had reached (or one it wrote while
    # being killed: kubelet still gives it about 2 s)
    assert resumed.startswith("resumed after checkpoint epoch "), resumed
    assert killed_at <= int(resumed.rsplit(" ", 1)[1]) < epochs, resumed
    # The Job's pods after the kill: a retry may first find the killed runner's lease still held
    # (it expires within AGENTENSOR_RUN_LEASE_SECONDS) and exit; the last one finishes the run.
    # the runner records Succeeded in the database before its process exits: wait for the pods to end
    after = wait_for(lambda: _ended_pods_but(kube, name), 300, "the runner pods after the kill to exit", interval=0.5)
    assert second["metadata"]["name"] in {p["metadata"]["name"] for p in after}
    finished = [p for p in after if p["status"].get("phase") == "Succeeded"]
    assert len(finished) == 1, [(p["metadata"]["name"], p["status"].get("phase")) for p in after]
    logs = kube("logs", finished[0]["metadata"]["name"], "-n", RUNS_NS)
    # what docs/operator.md tells users: every runner pod's log, by the run's name
    by_label = kube("logs", "-n", RUNS_NS, "-l", f"agentensor.dev/run={TRAINING}", "--tail=-1")
    assert summary_line(logs) in by_label
    summary = json.loads(summary_line(logs))
    assert summary["phase"] == "Succeeded" and summary["runId"] == uid, summary
    status = kube.get("trainingrun", TRAINING, "-n", RUNS_NS)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["holdout"]["best"] > status["holdout"]["baseline"], status["holdout"]
    print(f"\ncluster timings (s): {json.dumps({k: round(v, 1) for k, v in TIMINGS.items()})}")


def test_promptconfig_versions_active_configmap_and_metrics(kube: Kube, release: Any) -> None:
    kube("wait", "--for=condition=Succeeded", f"trainingrun/{TRAINING}", "-n", RUNS_NS, "--timeout=60s")
    pc = wait_for(
        lambda: (
            (s := kube.get("promptconfig", PROMPT_CONFIG, "-n", RUNS_NS).get("status", {})).get("latestVersion", 0) > 1
            and s
        ),
        120,
        "PromptConfig versions from the run",
        interval=0.5,
    )
    assert pc["versions"] and pc["bestVersion"] >= 1, pc
    cm = kube.get("configmap", f"{PROMPT_CONFIG}-active", "-n", RUNS_NS)
    prompts = json.loads(cm["data"]["prompts.json"])
    assert prompts["intent.card_arrival"].startswith("card arrival"), prompts["intent.card_arrival"]
    assert cm["data"]["version"] == str(pc["activeVersion"])
    metrics = kube(
        "get", "--raw",
        f"/api/v1/namespaces/{RELEASE_NS}/services/{RELEASE}-agentensor-operator-metrics:http-metrics/proxy/metrics",
    )  # fmt: skip
    best = [line for line in metrics.splitlines() if line.startswith("agentensor_run_best_score{")]
    assert any(f'name="{TRAINING}"' in line and f'namespace="{RUNS_NS}"' in line for line in best), best
    kube("wait", "--for=condition=Succeeded", "evaluationrun/banking77-router-eval", "-n", RUNS_NS, "--timeout=600s")


def test_agentensor_report_renders_the_cluster_run_from_the_database(
    kube: Kube, release: Any, database: dict[str, str], tmp_path: Path
) -> None:
    """Issue 14's friction point 2: a cluster run's report, from PostgreSQL alone, by NAMESPACE/NAME."""
    kube("wait", "--for=condition=Succeeded", f"trainingrun/{TRAINING}", "-n", RUNS_NS, "--timeout=60s")
    status = kube.get("trainingrun", TRAINING, "-n", RUNS_NS)["status"]
    out = tmp_path / "report"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = run(
        sys.executable, "-m", "agentensor_cli", "report", f"{RUNS_NS}/{TRAINING}", "--db", database["host"], "-o", out,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in ("runId", "phase", "bestScore", "baselineScore", "bestVersion"):
        assert summary[key] == status[key], (key, summary[key], status[key])
    assert summary["holdout"]["best"] == status["holdout"]["best"]
    assert summary["holdout"]["baseline"] == status["holdout"]["baseline"]
    html = (out / "report.html").read_text()
    assert 'id="per-class"' in html and 'id="failures-only"' in html


def _running(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    for pod in pods:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        running = pod.get("status", {}).get("phase") == "Running" and statuses and "running" in statuses[0]["state"]
        if running and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def _epochs_if_ge1(store: Store, uid: str) -> list[int] | None:
    epochs = [c.epoch for c in store.list_checkpoints(run_id=uid)]
    return epochs if epochs and max(epochs) >= 1 else None


def _resumed(kube: Kube) -> str:
    for cond in kube.get("trainingrun", TRAINING, "-n", RUNS_NS).get("status", {}).get("conditions") or []:
        if cond.get("reason") == "Resumed":
            return str(cond.get("message", ""))
    return ""


def summary_line(logs: str) -> str:
    """The runner's one-line JSON summary: the last line of its log."""
    return logs.strip().splitlines()[-1]


def _assert_runner_pod(kube: Kube, pod: dict[str, Any]) -> None:
    """A real container on the node: containerd ID, non-root, read-only root, its own pod IP."""
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == "localhost"
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    assert pod["status"]["podIP"].startswith("10.88.")
    assert kube("exec", name, "-n", RUNS_NS, "--", "id", "-u").strip() == "10001"
    touched = run("kubectl", "exec", name, "-n", RUNS_NS, "--", "touch", "/app/x", env=kube.env, check=False)
    assert touched.returncode != 0 and "Read-only file system" in touched.stderr, touched
    # the embedding model is found offline in the image, with caches under the writable /tmp
    envs = kube("exec", name, "-n", RUNS_NS, "--", "env")
    assert "HF_HUB_OFFLINE=1" in envs and "XDG_CACHE_HOME=/tmp/.cache" in envs
    # requests from the chart's runner.resources default, with no LimitRange in the namespace
    assert pod["status"]["qosClass"] == "Burstable", pod["status"].get("qosClass")
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert not kube.get("limitranges", "-n", RUNS_NS)["items"]
