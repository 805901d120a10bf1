"""The runner keys the versions it registers and reads by the run's namespace (issue 20, item 4)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import EvaluationRun, ManifestError, PromptConfig, RunStatus, TrainingRun, parse_resource
from agentensor_runner import execute

from ._synthetic import make_rows, manifests

WF = "synthetic-router"


def _in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    return doc


def _run(store: Any, pc: dict[str, Any], tr: dict[str, Any], run_id: str) -> RunStatus:
    run, config = parse_resource(tr), parse_resource(pc)
    assert isinstance(run, TrainingRun | EvaluationRun) and isinstance(config, PromptConfig)
    return asyncio.run(execute(run, config, store, base_dir=Path("."), run_id=run_id))


@pytest.mark.one_backend
def test_two_namespaces_train_the_same_workflow_key_apart(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=1)
    a = _run(store, _in_namespace(pc, "team-a"), _in_namespace(tr, "team-a"), "run-a")
    assert a.phase == "Succeeded"
    a_versions = store.list_versions(WF, namespace="team-a")
    assert len(a_versions) >= 2  # the baseline and a trained one

    # team b: the same key, its own sequence from 1, and A's trained version is not there to start from
    b_pc, b_tr = _in_namespace(pc, "team-b"), _in_namespace(tr, "team-b")
    b_tr["spec"]["promptConfigRef"]["version"] = a_versions[-1].version
    with pytest.raises(ManifestError) as refused:
        _run(store, b_pc, b_tr, "run-b-steal")
    assert refused.value.field == "spec.promptConfigRef.version"
    assert f"workflow {WF!r} in namespace 'team-b' has no stored version {a_versions[-1].version}" in str(refused.value)

    b = _run(store, b_pc, _in_namespace(tr, "team-b"), "run-b")
    assert b.phase == "Succeeded"
    b_versions = store.list_versions(WF, namespace="team-b")
    assert [v.version for v in b_versions] == list(range(1, len(b_versions) + 1))
    assert {v.id for v in b_versions}.isdisjoint(v.id for v in a_versions)
    assert {c.namespace for c in store.list_checkpoints(run_id="run-b")} == {"team-b"}
    assert store.list_versions(WF) == []  # nothing in "default"
