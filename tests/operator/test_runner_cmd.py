"""``agentensor runner``: what a runner Job's Pod executes, on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agentensor_cli._app import app
from agentensor_store import Store
from tests.runner._synthetic import make_rows, manifests

# agentensor_store._retry passes tenacity's deprecated ``initial=`` (store code, reported to its
# owner); the runner command turns outage retries on, so the warning fires in-process here.

UID = "6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab"
MANIFEST = "/etc/agentensor/run/manifest.yaml"


def write_manifest(root: Path, *, uid: str | None = UID, **spec: Any) -> None:
    pc, tr = manifests(make_rows(4, seed=2), epochs=2, batch_size=16)
    tr["metadata"] = {"name": "job-run", "namespace": "team-a", **({"uid": uid} if uid else {})}
    pc["metadata"] = {"name": "synthetic", "namespace": "team-a"}
    tr["spec"].update(spec)
    path = root / MANIFEST.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all([tr, pc]))


def runner(root: Path, db_url: str | None) -> tuple[int, str]:
    args = ["runner", "--manifest", MANIFEST] + (["--db", db_url] if db_url else [])
    result = CliRunner().invoke(app, args, env={"AGENTENSOR_ROOT": str(root), "AGENTENSOR_DATABASE_URL": ""})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"exit {result.exit_code}: {result.output}") from result.exception
    return result.exit_code, result.output


@pytest.mark.one_backend
def test_runs_under_the_uid_and_resumes_without_duplicates(tmp_path: Path, db_url: str) -> None:
    write_manifest(tmp_path)
    code, output = runner(tmp_path, db_url)
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert (
        summary["runId"] == UID and summary["phase"] == "Succeeded" and summary["run"] == "TrainingRun/team-a/job-run"
    )
    store = Store(db_url)
    try:
        first = [c.epoch for c in store.list_checkpoints(run_id=UID)]
        assert first == [0, 1, 2]
        code, output = runner(tmp_path, db_url)  # a retried Pod: resumes after the last checkpoint
        assert code == 0, output
        assert [c.epoch for c in store.list_checkpoints(run_id=UID)] == first
        run = store.get_run(UID)
        assert run is not None and run.phase == "Succeeded" and run.namespace == "team-a"
    finally:
        store.close()


@pytest.mark.one_backend
def test_failed_run_exits_1_with_the_verdict_in_the_database(tmp_path: Path, db_url: str) -> None:
    write_manifest(tmp_path, caseTimeoutSeconds=1e-9)
    code, output = runner(tmp_path, db_url)
    assert code == 1, output
    store = Store(db_url)
    try:
        run = store.get_run(UID)
        assert run is not None and run.phase == "Failed" and "case" in run.status["message"]
        assert store.list_cases(UID, errors_only=True)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("uid", "db", "fragment"),
    [
        pytest.param(None, True, "metadata.uid is required", id="no-uid"),
        pytest.param(UID, False, "no database URL", id="no-db"),
    ],
)
def test_refuses_to_start(tmp_path: Path, uid: str | None, db: bool, fragment: str) -> None:
    write_manifest(tmp_path, uid=uid)
    code, output = runner(tmp_path, f"sqlite:///{tmp_path / 'a.db'}" if db else None)
    assert code == 2 and fragment in output


def test_missing_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    code, output = runner(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    assert code == 2 and "manifest.yaml" in output


def write_evaluation(root: Path, *, n_per_intent: int = 4) -> int:
    pc, tr = manifests(make_rows(n_per_intent, seed=2))
    er = {
        "apiVersion": tr["apiVersion"],
        "kind": "EvaluationRun",
        "metadata": {"name": "eval-run", "namespace": "team-a", "uid": UID},
        "spec": {k: v for k, v in tr["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")},
    }
    del er["spec"]["dataset"]["split"]
    del er["spec"]["dataset"]["idField"]  # ids are row numbers: the shards must keep them
    pc["metadata"] = {"name": "synthetic", "namespace": "team-a"}
    path = root / MANIFEST.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all([er, pc]))
    return len(er["spec"]["dataset"]["inline"])


@pytest.mark.one_backend
def test_shards_partition_the_cases(tmp_path: Path, db_url: str) -> None:
    total = write_evaluation(tmp_path)
    env = {"AGENTENSOR_ROOT": str(tmp_path), "AGENTENSOR_DATABASE_URL": db_url}
    case_ids: list[set[str]] = []
    store = Store(db_url)
    try:
        for i in range(3):
            result = CliRunner().invoke(
                app, ["runner", "--manifest", MANIFEST, "--shard", f"{i}/3", "--run-id", f"{UID}-s{i}"], env=env
            )
            assert result.exit_code == 0, result.output
            assert json.loads(result.output.strip().splitlines()[-1])["runId"] == f"{UID}-s{i}"
            case_ids.append({c.case_id for c in store.list_cases(f"{UID}-s{i}", stage="eval")})
        assert set().union(*case_ids) == {str(i) for i in range(total)}, "every case in some shard"
        assert sum(len(s) for s in case_ids) == total, "no case in two shards"
        assert all(case_ids), "the hash spreads cases over every shard"
        assert store.get_run(UID) is None, "shards write under their own ids"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["--shard", "3/3"], "--shard must be I/N", id="index-out-of-range"),
        pytest.param(["--shard", "x"], "--shard must be I/N", id="garbage"),
    ],
)
def test_bad_shard_is_refused(tmp_path: Path, args: list[str], fragment: str) -> None:
    write_evaluation(tmp_path)
    result = CliRunner().invoke(
        app, ["runner", "--manifest", MANIFEST, "--db", f"sqlite:///{tmp_path / 'a.db'}", *args],
        env={"AGENTENSOR_ROOT": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 2 and fragment in result.output


def test_training_runs_are_not_sharded(tmp_path: Path) -> None:
    write_manifest(tmp_path)
    result = CliRunner().invoke(
        app, ["runner", "--manifest", MANIFEST, "--db", f"sqlite:///{tmp_path / 'a.db'}", "--shard", "0/2"],
        env={"AGENTENSOR_ROOT": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 2 and "applies to an EvaluationRun" in result.output


def test_empty_shard_succeeds_with_no_cases(tmp_path: Path) -> None:
    write_evaluation(tmp_path, n_per_intent=1)  # 6 cases over 64 shards: most shards are empty
    db = f"sqlite:///{tmp_path / 'a.db'}"
    env = {"AGENTENSOR_ROOT": str(tmp_path)}
    totals = []
    for i in range(64):
        # each shard has a run id of its own, as the operator's Jobs give them (<uid>-s<i>)
        args = ["runner", "--manifest", MANIFEST, "--db", db, "--shard", f"{i}/64", "--run-id", f"{UID}-s{i}"]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        totals.append(json.loads(result.output.strip().splitlines()[-1])["casesTotal"])
    assert sum(totals) == 6 and totals.count(0) >= 58
