"""Shared pieces of the process-level fault tests: the manifest, the command, a reference run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.runner._synthetic import make_rows, manifests

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4


def write_manifest(tmp_path: Path) -> Path:
    """A TrainingRun long enough (4 epochs of 16-case minibatches) to be interrupted mid-epoch."""
    pc, tr = manifests(make_rows(n_per_intent=80), epochs=EPOCHS, batch_size=16)
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump_all([pc, tr]))
    return f


def run_cmd(f: Path, db: str, run_id: str, out: Path) -> list[str]:
    """``agentensor run`` exactly as a user or a Job's pod runs it."""
    return [
        sys.executable,
        "-m",
        "agentensor_cli",
        "run",
        "-f",
        str(f),
        "--db",
        db,
        "--run-id",
        run_id,
        "--out",
        str(out),
    ]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", **extra}


def reference_run(f: Path, db: str, out: Path) -> dict[str, Any]:
    """An uninterrupted run of the same manifest; returns its summary.json."""
    done = subprocess.run(
        run_cmd(f, db, "reference", out), env=env(), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary
