"""The runner process's lifecycle (agentensor_runner.execution.lifecycle): exit codes, the SIGTERM
deadline setting, and the deadline itself firing on a real process whose unwind hangs.

The normal SIGTERM path (a real ``agentensor runner`` exits 143 within seconds, its finished cases
recorded) is tested end to end in tests/cli/test_runner_sigterm.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentensor_api import Phase, RunStatus
from agentensor_cli._operator_cmds import EXIT_INVALID as CLI_EXIT_INVALID
from agentensor_runner.execution import lifecycle


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert (lifecycle.EXIT_SUCCEEDED, lifecycle.EXIT_FAILED, lifecycle.EXIT_INVALID) == (0, 1, 2)
    assert lifecycle.EXIT_TERMINATED == 143 == 128 + signal.SIGTERM
    assert CLI_EXIT_INVALID == lifecycle.EXIT_INVALID  # repeated in the CLI to fail before the runner's imports


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        pytest.param(Phase.SUCCEEDED, 0, id="succeeded"),
        pytest.param(Phase.FAILED, 1, id="failed"),
        pytest.param(Phase.RUNNING, 1, id="not-finished-is-not-success"),
    ],
)
def test_exit_code_follows_the_phase(phase: str, code: int) -> None:
    assert lifecycle.exit_code(RunStatus(phase=phase)) == code


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        pytest.param(None, 20.0, id="unset"),
        pytest.param("", 20.0, id="empty"),
        pytest.param("5", 5.0, id="seconds"),
        pytest.param("0.5", 0.5, id="fraction"),
        pytest.param("0", 20.0, id="zero-means-default"),
        pytest.param("-3", 20.0, id="negative-means-default"),
        pytest.param("soon", 20.0, id="not-a-number-means-default"),
    ],
)
def test_sigterm_deadline_seconds(raw: str | None, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    if raw is None:
        monkeypatch.delenv(lifecycle.SIGTERM_DEADLINE_ENV, raising=False)
    else:
        monkeypatch.setenv(lifecycle.SIGTERM_DEADLINE_ENV, raw)
    assert lifecycle.sigterm_deadline_seconds() == seconds


HANGING_UNWIND = """
import asyncio, time
from agentensor_runner.execution import lifecycle

async def work():
    print("ready", flush=True)  # the SIGTERM handler is in place once work runs
    try:
        await asyncio.sleep(600)
    except asyncio.CancelledError:
        time.sleep(600)  # an unwind that never ends (a store riding out an outage)
        raise

with lifecycle.exit_at_once_after_sigterm():
    lifecycle.run_until_sigterm(work())
"""


@pytest.mark.slow
def test_an_unwind_past_the_deadline_exits_143_at_the_deadline(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(HANGING_UNWIND)
    env = {**os.environ, lifecycle.SIGTERM_DEADLINE_ENV: "1"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    assert 1 <= took < 10, took
    assert stderr.decode().splitlines() == [
        "SIGTERM: stopping the run (finished cases stay recorded); exit 143 within 1 s",
        "SIGTERM: the unwind took longer than 1 s; exiting 143 now",
    ]
