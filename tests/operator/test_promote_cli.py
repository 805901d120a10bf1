"""``agentensor promote``: edits a manifest in a Git checkout, keeping comments and order."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from agentensor_cli._app import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77" / "promptconfig.yaml"

MULTI = """\
---
# the router's prompts
apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata:
  name: router   # live config
spec:
  workflow: router
  activeVersion: 2   # promoted 2026-01-01
  prompts:
    intent.a: {text: "alpha"}
  parameters:
    tags:
      - x
      - y
---
apiVersion: agentensor.dev/v1alpha1
kind: TrainingRun
metadata: {name: other}
spec: {}
"""


def promote(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["promote", *args])
    return result.exit_code, result.output


def test_adds_active_version_after_workflow_and_changes_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "promptconfig.yaml"
    shutil.copy(EXAMPLE, path)
    before = path.read_text().splitlines()
    code, output = promote("banking77-router", "--version", "3", "--file", str(path))
    assert code == 0, output
    after = path.read_text().splitlines()
    added = [line for line in after if line not in before]
    assert added == ["  activeVersion: 3"]
    assert [line for line in after if line != "  activeVersion: 3"] == before, "comments and order kept"
    assert after.index("  activeVersion: 3") == after.index("  workflow: banking77-router") + 1
    assert yaml.safe_load(path.read_text())["spec"]["activeVersion"] == 3


def test_rollback_edits_in_place_in_a_multi_document_file(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    code, output = promote("router", "--version", "1", "--file", str(path))
    assert code == 0, output
    assert "was version 2" in output
    assert path.read_text() == MULTI.replace("activeVersion: 2 ", "activeVersion: 1 ")


def test_unknown_name_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    code, output = promote("nope", "--version", "1", "--file", str(path))
    assert code == 2 and "no PromptConfig named 'nope'" in output
    assert path.read_text() == MULTI
