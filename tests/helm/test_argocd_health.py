"""Argo CD health checks (deploy/argocd/health/*.lua) run on Lua 5.1, the dialect of Argo CD's
gopher-lua, over statuses shaped by the API models; and the GitOps examples validate against the
chart's schema. (tests/helm/test_helm_install.py also runs them on live objects the operator wrote.)

Run this module from the repository root to regenerate deploy/argocd/argocd-cm.yaml from the .lua
files: ``python -m tests.helm.test_argocd_health``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.helm_support import ARGOCD_HEALTH, CHART, REPO, argocd_health

ARGOCD_CM = REPO / "deploy" / "argocd" / "argocd-cm.yaml"
KEYS = {"TrainingRun": "run.lua", "EvaluationRun": "run.lua", "PromptConfig": "promptconfig.lua"}
T = "2026-01-01T00:00:00Z"


def _cond(type_: str, status: str, reason: str, message: str = "", generation: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": T}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def _run(kind: str, generation: int, status: dict[str, Any] | None, suspend: bool = False) -> dict[str, Any]:
    from agentensor_api import RunStatus

    if status is not None:
        RunStatus.model_validate(status)  # the shapes here are ones the API allows
    obj: dict[str, Any] = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "r", "namespace": "ns", "generation": generation},
        "spec": {"suspend": suspend},
    }
    if status is not None:
        obj["status"] = status
    return obj


ACCEPTED = _cond("Accepted", "True", "Accepted", "spec generation 1 is valid", 1)
RUNS = [
    pytest.param(None, 1, "Progressing", "Waiting for the agentensor operator", id="not-seen-yet"),
    pytest.param(
        {"phase": "Pending", "conditions": [_cond("Accepted", "False", "PromptConfigNotFound", "no PromptConfig 'x'")]},
        1, "Progressing", "PromptConfigNotFound", id="promptconfig-not-yet-there",
    ),
    pytest.param(
        {"phase": "Failed", "conditions": [
            _cond("Accepted", "False", "InvalidSpec", "spec.dataset: set path or inline"),
            _cond("Failed", "True", "InvalidSpec", "spec.dataset: set path or inline"),
        ]},
        1, "Degraded", "InvalidSpec: spec.dataset", id="invalid-spec",
    ),
    pytest.param(
        {"phase": "Queued", "observedGeneration": 1, "conditions": [
            ACCEPTED, _cond("Queued", "True", "Waiting", "waiting for a runner slot (maxConcurrentJobs=4)"),
        ]},
        1, "Progressing", "Waiting: waiting for a runner slot", id="queued",
    ),
    pytest.param(
        {"phase": "Queued", "observedGeneration": 2, "conditions": [
            _cond("Accepted", "True", "Accepted", "spec generation 2 is valid", 2),
            _cond("Queued", "True", "Suspended", "spec.suspend is true: no runner Job until it is false"),
        ]},
        2, "Suspended", "spec.suspend is true", id="suspended",
    ),
    pytest.param(
        {"phase": "Running", "observedGeneration": 1, "conditions": [
            ACCEPTED, _cond("Queued", "False", "Admitted", "runner Job r created"),
            _cond("Running", "True", "JobCreated", "runner Job r created; waiting for the runner"),
        ]},
        1, "Progressing", "JobCreated", id="running",
    ),
    pytest.param(
        {"phase": "Running", "observedGeneration": 1, "conditions": [
            ACCEPTED, _cond("Running", "True", "JobCreated", "runner Job r created"),
        ]},
        2, "Progressing", "observe generation 2", id="new-generation-not-seen",
    ),
    pytest.param(
        {"phase": "Running", "observedGeneration": 1, "conditions": [
            _cond("Accepted", "True", "SpecChangeRejected", "changes to spec.dataset are ignored", 2),
            _cond("Running", "True", "JobCreated", "runner Job r created"),
        ]},
        2, "Degraded", "SpecChangeRejected", id="spec-change-rejected",
    ),
    pytest.param(
        {"phase": "Succeeded", "observedGeneration": 1, "bestScore": 0.9, "conditions": [
            ACCEPTED, _cond("Running", "False", "RunnerSucceeded", ""),
            _cond("Succeeded", "True", "RunnerSucceeded", "best version 3 scores 0.9"),
        ]},
        1, "Healthy", "RunnerSucceeded: best version 3", id="succeeded",
    ),
    pytest.param(
        {"phase": "Failed", "observedGeneration": 1, "message": "case c1 raised", "conditions": [
            ACCEPTED, _cond("Succeeded", "False", "BackoffLimitExceeded", "case c1 raised"),
            _cond("Failed", "True", "BackoffLimitExceeded", "case c1 raised"),
        ]},
        1, "Degraded", "BackoffLimitExceeded: case c1 raised", id="failed",
    ),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["TrainingRun", "EvaluationRun"])
@pytest.mark.parametrize(("status", "generation", "health", "message"), RUNS)
def test_run_health(kind: str, status: dict[str, Any] | None, generation: int, health: str, message: str) -> None:
    got = argocd_health(_run(kind, generation, status))
    assert got["status"] == health
    assert message in got["message"]


def _pc(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    from agentensor_api import PromptConfigStatus

    obj: dict[str, Any] = {"kind": "PromptConfig", "metadata": {"name": "p", "generation": generation}, "spec": {}}
    if status is not None:
        PromptConfigStatus.model_validate(status)
        obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("generation", "status", "health", "message"),
    [
        pytest.param(1, None, "Progressing", "Waiting", id="not-seen-yet"),
        pytest.param(
            1,
            {"observedGeneration": 1, "activeVersion": 1, "conditions": [_cond("Ready", "True", "Materialized", "v1")]},
            "Healthy", "Materialized", id="materialized",
        ),
        pytest.param(
            2,
            {"observedGeneration": 1, "activeVersion": 1, "conditions": [_cond("Ready", "True", "Materialized", "v1")]},
            "Progressing", "observe generation 2", id="new-generation-not-seen",
        ),
        pytest.param(
            2,
            {"observedGeneration": 1, "activeVersion": 1,
             "conditions": [_cond("Ready", "False", "VersionNotFound", "spec.activeVersion: no stored version 9")]},
            "Degraded", "VersionNotFound: spec.activeVersion", id="unknown-version",
        ),
    ],
)  # fmt: skip
def test_promptconfig_health(generation: int, status: dict[str, Any] | None, health: str, message: str) -> None:
    got = argocd_health(_pc(generation, status))
    assert got["status"] == health
    assert message in got["message"]


def render_argocd_cm() -> str:
    """deploy/argocd/argocd-cm.yaml from the .lua files (its header comment kept)."""
    head = ARGOCD_CM.read_text().split("\ndata:\n")[0]
    lines = [head + "\ndata:\n"]
    for kind, script in KEYS.items():
        text = (ARGOCD_HEALTH / script).read_text()
        lines.append(f"  resource.customizations.health.agentensor.dev_{kind}: |\n")
        lines.extend(("    " + line) if line.strip() else "\n" for line in text.splitlines(True))
    return "".join(lines)


def test_argocd_cm_embeds_the_scripts() -> None:
    assert ARGOCD_CM.read_text() == render_argocd_cm(), "run `python -m tests.helm.test_argocd_health`"
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    for kind, script in KEYS.items():
        assert data[f"resource.customizations.health.agentensor.dev_{kind}"] == (ARGOCD_HEALTH / script).read_text()


def _yaml_blocks(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    docs: list[dict[str, Any]] = []
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        docs.extend(d for d in yaml.safe_load_all(block) if isinstance(d, dict))
    return docs


def test_gitops_examples_use_valid_chart_values() -> None:
    """Every chart values block in deploy/argocd/application.yaml and docs/gitops.md passes the schema."""
    import helm_python as helm

    docs = list(yaml.safe_load_all((REPO / "deploy/argocd/application.yaml").read_text()))
    docs += _yaml_blocks(REPO / "docs" / "gitops.md")
    checked = 0
    with helm.Chart.load(CHART) as chart:
        for doc in docs:
            if doc.get("kind") == "Application" and "helm" in doc["spec"]["source"]:
                chart.validate_schema(doc["spec"]["source"]["helm"]["valuesObject"])
                checked += 1
            elif doc.get("kind") == "HelmRelease":
                chart.validate_schema(doc["spec"]["values"])
                checked += 1
    assert checked >= 3  # the Application here, its copy in the docs, and Flux's HelmRelease


if __name__ == "__main__":
    ARGOCD_CM.write_text(render_argocd_cm())
