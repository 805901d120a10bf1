"""Chart values for runner placement reach the operator's settings and, through them, every runner Job."""

from __future__ import annotations

import os
from typing import Any

import helm_python as helm
import pytest

from agentensor_api import ManifestError
from agentensor_operator import OperatorSettings
from agentensor_operator import _decisions as d
from tests.helm.helm_support import CHART, operator_container, plain_env, render

PLACEMENT: dict[str, Any] = {
    "runner": {
        "resources": {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"memory": 3221225472}},
        "maxResources": {"cpu": 4, "memory": "16Gi"},
        "nodeSelector": {"agentensor.dev/pool": "runners"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "runners", "effect": "NoSchedule"}],
        "priorityClassName": "batch-low",
    }
}


def _settings(values: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    env = plain_env(operator_container(render(values)))
    with monkeypatch.context() as m:
        for name in [k for k in os.environ if k.startswith("AGENTENSOR_")]:
            m.delenv(name)
        for name, value in env.items():
            m.setenv(name, value)
        return OperatorSettings()


def _pod(settings: OperatorSettings) -> dict[str, Any]:
    ref = d.RunRef(kind="TrainingRun", namespace="team-a", name="r", uid="u", generation=1)
    job = d.runner_job(ref, image=None, jobs=settings.jobs, database=settings.database)
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def test_default_values_give_runners_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart default alone keeps runner Pods out of BestEffort (no LimitRange needed)."""
    settings = _settings({}, monkeypatch)
    resources = _pod(settings)["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert resources["limits"] == {"memory": "4Gi"}
    env = plain_env(operator_container(render()))
    assert not {"AGENTENSOR_JOB_MAX_RESOURCES", "AGENTENSOR_JOB_NODE_SELECTOR", "AGENTENSOR_JOB_TOLERATIONS"} & set(env)


def test_placement_values_reach_every_runner_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(PLACEMENT, monkeypatch)
    assert settings.jobs.max_resources == {"cpu": "4", "memory": "16Gi"}
    pod = _pod(settings)
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "768Mi"},
        "limits": {"memory": "3221225472"},
    }
    assert pod["nodeSelector"] == {"agentensor.dev/pool": "runners"}
    assert pod["tolerations"] == PLACEMENT["runner"]["tolerations"]
    assert pod["priorityClassName"] == "batch-low"


@pytest.mark.parametrize(
    ("values", "where"),
    [
        pytest.param({"runner": {"tolerations": [{"operator": "Maybe"}]}}, "/runner/tolerations/0/operator", id="op"),
        pytest.param({"runner": {"maxResources": {"cpu": "lots"}}}, "/runner/maxResources/cpu", id="quantity"),
        pytest.param({"runner": {"resources": {"request": {}}}}, "/runner/resources", id="typo"),
        pytest.param({"runner": {"priorityClassName": "Low!"}}, "/runner/priorityClassName", id="priority-class"),
    ],
)
def test_schema_rejects_bad_placement_values(values: dict[str, Any], where: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as raised:
        chart.validate_schema(values)
    assert where in str(raised.value)


def _run(runner: dict[str, Any], models: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workflow": {"template": "embedding-router", "options": {"embedder": "hashing"}},
        "promptConfigRef": {"name": "router"},
        "dataset": {"inline": [{"input": "hi", "expected": "a"}]},
        "evaluators": [{"name": "accuracy", "type": "exact_match"}],
        "runner": runner,
    }
    if models is not None:
        spec["models"] = models
    return {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "EvaluationRun",
        "metadata": {"name": "r", "namespace": "team-a", "uid": "u"},
        "spec": spec,
    }


KEY = {"judge": {"model": "openai:m", "apiKeySecretRef": {"name": "llm-keys", "key": "openai"}}}
DSN_KEY = {"judge": {"model": "openai:m", "apiKeySecretRef": {"name": "pg-dsn", "key": "url"}}}
MOUNT = {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": "/srv/x"}]}
GRANTED = {
    "runner": {"allowedSecrets": ["llm-keys/openai"], "allowedMountPaths": ["/srv"]},
    "database": {"existingSecret": "pg-dsn"},
}


@pytest.mark.parametrize(
    ("values", "body", "refused"),
    [
        pytest.param({}, _run({}, KEY), "allowed Secrets", id="default-no-secret"),
        pytest.param(GRANTED, _run({}, KEY), None, id="granted-secret-key"),
        pytest.param({}, _run(MOUNT), "allowed mount paths", id="default-mount-folders"),
        pytest.param(GRANTED, _run(MOUNT), None, id="granted-mount-folder"),
        pytest.param(GRANTED, _run({}, DSN_KEY), "database URL", id="dsn-secret-refused"),
    ],
)
def test_the_grants_in_values_are_what_the_operator_allows(
    values: dict[str, Any], body: dict[str, Any], refused: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chart value -> operator env -> OperatorSettings -> check_grants."""
    settings = _settings(values, monkeypatch)
    facts = d.run_facts(body)
    if refused is None:
        d.check_grants(facts.grants, facts.runner, facts.image, settings.jobs, settings.database)
    else:
        with pytest.raises(ManifestError, match=refused):
            d.check_grants(facts.grants, facts.runner, facts.image, settings.jobs, settings.database)
