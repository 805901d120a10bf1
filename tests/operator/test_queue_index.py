"""The sorted queue index (QueueIndex) and the operator's change hub (Changes, JobCache)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from agentensor_operator import _changes as c
from agentensor_operator import _decisions as d


def entry(created: str, uid: str, slots: int = 1) -> d.QueueEntry:
    return d.QueueEntry(created=created, uid=uid, slots=slots)


def test_positions_follow_creation_order_as_runs_come_and_go() -> None:
    q = d.QueueIndex()
    rng = random.Random(7)
    entries = [entry(f"2026-01-01T00:00:{i:02d}Z", f"u{i:02d}") for i in range(40)]
    for e in rng.sample(entries, len(entries)):
        q.put(e.uid, e)
    assert [q.position(e.uid) for e in entries] == list(range(40))
    assert q.discard("u05") is True
    assert q.discard("u05") is False
    assert q.position("u06") == 5
    assert q.position("missing") == len(q) == 39
    assert q.put("u10", None) is True  # no longer waiting (admitted, suspended, refused)
    assert "u10" not in q and q.head(3) == ["u00", "u01", "u02"]
    assert q.head(3, skip={"u01"}) == ["u00", "u02", "u03"]


def test_same_creation_second_orders_by_uid_and_matches_queue_position() -> None:
    q = d.QueueIndex()
    es = [entry("2026-01-01T00:00:00Z", u) for u in ("c", "a", "b")]
    for e in es:
        q.put(e.uid, e)
    for e in es:
        assert q.position(e.uid) == d.queue_position(es, e.uid)


@pytest.mark.parametrize(
    ("uid", "in_use", "cap", "skip", "admit", "position"),
    [
        pytest.param("a", 0, 1, set(), True, 0, id="head-fits"),
        pytest.param("b", 0, 1, set(), False, 1, id="second-waits"),
        pytest.param("b", 1, 3, {"a"}, True, 1, id="ahead-admitted-already"),
        pytest.param("c", 0, 3, set(), False, 2, id="gang-of-two-ahead"),
        pytest.param("c", 0, 4, set(), True, 2, id="gang-fits"),
        pytest.param("a", 3, 3, set(), False, 0, id="cap-full"),
    ],
)
def test_admission_matches_the_pure_decision(
    uid: str, in_use: int, cap: int, skip: set[str], admit: bool, position: int
) -> None:
    es = [entry("t1", "a"), entry("t2", "b", slots=2), entry("t3", "c")]
    q = d.QueueIndex()
    for e in es:
        q.put(e.uid, e)
    got = q.admission(uid, in_use=in_use, cap=cap, slots=1, skip=skip)
    assert (got.admit, got.position) == (admit, position)
    if not skip:
        assert got.admit == d.admission(es, uid, active=in_use, cap=cap).admit


def job(uid: str, name: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {d.LABEL_RUN_UID: uid}},
        "spec": {"parallelism": 1},
        "status": status,
    }


def test_job_cache_counts_active_jobs_as_they_change_and_go() -> None:
    jobs = c.JobCache()
    assert jobs.seen(job("r1", "j1")) == ("r1", False)
    assert jobs.seen(job("r2", "j2")) == ("r2", False)
    assert jobs.active() == 2
    done = job("r1", "j1", conditions=[{"type": "Complete", "status": "True"}])
    assert jobs.seen(done) == ("r1", True)  # it stopped holding a slot
    assert jobs.active() == 1 and jobs.states("r1")[0].phase == "Succeeded"
    assert jobs.gone(job("r2", "j2")) == ("r2", True)
    assert jobs.active() == 0 and jobs.of("r2") == [] and jobs.has("r1")


def test_shard_run_ids_wake_their_run() -> None:
    assert c.run_uid_of("0b7e-uid-s3") == "0b7e-uid"
    assert c.run_uid_of("0b7e-uid") == "0b7e-uid"


def test_changes_wake_a_waiting_daemon_and_reserved_slots_count() -> None:
    async def scenario() -> None:
        changes = c.Changes()
        stopped = asyncio.Event()  # stands in for kopf's DaemonStopped (has .wait())
        changes.register("r1")
        waiter = asyncio.create_task(changes.wait("r1", stopped, timeout_seconds=60))
        await asyncio.sleep(0)
        changes.notified(["r1-s0"])
        await asyncio.wait_for(waiter, 10)
        changes.reserved["r2"] = 2
        assert changes.in_use() == 2
        changes.jobs.seen(job("r2", "j2a"))
        assert changes.in_use() == 1  # its Jobs are seen: they count themselves

    asyncio.run(scenario())


def test_a_stale_queued_event_does_not_requeue_an_admitted_run() -> None:
    changes = c.Changes()
    e = entry("t1", "r1")
    changes.run_seen("r1", 1, False, e)
    assert "r1" in changes.queue
    changes.reserved["r1"] = 1
    changes.run_seen("r1", 1, False, e)
    assert "r1" not in changes.queue


def test_job_resync_drops_jobs_whose_deletion_the_watch_missed() -> None:
    jobs = c.JobCache()
    jobs.seen(job("r1", "j1"))
    jobs.seen(job("r2", "j2"))
    assert jobs.resync([job("r2", "j2")]) == {"r1"}
    assert jobs.active() == 1 and not jobs.has("r1")
    assert jobs.resync([job("r2", "j2")]) == set()


@pytest.mark.parametrize(
    ("uid", "cap", "reserved", "beyond"),
    [
        pytest.param("a", 1, 0, False, id="head-under-cap"),
        pytest.param("b", 1, 0, True, id="second-at-cap-1"),
        pytest.param("b", 1, 1, False, id="reservation-ahead-moves-it-up"),
        pytest.param("c", 2, 0, True, id="third-at-cap-2"),
        pytest.param("c", 3, 0, False, id="third-under-cap-3"),
        pytest.param("missing", 1, 0, False, id="not-queued-never-beyond"),
        pytest.param("a", 0, 0, True, id="cap-zero"),
    ],
)
def test_beyond_cap_is_the_queue_depth_check(uid: str, cap: int, reserved: int, beyond: bool) -> None:
    q = d.QueueIndex()
    for e in (entry("t1", "a"), entry("t2", "b"), entry("t3", "c")):
        q.put(e.uid, e)
    assert q.beyond_cap(uid, cap=cap, reserved=reserved) is beyond
