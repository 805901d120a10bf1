"""The product end to end, as a user runs it: build the image (with the example extra), load it into
a kind cluster, `helm install` the chart with the bundled PostgreSQL, apply examples/banking77, and
wait for the TrainingRun to succeed with a better holdout accuracy than its baseline.

Needs a Docker engine (and, the first time, network access for kind, its node image, the Python base
image and postgres:16). Where `docker info` fails, as on the development machines, every test here
is skipped with that reason. The same path without Docker is covered on a real API server by
tests/helm/test_helm_install.py (operator as a local process, runner Pods via a node agent).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "agentensor-operator"
EXAMPLE = REPO / "examples" / "banking77"
IMAGE_REPOSITORY, IMAGE_TAG = "agentensor", "e2e-example"
POSTGRES_IMAGE = "postgres:16"
RELEASE, RELEASE_NS, RUNS_NS = "agentensor", "agentensor-system", "banking77"


def _no_docker_engine() -> str | None:
    """Why there is no usable Docker engine, or None if `docker info` answers."""
    if shutil.which("docker") is None:
        return "no `docker` command: the kind e2e test needs a Docker engine"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s: no Docker engine for kind"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine runs here (`docker info`: {last}); kind cannot start a cluster"
    return None


_REASON = _no_docker_engine()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.k8s,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]


def _run(*argv: str, timeout: float = 600, input: str | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """The image with the example extra (CPU torch, all-MiniLM-L6-v2, the Banking77 subset)."""
    tag = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    _run("docker", "build", "-t", tag, "--build-arg", "WITH_EXAMPLE=true", str(REPO), timeout=3600)
    _run("docker", "pull", POSTGRES_IMAGE, timeout=900)
    return tag


@pytest.fixture(scope="module")
def cluster(kind_cluster: Any, image: str) -> Iterator[Any]:
    """pytest-kind's cluster with both images loaded (nothing is pulled from a registry by the nodes)."""
    kind_cluster.load_docker_image(image)
    kind_cluster.load_docker_image(POSTGRES_IMAGE)
    yield kind_cluster


@pytest.fixture(scope="module")
def release(cluster: Any) -> Iterator[Any]:
    import helm_python as helm

    for ns in (RELEASE_NS, RUNS_NS):
        cluster.kubectl("create", "namespace", ns)
    values = {
        "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "Never"},
        "watchNamespaces": [RUNS_NS],
        "database": {"bundled": {"enabled": True, "image": {"pullPolicy": "Never"}}},
    }
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig_path), namespace=RELEASE_NS) as config:
        config.install(CHART, RELEASE, values, wait="watcher", timeout=600)
        yield config
        config.uninstall(RELEASE, ignore_not_found=True)


def _get(cluster: Any, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json")))


def test_operator_pod_runs_as_non_root_with_a_read_only_root(cluster: Any, release: Any) -> None:
    deployment = f"deployment/{RELEASE}-agentensor-operator"
    cluster.kubectl("rollout", "status", deployment, "-n", RELEASE_NS, "--timeout=300s")
    assert cluster.kubectl("exec", deployment, "-n", RELEASE_NS, "--", "id", "-u").strip() == "10001"
    with pytest.raises(subprocess.CalledProcessError) as touched:
        cluster.kubectl("exec", deployment, "-n", RELEASE_NS, "--", "touch", "/app/x", stderr=subprocess.STDOUT)
    assert "Read-only file system" in str(touched.value.output)


def test_banking77_trains_to_succeeded_in_the_cluster(cluster: Any, release: Any) -> None:
    docs = [yaml.safe_load((EXAMPLE / name).read_text()) for name in ("promptconfig.yaml", "trainingrun.yaml")]
    cluster.kubectl("apply", "-n", RUNS_NS, "-f", "-", input=yaml.safe_dump_all(docs))
    name = docs[1]["metadata"]["name"]
    cluster.kubectl("wait", "--for=condition=Succeeded", f"trainingrun/{name}", "-n", RUNS_NS, "--timeout=1800s")
    run = _get(cluster, "trainingrun", name, "-n", RUNS_NS)
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["holdout"]["best"] > status["holdout"]["baseline"], status["holdout"]
    assert status["bestScore"] >= status["baselineScore"]
    # the operator's metrics, through the API server's service proxy
    metrics = cluster.kubectl(
        "get", "--raw",
        f"/api/v1/namespaces/{RELEASE_NS}/services/{RELEASE}-agentensor-operator-metrics:http-metrics/proxy/metrics",
    )  # fmt: skip
    best = [line for line in metrics.splitlines() if line.startswith("agentensor_run_best_score{")]
    assert any(f'name="{name}"' in line and f'namespace="{RUNS_NS}"' in line for line in best), best
