"""The generated CRDs on a real API server: examples accepted, bad manifests rejected by field.

Kubernetes 1.20 has no CEL rules, so only OpenAPI constraints are checked here; constraints the
schema cannot express (callbacks in spec.config, split fractions summing to 1) are enforced by
the runner and operator, and tested in tests/api and tests/cli.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.envtest import KubectlError

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77"


def _doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return doc


def _apply(env: Any, doc: dict[str, Any]) -> str:
    # --validate=false: the rejection must come from the API server's schema, not from kubectl
    return str(env.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(doc)).stdout)


def test_examples_are_accepted_with_printer_columns(k8s_with_crds: Any) -> None:
    env = k8s_with_crds
    for name in ("promptconfig.yaml", "trainingrun.yaml", "evaluationrun.yaml"):
        _apply(env, _doc(name))
    got = env.kubectl("get", "trainingruns", "-o", "json").stdout
    item = json.loads(got)["items"][0]
    assert item["spec"]["holdoutGuard"]["maxRegression"] == 0.02
    assert item["spec"]["config"]["recursion_limit"] == 10, "RunnableConfig keys stay verbatim"
    table = env.kubectl("get", "tr").stdout
    assert table.split()[:8] == ["NAME", "PHASE", "EPOCH", "PROGRESS", "BASELINE", "BEST", "VERSION", "AGE"]
    pcs = env.kubectl("get", "pcfg", "-o", "json").stdout  # "pc" is PriorityClass
    assert len(json.loads(pcs)["items"][0]["spec"]["prompts"]) == 77


def _mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = "bad-" + path.replace(".", "-").lower()[:40].strip("-")
    node = doc
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        pytest.param("spec.parallelism", "many", "spec.parallelism", id="wrong-type"),
        pytest.param("spec.parallelism", 0, "spec.parallelism", id="below-minimum"),
        pytest.param("spec.dataset.limit", -5, "spec.dataset.limit", id="negative-limit"),
        pytest.param(
            "spec.evaluators.0.type", "bleu", 'spec.evaluators.type: Unsupported value: "bleu"', id="unknown-evaluator"
        ),
        pytest.param("spec.workflow.template", "nope", "spec.workflow.template", id="unknown-template"),
        pytest.param("spec.workflow.entrypoint", "not a module", "spec.workflow.entrypoint", id="bad-entrypoint"),
        pytest.param("spec.optimizer.epochs", 0, "spec.optimizer.epochs", id="zero-epochs"),
        pytest.param("spec.config.recursion_limit", 1000, "spec.config.recursion_limit", id="recursion-limit"),
        pytest.param("spec.config.max_concurrency", 65, "spec.config.max_concurrency", id="max-concurrency"),
        pytest.param("spec.holdoutGuard.maxRegression", -0.1, "spec.holdoutGuard.maxRegression", id="guard"),
        pytest.param("spec.promptConfigRef", None, "spec.promptConfigRef", id="missing-ref"),
        pytest.param("spec.evaluators", [], "spec.evaluators", id="no-evaluators"),
    ],
)
def test_bad_trainingrun_rejected_naming_the_field(k8s_with_crds: Any, path: str, value: Any, needle: str) -> None:
    with pytest.raises(KubectlError) as exc:
        _apply(k8s_with_crds, _mutate(_doc("trainingrun.yaml"), path, value))
    message = str(exc.value)
    assert message.count('The TrainingRun "bad-') == 1 and "is invalid" in message, message
    assert needle in message, message


def test_bad_promptconfig_rejected(k8s_with_crds: Any) -> None:
    doc = _doc("promptconfig.yaml")
    doc["metadata"]["name"] = "bad-pc"
    doc["spec"]["prompts"]["intent.card_arrival"] = {"text": 42}
    doc["spec"]["activeVersion"] = 0
    with pytest.raises(KubectlError) as exc:
        _apply(k8s_with_crds, doc)
    message = str(exc.value)
    assert "spec.activeVersion" in message and "spec.prompts.intent.card_arrival.text" in message, message
