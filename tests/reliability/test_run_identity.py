"""Run identity and run leases on real SQLite and PostgreSQL, and through two real CLI processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentensor_api import parse_resource
from agentensor_api._resources import run_spec_checksum
from agentensor_store import RunIdentityError, RunLease, RunLeasedError, Store, new_owner_id
from tests._wait import processes_alive, wait_for

from .catalogue import _as_evaluation, base

REPO = Path(__file__).resolve().parents[2]
SUM_A, SUM_B = "a" * 64, "b" * 64


def _create(store: Store, run_id: str = "r1", kind: str = "TrainingRun") -> None:
    store.create_run(run_id=run_id, kind=kind, namespace="default", name="x", workflow="wf", spec={})


def test_a_second_owner_is_refused_until_the_lease_is_released(store: Store) -> None:
    _create(store)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-a/1/x")
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-a/1/x")  # the owner again: fine
    with pytest.raises(RunLeasedError, match=r"being executed by another process \(host-a/1/x, lease until"):
        store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-b/2/y")
    store.release_run_lease("r1", "host-a/1/x")
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-b/2/y")


def test_another_kind_or_spec_is_refused_naming_both(store: Store) -> None:
    _create(store)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="o/1/a")
    store.release_run_lease("r1", "o/1/a")
    with pytest.raises(RunIdentityError) as kind:
        store.claim_run("r1", kind="EvaluationRun", spec_checksum=SUM_A, owner="o/1/b")
    assert "belongs to a TrainingRun with spec sha256 aaaaaaaaaaaa; this is a EvaluationRun" in str(kind.value)
    with pytest.raises(RunIdentityError) as spec:
        store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_B, owner="o/1/b")
    assert "spec sha256 aaaaaaaaaaaa" in str(spec.value) and "spec sha256 bbbbbbbbbbbb" in str(spec.value)
    run = store.get_run("r1")
    assert run is not None and run.kind == "TrainingRun"


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    _create(store)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-a/1/x", lease_seconds=0.3)
    time.sleep(0.5)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="host-b/2/y")
    assert not store.renew_run_lease("r1", "host-a/1/x"), "the old owner knows it lost the lease"


def test_a_dead_process_of_this_host_loses_its_lease_at_once(store: Store) -> None:
    _create(store)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = new_owner_id().split("/")[0]
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner=f"{host}/{dead.pid}/x", lease_seconds=600)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner=new_owner_id())


def test_concurrent_claims_have_exactly_one_winner(store: Store) -> None:
    _create(store)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def claim(i: int) -> None:
        barrier.wait()
        try:
            store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner=f"h{i}/1/x")
            outcomes.append("won")
        except RunLeasedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


def test_the_lease_is_renewed_while_held_and_released_after(store: Store) -> None:
    _create(store)
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="me/1/x", lease_seconds=0.6)
    with RunLease(store, "r1", "me/1/x", 0.6) as lease:
        time.sleep(1.5)  # > 2 lease periods: alive only through renewals
        with pytest.raises(RunLeasedError):
            store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="other/2/y")
        assert not lease.lost
    store.claim_run("r1", kind="TrainingRun", spec_checksum=SUM_A, owner="other/2/y")


def test_spec_checksum_ignores_suspend_only() -> None:
    pc, tr = base()
    a = parse_resource(tr)
    tr["spec"]["suspend"] = True
    b = parse_resource(tr)
    tr["spec"]["dataset"]["seed"] = 4
    c = parse_resource(tr)
    ev = parse_resource(_as_evaluation((pc, tr))[1])
    assert run_spec_checksum(a) == run_spec_checksum(b)  # type: ignore[arg-type]
    assert len({run_spec_checksum(a), run_spec_checksum(c), run_spec_checksum(ev)}) == 3  # type: ignore[arg-type]


def _gated_evaluation(tmp: Path, gate: Path) -> Path:
    """72 cases that wait for ``gate`` to exist, then take 0.01 s each: the run holds its lease
    until the test creates the file, however slowly a second process starts on a loaded machine."""
    pc, tr = _as_evaluation(base())
    options = {"seconds": 0.01, "gate": str(gate)}
    tr["spec"]["workflow"] = {"entrypoint": "tests.reliability.hostile:build_slow", "options": options}
    tr["spec"]["parallelism"] = 1
    tr["spec"]["evaluators"] = [{"name": "accuracy", "type": "exact_match", "outputField": "answer"}]
    path = tmp / "slow.yaml"
    path.write_text(yaml.safe_dump_all([pc, tr], sort_keys=False))
    return path


def _start(args: list[str]) -> subprocess.Popen[str]:
    env: dict[str, Any] = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "agentensor_cli", "run", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_with_one_run_id_do_not_both_run_it(store_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    manifest = _gated_evaluation(tmp_path, gate)
    first = _start(["-f", str(manifest), "--db", store_url, "--out", str(tmp_path / "o1"), "--run-id", "same"])
    try:
        with Store(store_url) as store:
            wait_for(
                lambda: (run := store.get_run("same")) is not None and run.phase == "Running",
                120,
                "the first process to hold the lease (phase Running)",
                alive=processes_alive(first),
            )
        second = _start(["-f", str(manifest), "--db", store_url, "--out", str(tmp_path / "o2"), "--run-id", "same"])
        _, err2 = second.communicate(timeout=300)
        assert first.poll() is None, "the second process was refused while the first still ran"
        gate.touch()  # let the first run go on
        _, err1 = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 2, err2[-2000:]
    assert "is being executed by another process" in " ".join(err2.split()) and "Traceback" not in err2
    with Store(store_url) as store:
        assert len(store.list_cases("same")) == 72, "the cases were run once"


def _sql(url: str, statement: str) -> Any:
    """Run one statement in its own transaction; the first column of the first row, if any."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


async def test_a_runner_that_loses_its_lease_stops_writing(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process takes the lease mid-run: this one is cancelled at its next renewal and writes nothing more.

    The lease is stolen with a plain UPDATE (what a second process's takeover of an expired lease
    does), so the renewal finds another owner. Before ``RunLease.on_lost`` the runner kept going and
    wrote its Succeeded verdict over the new owner's run.
    """
    import asyncio

    from agentensor_runner import execute
    from agentensor_store import RunLeaseLostError

    monkeypatch.setenv("AGENTENSOR_RUN_LEASE_SECONDS", "1")  # renewed every 1/3 s
    pc, tr = _as_evaluation(base())
    tr["spec"]["workflow"] = {"entrypoint": "tests.reliability.hostile:build_slow", "options": {"seconds": 0.2}}
    tr["spec"]["parallelism"] = 1  # 72 cases x 0.2 s: about 15 s uninterrupted
    tr["spec"]["evaluators"] = [{"name": "accuracy", "type": "exact_match", "outputField": "answer"}]
    run, config = parse_resource(tr), parse_resource(pc)
    task = asyncio.ensure_future(execute(run, config, store, base_dir=REPO, run_id="lost-lease"))  # type: ignore[arg-type]
    owner_sql = "SELECT lease_owner FROM agentensor_runs WHERE id = 'lost-lease'"
    while not task.done() and not _sql(store_url, owner_sql):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    _sql(store_url, "UPDATE agentensor_runs SET lease_owner = 'thief/1/z' WHERE id = 'lost-lease'")
    with pytest.raises(RunLeaseLostError, match="lease was taken by another process"):
        await asyncio.wait_for(task, timeout=60)
    rows = len(store.list_cases("lost-lease"))
    await asyncio.sleep(1.0)  # anything still in flight would land now
    record = store.get_run("lost-lease")
    assert record is not None and _sql(store_url, owner_sql) == "thief/1/z"
    assert record.phase not in ("Succeeded", "Failed"), "the loser wrote a verdict over the new owner's run"
    assert len(store.list_cases("lost-lease")) == rows < 72
