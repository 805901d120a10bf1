"""Shared fixtures: stores on real SQLite and real PostgreSQL, and example paths."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("AGENTENSOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin_dsn() -> str:
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, uniquely named PostgreSQL database, dropped afterwards."""
    if os.environ.get("AGENTENSOR_SKIP_PG") == "1":
        pytest.skip("AGENTENSOR_SKIP_PG=1")
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"agentensor_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated-on-demand database URL on each real backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agentensor.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[object]:
    from agentensor_store import Store

    s = Store(db_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[object]:
    from agentensor_store import Store

    s = Store(f"sqlite:///{tmp_path / 'agentensor.db'}")
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


# -- Kubernetes: one real API server (EnvTest) per session, shared by tests/k8s and tests/helm -------

# `envtest`, `node_agent` and `operator_harness` (tests/k8s/) import as top-level modules everywhere.
_K8S_DIR = str(REPO / "tests" / "k8s")
if _K8S_DIR not in sys.path:
    sys.path.insert(0, _K8S_DIR)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "k8s: needs a real Kubernetes API server (EnvTest; builds Kubernetes 1.20.2 once, "
        "about 4 minutes, unless KUBEBUILDER_ASSETS or the cache provides it)",
    )


@pytest.fixture(scope="session")
def k8s() -> Iterator[Any]:
    """One real API server (EnvTest) for the whole session; ~6 s to start once cached."""
    from envtest import EnvTest

    with EnvTest() as started:
        yield started


@pytest.fixture(scope="session")
def k8s_with_crds(k8s: Any) -> Any:
    """The session API server with crds/ applied by kubectl and established."""
    k8s.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        name = crd.name.split("_", 1)[1].removesuffix(".yaml") + ".agentensor.dev"
        k8s.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return k8s
