"""Manifest parsing: valid examples load; bad input names the field and the reason."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.runnables.config import RunnableConfig

import agentensor_api
from agentensor_api import (
    RUNNABLE_CONFIG_KEYS,
    ManifestError,
    PromptConfig,
    TrainingRun,
    load_manifests,
    parse_resource,
    render_crds,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77"


def _training() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLE / "trainingrun.yaml").read_text())
    return doc


def test_examples_load() -> None:
    res = load_manifests(sorted(EXAMPLE.glob("*.yaml")))
    kinds = sorted(r.kind for r in res)
    assert kinds == ["EvaluationRun", "PromptConfig", "TrainingRun"]
    pc = next(r for r in res if isinstance(r, PromptConfig))
    assert len(pc.spec.prompts) == 77
    assert pc.spec.prompts["intent.card_arrival"].text == "card arrival"
    tr = next(r for r in res if isinstance(r, TrainingRun))
    assert tr.spec.holdout_guard.max_regression == 0.02
    assert tr.spec.config.recursion_limit == 10
    assert tr.spec.dataset.split is not None and tr.spec.dataset.split.holdout == 0.2


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is _DELETE:
        del node[leaf]
    elif isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        pytest.param("spec.config.callbacks", [], "spec.config", "callbacks are live Python objects", id="callbacks"),
        pytest.param(
            "spec.config.recursion_limit",
            1000,
            "spec.config.recursion_limit",
            "less than or equal to 250",
            id="recursion-limit",
        ),
        pytest.param(
            "spec.config.max_concurrency",
            65,
            "spec.config.max_concurrency",
            "less than or equal to 64",
            id="max-concurrency",
        ),
        pytest.param("spec.config.run_id", "x", "spec.config", "run_id is set per case", id="run-id"),
        pytest.param("spec.config.foo", 1, "spec.config", "unknown key(s) ['foo']", id="unknown-config-key"),
        pytest.param(
            "spec.evaluators.0.type", "bleu", "spec.evaluators[0].type", "Input should be", id="unknown-evaluator"
        ),
        pytest.param(
            "spec.objective.evaluator",
            "nope",
            "spec",
            "objective.evaluator 'nope' is not one of",
            id="objective-unknown",
        ),
        pytest.param(
            "spec.workflow.template",
            "nope",
            "spec.workflow.template",
            "Input should be 'embedding-router'",
            id="unknown-template",
        ),
        pytest.param(
            "spec.workflow.entrypoint",
            "not a module",
            "spec.workflow.entrypoint",
            "should match pattern",
            id="bad-entrypoint",
        ),
        pytest.param("spec.dataset.limit", -1, "spec.dataset.limit", "greater than or equal to 1", id="negative-limit"),
        pytest.param("spec.dataset.split.train", 0.9, "spec.dataset.split", "must sum to 1", id="split-sum"),
        pytest.param("spec.optimizer.epochs", "three", "spec.optimizer.epochs", "valid integer", id="wrong-type"),
        pytest.param("spec.optimizer.type", "sgd", "spec.optimizer.type", "Input should be", id="unknown-optimizer"),
        pytest.param("spec.parallelism", 0, "spec.parallelism", "greater than or equal to 1", id="parallelism"),
        pytest.param(
            "spec.holdoutGuard.maxRegression",
            -0.1,
            "spec.holdoutGuard.maxRegression",
            "greater than or equal to 0",
            id="guard",
        ),
        pytest.param("spec.promptConfigRef", _DELETE, "spec.promptConfigRef", "Field required", id="missing-ref"),
        pytest.param("spec.datasett", {}, "spec.datasett", "Extra inputs are not permitted", id="typo-field"),
        pytest.param("metadata.name", "Bad_Name", "metadata.name", "should match pattern", id="bad-name"),
    ],
)
def test_bad_manifest_names_field(path: str, value: Any, field: str, reason: str) -> None:
    doc = _training()
    doc["spec"]["workflow"] = {"template": "embedding-router"} if "entrypoint" not in path else {"entrypoint": "x:y"}
    with pytest.raises(ManifestError) as exc:
        parse_resource(_set(doc, path, value), source="t.yaml#0")
    assert exc.value.field == field, str(exc.value)
    assert reason in exc.value.reason
    assert str(exc.value).startswith(f"t.yaml#0: {field}: ")


def test_unknown_kind_is_named() -> None:
    with pytest.raises(ManifestError, match="kind: expected one of"):
        parse_resource({"apiVersion": "agentensor.dev/v1alpha1", "kind": "Trainingrun"})


def test_malformed_yaml_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: agentensor.dev/v1alpha1\nkind: [unclosed\n")
    with pytest.raises(ManifestError, match=r"bad.yaml: <file>: cannot read YAML"):
        load_manifests([bad])


def test_runnable_config_keys_are_langchains() -> None:
    assert set(RunnableConfig.__annotations__) == RUNNABLE_CONFIG_KEYS


def test_non_serialisable_config_value_rejected() -> None:
    doc = _training()
    doc["spec"]["config"]["configurable"] = {"x": float("nan")}
    with pytest.raises(ManifestError, match=r"spec.config.configurable: .*JSON-serialisable"):
        parse_resource(doc)


def test_crds_match_models() -> None:
    """crds/ is generated from the models; regenerate with `agentensor crds -o crds/`."""
    for name, text in render_crds().items():
        path = REPO / "crds" / name
        assert path.exists(), f"missing {path}; run `agentensor crds -o crds/`"
        assert path.read_text() == text, f"{path} drifted from the models; run `agentensor crds -o crds/`"


def test_crds_are_structural() -> None:
    def walk(node: dict[str, Any], where: str) -> None:
        assert "anyOf" not in node and "$ref" not in node and "title" not in node, where
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), where
        for k, v in node.get("properties", {}).items():
            walk(v, f"{where}.{k}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}{{}}")

    for text in render_crds().values():
        crd = yaml.safe_load(text.split("\n", 1)[1])
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"
        walk(version["schema"]["openAPIV3Schema"], crd["spec"]["names"]["kind"])


def test_public_names_pinned() -> None:
    """Everything public is exported on purpose: no stray names, nothing missing."""
    import inspect

    public = {
        n for n in dir(agentensor_api) if not n.startswith("_") and not inspect.ismodule(getattr(agentensor_api, n))
    }
    assert public == set(agentensor_api.__all__)


def test_api_docs_match_models() -> None:
    """docs/api.md documents every field; regenerate with `agentensor docs -o docs/api.md`."""
    from agentensor_api import render_api_docs

    text = render_api_docs()
    assert (REPO / "docs" / "api.md").read_text() == text
    for field in (
        "spec.config.recursion_limit",
        "spec.holdoutGuard.maxRegression",
        "spec.dataset.split.holdout",
        "spec.evaluators[].outputField",
        "status.holdout.best",
        "spec.prompts.<key>.requiresGrad",
    ):
        assert f"`{field}`" in text
