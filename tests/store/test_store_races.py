"""register_version under contention: threads and processes, SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

import agentensor_store._repos.versions
from agentensor_api import config_checksum
from agentensor_store import Store, VersionConflictError, VersionRecord
from tests.store._store_workers import register_versions

WF = "race-wf"


def _in_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    return results


def test_threads_registering_distinct_configs_get_distinct_numbers(store_url: str) -> None:
    threads, per_thread = 8, 10
    stores = [Store(store_url) for _ in range(threads)]

    def work(i: int) -> list[VersionRecord]:
        s = stores[i]
        return [s.register_version(WF, {"system": f"t{i} p{j}"}, {"j": j}) for j in range(per_thread)]

    try:
        per_worker = _in_threads(threads, work)
        versions = stores[0].list_versions(WF)
    finally:
        for s in stores:
            s.close()
    got = [r for recs in per_worker for r in recs]
    total = threads * per_thread
    assert sorted(r.version for r in got) == list(range(1, total + 1))
    assert [v.version for v in versions] == list(range(1, total + 1))
    assert len({v.checksum for v in versions}) == total
    assert {(r.id, r.version, r.checksum) for r in got} == {(v.id, v.version, v.checksum) for v in versions}
    for i, recs in enumerate(per_worker):  # each worker's own calls come back in order
        assert [r.prompts for r in recs] == [{"system": f"t{i} p{j}"} for j in range(per_thread)]
        assert [r.version for r in recs] == sorted(r.version for r in recs)


def test_threads_registering_the_same_config_share_one_version(store: Store) -> None:
    got = _in_threads(8, lambda _i: store.register_version(WF, {"system": "same"}, {"t": 1}))
    assert len({(r.id, r.version, r.checksum) for r in got}) == 1
    assert got[0].version == 1
    assert store.list_versions(WF) == [got[0]]


def test_processes_race(store_url: str) -> None:
    procs, per_proc = 4, 10
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=register_versions, args=(store_url, WF, w, per_proc, barrier, results)) for w in range(procs)
    ]
    for p in workers:
        p.start()
    outcomes: list[tuple[int, list[tuple[str, int, int]], str | None]] = []
    try:
        for _ in workers:
            outcomes.append(results.get(timeout=60))
    except queue.Empty:
        pass
    finally:
        for p in workers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    assert len(outcomes) == procs, "a worker died without reporting"
    assert [err for _, _, err in outcomes if err] == []
    assert all(p.exitcode == 0 for p in workers)

    store = Store(store_url)
    try:
        versions = store.list_versions(WF)
    finally:
        store.close()
    total = procs * per_proc + 1  # distinct configs + the shared one
    assert [v.version for v in versions] == list(range(1, total + 1))
    assert len({v.checksum for v in versions}) == total
    shared = {tuple(out[-1]) for _, out, _ in outcomes}
    assert len(shared) == 1, "every process must get the same shared version"
    distinct = [row for _, out, _ in outcomes for row in out[:-1]]
    assert len({version for _, version, _ in distinct}) == procs * per_proc


def _interfere(store: Store, checksum: str, times: int) -> list[int]:
    """Before our INSERT, slip in a row with the same checksum on the same connection.

    The INSERT then violates UNIQUE(namespace, workflow, checksum), exactly as when another writer wins
    the race; the transaction rolls back (taking the intruder with it) and the call retries.
    """
    fired: list[int] = []

    @event.listens_for(store._engine, "before_cursor_execute")
    def intrude(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if len(fired) < times and statement.startswith("INSERT INTO agentensor_prompt_versions"):
            fired.append(1)
            cursor.execute(
                "INSERT INTO agentensor_prompt_versions (namespace, workflow, version, checksum, prompts, "
                f"parameters, source, created_at) VALUES ('default', '{WF}', 999, '{checksum}', '{{}}', "
                "'{}', 'import', CURRENT_TIMESTAMP)"
            )

    return fired


def test_lost_race_is_retried(store: Store) -> None:
    prompts: dict[str, str] = {"system": "contended"}
    fired = _interfere(store, config_checksum(prompts, {}), times=2)
    rec = store.register_version(WF, prompts, {}, source="checkpoint")
    assert len(fired) == 2
    assert (rec.version, rec.source) == (1, "checkpoint")
    assert store.list_versions(WF) == [rec]


def test_retries_are_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agentensor_store._repos.versions, "REGISTER_VERSION_ATTEMPTS", 3)
    prompts: dict[str, str] = {"system": "always loses"}
    fired = _interfere(store, config_checksum(prompts, {}), times=100)
    with pytest.raises(VersionConflictError, match="3 times") as info:
        store.register_version(WF, prompts, {})
    assert len(fired) == 3
    assert isinstance(info.value.__cause__, IntegrityError)
    assert store.list_versions(WF) == []
