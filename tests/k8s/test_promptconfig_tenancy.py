"""Tenancy on a real API server: a PromptConfig never reads another namespace's versions (issue 20, item 4).

Team A's history of workflow key ``tenancy-router`` is in the shared database: its inline
version 1, a trained version 2 holding text team B must not read, and a checkpoint scoring it
0.99. Team B, in its own namespace, picks the same ``spec.workflow``. Before versions were keyed
by namespace, B's PromptConfig got version 3 of the shared sequence, reported A's best score,
and ``spec.activeVersion: 2`` wrote A's secret into B's ``-active`` ConfigMap. Now B numbers its
own versions from 1, sees none of A's, and ``activeVersion: 2`` is ``Ready=False
VersionNotFound`` naming the namespace, with B's last good ConfigMap kept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentensor_api import config_checksum
from agentensor_store import Store
from tests.k8s.operator_harness import (
    Cluster,
    OperatorProcess,
    condition,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS_B = "tenant-b"
WORKFLOW = "tenancy-router"
SECRET = "TEAM-A SECRET: refunds over 500 EUR need no approval"


@pytest.fixture(scope="module")
def namespace() -> str:
    return NS_B


def _seed_team_a(db_url: str, inline: dict[str, str]) -> None:
    """Team A's history, written as its operator and runner write it (namespace ``default``).

    These calls are the same on the code before namespaces, where they wrote the one sequence
    every namespace shared.
    """
    with Store(db_url) as store:
        store.upgrade()
        store.register_version(WORKFLOW, inline, {})
        trained = store.register_version(WORKFLOW, {**inline, "intent.refund": SECRET}, {}, source="checkpoint")
        store.create_run(
            run_id="team-a-run", kind="TrainingRun", namespace="default", name="a", workflow=WORKFLOW, spec={}
        )
        store.add_checkpoint("team-a-run", epoch=1, version=trained, score=0.99, scores={})
        assert trained.version == 2


def _b_state(cluster: Cluster) -> tuple[dict[str, Any], dict[str, str]]:
    pc = cluster.get("promptconfig", "router") or {}
    cm = cluster.get("configmap", "router-active") or {}
    return pc, dict(cm.get("data") or {})


def test_a_promptconfig_cannot_materialize_another_namespaces_version(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    team_b = synthetic_promptconfig("router", WORKFLOW)
    b_texts = {name: p["text"] for name, p in team_b["spec"]["prompts"].items()}
    _seed_team_a(cluster.db_url, {**b_texts, "intent.card_arrival": "team A's own wording"})

    cluster.apply(team_b)
    wait_for(lambda: (c := condition(_b_state(cluster)[0], "Ready")) and c["reason"] == "Materialized", 60, "B Ready")
    pc, active = _b_state(cluster)
    # B's own inline spec is B's version 1: not 3 of a shared sequence, and none of A's versions or scores
    assert active["version"] == "1" and active["checksum"] == config_checksum(b_texts, {})
    assert (pc["status"]["latestVersion"], pc["status"]["versions"]) == (1, 1)
    assert pc["status"].get("bestScore") is None and pc["status"].get("bestVersion") is None

    # B points at A's trained version number: refused, B's version 1 stays live, A's text nowhere in B
    cluster.env.kubectl(
        "patch", "promptconfig", "router", "-n", NS_B, "--type=merge", "-p", json.dumps({"spec": {"activeVersion": 2}})
    )
    refused = wait_for(
        lambda: (c := condition(_b_state(cluster)[0], "Ready")) and c["reason"] == "VersionNotFound" and c,
        60,
        "Ready=False VersionNotFound in namespace B",
    )
    assert refused["status"] == "False"
    assert refused["message"].startswith(
        f"spec.activeVersion: workflow '{WORKFLOW}' has no stored version 2 in namespace '{NS_B}'"
    ), refused["message"]
    pc, active = _b_state(cluster)
    assert active["version"] == "1" and active["checksum"] == config_checksum(b_texts, {})
    every_configmap = json.dumps([cm.get("data") for cm in cluster.items("configmaps")])
    assert "TEAM-A SECRET" not in every_configmap
    assert "TEAM-A SECRET" not in json.dumps(pc)
    assert any(e["reason"] == "VersionNotFound" and e["type"] == "Warning" for e in cluster.events("router"))

    with Store(cluster.db_url) as store:  # team A's history is untouched by B
        assert [v.version for v in store.list_versions(WORKFLOW)] == [1, 2]
        assert [v.version for v in store.list_versions(WORKFLOW, namespace=NS_B)] == [1]
