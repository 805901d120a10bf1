"""spec.runner and the chart's runner defaults and limits, as tables over the pure Job decisions."""

from __future__ import annotations

from typing import Any

import pytest

from agentensor_api import ManifestError, RunnerSpec, load_manifests
from agentensor_operator import _decisions as d
from agentensor_operator._settings import DatabaseSettings, JobSettings

UID = "0b8f3c2e-1111-4222-8333-944445555666"
REF = d.RunRef(kind="TrainingRun", namespace="team-a", name="router-train", uid=UID, generation=1)


def _job(runner: dict[str, Any] | None = None, jobs: JobSettings | None = None, **kw: Any) -> dict[str, Any]:
    spec = RunnerSpec.model_validate(runner) if runner is not None else None
    return d.runner_job(REF, image=None, jobs=jobs or JobSettings(), database=DatabaseSettings(), runner=spec, **kw)


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def test_runner_pods_are_never_best_effort_by_default() -> None:
    resources = _pod(_job())["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}


def test_every_runner_pod_carries_the_run_name_and_kind() -> None:
    job = _job()
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[d.LABEL_RUN] == "router-train"
        assert labels[d.LABEL_KIND] == "TrainingRun"
        assert labels["app.kubernetes.io/name"] == "agentensor-runner"
        assert labels["app.kubernetes.io/instance"] == "router-train"


def test_a_long_run_name_is_cut_to_a_valid_label_value() -> None:
    ref = d.RunRef(kind="EvaluationRun", namespace="n", name="a" * 62 + ".b" * 40, uid=UID, generation=1)
    job = d.runner_job(ref, image=None, jobs=JobSettings(), database=DatabaseSettings())
    value = job["metadata"]["labels"][d.LABEL_RUN]
    assert len(value) <= 63 and value[-1].isalnum()


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        pytest.param(None, {"requests": {"cpu": "1"}}, {"requests": {"cpu": "1"}}, id="default-only"),
        pytest.param(
            {"requests": {"memory": "8Gi"}},
            {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
            {"requests": {"cpu": "500m", "memory": "8Gi"}},
            id="a-named-resource-replaces-its-default-request-and-limit",
        ),
        pytest.param(
            {"limits": {"nvidia.com/gpu": "1"}},
            {"requests": {"cpu": "500m"}},
            {"requests": {"cpu": "500m"}, "limits": {"nvidia.com/gpu": "1"}},
            id="extended-resource-added",
        ),
    ],
)
def test_effective_resources(spec: dict[str, Any] | None, default: dict[str, Any], expected: dict[str, Any]) -> None:
    from agentensor_api import ResourceRequirements

    got = d.effective_resources(
        ResourceRequirements.model_validate(spec) if spec else None, ResourceRequirements.model_validate(default)
    )
    assert got.to_wire() == expected


@pytest.mark.parametrize(
    ("runner", "jobs", "field", "needle"),
    [
        pytest.param(
            {"resources": {"requests": {"cpu": "8"}}},
            {"max_resources": {"cpu": "4"}},
            "spec.runner.resources.requests.cpu",
            "above the maximum 4",
            id="request-above-max",
        ),
        pytest.param(
            {"resources": {"limits": {"memory": "20Gi"}}},
            {"max_resources": {"memory": "16Gi"}},
            "spec.runner.resources.limits.memory",
            "runner.maxResources.memory",
            id="limit-above-max",
        ),
        pytest.param(
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
            {},
            "spec.runner.resources.requests.cpu",
            "above its limit 1",
            id="request-above-limit",
        ),
        pytest.param(
            {"resources": {"requests": {"memory": "5Gi"}, "limits": {"memory": "1Gi"}}},
            {},
            "spec.runner.resources.requests.memory",
            "above its limit",
            id="request-above-own-limit",
        ),
        pytest.param(
            {"nodeSelector": {"pool": "gpu"}},
            {"node_selector": {"pool": "runners"}},
            "spec.runner.nodeSelector.pool",
            "contradicts",
            id="forced-node-selector",
        ),
    ],
)
def test_check_runner_refuses_naming_the_field(
    runner: dict[str, Any], jobs: dict[str, Any], field: str, needle: str
) -> None:
    with pytest.raises(ManifestError) as e:
        d.check_runner(RunnerSpec.model_validate(runner), JobSettings(**jobs))
    assert e.value.field == field
    assert needle in e.value.reason


def test_check_runner_accepts_within_limits_and_the_same_forced_value() -> None:
    runner = RunnerSpec.model_validate({"resources": {"requests": {"cpu": "4"}}, "nodeSelector": {"pool": "runners"}})
    d.check_runner(runner, JobSettings(max_resources={"cpu": "4"}, node_selector={"pool": "runners"}))
    d.check_runner(None, JobSettings(max_resources={"cpu": "500m", "memory": "4Gi"}))  # the defaults fit


def test_placement_env_and_volumes_reach_the_pod() -> None:
    runner = {
        "nodeSelector": {"pool": "runners"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        "env": [
            {"name": "LOG_FORMAT", "value": "json"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        ],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        "serviceAccountName": "team-runner",
        "priorityClassName": "batch-low",
        "labels": {"team": "a"},
        "annotations": {"example.com/cost-center": "42"},
    }
    jobs = JobSettings(
        node_selector={"zone": "z1"},
        tolerations=[{"key": "runner", "operator": "Exists"}],
        service_account_name="agentensor-runner",
    )
    job = _job(runner, jobs)
    pod = _pod(job)
    assert pod["nodeSelector"] == {"pool": "runners", "zone": "z1"}
    assert [t["key"] for t in pod["tolerations"]] == ["dedicated", "runner"]
    assert pod["serviceAccountName"] == "team-runner"
    assert pod["priorityClassName"] == "batch-low"
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    assert [e["name"] for e in container["env"]][-6:] == [  # the operator's own entries come last and win
        d.DATABASE_URL_ENV,
        "HF_HUB_OFFLINE",
        d.ALLOWLIST_ENV,
        "AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST",
        "AGENTENSOR_MODEL_HOST_ALLOWLIST",
        "AGENTENSOR_MODEL_HOST_STRICT",
    ]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]
    assert [v["name"] for v in pod["volumes"]] == ["run", "tmp", "data"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True  # still the operator's
    meta = job["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "a" and meta["labels"][d.LABEL_RUN] == "router-train"
    assert meta["annotations"] == {"example.com/cost-center": "42"}


def test_chart_defaults_apply_without_spec_runner() -> None:
    jobs = JobSettings(priority_class_name="runners", node_selector={"pool": "runners"})
    pod = _pod(_job(None, jobs))
    assert pod["priorityClassName"] == "runners" and pod["nodeSelector"] == {"pool": "runners"}
    assert "tolerations" not in pod


def test_kueue_queue_name_passes_through_to_the_job_only() -> None:
    job = _job(run_labels={d.KUEUE_QUEUE_LABEL: "team-a-queue", "other": "x"})
    assert job["metadata"]["labels"][d.KUEUE_QUEUE_LABEL] == "team-a-queue"
    assert "other" not in job["metadata"]["labels"]
    assert d.KUEUE_QUEUE_LABEL not in _job()["metadata"]["labels"]


RUN = """
apiVersion: agentensor.dev/v1alpha1
kind: EvaluationRun
metadata: {{name: e}}
spec:
  workflow: {{template: embedding-router}}
  promptConfigRef: {{name: p}}
  dataset: {{inline: [{{input: a, expected: b}}]}}
  evaluators: [{{name: acc, type: exact_match}}]
  runner: {runner}
"""


@pytest.mark.parametrize(
    ("runner", "field", "needle"),
    [
        pytest.param("{tolerations: [{operator: Maybe}]}", "spec.runner.tolerations[0].operator", "", id="operator"),
        pytest.param("{resources: {requests: {cpu: 2x}}}", "spec.runner.resources.requests", "quantity", id="qty"),
        pytest.param("{env: [{name: AGENTENSOR_DATABASE_URL, value: x}]}", "spec.runner.env[0]", "operator", id="env"),
        pytest.param("{volumes: [{name: tmp, emptyDir: {}}]}", "spec.runner.volumes[0]", "operator", id="vol"),
        pytest.param(
            "{volumes: [{name: d, emptyDir: {}}], volumeMounts: [{name: d, mountPath: /etc/agentensor}]}",
            "spec.runner.volumeMounts[0]",
            "overlaps",
            id="mount",
        ),
        pytest.param("{volumeMounts: [{name: nosuch, mountPath: /x}]}", "spec.runner", "not in", id="mount-name"),
        pytest.param("{labels: {agentensor.dev/run: x}}", "spec.runner", "operator's", id="label"),
        pytest.param("{hostPath: /}", "spec.runner.hostPath", "", id="unknown-field"),
        pytest.param("{tolerations: [{value: x}]}", "spec.runner.tolerations[0]", "needs a key", id="equal-no-key"),
    ],
)
def test_bad_runner_specs_are_refused_naming_the_field(runner: str, field: str, needle: str, tmp_path: Any) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(RUN.format(runner=runner))
    with pytest.raises(ManifestError) as e:
        load_manifests([path])
    assert e.value.field.startswith(field), e.value
    assert needle in e.value.reason, e.value
