"""Revision 0004 (tenancy) on a database that already holds runs, versions and checkpoints.

Before 0004 the versions of a workflow key were shared by every namespace. Upgrading gives each
version the namespaces of the runs that used it (a copy per namespace, same number and text),
points each checkpoint at its run's namespace's copy, and leaves versions no run used to every
namespace that ran the workflow, else to ``default``. Downgrading merges them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, create_engine, insert, select
from sqlalchemy.pool import NullPool

from agentensor_api import config_checksum
from agentensor_store import Store

BEFORE = "0003"
TENANCY = "0004"


@pytest.fixture
def old_store(fresh_url: str) -> Iterator[Store]:
    s = Store(fresh_url)
    s.upgrade(BEFORE)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    e = create_engine(fresh_url, poolclass=NullPool)
    try:
        yield e
    finally:
        e.dispose()


def _now(engine: Engine) -> datetime:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now


def _text(n: int) -> dict[str, str]:
    return {"system": f"text {n}"}


def _seed_0003(engine: Engine) -> None:
    """Rows as a pre-0004 store wrote them: workflow 'shared' used from team-a and team-b.

    versions of 'shared': 1 inline (no run; both namespaces ran the workflow), 2 checkpoint of
    a1 (team-a), 3 checkpoint of b1 (team-b), 4 registered by a1 and, deduplicated, checkpointed
    by b1 too; 'lonely' 1 inline, ran only in team-c; 'solo' 1, never run.
    """
    meta = MetaData()
    meta.reflect(engine)
    runs, versions, checkpoints = (meta.tables[f"agentensor_{t}"] for t in ("runs", "prompt_versions", "checkpoints"))
    now = _now(engine)
    run = {"kind": "TrainingRun", "phase": "Succeeded", "spec": {}, "status": {}, "created_at": now, "updated_at": now}
    version = {"parameters": {}, "created_at": now}
    with engine.begin() as conn:
        for rid, ns, wf in (("a1", "team-a", "shared"), ("b1", "team-b", "shared"), ("c1", "team-c", "lonely")):
            conn.execute(insert(runs).values(id=rid, namespace=ns, name=rid, workflow=wf, **run))
        for vid, wf, number, source, run_id in (
            (1, "shared", 1, "inline", None),
            (2, "shared", 2, "checkpoint", "a1"),
            (3, "shared", 3, "checkpoint", "b1"),
            (4, "shared", 4, "checkpoint", "a1"),
            (5, "lonely", 1, "inline", None),
            (6, "solo", 1, "inline", None),
        ):
            prompts = _text(vid)
            checksum = config_checksum(prompts, {})
            conn.execute(
                insert(versions).values(
                    id=vid, workflow=wf, version=number, checksum=checksum, prompts=prompts, source=source,
                    source_run_id=run_id, **version,
                )
            )  # fmt: skip
        for cid, rid, epoch, vid in ((1, "a1", 1, 2), (2, "a1", 2, 4), (3, "b1", 1, 3), (4, "b1", 2, 4)):
            conn.execute(
                insert(checkpoints).values(
                    id=cid, run_id=rid, epoch=epoch, version_id=vid, score=0.5, scores={}, extra={}, created_at=now
                )
            )
    if engine.dialect.name == "postgresql":  # explicit ids above: move the sequences past them
        with engine.begin() as conn:
            for table in ("agentensor_prompt_versions", "agentensor_checkpoints"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)")


def _numbers(store: Store, workflow: str, namespace: str) -> dict[int, str]:
    return {v.version: v.prompts["system"] for v in store.list_versions(workflow, namespace=namespace)}


def test_upgrade_gives_existing_versions_the_namespaces_of_their_runs(old_store: Store, engine: Engine) -> None:
    _seed_0003(engine)
    old_store.upgrade()
    assert old_store.current_revision() == TENANCY
    assert old_store.schema_diff() == []

    assert _numbers(old_store, "shared", "team-a") == {1: "text 1", 2: "text 2", 4: "text 4"}
    assert _numbers(old_store, "shared", "team-b") == {1: "text 1", 3: "text 3", 4: "text 4"}
    assert _numbers(old_store, "shared", "default") == {}
    assert _numbers(old_store, "lonely", "team-c") == {1: "text 5"}
    assert _numbers(old_store, "solo", "default") == {1: "text 6"}

    for run_id, namespace in (("a1", "team-a"), ("b1", "team-b")):
        cps = old_store.list_checkpoints(run_id=run_id)
        assert [(c.epoch, c.namespace) for c in cps] == [(1, namespace), (2, namespace)]
    assert [c.run_id for c in old_store.list_checkpoints(workflow="shared", namespace="team-b")] == ["b1", "b1"]
    b1_v4 = old_store.list_checkpoints(run_id="b1")[1]
    assert b1_v4.version == 4 and b1_v4.prompts == _text(4)

    # numbering goes on independently per namespace
    a5 = old_store.register_version("shared", {"system": "a5"}, {}, namespace="team-a")
    b5 = old_store.register_version("shared", {"system": "b5"}, {}, namespace="team-b")
    assert (a5.version, b5.version) == (5, 5)


def test_downgrade_merges_namespaces_by_checksum_and_renumbers_clashes(old_store: Store, engine: Engine) -> None:
    _seed_0003(engine)
    old_store.upgrade()
    a5 = old_store.register_version("shared", {"system": "a5"}, {}, namespace="team-a")
    b5 = old_store.register_version("shared", {"system": "b5"}, {}, namespace="team-b")

    old_store.downgrade(BEFORE)
    meta = MetaData()
    meta.reflect(engine)
    versions, checkpoints = meta.tables["agentensor_prompt_versions"], meta.tables["agentensor_checkpoints"]
    with engine.connect() as conn:
        rows = conn.execute(select(versions.c.workflow, versions.c.version, versions.c.checksum)).all()
        cps = conn.execute(
            select(checkpoints.c.run_id, checkpoints.c.epoch, versions.c.checksum).join(
                versions, versions.c.id == checkpoints.c.version_id
            )
        ).all()
    shared = {number: checksum for wf, number, checksum in rows if wf == "shared"}
    assert len([r for r in rows if r[0] == "shared"]) == len(shared) == 6, rows  # 1..4 once each, a5, b5
    assert {shared[n] for n in (1, 2, 3, 4)} == {config_checksum(_text(n), {}) for n in (1, 2, 3, 4)}
    assert shared[5] == a5.checksum and shared[6] == b5.checksum  # the older keeps 5, the other after the highest
    expected: dict[tuple[Any, ...], str] = {
        ("a1", 1): config_checksum(_text(2), {}),
        ("a1", 2): config_checksum(_text(4), {}),
        ("b1", 1): config_checksum(_text(3), {}),
        ("b1", 2): config_checksum(_text(4), {}),
    }
    assert {(r, e): c for r, e, c in cps} == expected

    old_store.upgrade()  # and up again
    assert old_store.schema_diff() == []
    assert set(_numbers(old_store, "shared", "team-a")) == {1, 2, 4, 5, 6}
