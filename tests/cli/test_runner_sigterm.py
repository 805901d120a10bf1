"""``agentensor runner`` under SIGTERM (a deleted runner Pod): it exits 143 within seconds, through a
normal unwind, instead of waiting for the grace period's SIGKILL (a container's PID 1 ignores
SIGTERM unless it has a handler). Real subprocess, real SQLite store.

And a TrainingRun on the scripted LLM server, SIGKILLed or SIGTERMed mid-epoch and started again
under the same run id on PostgreSQL: the second process sends no request the first one was
answered (evaluation cache + store-backed response cache) and ends as an uninterrupted run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentensor_api import PromptConfig, RunStatus, TrainingRun, parse_resource
from agentensor_runner import execute
from agentensor_store import Store
from tests._wait import processes_alive, wait_for
from tests.llm.conftest import API_KEY, KEY_ENV, KEY_ENV_GRANT, prompt_config, run_doc, set_key
from tests.llm.scripted_server import Rule, ScriptedServer
from tests.llm.test_textgrad import GREETING, judge, task_reply
from tests.runner._synthetic import make_rows, manifests
from tests.runner.test_evalcache import spec as evalcache_spec

UID = "5e0c2d3e-aaaa-4bbb-8ccc-0123456789ab"


def _epochs_past_one(db: str) -> list[int]:
    """The checkpointed epochs of the run once one of them is >= 1, else [] (also while the database
    is missing or not yet migrated)."""
    if not Path(db.removeprefix("sqlite:///")).exists():
        return []
    store = Store(db)
    try:
        epochs = [c.epoch for c in store.list_checkpoints(run_id=UID)]
    except Exception:
        return []
    finally:
        store.close()
    return epochs if epochs and max(epochs) >= 1 else []


def test_sigterm_mid_run_exits_143_promptly_keeping_the_checkpoints(tmp_path: Path) -> None:
    pc, tr = manifests(make_rows(150, seed=4), epochs=200, batch_size=64)  # far longer than the test
    tr["metadata"] = {"name": "sigterm-run", "namespace": "team-a", "uid": UID}
    pc["metadata"] = {"name": "synthetic", "namespace": "team-a"}
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all([tr, pc]))
    db = f"sqlite:///{tmp_path / 'run.db'}"
    env = {**os.environ, "AGENTENSOR_DATABASE_URL": ""}
    argv = [sys.executable, "-m", "agentensor_cli", "runner", "--manifest", str(manifest), "--db", db]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        epochs = wait_for(lambda: _epochs_past_one(db), 120, "a checkpoint of epoch 1", alive=processes_alive(proc))
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr[-2000:]
    assert took < 10, f"took {took:.1f} s to exit after SIGTERM"
    assert "Traceback" not in stderr, stderr[-2000:]
    store = Store(db)
    try:
        kept = [c.epoch for c in store.list_checkpoints(run_id=UID)]
    finally:
        store.close()
    assert kept[: len(epochs)] == sorted(epochs) and max(kept) < 200, kept


# -- zero repeated model calls after SIGKILL / SIGTERM (issue 13 item 3, issue 12 item 4) -------------------------

LLM_UID = "7b1d9c4e-bbbb-4ccc-8ddd-0123456789ab"
HANG_SECONDS = 90.0
"""The scripted reply the runner is killed during; far longer than the test waits for the kill."""


def _script(server: ScriptedServer, *, hang: bool) -> Rule | None:
    """textgrad's gradient and rewrite, the judge, and task replies; with ``hang`` the second task
    call under the rewritten prompt (the candidate's second validation case) never answers."""
    server.add(system="Diagnose what in the prompt", reply="Ask the agent to greet the customer.")
    server.add(
        system="You rewrite one prompt",
        reply=f"<prompt>Start every reply with '{GREETING}' and mention refunds.</prompt>",
    )
    server.add(system="strict evaluator", reply=judge)
    held = None
    if hang:
        server.add(system=GREETING, reply=task_reply, times=1)
        held = server.add(system=GREETING, reply=task_reply, times=1, latency_seconds=HANG_SECONDS)
    server.add(reply=task_reply)
    return held


def _llm_run(server: ScriptedServer) -> tuple[dict[str, Any], dict[str, Any]]:
    tr = run_doc("TrainingRun", evalcache_spec(server, responseCache={"enabled": True}, parallelism=1))
    tr["metadata"] = {"name": "llm-run", "namespace": "team-a", "uid": LLM_UID}
    pc = prompt_config({"system": "You are a support agent."}).model_dump(mode="json", by_alias=True, exclude_none=True)
    pc["metadata"] = {"name": "pc", "namespace": "team-a"}
    return tr, pc


def _start_runner(tmp_path: Path, server: ScriptedServer, db: str, attempt: int) -> subprocess.Popen[str]:
    """``agentensor runner`` as a Pod runs it; each attempt has its own SQLite LLM file cache (a new Pod's
    filesystem is empty), so only the store can replay what an earlier attempt was answered."""
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(list(_llm_run(server))))
    env = {
        **os.environ,
        "AGENTENSOR_DATABASE_URL": "",
        KEY_ENV: API_KEY,
        **KEY_ENV_GRANT,
        "AGENTENSOR_LLM_CACHE": str(tmp_path / f"llm-cache-{attempt}.sqlite"),
    }
    argv = [sys.executable, "-m", "agentensor_cli", "runner", "--manifest", str(manifest), "--db", db]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _key(body: dict[str, Any]) -> str:
    return json.dumps({"model": body.get("model"), "messages": body.get("messages")}, sort_keys=True)


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> str:
    try:
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return stderr


async def _uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunStatus:
    """The same run, never interrupted, on its own scripted server and SQLite store."""
    set_key(monkeypatch)
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "llm-cache-reference.sqlite"))
    with ScriptedServer(require_key=API_KEY) as other:
        _script(other, hang=False)
        tr, pc = _llm_run(other)
        run, config = parse_resource(tr), parse_resource(pc)
        assert isinstance(run, TrainingRun) and isinstance(config, PromptConfig)
        with Store(f"sqlite:///{tmp_path / 'reference.db'}") as store:
            store.upgrade()
            return await execute(run, config, store, base_dir=tmp_path, run_id="reference")


def _answered(server: ScriptedServer) -> tuple[int, set[str], list[str]]:
    """At the kill: how many requests arrived, the keys of those answered, and of those in flight.

    Taken before the next process starts: the held reply "finishes" on the server after
    :data:`HANG_SECONDS`, when nobody is waiting for it any more."""
    log = list(server.log)
    return len(log), {_key(r.body) for r in log if r.finished > 0}, [_key(r.body) for r in log if r.finished == 0]


def _assert_resumed_without_repeats(
    server: ScriptedServer, at_kill: tuple[int, set[str], list[str]], pg: str, reference: RunStatus
) -> None:
    before, answered, unanswered = at_kill
    after = [_key(r.body) for r in server.log[before:]]
    repeated = [k for k in after if k in answered]
    assert not repeated, f"{len(repeated)} requests answered before the kill were sent again: {repeated[:2]}"
    assert unanswered and unanswered[0] in after  # the call in flight at the kill is made again, once
    with Store(pg) as store:
        run = store.get_run(LLM_UID)
        assert run is not None and run.status is not None
        status = RunStatus.model_validate(run.status)
        cps = [(c.epoch, c.checksum, c.score) for c in store.list_checkpoints(run_id=LLM_UID)]
    assert status.phase == "Succeeded", status.message
    assert (status.baseline_score, status.best_score, status.best_checksum, status.holdout, status.scores) == (
        reference.baseline_score,
        reference.best_score,
        reference.best_checksum,
        reference.holdout,
        reference.scores,
    )
    assert [c[1:] for c in cps] == [(c.checksum, c.score) for c in reference.checkpoints or []]
    assert status.evaluation_cache is not None and status.evaluation_cache.hits > 0


async def test_sigkill_mid_epoch_then_resume_repeats_no_model_call(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = await _uninterrupted(tmp_path, monkeypatch)
    with ScriptedServer(require_key=API_KEY) as server:
        held = _script(server, hang=True)
        assert held is not None
        first = _start_runner(tmp_path, server, pg_url, 1)
        try:
            wait_for(lambda: held.hits >= 1, 300, "the held request", interval=0.1, alive=processes_alive(first))
            first.send_signal(signal.SIGKILL)
        finally:
            _finish(first)
        assert first.returncode == -signal.SIGKILL
        at_kill = _answered(server)
        second = _start_runner(tmp_path, server, pg_url, 2)
        stderr = _finish(second)
        assert second.returncode == 0, stderr[-3000:]
        _assert_resumed_without_repeats(server, at_kill, pg_url, reference)


async def test_sigterm_mid_epoch_exits_143_keeps_the_finished_cases_and_resumes_without_repeats(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = await _uninterrupted(tmp_path, monkeypatch)
    with ScriptedServer(require_key=API_KEY) as server:
        held = _script(server, hang=True)
        assert held is not None
        first = _start_runner(tmp_path, server, pg_url, 1)
        try:
            wait_for(lambda: held.hits >= 1, 300, "the held request", interval=0.1, alive=processes_alive(first))
            sent = time.monotonic()
            first.send_signal(signal.SIGTERM)
            stderr = _finish(first, timeout=60)
            took = time.monotonic() - sent
        finally:
            _finish(first)
        at_kill = _answered(server)
        assert first.returncode == 143, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        # Kubernetes' default grace period is 30 s; the runner's own deadline is 20 s (normally well under 1 s).
        assert took < 30, f"took {took:.1f} s to exit after SIGTERM"
        with Store(pg_url) as store:
            rows = store.list_cases(LLM_UID, stage="epoch-1/batch-0/candidate-0")
        assert len(rows) == 1 and rows[0].error is None, rows  # the candidate's one finished case, recorded
        second = _start_runner(tmp_path, server, pg_url, 2)
        stderr = _finish(second)
        assert second.returncode == 0, stderr[-3000:]
        _assert_resumed_without_repeats(server, at_kill, pg_url, reference)
