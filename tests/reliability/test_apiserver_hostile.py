"""Hostile manifests on the real API server (Kubernetes 1.20, the CRDs of crds/), and the CLI's parity.

What the API server refuses, ``parse_resource`` (the CLI's and the operator's parser) refuses too,
naming the same field: strict types (``"8"``, ``true``), integers beyond 64 bits, NUL in a
prompt, and ``spec.config.configurable`` nested deeper than the schema's explicit levels, which
is refused by the schema (Kubernetes 1.20 has no CEL: explicit levels, see docs/security.md).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentensor_api import ManifestError, parse_resource
from tests.k8s.envtest import KubectlError

pytestmark = pytest.mark.k8s

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "banking77"


def _doc(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLE / name).read_text()))


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


def _with(doc: dict[str, Any], name: str, path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = name
    node: Any = doc
    *parents, leaf = path.split("/")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return doc


def _apply(env: Any, doc: dict[str, Any]) -> str:
    return str(env.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(doc)).stdout)


CASES = [
    pytest.param("trainingrun.yaml", "spec/parallelism", "8", "spec.parallelism", id="string-for-int"),
    pytest.param("trainingrun.yaml", "spec/parallelism", True, "spec.parallelism", id="bool-for-int"),
    pytest.param("trainingrun.yaml", "spec/dataset/seed", 2**64, "spec.dataset.seed", id="seed-beyond-int64"),
    # 12 deep: past the schema's 4 levels, short of what makes 1.20 itself slow (docs/security.md: the
    # API server's work before validation grows about 2.4x per level; 22 levels hit its request timeout)
    pytest.param(
        "trainingrun.yaml", "spec/config/configurable", {"a": _nested(11)}, "spec.config.configurable", id="deep-12"
    ),
    pytest.param(
        "trainingrun.yaml",
        "spec/config/configurable",
        {f"k{i}": i for i in range(65)},
        "spec.config.configurable",
        id="wide-65",
    ),
    pytest.param("promptconfig.yaml", "spec/activeVersion", 2**63, "spec.activeVersion", id="version-beyond-int64"),
]


@pytest.mark.parametrize(("example", "path", "value", "field"), CASES)
def test_the_api_server_and_the_cli_refuse_the_same(
    k8s_with_crds: Any, example: str, path: str, value: Any, field: str
) -> None:
    doc = _with(_doc(example), "hostile-" + path.rsplit("/", 1)[-1].lower(), path, value)
    started = time.monotonic()
    with pytest.raises(KubectlError) as refused:
        _apply(k8s_with_crds, doc)
    assert time.monotonic() - started < 20, "refused at once, not after the request timeout"
    assert field in str(refused.value), str(refused.value)
    with pytest.raises(ManifestError) as local:
        parse_resource(doc)
    assert local.value.field.startswith(field), str(local.value)


def test_nul_in_a_prompt_is_refused_by_both(k8s_with_crds: Any) -> None:
    doc = _doc("promptconfig.yaml")
    doc["metadata"]["name"] = "hostile-nul"
    doc["spec"]["prompts"]["intent.card_arrival"]["text"] = "card\x00arrival"
    with pytest.raises(KubectlError) as refused:
        _apply(k8s_with_crds, doc)
    assert "spec.prompts.intent.card_arrival.text" in str(refused.value), str(refused.value)
    with pytest.raises(ManifestError) as local:
        parse_resource(doc)
    assert local.value.field == "spec.prompts.intent.card_arrival.text"
    assert "NUL character" in local.value.reason


def test_configurable_within_bounds_is_accepted_by_both(k8s_with_crds: Any) -> None:
    value = {"a": {"b": {"c": {"d": 1.5}}}, "list": [1, "x", {"y": [True]}], "flag": False}
    doc = _with(_doc("trainingrun.yaml"), "configurable-ok", "spec/config/configurable", value)
    _apply(k8s_with_crds, doc)
    got = json.loads(k8s_with_crds.kubectl("get", "trainingrun", "configurable-ok", "-o", "json").stdout)
    assert got["spec"]["config"]["configurable"] == value
    parse_resource(doc)
