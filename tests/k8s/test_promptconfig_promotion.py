"""Promotion a reviewer can read, replayed on a real API server with the operator (issue 14, item 3).

The user's day: ``agentensor promote`` writes the version's text into the manifest, the file is
applied with kubectl, the operator serves the stored version; a hand-edited text, a pointer whose
text belongs to another version, and a version that does not exist each leave ``Ready=False``
(visible in the READY column of ``kubectl get promptconfigs``) and the last good ConfigMap live.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agentensor_cli._app import app
from agentensor_store import Store
from tests.k8s.operator_harness import (
    Cluster,
    OperatorProcess,
    condition,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS = "pc-promote"
WORKFLOW = "promote-router"


def _active(cluster: Cluster) -> dict[str, str]:
    cm = cluster.get("configmap", "router-active")
    return dict((cm or {}).get("data") or {})


def _ready_column(cluster: Cluster) -> str:
    """The READY cell of ``kubectl get promptconfigs`` for ``router``."""
    lines = cluster.env.kubectl("get", "promptconfigs", "-n", NS).stdout.splitlines()
    header = lines[0].split()
    row = next(line.split() for line in lines[1:] if line.split()[0] == "router")
    return row[header.index("READY")]


def _ready(cluster: Cluster, status: str, reason: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (
            (c := condition(cluster.get("promptconfig", "router"), "Ready"))
            and c["status"] == status
            and c["reason"] == reason
            and c
        ),
        60,
        f"Ready={status} {reason}",
    )
    return found


def _promote(path: Path, version: int, db: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["promote", "router", "--version", str(version), "-f", str(path), "--db", db])
    return result.exit_code, result.output


def _apply_file(cluster: Cluster, path: Path) -> None:
    cluster.env.kubectl("apply", "-n", NS, "-f", str(path))


def test_promotion_edit_refusals_and_ready_column(cluster: Cluster, operator: OperatorProcess, tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    manifest = synthetic_promptconfig("router", WORKFLOW)
    manifest["metadata"]["namespace"] = NS
    path.write_text("# the router, promoted by pull request\n" + yaml.safe_dump(manifest, sort_keys=False))
    _apply_file(cluster, path)
    _ready(cluster, "True", "Materialized")
    assert _active(cluster)["version"] == "1" and _ready_column(cluster) == "True"

    with Store(cluster.db_url) as store:
        inline = store.get_version(WORKFLOW, 1, namespace=NS)
        assert inline is not None
        trained = store.register_version(
            WORKFLOW, {**inline.prompts, "intent.card_arrival": "Where is my card?\nIt has not arrived."}, {"k": 3},
            namespace=NS, source="checkpoint",
        )  # fmt: skip
    assert trained.version == 2

    # 1. promote writes the text; applied, version 2 goes live
    code, output = _promote(path, 2, cluster.db_url)
    assert code == 0, output
    assert "Where is my card?" in path.read_text() and trained.checksum in path.read_text()
    _apply_file(cluster, path)
    wait_for(lambda: _active(cluster).get("version") == "2", 60, "ConfigMap at version 2")
    assert _active(cluster)["checksum"] == trained.checksum
    _ready(cluster, "True", "Materialized")
    assert _ready_column(cluster) == "True"

    # 2. the promoted text edited by hand: refused, version 2 stays live
    path.write_text(path.read_text().replace("It has not arrived.", "It has not arrived. Refund me."))
    _apply_file(cluster, path)
    refused = _ready(cluster, "False", "ChecksumMismatch")
    assert refused["message"].startswith("spec.active.checksum: ") and "was edited" in refused["message"]
    assert _ready_column(cluster) == "False"
    assert _active(cluster)["version"] == "2", "the last good version stays live"

    # 3. activeVersion changed without the text: the snapshot is version 1's, the pointer 2's
    code, output = _promote(path, 1, cluster.db_url)
    assert code == 0, output
    path.write_text(path.read_text().replace("activeVersion: 1", "activeVersion: 2"))
    _apply_file(cluster, path)

    def mismatched() -> bool:
        ready = condition(cluster.get("promptconfig", "router"), "Ready") or {}
        return "is not the checksum of stored version 2" in ready.get("message", "")

    wait_for(mismatched, 60, "ChecksumMismatch against the stored version")
    assert _ready_column(cluster) == "False" and _active(cluster)["version"] == "2"

    # 4. a version that does not exist: promote refuses it; applied by hand, Ready=False VersionNotFound
    before = path.read_text()
    code, output = _promote(path, 99, cluster.db_url)
    assert code == 2 and "no stored version 99" in output, output
    assert path.read_text() == before
    cluster.env.kubectl(
        "patch", "promptconfig", "router", "-n", NS, "--type=merge", "-p",
        json.dumps({"spec": {"activeVersion": 99, "active": None}}),
    )  # fmt: skip
    missing = _ready(cluster, "False", "VersionNotFound")
    assert "spec.activeVersion" in missing["message"]
    assert _ready_column(cluster) == "False" and _active(cluster)["version"] == "2"

    # rollback through promote makes it healthy again
    code, output = _promote(path, 1, cluster.db_url)
    assert code == 0, output
    _apply_file(cluster, path)
    wait_for(lambda: _active(cluster).get("version") == "1", 60, "rollback to version 1")
    _ready(cluster, "True", "Materialized")
    assert _ready_column(cluster) == "True"
