"""The database goes away for 30 s mid-run: the runner retries with backoff and finishes.

The outage is injected between the runner process and PostgreSQL by a TCP proxy that aborts
every connection and refuses new ones (what a client sees when the server stops), so the shared
PostgreSQL server keeps serving the rest of the suite. Nothing is lost: checkpoints are epochs
0..N once each and the best version equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from agentensor_store import Store
from tests._wait import processes_alive, wait_for

from ._proxy import CuttableProxy
from ._runs import EPOCHS, REPO, env, reference_run, run_cmd, write_manifest

OUTAGE_SECONDS = 30.0

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_runner_rides_out_a_30s_database_outage(tmp_path: Path, pg_url: str) -> None:
    f = write_manifest(tmp_path)
    reference = reference_run(f, pg_url, tmp_path / "ref")

    url = make_url(pg_url)
    direct = Store(pg_url)
    with CuttableProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        proc = subprocess.Popen(
            run_cmd(f, via_proxy, "victim", tmp_path / "victim"),
            env=env(AGENTENSOR_DB_OUTAGE_RETRY_SECONDS="120"),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda: max((c.epoch for c in direct.list_checkpoints(run_id="victim")), default=-1) >= 1,
            300,
            "a checkpoint of epoch 1 before the outage",
            interval=0.05,
            alive=processes_alive(proc),
        )
        epoch_at_cut = max(c.epoch for c in direct.list_checkpoints(run_id="victim"))
        proxy.cut()
        cut_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        assert proc.poll() is None, "the runner must wait for the database, not fail"
        proxy.restore()
        restored_at = time.monotonic()
        _, stderr = proc.communicate(timeout=600)
        finished_at = time.monotonic()
    assert proc.returncode == 0, stderr[-3000:]
    retries = stderr.count("database unavailable")
    assert retries >= 2, stderr[-2000:]
    victim = json.loads((tmp_path / "victim" / "summary.json").read_text())
    cps = direct.list_checkpoints(run_id="victim")
    assert [c.epoch for c in cps] == list(range(EPOCHS + 1)), "no checkpoint lost or duplicated"
    assert victim["bestChecksum"] == reference["bestChecksum"]
    assert victim["holdout"] == reference["holdout"]
    rows = direct.list_cases("victim")
    assert len({(r.stage, r.case_id) for r in rows}) == len(rows)
    direct.close()
    print(
        f"outage {restored_at - cut_at:.1f} s after epoch {epoch_at_cut}; {retries} retries logged; "
        f"finished {finished_at - restored_at:.1f} s after the database came back"
    )
