"""`agentensor checkpoints list/export -n NS`: a namespace's versions only, like kubectl's -n."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentensor_store import Store
from tests.cli.test_cli import agentensor

WF = "shared-router"


@pytest.fixture
def two_teams(db_url: str) -> str:
    """team-a: versions 1, 2 (2 the secret, best 0.9); team-b: version 1 (0.4). Same workflow key."""
    with Store(db_url) as store:
        store.upgrade()
        for run_id, namespace in (("ra", "team-a"), ("rb", "team-b")):
            store.create_run(run_id=run_id, kind="TrainingRun", namespace=namespace, name="t", workflow=WF, spec={})
        a1 = store.register_version(WF, {"system": "team a, first"}, {}, namespace="team-a")
        a2 = store.register_version(WF, {"system": "team a, secret"}, {}, namespace="team-a")
        b1 = store.register_version(WF, {"system": "team b, own"}, {}, namespace="team-b")
        store.add_checkpoint("ra", epoch=0, version=a1, score=0.5, scores={})
        store.add_checkpoint("ra", epoch=1, version=a2, score=0.9, scores={})
        store.add_checkpoint("rb", epoch=0, version=b1, score=0.4, scores={})
    return db_url


@pytest.mark.one_backend
def test_list_shows_the_namespaces_checkpoints_only(two_teams: str) -> None:
    a = agentensor("checkpoints", "list", WF, "-n", "team-a", "--db", two_teams)
    b = agentensor("checkpoints", "list", WF, "--namespace", "team-b", "--db", two_teams)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert "0.9000" in a.stdout and "0.4000" not in a.stdout
    assert "0.4000" in b.stdout and "0.9000" not in b.stdout and "0.5000" not in b.stdout
    default = agentensor("checkpoints", "list", WF, "--db", two_teams)
    assert default.returncode == 1
    assert f"no checkpoints for workflow {WF!r} in namespace 'default'" in default.stderr


@pytest.mark.one_backend
def test_export_reads_and_writes_the_given_namespace(two_teams: str, tmp_path: Path) -> None:
    out = tmp_path / "b.yaml"
    best = agentensor("checkpoints", "export", WF, "-n", "team-b", "--best", "-o", str(out), "--db", two_teams)
    assert best.returncode == 0, best.stderr
    doc = yaml.safe_load(out.read_text())
    assert doc["metadata"]["namespace"] == "team-b"
    assert doc["spec"]["prompts"] == {"system": {"text": "team b, own"}}  # not team a's better 0.9

    stolen = tmp_path / "stolen.yaml"
    other = agentensor(
        "checkpoints", "export", WF, "-n", "team-b", "--version", "2", "-o", str(stolen), "--db", two_teams
    )
    assert other.returncode == 1 and "has no version 2 in namespace 'team-b'" in other.stderr
    assert not stolen.exists()
    own = agentensor(
        "checkpoints", "export", WF, "-n", "team-a", "--version", "2", "-o", str(stolen), "--db", two_teams
    )
    assert own.returncode == 0, own.stderr
    assert yaml.safe_load(stolen.read_text())["spec"]["prompts"] == {"system": {"text": "team a, secret"}}
