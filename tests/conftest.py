"""Shared fixtures: stores on real SQLite and real PostgreSQL, and the session's real API server.

PostgreSQL comes from ``$AGENTENSOR_TEST_PG_URL`` (default: local trust auth). Tests get their own
``agentensor_test_<random>`` databases, created through the ``postgres`` maintenance database and
dropped at teardown, so parallel runs never collide. When the server is unreachable every
PostgreSQL test FAILS in CI (``CI=true``) and is SKIPPED elsewhere, the reason naming the URL
(password hidden) and the error; ``AGENTENSOR_SKIP_PG=1`` skips them on purpose.

Fixtures, by what a test needs:

- ``store``: a migrated, empty :class:`~agentensor_store.Store` on each backend (``backend``:
  ``sqlite``, ``postgres``); ``store_url`` is its URL. SQLite is a copy of one database migrated
  once per session (``sqlite_template``); PostgreSQL shares one migrated database per session,
  truncated before each test.
- ``fresh_url`` (alias ``db_url``): a brand-new database of each backend with no tables at all;
  ``module_db_url``: one such database for a whole module, on the ``one_backend`` backend.
- Tests marked ``one_backend`` (not about the store: a whole training or evaluation loop, a command
  on a database) get ``backend`` once: ``postgres``, the production backend (``sqlite`` under
  ``AGENTENSOR_SKIP_PG=1``). The store's own tests (tests/store) run on both; the choice is made in
  :func:`pytest_generate_tests`.
- ``pg_url``: a brand-new PostgreSQL database only; ``create_pg_database``: a factory of them.
- ``k8s`` / ``k8s_with_crds``: one real API server (EnvTest) per session, shared by tests/k8s,
  tests/helm and tests/reliability.

Parallel runs (pytest-xdist, ``make test``): every session fixture above is per worker (its own
databases, its own API server on free ports, its own temporary folders). A test module is one unit
of work, so its module-scoped fixtures are built once and its tests keep their order; the tests of
tests/llm_real, which share one model server, are one unit (tests/_xdist.py).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from agentensor_store import VERSION_TABLE, Store
from tests._wait import wait_for
from tests.k8s.envtest import EnvTest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("AGENTENSOR_TEST_PG_URL", DEFAULT_PG_URL)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# Workflow entrypoints and python evaluators load only allow-listed modules (docs/security.md);
# the tests' own sample workflows and scorers live under `tests`. Subprocesses inherit this.
os.environ.setdefault("AGENTENSOR_EVALUATOR_ALLOWLIST", "tests")

CreateDb = Callable[[], str]
"""Factory of new, empty PostgreSQL databases; returns the full URL (password included)."""


def url_string(url: URL) -> str:
    """The full URL (password included) for test plumbing only; never printed."""
    return url.render_as_string(hide_password=False)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


# -- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """The maintenance database URL, once the server answers (else fail in CI, skip elsewhere)."""
    if os.environ.get("AGENTENSOR_SKIP_PG") == "1":
        pytest.skip("AGENTENSOR_SKIP_PG=1: PostgreSQL tests skipped")
    admin = make_url(PG_URL).set(database="postgres")
    engine = create_engine(admin, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        why = (
            f"PostgreSQL at {admin.render_as_string(hide_password=True)} is unreachable "
            f"({type(getattr(e, 'orig', None) or e).__name__}); start it, point AGENTENSOR_TEST_PG_URL "
            "at one, or set AGENTENSOR_SKIP_PG=1"
        )
        if _in_ci():
            pytest.fail(f"CI=true: {why}", pytrace=False)
        pytest.skip(why)
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


@pytest.fixture
def pg_url(create_pg_database: CreateDb) -> str:
    """URL of a fresh, uniquely named PostgreSQL database with no tables (dropped at session end)."""
    return create_pg_database()


@pytest.fixture(scope="session")
def pg_session_url(create_pg_database: CreateDb) -> str:
    """One migrated database shared by the ``store`` tests (truncated before each test)."""
    url = create_pg_database()
    with Store(url) as store:
        store.upgrade()
    return url


def _truncate(url: str) -> None:
    """Empty every table but the migration version table (RESTART IDENTITY: ids start again)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> :v"),
                {"v": VERSION_TABLE},
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


# -- Stores on each backend -----------------------------------------------------------------------


def _parametrized_directly(metafunc: pytest.Metafunc, argname: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if argname in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return True
    return False


def _one_backend() -> object:
    """The backend of a ``one_backend`` test: PostgreSQL (production), or SQLite when PostgreSQL is
    skipped on purpose (``AGENTENSOR_SKIP_PG=1``), so a machine without it still runs the loops."""
    return "sqlite" if os.environ.get("AGENTENSOR_SKIP_PG") == "1" else BACKENDS[1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give ``backend`` its values: both backends, or one for a ``one_backend`` test. A test that
    parametrizes ``backend`` itself keeps its own values."""
    if "backend" not in metafunc.fixturenames or _parametrized_directly(metafunc, "backend"):
        return
    one = metafunc.definition.get_closest_marker("one_backend") is not None
    metafunc.parametrize("backend", [_one_backend()] if one else BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres`` (marked ``postgres``), from :func:`pytest_generate_tests`."""
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per session (per worker); ``store_url`` copies it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    with Store(f"sqlite:///{path}") as store:
        store.upgrade()
    # Closing the last connection checkpoints the WAL into the file, so the file alone is the database.
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the migrated template left {leftovers} beside it; copying the file alone would lose them"
    return path


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of ``backend`` (full URL, password included)."""
    if backend == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = str(request.getfixturevalue("pg_session_url"))
    _truncate(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A :class:`Store` on a migrated, empty database of each backend."""
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
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db_url(fresh_url: str) -> str:
    """Alias of ``fresh_url``: what a command under test migrates itself (``agentensor runner --db``)."""
    return fresh_url


@pytest.fixture(scope="module")
def module_db_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """A brand-new database with no tables, shared by the tests of one module, on the backend of
    ``one_backend`` tests: for expensive setup the module's tests only read or add to."""
    if os.environ.get("AGENTENSOR_SKIP_PG") == "1":
        return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'module.db'}"
    return str(request.getfixturevalue("create_pg_database")())


# -- Kubernetes: one real API server (EnvTest) per session, shared by tests/k8s, helm, reliability --


@pytest.fixture(scope="session")
def k8s() -> Iterator[EnvTest]:
    """One real API server (EnvTest) for the whole session; ~6 s to start once cached."""
    with EnvTest() as started:
        yield started


@pytest.fixture(scope="session")
def k8s_with_crds(k8s: EnvTest) -> EnvTest:
    """The session API server with crds/ applied by kubectl and established."""
    k8s.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        name = crd.name.split("_", 1)[1].removesuffix(".yaml") + ".agentensor.dev"
        k8s.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    # Established is not published: the API server adds the schemas to /openapi/v2 (what
    # kubectl explain reads) a few seconds later.
    wanted = {f"dev.agentensor.v1alpha1.{k}" for k in ("TrainingRun", "EvaluationRun", "PromptConfig")}

    def missing() -> list[str]:
        return sorted(wanted - set(json.loads(k8s.kubectl("get", "--raw", "/openapi/v2").stdout)["definitions"]))

    wait_for(lambda: not missing(), 120, f"the CRD schemas {sorted(wanted)} in /openapi/v2", interval=1)
    return k8s


# -- Parallel runs (pytest-xdist): one test module per work unit ----------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``--dist loadscope`` (``make test``): :class:`tests._xdist.ModuleScheduling`."""
    if config.getoption("dist") != "loadscope":
        return None
    from tests._xdist import ModuleScheduling

    return ModuleScheduling(config, log)
