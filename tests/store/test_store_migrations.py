"""Alembic revisions: base <-> head on SQLite and PostgreSQL, and models == migrated schema."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from agentensor_store import VERSION_TABLE, CaseRow, Store
from agentensor_store._migrate import alembic_config, migrations_dir

AGENTENSOR_TABLES = {
    "agentensor_runs",
    "agentensor_case_results",
    "agentensor_prompt_versions",
    "agentensor_checkpoints",
}


@pytest.fixture
def fresh_store(fresh_url: str) -> Iterator[Store]:
    s = Store(fresh_url)
    try:
        yield s
    finally:
        s.close()


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _exec(url: str, *statements: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))
    finally:
        engine.dispose()


def _revisions() -> list[tuple[str, str]]:
    """(revision, down_revision or "base") from oldest to newest."""
    script = ScriptDirectory.from_config(alembic_config())
    out = []
    for rev in reversed(list(script.walk_revisions())):
        down = rev.down_revision
        assert down is None or isinstance(down, str), "branching history is not expected"
        out.append((rev.revision, down or "base"))
    return out


def _foreign_tables(url: str) -> None:
    """Tables other libraries keep in the same database (must be invisible to us)."""
    _exec(
        url,
        "CREATE TABLE checkpoints (thread_id VARCHAR(64) PRIMARY KEY, data TEXT)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version (version_num) VALUES ('optuna-v3.2.0')",
    )


def test_migrations_are_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert Store.head_revision() == _revisions()[-1][0]


def test_upgrade_downgrade_cycle_keeps_data(fresh_store: Store, fresh_url: str) -> None:
    _foreign_tables(fresh_url)
    assert fresh_store.current_revision() is None
    fresh_store.upgrade()
    head = Store.head_revision()
    assert fresh_store.current_revision() == head
    assert AGENTENSOR_TABLES | {VERSION_TABLE} <= _tables(fresh_url)

    fresh_store.create_run(run_id="r", kind="EvaluationRun", namespace="n", name="e", workflow="wf", spec={})
    v = fresh_store.register_version("wf", {"s": "x"}, {}, namespace="n")
    fresh_store.record_cases("r", [CaseRow(stage="eval", case_id="1", thread_id="t", input={})])
    fresh_store.add_checkpoint("r", epoch=0, version=v, score=1.0, scores={})

    fresh_store.upgrade()  # at head already: a no-op that keeps the data
    fresh_store.upgrade(str(head))
    assert fresh_store.get_run("r") is not None
    assert fresh_store.list_versions("wf", namespace="n") == [v]
    assert len(fresh_store.list_cases("r")) == 1 and len(fresh_store.list_checkpoints()) == 1

    fresh_store.downgrade("base")
    assert fresh_store.current_revision() is None
    left = _tables(fresh_url)
    assert not (AGENTENSOR_TABLES & left)
    assert {"checkpoints", "alembic_version"} <= left  # other libraries' tables untouched

    fresh_store.upgrade()
    assert fresh_store.current_revision() == head
    assert fresh_store.find_runs() == [] and fresh_store.list_versions("wf") == []
    v1 = fresh_store.register_version("wf", {"s": "x"}, {})
    assert v1.version == 1

    engine = create_engine(fresh_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            optuna = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        engine.dispose()
    assert optuna == ["optuna-v3.2.0"]


def test_every_revision_steps_up_and_down(fresh_store: Store) -> None:
    """Stairway: each revision upgrades, downgrades to its parent and upgrades again."""
    for revision, down in _revisions():
        fresh_store.upgrade(revision)
        assert fresh_store.current_revision() == revision
        fresh_store.downgrade(down)
        assert fresh_store.current_revision() == (None if down == "base" else down)
        fresh_store.upgrade(revision)
    assert fresh_store.current_revision() == Store.head_revision()
    assert fresh_store.schema_diff() == []


def test_models_match_migrated_schema(fresh_store: Store, fresh_url: str) -> None:
    _foreign_tables(fresh_url)
    fresh_store.upgrade()
    assert fresh_store.schema_diff() == []


def test_schema_diff_detects_drift(fresh_store: Store, fresh_url: str) -> None:
    fresh_store.upgrade()
    _exec(fresh_url, "DROP INDEX ix_agentensor_checkpoints_version_id")
    diff = fresh_store.schema_diff()
    assert any(d[0] == "add_index" and d[1].name == "ix_agentensor_checkpoints_version_id" for d in diff), diff


def test_concurrent_upgrades(fresh_url: str) -> None:
    """Operator replicas and runner pods may all call upgrade() at start-up."""
    stores = [Store(fresh_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def go(s: Store) -> None:
        barrier.wait()
        try:
            s.upgrade()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert {s.current_revision() for s in stores} == {Store.head_revision()}
        assert stores[0].schema_diff() == []
    finally:
        for s in stores:
            s.close()


def test_offline_sql(backend: str) -> None:
    url = "sqlite:///unused.db" if backend == "sqlite" else "postgresql+psycopg://u:p%40ss@h/db"
    cfg = alembic_config(url=url)
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    sql = cfg.output_buffer.getvalue()
    assert "CREATE TABLE agentensor_runs" in sql
    assert f"CREATE TABLE {VERSION_TABLE}" in sql
    assert ("JSONB" in sql) is (backend == "postgres")


def test_wheel_layout_uses_packaged_migrations(tmp_path: Path) -> None:
    """A wheel ships migrations/ as agentensor_store/_migrations; upgrade() must find it."""
    import agentensor_store

    pkg = Path(agentensor_store.__file__).resolve().parent
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(pkg, site / "agentensor_store", ignore=ignore)
    shutil.copytree(migrations_dir(), site / "agentensor_store" / "_migrations", ignore=ignore)
    script = (
        "import sys, agentensor_store._migrate as m\n"
        "from agentensor_store import Store\n"
        f"assert str(m.migrations_dir()) == {str(site / 'agentensor_store' / '_migrations')!r}\n"
        f"s = Store({'sqlite:///' + str(tmp_path / 'w.db')!r})\n"
        "s.upgrade(); print(s.current_revision(), len(s.schema_diff())); s.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(Store.head_revision()), "0"]
