"""The command-line half of the bad-input catalogue, through the real ``agentensor`` commands.

Every entry of ``CLI_CATALOGUE`` runs its command (``run`` unless the entry names another) and
must exit 2 within seconds with ``error: ...`` (or typer's ``Invalid value for ...``) naming the
file, field or option, and no traceback. Full-disk entries run on a real 4 MiB tmpfs (needs root, as
the machine's CI has; skipped elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentensor_store import Store

from .catalogue import CLI_CATALOGUE, CliEntry

REPO = Path(__file__).resolve().parents[2]


def agentensor_run(
    args: list[str], timeout: float = 600, command: tuple[str, ...] = ("run",)
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "AGENTENSOR_DB_OUTAGE_RETRY_SECONDS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "agentensor_cli", *command, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_cli_catalogue_has_a_case_per_class() -> None:
    assert len(CLI_CATALOGUE) >= 15
    assert len({e.id for e in CLI_CATALOGUE}) == len(CLI_CATALOGUE)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id) for e in CLI_CATALOGUE])
def test_cli_bad_input_exits_2_with_a_message(entry: CliEntry, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where = request.getfixturevalue("tiny_fs") if entry.tiny_fs else tmp_path
    db = f"sqlite:///{tmp_path / 'agentensor.db'}"
    args = entry.setup(where, db)
    started = time.monotonic()
    res = agentensor_run(args, command=entry.command)
    elapsed = time.monotonic() - started
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-2000:]
    message = " ".join(res.stderr.split())
    # our own messages start with "error: "; typer's for an option out of its range with "Invalid value"
    assert ("error: " in message or "Invalid value for" in message) and entry.needle in message, message
    assert elapsed < 120, f"took {elapsed:.0f} s"  # no hang, no retrying a permanent error for minutes


def test_out_naming_a_file_refuses_before_running(tmp_path: Path) -> None:
    db = tmp_path / "agentensor.db"
    (tmp_path / "results").write_text("keep me\n")
    entry = next(e for e in CLI_CATALOGUE if e.id == "out-is-a-file")
    res = agentensor_run(entry.setup(tmp_path, f"sqlite:///{db}"))
    assert res.returncode == 2
    assert (tmp_path / "results").read_text() == "keep me\n"
    assert not db.exists(), "nothing ran: the database was not even created"


def test_out_on_a_full_disk_keeps_the_run(tiny_fs: Path, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'agentensor.db'}"
    entry = next(e for e in CLI_CATALOGUE if e.id == "out-disk-full")
    res = agentensor_run(entry.setup(tiny_fs, db_url))
    assert res.returncode == 2, res.stderr
    run_id = res.stderr.split("the run is stored as ")[-1].split()[0]
    store = Store(db_url)
    try:
        run = store.get_run(run_id)
        assert run is not None and run.phase == "Succeeded", "the results are in the store, named in the message"
    finally:
        store.close()


def render_cli_table() -> str:
    """The Markdown table of docs/reliability.md's command-line bad-input section."""
    lines = ["| # | command-line input | exit | message contains |", "| --- | --- | --- | --- |"]
    for i, e in enumerate(CLI_CATALOGUE, start=1):
        what = e.what if e.command == ("run",) else f"`agentensor {' '.join(e.command)}`: {e.what}"
        lines.append(f"| {i} | {what} (`{e.id}`) | 2 | `{e.needle.replace('|', chr(92) + '|')}` |")
    return "\n".join(lines) + "\n"


def test_docs_table_matches_cli_catalogue() -> None:
    text = (REPO / "docs" / "reliability.md").read_text()
    assert render_cli_table() in text, (
        "regenerate: python -c 'from tests.reliability.test_cli_bad_input import render_cli_table as r; print(r())'"
    )
