"""Alembic plumbing: a :class:`~alembic.config.Config` built in code (no alembic.ini).

The revisions live in ``<repo>/migrations`` and ship in the wheel as
``agentensor_store/_migrations``. Our version table is ``agentensor_alembic_version`` so that
other alembic users sharing the database (Optuna's RDB storage uses ``alembic_version``) are
never confused with us, and autogenerate ignores every table not prefixed ``agentensor_``
(LangGraph checkpointers and Optuna create their own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from ._engine import WRITE_OPTION
from ._errors import MigrationError
from ._models import TABLE_PREFIX, VERSION_TABLE, Base

# pg_advisory_xact_lock key serialising concurrent upgrades (operator replicas, runner pods).
_PG_MIGRATION_LOCK = int.from_bytes(hashlib.sha256(b"agentensor_store.migrations").digest()[:8], "big", signed=True)


def migrations_dir() -> Path:
    """``agentensor_store/_migrations`` in a wheel install, else ``<repo>/migrations``."""
    packaged = Path(__file__).resolve().parent / "_migrations"
    if (packaged / "env.py").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate filter: only ``agentensor_*`` tables (and what belongs to them)."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX)
    return True


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """An alembic config for our revisions.

    Args:
        url: used by ``env.py`` when no connection is given (offline SQL or a fresh engine).
        connection: migrations run on it, inside its current transaction.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One connection, one transaction, serialised against concurrent migrators.

    SQLite: foreign keys are switched off for the duration (batch mode recreates tables, and
    dropping a parent table with ``ON DELETE CASCADE`` children would delete their rows), and
    ``PRAGMA foreign_key_check`` must be clean before commit. PostgreSQL: a transaction-level
    advisory lock.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        if sqlite:
            driver.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:k)")
                    conn.execute(lock, {"k": _PG_MIGRATION_LOCK})
                yield conn
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise MigrationError(f"foreign key violations after migration: {bad[:5]}")
        finally:
            if sqlite:
                driver.execute("PRAGMA foreign_keys = ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision``; raises MigrationError (alembic) or SQLAlchemyError (driver)."""
    try:
        with _migration_connection(engine) as conn:
            command.upgrade(alembic_config(connection=conn), revision)
    except CommandError as e:  # unknown revision and the like
        raise MigrationError(f"upgrade to {revision!r} failed: {e}") from e


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade to ``revision``; raises MigrationError (alembic) or SQLAlchemyError (driver)."""
    try:
        with _migration_connection(engine) as conn:
            command.downgrade(alembic_config(connection=conn), revision)
    except CommandError as e:
        raise MigrationError(f"downgrade to {revision!r} failed: {e}") from e


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the ORM models and the live schema (empty when in sync)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "include_object": include_object,
                "compare_type": True,
                "compare_server_default": False,
            },
        )
        return list(compare_metadata(ctx, Base.metadata))
