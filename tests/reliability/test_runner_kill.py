"""SIGKILL of a runner process mid-epoch: the retry resumes from the last checkpoint.

Real processes (`python -m agentensor_cli run`), a real PostgreSQL database. The killed run is
restarted with the same `--run-id`, as a Job's retry pod would be; its checkpoints must be
exactly epochs 0..N once each, and its best version the same as an uninterrupted run's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agentensor_store import Store

from ._runs import EPOCHS, REPO, env, reference_run, run_cmd, write_manifest

FREEZE_SETTLE_SECONDS = 0.3


def _mid_epoch(store: Store) -> tuple[int, int] | None:
    """(epoch, train rows) when epoch >= 2 has train rows but no checkpoint yet, else None."""
    cps = store.list_checkpoints(run_id="victim")
    if not cps or max(c.epoch for c in cps) < 1:
        return None
    epoch = max(c.epoch for c in cps) + 1
    rows = [r for r in store.list_cases("victim") if r.stage.startswith(f"epoch-{epoch}/train")]
    return (epoch, len(rows)) if rows else None


def test_sigkill_mid_epoch_then_resume(tmp_path: Path, pg_url: str) -> None:
    f = write_manifest(tmp_path)
    reference = reference_run(f, pg_url, tmp_path / "ref")

    store = Store(pg_url)
    proc = subprocess.Popen(
        run_cmd(f, pg_url, "victim", tmp_path / "victim"),
        env=env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_at: tuple[int, int] | None = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _mid_epoch(store) is not None:
                # Freeze the runner, then look again: what is stored now is what the kill leaves
                # (a commit already on the wire gets the pause to land). Polling and killing
                # without the freeze raced the epoch's checkpoint.
                proc.send_signal(signal.SIGSTOP)
                time.sleep(FREEZE_SETTLE_SECONDS)
                killed_at = _mid_epoch(store)
                if killed_at is not None:
                    proc.send_signal(signal.SIGKILL)
                    break
                proc.send_signal(signal.SIGCONT)  # the epoch ended meanwhile: try the next one
            time.sleep(0.02)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_at is not None, "the run finished before it could be killed; make it longer"
    assert proc.returncode == -signal.SIGKILL
    before = store.list_checkpoints(run_id="victim")
    assert max(c.epoch for c in before) == killed_at[0] - 1
    assert store.get_run("victim") is not None and store.get_run("victim").phase == "Running"  # type: ignore[union-attr]

    retry = subprocess.run(
        run_cmd(f, pg_url, "victim", tmp_path / "victim"),
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert retry.returncode == 0, retry.stderr
    resumed = json.loads((tmp_path / "victim" / "summary.json").read_text())
    after = store.list_checkpoints(run_id="victim")
    assert [c.epoch for c in after] == list(range(EPOCHS + 1)), "no checkpoint lost or duplicated"
    assert after[: len(before)] == before, "checkpoints written before the kill are untouched"
    assert resumed["bestChecksum"] == reference["bestChecksum"]
    assert resumed["bestVersion"] == reference["bestVersion"]
    assert resumed["holdout"] == reference["holdout"]
    rows = store.list_cases("victim")
    assert len({(r.stage, r.case_id) for r in rows}) == len(rows), "re-run stages upsert, never duplicate"
    store.close()
    print(f"killed in epoch {killed_at[0]} after {killed_at[1]} train rows; resumed to epoch {EPOCHS}")


pytestmark = pytest.mark.postgres
