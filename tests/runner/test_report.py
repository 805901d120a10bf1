"""report.html and summary.json of a real run: a Banking77 subset trained on SQLite.

The run is real (the example's TrainingRun over the first 600 rows of its data, the hashing
embedder, 2 epochs); the report is parsed as HTML and checked against the rows in the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from agentensor_api import EvaluationRun, PromptConfig, RunStatus, TrainingRun, load_manifests, parse_resource
from agentensor_runner import execute, find_prompt_config, shard_run, write_outputs
from agentensor_runner.report.case_table import collect, objective_of, stage_rows
from agentensor_store import Store
from tests.runner._synthetic import make_rows, manifests

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77"
ROWS = 600


class Page(HTMLParser):
    """The parts of the report the tests read: tables by id (rows of cell texts, row classes),
    elements by id, and the text of ``pre.diff`` blocks."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, dict[str, str | None]] = {}
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self.diffs: list[str] = []
        self.scripts: list[str] = []
        self._table: list[str] = []
        self._cell: list[str] | None = None
        self._row: tuple[str, list[str]] | None = None
        self._pre: list[str] | None = None
        self._script: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[str(a["id"])] = {"tag": tag, **a}
        if tag == "table":
            self._table.append(str(a.get("id") or ""))
            self.tables.setdefault(self._table[-1], [])
        elif tag == "tr" and self._table:
            self._row = (str(a.get("class") or ""), [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "pre" and a.get("class") == "diff":
            self._pre = []
        elif tag == "script":
            self._script = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table[-1]].append(self._row)
            self._row = None
        elif tag == "table" and self._table:
            self._table.pop()
        elif tag == "pre" and self._pre is not None:
            self.diffs.append("".join(self._pre))
            self._pre = None
        elif tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data: str) -> None:
        for buf in (self._cell, self._pre, self._script):
            if buf is not None:
                buf.append(data)


@pytest.fixture(scope="module")
def banking_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, RunStatus, Path]:
    """A real TrainingRun of the Banking77 example over its first 600 rows, and its outputs."""
    work = tmp_path_factory.mktemp("banking77")
    lines = (EXAMPLE / "data" / "banking77-subset.csv").read_text(encoding="utf-8").splitlines()
    (work / "sub.csv").write_text("\n".join(lines[: ROWS + 1]) + "\n", encoding="utf-8")
    doc = yaml.safe_load((EXAMPLE / "trainingrun.yaml").read_text(encoding="utf-8"))
    doc["spec"]["dataset"]["path"] = "sub.csv"
    doc["spec"]["workflow"]["options"]["embedder"] = "hashing"
    doc["spec"]["optimizer"]["epochs"] = 2
    (work / "run.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    shutil.copy(EXAMPLE / "promptconfig.yaml", work / "promptconfig.yaml")
    resources = load_manifests([work / "promptconfig.yaml", work / "run.yaml"])
    run = next(r for r in resources if isinstance(r, TrainingRun))
    pc = find_prompt_config(run, [r for r in resources if isinstance(r, PromptConfig)])
    store = Store(f"sqlite:///{work / 'a.db'}")
    store.upgrade()
    status = asyncio.run(execute(run, pc, store, base_dir=work))
    assert status.phase == "Succeeded", status.message
    write_outputs(work / "out", "TrainingRun/banking77-router-train", status, store, training=True)
    return store, status, work / "out"


def test_summary_equals_the_stored_status(banking_run: tuple[Store, RunStatus, Path]) -> None:
    store, status, out = banking_run
    assert status.run_id is not None
    summary = json.loads((out / "summary.json").read_text())
    rec = store.get_run(status.run_id)
    assert rec is not None
    stored = rec.status
    for key in ("scores", "bestScore", "baselineScore", "holdout", "bestVersion", "phase", "checkpoints"):
        assert summary[key] == stored[key], key
    assert summary["holdout"]["best"] > summary["holdout"]["baseline"]
    # status.results: the aggregates of the final evaluation (best config on holdout)
    holdout = store.list_cases(status.run_id, stage="holdout/best")
    results = summary["results"]["accuracy"]
    assert results == stored["results"]["accuracy"]
    assert results["n"] == len(holdout) and results["parseFailures"] == 0
    assert results["mean"] == pytest.approx(summary["scores"]["accuracy"])
    assert results["passRate"] == pytest.approx(sum(1 for r in holdout if r.passed) / len(holdout))


def test_report_shows_the_prompt_diff_baseline_to_best(banking_run: tuple[Store, RunStatus, Path]) -> None:
    store, status, out = banking_run
    assert status.run_id is not None
    text = (out / "report.html").read_text()
    page = Page(text)
    checkpoints = sorted(store.list_checkpoints(run_id=status.run_id), key=lambda c: c.epoch)
    base, best = checkpoints[0], next(c for c in checkpoints if c.version == status.best_version)
    assert f"Baseline v{base.version} → best v{best.version}" in text
    changed = sorted(k for k in best.prompts if best.prompts[k] != base.prompts.get(k))
    assert changed, "training changed some prompts"
    key = changed[0]
    diff = next(d for d in page.diffs if f"+++ v{best.version}/{key}" in d)
    added = [line for line in best.prompts[key].splitlines() if line not in base.prompts[key].splitlines()]
    assert f"+{added[0]}" in diff
    assert f"{len(changed)} prompt(s) changed" in text
    # each checkpoint against the one before, collapsed
    assert text.count('<details class="checkpoint">') == len(checkpoints) - 1
    assert "text-anchor" in text and 'class="holdout"' in text, "holdout scores are on the plot"
    results = page.tables["results"]
    assert [cells[0] for _, cells in results[1:]] == ["accuracy"]


def test_per_class_accuracy_and_confusion_match_the_rows(banking_run: tuple[Store, RunStatus, Path]) -> None:
    store, status, out = banking_run
    assert status.run_id is not None
    page = Page((out / "report.html").read_text())
    rows = store.list_cases(status.run_id, stage="holdout/best")
    n = Counter(str(r.expected) for r in rows)
    ok = Counter(str(r.expected) for r in rows if r.passed and r.error is None)
    table = page.tables["per-class"][1:]
    assert {cells[0] for _, cells in table} == set(n)
    for _, (label, cases, passed, accuracy, _bar) in table:
        assert int(cases) == n[label] and int(passed) == ok[label]
        assert float(accuracy) == pytest.approx(ok[label] / n[label], abs=5e-4)
    mistakes = Counter((str(r.expected), str((r.output or {}).get("intent"))) for r in rows if not r.passed)
    top = page.tables["confusion"][1:]
    assert top, "the confusion view lists mistakes"
    first_expected, first_predicted, count = top[0][1]
    assert int(count) == max(mistakes.values()) == mistakes[(first_expected, first_predicted)]


def test_case_table_has_filters_and_baseline_per_case(banking_run: tuple[Store, RunStatus, Path]) -> None:
    store, status, out = banking_run
    assert status.run_id is not None
    text = (out / "report.html").read_text()
    page = Page(text)
    assert page.ids["failures-only"]["type"] == "checkbox"
    assert page.ids["changed-only"]["type"] == "checkbox"
    assert "#cases.failures-only tr.ok{display:none}" in text
    assert any("failures-only" in s for s in page.scripts)
    assert not re.search(r"(src|href)\s*=|@import|url\(", text), "self-contained: nothing loaded from elsewhere"
    rows = page.tables["cases"]
    header, body = rows[0][1], rows[1:]
    assert header[:5] == ["case", "input", "expected", "predicted", "baseline"]
    assert "latency (s)" in header and "tokens in/out" in header and "cost" in header
    best = {r.case_id: r for r in store.list_cases(status.run_id, stage="holdout/best")}
    base = {r.case_id: r for r in store.list_cases(status.run_id, stage="holdout/baseline")}
    assert len(body) == len(best)
    failed = [cls for cls, _ in body if "ok" not in cls.split()]
    assert len(failed) == sum(1 for r in best.values() if not r.passed)
    # failures first, then passes
    kinds = ["ok" in cls.split() for cls, _ in body]
    assert kinds == sorted(kinds)
    for cls, cells in body:
        case_id, baseline_cell = cells[0], cells[4]
        assert baseline_cell.startswith("pass" if base[case_id].passed else "fail")
        assert ("changed" in cls.split()) == (bool(base[case_id].passed) != bool(best[case_id].passed))


def test_one_pass_keeps_failures_first_and_counts_everything(banking_run: tuple[Store, RunStatus, Path]) -> None:
    store, status, _ = banking_run
    assert status.run_id is not None
    rec = store.get_run(status.run_id)
    assert rec is not None
    objective = objective_of(rec.spec)
    assert objective.evaluator == "accuracy" and objective.output_field == "intent"
    rows = store.list_cases(status.run_id, stage="holdout/best")
    fails = [r.case_id for r in rows if not r.passed]
    table, passing = collect(stage_rows(store, status.run_id, "holdout/best"), "holdout/best", objective, max_rows=5)
    assert [v.row.case_id for v in table.shown] == fails[:5]
    assert table.total == len(rows) and table.failures == len(fails) and table.hidden == len(rows) - 5
    assert passing == {r.case_id for r in rows if r.passed}
    assert table.classes is not None and sum(s.n for s in table.classes.values()) == len(rows)


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI", "").strip().lower() in {"true", "1"}:  # as tests/conftest.py
        pytest.fail("chromium is required in CI (apt-get install -y chromium)")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def _headless(chromium: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_report_in_headless_chromium(banking_run: tuple[Store, RunStatus, Path], tmp_path: Path) -> None:
    """The real browser runs the filter script (``#failures-only`` in the URL turns it on) and
    renders the page to a PNG."""
    chromium = _chromium()
    assert chromium is not None
    _, _, out = banking_run
    url = (out / "report.html").resolve().as_uri()
    dom = _headless(chromium, "--dump-dom", f"{url}#failures-only", cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Page(dom.stdout)
    assert page.ids["cases"].get("class") == "failures-only", "the script applied the filter from the URL"
    plain = Page(_headless(chromium, "--dump-dom", url, cwd=tmp_path).stdout)
    assert not plain.ids["cases"].get("class"), "no filter without the fragment"
    png = tmp_path / "report.png"
    shot = _headless(chromium, "--window-size=1400,2000", f"--screenshot={png}", url, cwd=tmp_path)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_sharded_evaluation_reports_every_shards_cases(tmp_path: Path) -> None:
    """A sharded EvaluationRun's aggregate row (the operator's verdict under the uid) is reported
    with the case rows of all its shards (``<uid>-s<i>``)."""
    rows = make_rows(n_per_intent=6)
    pc_doc, tr_doc = manifests(rows)
    spec = {k: v for k, v in tr_doc["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")}
    spec["dataset"] = {k: v for k, v in spec["dataset"].items() if k != "split"}
    ev_doc = {"apiVersion": "agentensor.dev/v1alpha1", "kind": "EvaluationRun", "metadata": {"name": "sharded"}}
    run = parse_resource({**ev_doc, "spec": spec})
    pc = parse_resource(pc_doc)
    assert isinstance(run, EvaluationRun) and isinstance(pc, PromptConfig)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    uid = "0f1e2d3c"
    statuses = [
        asyncio.run(execute(shard_run(run, tmp_path, (i, 2)), pc, store, base_dir=tmp_path, run_id=f"{uid}-s{i}"))
        for i in range(2)
    ]
    assert all(s.phase == "Succeeded" for s in statuses)
    n = [s.cases_completed or 0 for s in statuses]
    mean = sum((s.scores or {})["accuracy"] * k for s, k in zip(statuses, n, strict=True)) / sum(n)
    verdict = RunStatus(run_id=uid, phase="Succeeded", cases_completed=sum(n), scores={"accuracy": mean})
    store.record_verdict(
        run_id=uid, kind="EvaluationRun", namespace="default", name="sharded", workflow=pc.spec.workflow,
        spec=run.spec.to_wire(), status=verdict,
    )  # fmt: skip
    out = write_outputs(tmp_path / "out", "EvaluationRun/sharded", verdict, store, training=False)
    page = Page(out["report"].read_text())
    ids = [cells[0] for _, cells in page.tables["cases"][1:]]
    assert sorted(ids) == sorted(r["id"] for r in rows), "every shard's cases are in the table"
    store.close()
