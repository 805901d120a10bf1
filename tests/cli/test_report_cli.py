"""``agentensor report``: the files of a stored run, rendered again from the database alone.

A run is trained with ``agentensor run`` (SQLite and PostgreSQL); ``agentensor report`` then
renders it from the database into another directory, by NAMESPACE/NAME and by run id, and the
files must equal the ones the run wrote and the status stored for the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentensor_store import Store
from tests.cli.test_cli import agentensor
from tests.runner._synthetic import make_rows, manifests


def _train(tmp_path: Path, db: str) -> tuple[Path, dict[str, Any]]:
    pc, tr = manifests(make_rows(), epochs=2)
    spec = {k: v for k, v in tr["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")}
    spec["dataset"] = {k: v for k, v in spec["dataset"].items() if k != "split"}
    evaluation = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "EvaluationRun",
        "metadata": {"name": "synthetic-eval"},
        "spec": spec,
    }
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump_all([pc, tr, evaluation], sort_keys=False))
    out = tmp_path / "out"
    res = agentensor("run", "-f", str(f), "--db", db, "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads((out / "trainingrun-synthetic-train" / "summary.json").read_text())


@pytest.mark.one_backend
def test_report_from_the_database_equals_the_run_outputs(tmp_path: Path, db_url: str) -> None:
    out, summary = _train(tmp_path, db_url)
    again = tmp_path / "again"
    res = agentensor("report", "default/synthetic-train", "--db", db_url, "-o", str(again))
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"wrote {again / 'summary.json'}" in res.stderr
    reported = json.loads((again / "summary.json").read_text())
    assert reported == summary
    store = Store(db_url)
    try:
        rec = store.get_run(summary["runId"])
        assert rec is not None
        for key in ("scores", "results", "bestScore", "baselineScore", "holdout", "bestVersion", "phase"):
            assert reported[key] == rec.status[key], key
    finally:
        store.close()
    html = (again / "report.html").read_text()
    assert html == (out / "trainingrun-synthetic-train" / "report.html").read_text()
    assert "Baseline v" in html and 'id="per-class"' in html and 'id="failures-only"' in html

    by_id = tmp_path / "by-id"
    res = agentensor("report", summary["runId"], "--db", db_url, "-o", str(by_id))
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((by_id / "summary.json").read_text()) == summary

    ev = tmp_path / "eval"
    res = agentensor("report", "synthetic-eval", "--db", db_url, "-o", str(ev))
    assert res.returncode == 0, res.stderr[-3000:]
    ev_summary = json.loads((ev / "summary.json").read_text())
    assert ev_summary == json.loads((out / "evaluationrun-synthetic-eval" / "summary.json").read_text())
    assert ev_summary["results"]["accuracy"]["mean"] == pytest.approx(ev_summary["scores"]["accuracy"])
    assert ev_summary["results"]["accuracy"]["n"] == len(make_rows())
    ev_html = (ev / "report.html").read_text()
    assert "Cases (eval)" in ev_html and "Evaluated prompts (v1" in ev_html


def test_report_diff_and_errors(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    _, summary = _train(tmp_path, db)
    best = summary["bestVersion"]
    res = agentensor("report", "synthetic-train", "--db", db, "--diff", "1", str(best))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "--- v1/intent." in res.stdout and f"+++ v{best}/intent." in res.stdout
    assert any(line.startswith("+") and not line.startswith("+++") for line in res.stdout.splitlines())

    same = agentensor("report", "synthetic-train", "--db", db, "--diff", "1", "1")
    assert same.returncode == 0 and same.stdout == "" and "identical" in same.stderr

    missing = agentensor("report", "synthetic-train", "--db", db, "--diff", "1", "99")
    assert missing.returncode == 1
    assert "has no version 99" in missing.stderr and "Traceback" not in missing.stderr

    nosuch = agentensor("report", "default/nosuch", "--db", db, "-o", str(tmp_path / "x"))
    assert nosuch.returncode == 1
    assert "no run with that id or NAMESPACE/NAME" in nosuch.stderr and "Traceback" not in nosuch.stderr
    assert not (tmp_path / "x").exists()

    afile = tmp_path / "file"
    afile.write_text("")
    bad_out = agentensor("report", "synthetic-train", "--db", db, "-o", str(afile))
    assert bad_out.returncode == 2 and "--out" in bad_out.stderr and "not a directory" in bad_out.stderr
