"""Smoke tests of the test harness itself: EnvTest's API server and the NodeAgent's Pods."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests._wait import wait_for
from tests.k8s.envtest import EnvTest, KubectlError
from tests.k8s.node_agent import NodeAgent

pytestmark = pytest.mark.k8s

JOBS_NAMESPACE = "smoke-jobs"

WIDGET_CRD = textwrap.dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.test
    spec:
      group: example.test
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    replicas: {type: integer, minimum: 0}
                    label: {type: string}
    """
)


SLEEPER_POD = textwrap.dedent(
    f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: sleeper, namespace: {JOBS_NAMESPACE}}}
    spec:
      restartPolicy: Never
      volumes: [{{name: cfg, configMap: {{name: settings}}}}]
      containers:
        - name: main
          image: python:3
          command:
            - python3
            - -c
            - |
              import os, pathlib, time
              root = pathlib.Path(os.environ["AGENTENSOR_ROOT"])
              print(os.environ["MODE"], os.environ["KEY"], os.environ["POD"])
              print((root / "etc/agentensor/settings.yaml").read_text(), flush=True)
              time.sleep(600)
          env:
            - {{name: MODE, valueFrom: {{configMapKeyRef: {{name: settings, key: mode}}}}}}
            - {{name: KEY, valueFrom: {{secretKeyRef: {{name: creds, key: key}}}}}}
            - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
          volumeMounts: [{{name: cfg, mountPath: /etc/agentensor}}]
    """
)


def widget(name: str, replicas: object) -> str:
    return json.dumps(
        {
            "apiVersion": "example.test/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "label": "x"},
        }
    )


def job(name: str, command: list[str]) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "python:3", "command": command}],
                    }
                },
            },
        }
    )


def get_json(env: EnvTest, *args: str) -> Any:
    return json.loads(env.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def env() -> Iterator[EnvTest]:
    with EnvTest() as started:
        yield started


@pytest.fixture(scope="module")
def agent(env: EnvTest) -> Iterator[NodeAgent]:
    env.kubectl("create", "namespace", JOBS_NAMESPACE)
    with NodeAgent(env.kubeconfig, namespace=JOBS_NAMESPACE) as running:
        yield running
    assert running.errors == []


def test_kubectl_talks_to_the_server_and_creates_a_namespace(env: EnvTest) -> None:
    version = json.loads(env.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.20.2"

    env.kubectl("create", "namespace", "smoke-a")

    assert get_json(env, "namespace", "smoke-a")["status"]["phase"] == "Active"


def test_crd_schema_rejects_a_wrongly_typed_field(env: EnvTest) -> None:
    env.kubectl("create", "-f", "-", input=WIDGET_CRD)
    env.kubectl("wait", "--for=condition=Established", "crd/widgets.example.test", "--timeout=30s")
    # Discovery of a new CRD lags a moment behind Established.
    wait_for(
        lambda: env.kubectl("get", "widgets", check=False).returncode == 0,
        30,
        "widgets in discovery",
    )

    env.kubectl("create", "-f", "-", input=widget("good", 2))
    assert get_json(env, "widget", "good")["spec"]["replicas"] == 2

    # --validate=false: the API server, not kubectl, must be the one refusing it.
    with pytest.raises(KubectlError) as refused:
        env.kubectl("create", "--validate=false", "-f", "-", input=widget("bad", "three"))
    assert "spec.replicas" in refused.value.stderr
    assert "integer" in refused.value.stderr


def job_status(env: EnvTest, name: str) -> dict[str, Any]:
    status: dict[str, Any] = get_json(env, "job", name, "-n", JOBS_NAMESPACE).get("status", {})
    return status


def job_pods(env: EnvTest, name: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = get_json(env, "pods", "-n", JOBS_NAMESPACE, "-l", f"job-name={name}")["items"]
    return pods


def test_job_completes_through_the_node_agent(env: EnvTest, agent: NodeAgent) -> None:
    env.kubectl("create", "-f", "-", input=job("hello", ["python3", "-c", "print('hi')"]))

    wait_for(lambda: job_status(env, "hello").get("succeeded") == 1, 60, "Job hello to succeed")
    pods = job_pods(env, "hello")
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert agent.read_log(pods[0]["metadata"]["name"], JOBS_NAMESPACE) == "hi\n"


def test_failing_job_leaves_a_failed_pod_with_its_exit_code(env: EnvTest, agent: NodeAgent) -> None:
    env.kubectl("create", "-f", "-", input=job("exit3", ["python3", "-c", "raise SystemExit(3)"]))

    wait_for(lambda: job_status(env, "exit3").get("failed") == 1, 60, "Job exit3 to fail")
    [pod] = job_pods(env, "exit3")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_pod_gets_env_and_mounted_config_and_dies_with_its_pod(env: EnvTest, agent: NodeAgent) -> None:
    env.kubectl(
        "create", "configmap", "settings", "-n", JOBS_NAMESPACE,
        "--from-literal=mode=fast", "--from-literal=settings.yaml=a: 1",
    )  # fmt: skip
    env.kubectl("create", "secret", "generic", "creds", "-n", JOBS_NAMESPACE, "--from-literal=key=s3")
    env.kubectl("create", "-f", "-", input=SLEEPER_POD)

    wait_for(
        lambda: "a: 1" in agent.read_log("sleeper", JOBS_NAMESPACE), 30, "the pod's output", retry_on=(KeyError,)
    )  # KeyError: the agent has not taken the Pod yet (seen at load 20)
    assert agent.read_log("sleeper", JOBS_NAMESPACE) == "fast s3 sleeper\na: 1\n"
    assert get_json(env, "pod", "sleeper", "-n", JOBS_NAMESPACE)["status"]["phase"] == "Running"

    env.kubectl("delete", "pod", "sleeper", "-n", JOBS_NAMESPACE, "--wait=false")
    assert agent.wait_for_exit("sleeper", JOBS_NAMESPACE, timeout_seconds=30) == 137  # SIGKILL
