"""Error translation, and the database password never leaking into reprs or messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import make_url

from agentensor_store import (
    DatabaseUnavailableError,
    MigrationError,
    SchemaNotReadyError,
    Store,
    StoreError,
    UnsupportedDatabaseError,
)

SECRET = "s3cr3t-value"


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _assert_no_secret(exc: BaseException) -> None:
    for e in _chain(exc):
        assert SECRET not in str(e), f"password leaked by {type(e).__name__}"


@pytest.mark.postgres
def test_password_is_hidden(pg_session_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = make_url(pg_session_url).set(password=SECRET)  # trust auth ignores the password
    caplog.set_level(logging.DEBUG, logger="agentensor_store")
    store = Store(url.render_as_string(hide_password=False))
    try:
        assert store.current_revision() is not None  # really connected
        for text in (repr(store), str(store), store.url):
            assert SECRET not in text
            assert "***" in text
        store.upgrade()  # logs at INFO
        assert SECRET not in caplog.text
    finally:
        store.close()


@pytest.mark.postgres
def test_connection_errors_hide_password(pg_session_url: str) -> None:
    base = make_url(pg_session_url).set(password=SECRET)
    missing_db = Store(base.set(database="agentensor_no_such_db").render_as_string(hide_password=False))
    closed_port = Store(base.set(port=1, query={"connect_timeout": "2"}).render_as_string(hide_password=False))
    try:
        for store in (missing_db, closed_port):
            with pytest.raises(DatabaseUnavailableError) as info:
                store.get_run("x")
            _assert_no_secret(info.value)
            assert "***" in str(info.value)
            assert isinstance(info.value.__cause__, Exception)  # driver error chained
            with pytest.raises(StoreError) as up:
                store.upgrade()
            _assert_no_secret(up.value)
    finally:
        missing_db.close()
        closed_port.close()


def test_sqlite_url_with_password_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDatabaseError) as info:
        Store(f"sqlite://user:{SECRET}@/{tmp_path}/x.db")
    _assert_no_secret(info.value)


def test_schema_not_ready(fresh_url: str) -> None:
    store = Store(fresh_url)
    try:
        assert store.current_revision() is None
        with pytest.raises(SchemaNotReadyError, match="upgrade"):
            store.get_run("x")
        with pytest.raises(SchemaNotReadyError):
            store.register_version("wf", {"s": "x"}, {})
    finally:
        store.close()


def test_unknown_revision(fresh_url: str) -> None:
    store = Store(fresh_url)
    try:
        with pytest.raises(MigrationError, match="nonexistent"):
            store.upgrade("nonexistent")
        assert store.current_revision() is None
    finally:
        store.close()
