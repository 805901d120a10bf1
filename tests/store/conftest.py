"""Fixtures for the store tests: SQLite files and throw-away PostgreSQL databases.

PostgreSQL comes from ``$AGENTENSOR_TEST_PG_URL`` (default: local trust auth). Every session
creates its own ``agentensor_test_<random>`` databases through the ``postgres`` maintenance
database and drops them at teardown, so parallel CI runs never collide. An unreachable server
FAILS the PostgreSQL tests unless ``AGENTENSOR_SKIP_PG=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from agentensor_store import Store

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TABLES = (
    "agentensor_checkpoints",
    "agentensor_case_results",
    "agentensor_prompt_versions",
    "agentensor_runs",
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

CreateDb = Callable[[], str]


def _pg_base_url() -> URL:
    return make_url(os.environ.get("AGENTENSOR_TEST_PG_URL", DEFAULT_PG_URL))


def url_string(url: URL) -> str:
    """The full URL (password included) for test plumbing only; never printed."""
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """The maintenance database URL, after checking the server answers."""
    if os.environ.get("AGENTENSOR_SKIP_PG") == "1":
        pytest.skip("AGENTENSOR_SKIP_PG=1: PostgreSQL tests skipped")
    admin = _pg_base_url().set(database="postgres")
    engine = create_engine(admin, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        pytest.fail(
            f"PostgreSQL at {admin.render_as_string(hide_password=True)} is unreachable "
            f"({type(getattr(e, 'orig', None) or e).__name__}); start it or set "
            "AGENTENSOR_SKIP_PG=1",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return admin


@pytest.fixture(scope="session")
def create_pg_database(pg_admin_url: URL) -> Iterator[CreateDb]:
    """Factory: a new empty database per call (URL string); all are dropped at session end."""
    engine = create_engine(pg_admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create() -> str:
        name = f"agentensor_test_{uuid.uuid4().hex[:16]}"
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return url_string(pg_admin_url.set(database=name))

    def drop(name: str) -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        yield create
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:  # each DROP takes ~0.3 s
            list(pool.map(drop, created))
        engine.dispose()


@pytest.fixture(scope="session")
def pg_session_url(create_pg_database: CreateDb) -> str:
    """One migrated database shared by the conformance tests (truncated before each test)."""
    url = create_pg_database()
    store = Store(url)
    try:
        store.upgrade()
    finally:
        store.close()
    return url


def _truncate(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of ``backend`` (full URL, password included)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        store = Store(url)
        try:
            store.upgrade()
        finally:
            store.close()
        return url
    url = str(request.getfixturevalue("pg_session_url"))
    _truncate(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A brand-new database of ``backend`` with no tables at all."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    create: CreateDb = request.getfixturevalue("create_pg_database")
    return create()
