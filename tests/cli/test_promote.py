"""``agentensor promote``: the GitOps edit writes the version's text and checksum, keeps the rest,
and refuses a version the database does not have (SQLite and PostgreSQL, real stores)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agentensor_api import PromptConfig, config_checksum, load_manifests
from agentensor_cli._app import app
from agentensor_operator._decisions._promptconfig import active_snapshot_error
from agentensor_store import Store

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

TRAINED = {
    "intent.a": "alpha: questions about the letter a.\nExamples:\n- what is a?\n- 'a' or \"b\"",
    "intent.b": "beta",
}


def promote(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["promote", *args])
    return result.exit_code, result.output


def _spec(path: Path, name: str) -> dict[str, Any]:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("metadata", {}).get("name") == name)
    spec: dict[str, Any] = doc["spec"]
    return spec


def test_promotion_writes_the_text_and_checksum_and_keeps_every_other_line(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "promptconfig.yaml"
    shutil.copy(EXAMPLE, path)
    before = path.read_text().splitlines()
    with Store(store_url) as store:
        pc = load_manifests([path])[0]
        assert isinstance(pc, PromptConfig)
        store.register_inline_version(pc)
        texts = {k: p.text for k, p in pc.spec.prompts.items()} | {"intent.card_arrival": "card arrival\nmy card"}
        trained = store.register_version("banking77-router", texts, {"threshold": 0.5}, source="checkpoint")
    assert trained.version == 2

    code, output = promote("banking77-router", "--version", "2", "--file", str(path), "--db", store_url)
    assert code == 0, output
    assert "activeVersion 2, 77 prompt(s), checksum " + trained.checksum[:12] in output
    after = path.read_text().splitlines()
    start = after.index("  activeVersion: 2")
    assert after[start - 1] == "  workflow: banking77-router"
    block_end = after.index("  prompts:")
    assert after[:start] + after[block_end:] == before, "every line outside the new block is unchanged"
    block = after[start + 1 : block_end]
    assert block[0] == "  active:" and block[1] == f"    checksum: {trained.checksum}"
    # the reviewer reads the text: a multi-line prompt is a literal block, line by line
    assert "      intent.card_arrival: |-" in block and "        my card" in block

    spec = _spec(path, "banking77-router")
    assert spec["active"] == {"checksum": trained.checksum, "prompts": texts, "parameters": {"threshold": 0.5}}
    assert config_checksum(spec["active"]["prompts"], spec["active"]["parameters"]) == trained.checksum
    promoted = load_manifests([path])[0]
    assert isinstance(promoted, PromptConfig) and promoted.spec.active is not None
    assert active_snapshot_error(promoted.spec.active, version=2, stored_checksum=trained.checksum) is None


def test_rollback_replaces_the_block_in_place_in_a_multi_document_file(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    with Store(store_url) as store:
        first = store.register_version("router", {"intent.a": "alpha"}, {}, source="inline")
        second = store.register_version("router", TRAINED, {"k": [1, 2]}, source="checkpoint")
    code, output = promote("router", "--version", str(second.version), "--file", str(path), "--db", store_url)
    assert code == 0 and "was version 2" in output, output
    assert _spec(path, "router")["active"]["prompts"] == TRAINED
    code, output = promote("router", "--version", str(first.version), "--file", str(path), "--db", store_url)
    assert code == 0, output
    text = path.read_text()
    expected_block = f"""\
  activeVersion: 1   # promoted 2026-01-01
  active:
    checksum: {first.checksum}
    prompts:
      intent.a: alpha
    parameters: {{}}
"""
    assert text == MULTI.replace("  activeVersion: 2   # promoted 2026-01-01\n", expected_block)


def test_a_version_the_database_lacks_fails_and_leaves_the_file(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    with Store(store_url) as store:
        store.register_version("router", {"intent.a": "alpha"}, {}, source="inline")
    code, output = promote("router", "--version", "99", "--file", str(path), "--db", store_url)
    assert code == 2, output
    assert "--version: workflow 'router' has no stored version 99" in output and "its latest is 1" in output
    assert "agentensor checkpoints list router" in output
    assert path.read_text() == MULTI


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:///{tmp}/missing.db", id="sqlite-file-missing"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="postgres-refused"),
    ],
)
def test_an_unreachable_database_is_reported_and_only_the_pointer_is_written(url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    stale = MULTI.replace(
        "  prompts:\n", f"  active:\n    checksum: {'0' * 64}\n    prompts: {{intent.a: old}}\n  prompts:\n", 1
    )
    path.write_text(stale)
    code, output = promote("router", "--version", "3", "--file", str(path), "--db", url.format(tmp=tmp_path))
    assert code == 0, output
    assert "could not check that workflow 'router' has version 3" in output
    assert "spec.activeVersion only" in output
    assert path.read_text() == MULTI.replace("activeVersion: 2 ", "activeVersion: 3 "), "stale spec.active removed"
    assert not (tmp_path / "missing.db").exists(), "no SQLite file is created by a check"


def test_unknown_name_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    code, output = promote("nope", "--version", "1", "--file", str(path))
    assert code == 2 and "no PromptConfig named 'nope'" in output
    assert path.read_text() == MULTI
