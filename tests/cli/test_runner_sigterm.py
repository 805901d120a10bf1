"""``agentensor runner`` under SIGTERM (a deleted runner Pod): it exits 143 within seconds, through a
normal unwind, instead of waiting for the grace period's SIGKILL (a container's PID 1 ignores
SIGTERM unless it has a handler). Real subprocess, real SQLite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from agentensor_store import Store
from tests.runner._synthetic import make_rows, manifests

UID = "5e0c2d3e-aaaa-4bbb-8ccc-0123456789ab"


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
        deadline = time.monotonic() + 120
        epochs: list[int] = []
        while not epochs or max(epochs) < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint of epoch 1 within 120 s"
            time.sleep(0.2)
            if (tmp_path / "run.db").exists():
                store = Store(db)
                try:
                    epochs = [c.epoch for c in store.list_checkpoints(run_id=UID)]
                except Exception:
                    epochs = []
                finally:
                    store.close()
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
