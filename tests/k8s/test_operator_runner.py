"""Issue 14's runner friction points replayed on a real API server with the node agent.

- A config error (``inputField: nosuch``) fails the run at once with the runner's message in
  ``status.conditions``, instead of four retries ending in BackoffLimitExceeded.
- Runner Pods carry the run's name and kind as labels (``kubectl get pods -l agentensor.dev/run=NAME``).
- ``spec.runner`` reaches the Pod (resources, placement, env, volumes); the CRD refuses an unknown
  toleration operator; a request above the chart's ``runner.maxResources`` is InvalidSpec naming it.
- Kueue: the queue-name label passes through to the Job; ``spec.suspend`` set on a running run
  deletes its Job, and unsetting it resumes from the last checkpoint.
- Issue 20's trust boundary: a run naming the database Secret, a Secret the chart does not allow,
  ``PYTHONPATH``, an AppArmor annotation, a ``/x/../tmp`` mount or a mount over the Python
  installation is Accepted=False InvalidSpec naming the field, and gets no ConfigMap or Job; a
  Secret key the chart allows reaches the Job.

One namespace, one database and one operator process serve the module. The node agent runs Pods
as local processes and kills a deleted Pod's process (a kubelet would send SIGTERM first, see
tests/cluster for that path).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentensor_store import Store
from tests.k8s.envtest import KubectlError
from tests.k8s.operator_harness import (
    Cluster,
    OperatorProcess,
    condition,
    phase,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS = "op-runner"
MAX_CPU = "2"
ALLOWED = "llm-keys/token"


@pytest.fixture(scope="module")
def cluster(cluster: Cluster) -> Cluster:
    """The shared cluster with the PromptConfig ``router`` the module's runs train."""
    cluster.apply(synthetic_promptconfig("router", "runner-router"))
    return cluster


@pytest.fixture(scope="module")
def operator_options() -> dict[str, Any]:
    env = {"AGENTENSOR_JOB_MAX_RESOURCES": json.dumps({"cpu": MAX_CPU}), "AGENTENSOR_JOB_ALLOWED_SECRETS": ALLOWED}
    return {"max_concurrent_jobs": 3, "extra_env": env}


def _uid(cluster: Cluster, name: str) -> str:
    run = cluster.get("trainingrun", name)
    assert run is not None
    return str(run["metadata"]["uid"])


def _finished(cluster: Cluster, name: str, timeout: float = 120) -> dict[str, Any]:
    obj: dict[str, Any] = wait_for(
        lambda: (o := cluster.get("trainingrun", name)) is not None and phase(o) in ("Succeeded", "Failed") and o,
        timeout,
        f"trainingrun/{name} to finish",
    )
    return obj


def test_a_config_error_fails_the_run_at_once_with_the_runners_message(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    run = synthetic("nosuch-field", "router")
    run["spec"]["dataset"]["inputField"] = "nosuch"
    cluster.apply(run)
    # what a pipeline waits on: the run's own Failed condition, not the Job's
    cluster.env.kubectl(
        "wait", "--for=condition=Failed", "trainingrun/nosuch-field", "-n", NS, "--timeout=120s", timeout_seconds=130
    )
    done = cluster.get("trainingrun", "nosuch-field")
    failed = condition(done, "Failed")
    assert failed is not None and failed["status"] == "True"
    assert failed["reason"] == "InvalidInput", failed
    assert failed["message"].startswith("spec.dataset.inputField: no row has a field 'nosuch'; columns are ["), failed
    assert done is not None and done["status"]["phase"] == "Failed"
    assert done["status"]["message"] == failed["message"]
    # no retries: the Job is stopped, its Pods are done, and it never reached its backoffLimit
    uid = _uid(cluster, "nosuch-field")
    job = wait_for(
        lambda: (
            (jobs := cluster.items("jobs", f"agentensor.dev/run-uid={uid}"))
            and jobs[0]["spec"].get("parallelism") == 0
            and not jobs[0]["status"].get("active")
            and jobs[0]
        ),
        60,
        "the runner Job stopped with no active Pod",
    )
    # backoffLimit 3: before, 4 Pods failed and the Job ended BackoffLimitExceeded. The runner records
    # its verdict before its process exits, so the Job is often stopped while its one Pod still counts
    # as active, and that Pod is removed uncounted: 0 or 1 failed, never a retry loop.
    assert int(job["status"].get("failed") or 0) < 1 + 3, job["status"]
    assert not any(c.get("reason") == "BackoffLimitExceeded" for c in job["status"].get("conditions") or [])


def test_runner_pods_carry_the_run_name_and_spec_runner(cluster: Cluster, operator: OperatorProcess) -> None:
    run = synthetic("placed", "router")
    run["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}
    run["spec"]["runner"] = {
        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        "env": [{"name": "RUNNER_NOTE", "valueFrom": {"configMapKeyRef": {"name": "runner-note", "key": "note"}}}],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "labels": {"team": "a"},
        "annotations": {"example.com/owner": "team-a"},
    }
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "runner-note"}, "data": {"note": "x"}})
    cluster.apply(run)
    assert phase(_finished(cluster, "placed")) == "Succeeded"
    uid = _uid(cluster, "placed")
    (job,) = cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    # what docs/operator.md tells users to select a run's Pods (and logs) by
    pods = cluster.items("pods", "agentensor.dev/run=placed,agentensor.dev/kind=TrainingRun")
    assert pods, "no runner Pod carries the run's name"
    pod = pods[0]
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "placed"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "team-a"
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "1Gi"},  # memory: the chart default
        "limits": {"cpu": "1", "memory": "4Gi"},
    }
    assert pod["status"]["qosClass"] == "Burstable"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in spec["tolerations"]
    assert {"name": "scratch", "mountPath": "/scratch"} in container["volumeMounts"]
    # no API token, whatever the ServiceAccount says: set on the Pod, which wins over the account
    assert spec["automountServiceAccountToken"] is False
    assert not any(m["mountPath"].startswith("/var/run/secrets") for m in container["volumeMounts"])
    names = [e["name"] for e in container["env"]]
    assert names[0] == "RUNNER_NOTE" and names[-1] == "AGENTENSOR_MODEL_HOST_STRICT"  # the operator's last


def test_a_request_above_the_chart_maximum_is_invalid_spec(cluster: Cluster, operator: OperatorProcess) -> None:
    run = synthetic("too-big", "router")
    run["spec"]["runner"] = {"resources": {"requests": {"cpu": "8"}}}
    cluster.apply(run)
    accepted = wait_for(
        lambda: (c := condition(cluster.get("trainingrun", "too-big"), "Accepted")) and c["status"] == "False" and c,
        60,
        "Accepted=False",
    )
    assert accepted["reason"] == "InvalidSpec"
    assert accepted["message"].startswith("spec.runner.resources.requests.cpu: 8 is above the maximum 2"), accepted
    assert not cluster.items("jobs", f"agentensor.dev/run-uid={_uid(cluster, 'too-big')}")


def test_the_crd_refuses_an_unknown_toleration_operator(cluster: Cluster) -> None:
    run = synthetic("bad-toleration", "router")
    run["spec"]["runner"] = {"tolerations": [{"key": "k", "operator": "Sometimes"}]}
    run["metadata"]["namespace"] = NS
    with pytest.raises(KubectlError) as e:
        cluster.env.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(run))
    # the 1.20 API server names the list without the index
    assert "spec.runner.tolerations.operator: Unsupported value" in str(e.value) and "Sometimes" in str(e.value)


def test_suspend_stops_a_running_run_and_resume_continues_from_its_checkpoint(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.apply(synthetic("long", "router", n_per_intent=12, epochs=400))
    uid = _uid(cluster, "long")
    store = Store(cluster.db_url)
    try:
        wait_for(lambda: any(c.epoch >= 1 for c in store.list_checkpoints(run_id=uid)), 180, "a checkpoint of epoch 1")
        cluster.env.kubectl("patch", "trainingrun", "long", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":true}}')
        queued = wait_for(
            lambda: (c := condition(cluster.get("trainingrun", "long"), "Queued")) and c["reason"] == "Suspended" and c,
            60,
            "Queued=True reason Suspended",
        )
        assert queued["status"] == "True" and queued["message"].startswith("spec.suspend is true"), queued
        wait_for(
            lambda: (
                not cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
                and not cluster.items("pods", "agentensor.dev/run=long")
            ),
            120,
            "the Job and its Pods to go",
        )
        before = max(c.epoch for c in store.list_checkpoints(run_id=uid))
        assert phase(cluster.get("trainingrun", "long")) == "Queued"
        cluster.env.kubectl(
            "patch", "trainingrun", "long", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}'
        )
        # a new Job; its runner resumes after the last checkpoint (a first retry may find the killed
        # runner's lease still held and exit; the Job's next Pod then takes over)
        running = wait_for(
            lambda: (c := condition(cluster.get("trainingrun", "long"), "Running")) and c["reason"] == "Resumed" and c,
            240,
            "Running=True reason Resumed",
        )
        assert running["message"].startswith("resumed after checkpoint epoch "), running
        assert int(running["message"].rsplit(" ", 1)[1]) >= before
        epochs = [c.epoch for c in store.list_checkpoints(run_id=uid)]
        assert len(epochs) == len(set(epochs)), "an epoch was checkpointed twice: the run restarted"
    finally:
        store.close()
        cluster.env.kubectl("delete", "trainingrun", "long", "-n", NS, "--wait=false", check=False)


DSN_REF = {"name": "agentensor-db", "key": "url"}
APPARMOR = "container.apparmor.security.beta.kubernetes.io/runner"


def _secret_env(name: str, key: str) -> dict[str, Any]:
    return {"env": [{"name": "TEAM_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]}


def _mount(path: str) -> dict[str, Any]:
    return {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": path}]}


@pytest.mark.parametrize(
    ("name", "runner", "models", "field", "needle"),
    [
        pytest.param("dsn-env", _secret_env("agentensor-db", "url"), None,
                     "spec.runner.env[0].valueFrom.secretKeyRef.name", "operator's database URL", id="dsn-secret-env"),
        pytest.param("dsn-model", None, {"judge": {"model": "openai:m", "apiKeySecretRef": DSN_REF}},
                     "spec.models.judge.apiKeySecretRef.name", "operator's database URL", id="dsn-secret-model-key"),
        pytest.param("other-secret", _secret_env("other-team", "token"), None,
                     "spec.runner.env[0].valueFrom.secretKeyRef.name",
                     "Secret 'other-team' is not in the operator's allowed Secrets (chart value runner.allowedSecrets)",
                     id="secret-not-allowed"),
        pytest.param("other-key", _secret_env("llm-keys", "admin"), None,
                     "spec.runner.env[0].valueFrom.secretKeyRef.name", "allowed Secrets", id="key-not-allowed"),
        pytest.param("secret-volume", {"volumes": [{"name": "k", "secret": {"secretName": "agentensor-db"}}]}, None,
                     "spec.runner.volumes[0].secret.secretName", "database URL", id="dsn-secret-volume"),
        pytest.param("pythonpath", {"env": [{"name": "PYTHONPATH", "value": "/data"}]}, None,
                     "spec.runner.env[0]", "PYTHONPATH: a run may not set this variable", id="pythonpath"),
        pytest.param("proxy", {"env": [{"name": "https_proxy", "value": "http://evil:3128"}]}, None,
                     "spec.runner.env[0]", "proxy", id="proxy"),
        pytest.param("apparmor", {"annotations": {APPARMOR: "unconfined"}},
                     None, f"spec.runner.annotations.{APPARMOR}",
                     "runner.allowedMetadataKeys", id="apparmor-unconfined"),
        pytest.param("dotdot", _mount("/x/../tmp"), None, "spec.runner.volumeMounts[0].mountPath", "'..' part",
                     id="dotdot-mount"),
        pytest.param("site-packages", _mount("/opt/agentensor/lib/python3.11/site-packages"), None,
                     "spec.runner.volumeMounts[0].mountPath", "allowed mount paths", id="mount-over-python"),
    ],
)  # fmt: skip
def test_a_run_reaching_past_the_admins_grants_is_invalid_spec_with_no_job(
    cluster: Cluster,
    operator: OperatorProcess,
    name: str,
    runner: dict[str, Any] | None,
    models: dict[str, Any] | None,
    field: str,
    needle: str,
) -> None:
    run = synthetic(name, "router")
    if runner is not None:
        run["spec"]["runner"] = runner
    if models is not None:
        run["spec"]["models"] = models
    cluster.apply(run)  # the API server accepts it: the schema cannot express these rules
    accepted = wait_for(
        lambda: (c := condition(cluster.get("trainingrun", name), "Accepted")) and c["status"] == "False" and c,
        60,
        f"trainingrun/{name} Accepted=False",
    )
    assert accepted["reason"] == "InvalidSpec", accepted
    assert accepted["message"].startswith(field), accepted
    assert needle in accepted["message"], accepted
    uid = _uid(cluster, name)
    assert not cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    assert not cluster.items("configmaps", f"agentensor.dev/run-uid={uid}")
    cluster.env.kubectl("delete", "trainingrun", name, "-n", NS, "--wait=false", check=False)


def test_a_secret_key_the_chart_allows_reaches_the_job(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm-keys"}, "stringData": {"token": "t"}}
    )
    run = synthetic("allowed-key", "router")
    run["spec"]["runner"] = _secret_env("llm-keys", "token")
    cluster.apply(run)
    uid = _uid(cluster, "allowed-key")
    (job,) = wait_for(lambda: cluster.items("jobs", f"agentensor.dev/run-uid={uid}"), 60, "the runner Job")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "TEAM_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "token"}}}
    assert phase(_finished(cluster, "allowed-key")) == "Succeeded"
