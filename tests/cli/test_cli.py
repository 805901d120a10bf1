"""The `agentensor` command as a user runs it: real subprocess, real SQLite/PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runner._synthetic import make_rows, manifests

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77"


def agentensor(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v != ""}  # "" unsets a variable
    return subprocess.run(
        [sys.executable, "-m", "agentensor_cli", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> tuple[Path, str, dict[str, Any]]:
    """One ``agentensor run`` of the synthetic TrainingRun for the module: its outputs, its database
    and summary. The tests read it, or run commands that must leave it unchanged or add runs of
    their own; none rewrites what the training stored."""
    tmp_path = tmp_path_factory.mktemp("trained")
    pc, tr = manifests(make_rows(), epochs=2)
    f = _write(tmp_path, "run.yaml", pc, tr)
    out = tmp_path / "out"
    res = agentensor("run", "-f", str(f), "--db", module_db_url, "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out, module_db_url, json.loads((out / "summary.json").read_text())


def test_run_writes_summary_and_report(trained: tuple[Path, str, dict[str, Any]]) -> None:
    out, _, summary = trained
    assert summary["phase"] == "Succeeded"
    assert set(summary) >= {
        "phase",
        "conditions",
        "baselineScore",
        "bestScore",
        "holdout",
        "bestVersion",
        "checkpoints",
        "datasetHash",
        "runId",
    }
    assert [c["epoch"] for c in summary["checkpoints"]] == [0, 1, 2]
    assert summary["holdout"]["best"] > summary["holdout"]["baseline"]
    types = {c["type"]: c["status"] for c in summary["conditions"]}
    assert types["Succeeded"] == "True" and types["Promotable"] == "True"
    report = (out / "report.html").read_text()
    assert "<svg" in report and "<polyline" in report and "holdout best" in report
    assert report.count('<tr class="') > 10


def test_checkpoints_list_and_export_roundtrip(tmp_path: Path, trained: tuple[Path, str, dict[str, Any]]) -> None:
    _, db, summary = trained
    listing = agentensor("checkpoints", "list", "synthetic-router", "--db", db)
    assert listing.returncode == 0, listing.stderr
    assert "synthetic-router" in listing.stdout and str(summary["bestVersion"]) in listing.stdout
    exported = tmp_path / "best.yaml"
    res = agentensor(
        "checkpoints", "export", "synthetic-router", "--best", "-o", str(exported), "--db", db, "--name", "synthetic"
    )
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load(exported.read_text())
    assert doc["kind"] == "PromptConfig" and doc["metadata"]["annotations"]["agentensor.dev/version"] == str(
        summary["bestVersion"]
    )
    assert any("\n" in p["text"] for p in doc["spec"]["prompts"].values()), "trained descriptions have exemplar lines"
    # the exported manifest is itself valid input: evaluate it
    _, tr = manifests(make_rows(seed=1))
    ev = {**tr, "kind": "EvaluationRun", "metadata": {"name": "eval"}}
    ev["spec"] = {k: v for k, v in tr["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")}
    ev["spec"]["dataset"] = {**tr["spec"]["dataset"]}
    del ev["spec"]["dataset"]["split"]
    f = _write(tmp_path, "eval.yaml", ev)
    res = agentensor("run", "-f", str(exported), "-f", str(f), "--db", db, "--out", str(tmp_path / "eval"))
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["bestVersion"] == summary["bestVersion"] and s["scores"]["accuracy"] > 0.8
    missing = agentensor(
        "checkpoints", "export", "synthetic-router", "--version", "999", "-o", str(tmp_path / "x.yaml"), "--db", db
    )
    assert missing.returncode == 1 and "has no version 999" in missing.stderr


def _bad(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pc, tr = manifests(make_rows(), epochs=1)
    if kind == "unknown-evaluator":
        tr["spec"]["evaluators"][0]["type"] = "bleu"
    elif kind == "missing-dataset-field":
        tr["spec"]["dataset"]["inputField"] = "utterance"
    elif kind == "callbacks":
        tr["spec"]["config"]["callbacks"] = ["my.handler"]
    elif kind == "bad-entrypoint":
        tr["spec"]["workflow"] = {"entrypoint": "tests.no_such_module:build"}  # allow-listed prefix, no module
    elif kind == "unresolved-placeholder":
        tr["spec"]["workflow"]["options"]["descriptions"] = "{{prompts.intents}}"
    return pc, tr


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param(
            "unknown-evaluator", "spec.evaluators[0].type: Input should be 'exact_match'", id="unknown-evaluator"
        ),
        pytest.param(
            "missing-dataset-field",
            "spec.dataset.inputField: no row has a field 'utterance'",
            id="missing-dataset-field",
        ),
        pytest.param("callbacks", "spec.config: config.callbacks is not allowed", id="callbacks"),
        pytest.param(
            "bad-entrypoint",
            "spec.workflow.entrypoint: cannot import module 'tests.no_such_module'",
            id="bad-entrypoint",
        ),
        pytest.param(
            "unresolved-placeholder",
            "spec.workflow.options: {{prompts.intents}}: prompts has no 'intents'",
            id="placeholder",
        ),
    ],
)
def test_bad_input_is_named_and_nothing_is_lost(
    tmp_path: Path, trained: tuple[Path, str, dict[str, Any]], kind: str, message: str
) -> None:
    _, db, _ = trained
    before = agentensor("checkpoints", "list", "synthetic-router", "--db", db).stdout
    f = _write(tmp_path, "bad.yaml", *_bad(kind))
    res = agentensor("run", "-f", str(f), "--db", db, "--out", str(tmp_path / "bad"))
    assert res.returncode == 2
    assert message in res.stderr, res.stderr
    assert "bad.yaml#1" in res.stderr
    assert "Traceback" not in res.stderr
    assert agentensor("checkpoints", "list", "synthetic-router", "--db", db).stdout == before


def test_malformed_manifest_is_named(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(
        "apiVersion: agentensor.dev/v1alpha1\nkind: TrainingRun\nmetadata: {name: x}\nspec: {parallelism: many}\n"
    )
    res = agentensor("run", "-f", str(f), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert res.returncode == 2
    assert "broken.yaml#0: spec.workflow: Field required" in res.stderr


def test_crds_check_detects_drift(tmp_path: Path) -> None:
    assert agentensor("crds", "-o", str(REPO / "crds"), "--check").returncode == 0
    assert agentensor("crds", "-o", str(tmp_path)).returncode == 0
    victim = next(tmp_path.glob("*trainingruns.yaml"))
    victim.write_text(victim.read_text().replace("maxRegression", "maxRegresion"))
    res = agentensor("crds", "-o", str(tmp_path), "--check")
    assert res.returncode == 1 and "drifted" in res.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    res = agentensor("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert res.returncode == 0, res.stderr
    assert "is at revision" in res.stderr


@pytest.mark.embeddings
@pytest.mark.slow
def test_banking77_example_reaches_target(tmp_path: Path) -> None:
    """The flagship example, exactly as the README runs it (SQLite default in a fresh cwd)."""
    work = tmp_path / "work"
    work.mkdir()
    res = agentensor(
        "run",
        "-f",
        str(EXAMPLE / "promptconfig.yaml"),
        "-f",
        str(EXAMPLE / "trainingrun.yaml"),
        "--out",
        str(work / "out"),
        cwd=work,
        env={"AGENTENSOR_DATABASE_URL": ""},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (work / "agentensor.db").exists(), "the embedded default store is ./agentensor.db"
    s = json.loads((work / "out" / "summary.json").read_text())
    assert s["holdout"]["baseline"] < 0.65
    assert s["holdout"]["best"] >= 0.80
    assert s["bestScore"] >= 0.80
    assert len(s["checkpoints"]) == 4
    assert {c["type"]: c["status"] for c in s["conditions"]}["Promotable"] == "True"


def test_messages_are_not_wrapped_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    """Pod logs are read by kubectl and log shippers, not a terminal: a long message stays one line
    (Rich would otherwise break it at 80 columns, its width when stderr is not a TTY)."""
    missing = tmp_path / ("run-" + "x" * 150 + ".yaml")
    res = agentensor("run", "-f", str(missing), env={"COLUMNS": ""})  # "" unsets it: Rich's default width
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) > 300 and lines[0].startswith("error: "), res.stderr
    assert lines[0].count(missing.name) == 2, lines[0]
