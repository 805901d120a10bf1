"""Engine construction (SQLite pragmas, PostgreSQL driver) and driver-error translation."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from agentensor_api import canonical_json

from ._errors import (
    DatabaseUnavailableError,
    InvalidValueError,
    SchemaNotReadyError,
    StoreError,
    UnsupportedDatabaseError,
)

DATABASE_URL_ENV = "AGENTENSOR_DATABASE_URL"
WRITE_OPTION = "agentensor_write"
"""Connection execution option: on SQLite the transaction starts with ``BEGIN IMMEDIATE``."""
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
_WAL_ATTEMPTS = 200  # x ~15 ms


def default_database_url() -> str:
    """``$AGENTENSOR_DATABASE_URL``, else ``sqlite:///<cwd>/agentensor.db``."""
    env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'agentensor.db'}"


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL (``postgresql://`` means psycopg 3).

    Raises:
        UnsupportedDatabaseError: unparsable URL, or a backend other than SQLite/PostgreSQL.
    """
    try:
        u = make_url(url)
    except ArgumentError as e:  # the message does not echo the URL (it may hold a password)
        raise UnsupportedDatabaseError("cannot parse the database URL") from e
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise UnsupportedDatabaseError(
            f"unsupported database backend {backend!r}: use sqlite:/// or postgresql+psycopg://"
        )
    return u


def create_store_engine(url: URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``: SQLite gets foreign keys, WAL and a busy timeout."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, json_serializer=canonical_json)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = "agentensor"
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        json_serializer=canonical_json,
        connect_args=connect_args,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions defer the write lock
        # and skip DDL); see "Serializable isolation / Savepoints / Transactional DDL" in the
        # SQLAlchemy SQLite dialect documentation.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            _enable_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so they queue on busy_timeout instead of
        # failing with SQLITE_BUSY when upgrading a read snapshot; readers never block in WAL.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cur: Any) -> None:
    """Switch a file database to WAL once (the mode persists in the file).

    The switch needs an exclusive lock and SQLite does not always wait on busy_timeout for
    it, so connections racing on a brand-new file retry briefly until one of them wins.
    """
    for attempt in range(_WAL_ATTEMPTS):
        mode = str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode in ("wal", "memory"):  # done, or an in-memory database (no WAL there)
            return
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 + 0.01 * random.random())


def redact(text: str, url: URL) -> str:
    """``text`` with every spelling of ``url``'s password replaced by ``***``."""
    password = url.password
    if not password:
        return text
    for spelling in {str(password), quote(str(password), safe=""), quote_plus(str(password))}:
        if spelling:
            text = text.replace(spelling, "***")
    return text


def _summary(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _is_missing_table(orig: BaseException) -> bool:
    if type(orig).__name__ == "UndefinedTable":  # psycopg.errors.UndefinedTable
        return True
    return "no such table" in str(orig)


_PERMANENT = (
    "readonly database",  # SQLite: the file or its directory is read-only
    "database or disk is full",  # SQLite: no space left
    "disk i/o error",  # SQLite: a write failed (ENOSPC on the WAL or the journal)
    "no space left on device",  # PostgreSQL 53100 disk_full, or the OS
    "read-only transaction",  # PostgreSQL 25006: a hot standby or default_transaction_read_only
)
"""Errors of the database itself that no retry cures: reported at once, never ridden out."""


def _is_permanent(orig: BaseException) -> bool:
    text = str(orig).lower()
    return getattr(orig, "sqlstate", None) in ("53100", "25006") or any(p in text for p in _PERMANENT)


def translate_error(operation: str, exc: SQLAlchemyError, url: URL) -> StoreError:
    """Map a SQLAlchemy/driver error to the store's tree; the message hides the password.

    Callers chain it: ``raise translate_error(op, e, url) from e``.
    """
    where = url.render_as_string(hide_password=True)
    orig = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    detail = redact(_summary(orig), url)
    message = f"{operation} failed on {where}: {detail}"
    if isinstance(exc, DBAPIError):
        if _is_missing_table(orig):
            return SchemaNotReadyError(f"{message} (run Store.upgrade() to create the tables)")
        if _is_permanent(orig):
            return StoreError(f"{message} (the database cannot be written: free space or make it writable)")
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            return DatabaseUnavailableError(message)
        return StoreError(message)
    if isinstance(exc, StatementError) and isinstance(orig, ValueError | TypeError):
        return InvalidValueError(message)  # e.g. a naive datetime or NaN in a JSON column
    return StoreError(message)
