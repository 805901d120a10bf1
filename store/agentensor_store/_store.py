"""The :class:`Store` facade: validates arguments, then delegates to one repository per aggregate.

The repositories live in ``_repos/`` (runs, cases, versions, checkpoints, caches), each a small class
over the shared :class:`~agentensor_store._db.Database`; :func:`~agentensor_store._db.transaction` gives
every operation its outage retry, error translation and session. The public methods are defined by the
mixins :class:`~agentensor_store._api_runs.RunsApi` and :class:`~agentensor_store._api_prompts.PromptsApi`;
this module adds construction, the schema and change notifications.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ._api_prompts import PromptsApi
from ._api_runs import RunsApi
from ._changes import RunChangeListener
from ._db import Database
from ._engine import create_store_engine, parse_url, translate_error
from ._errors import DatabaseUnavailableError, MigrationError, StoreError, UnsupportedDatabaseError
from ._repos.caches import EvalCacheRepository, LlmCacheRepository
from ._repos.cases import CaseRepository
from ._repos.checkpoints import CheckpointRepository
from ._repos.runs import RunRepository
from ._repos.versions import REGISTER_VERSION_ATTEMPTS, VersionRepository
from ._retry import retry_unavailable

__all__ = ["REGISTER_VERSION_ATTEMPTS", "Store"]

log = logging.getLogger("agentensor_store")


class Store(RunsApi, PromptsApi):
    """Typed access to the agentensor tables on SQLite or PostgreSQL (sync, thread-safe).

    Every method runs in its own short transaction. Create the schema with :meth:`upgrade`
    before first use. Errors are :class:`~agentensor_store.StoreError` subclasses with the
    driver error chained; messages never include the database password.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////abs/path/agentensor.db`` or
            ``postgresql+psycopg://user:pw@host/db`` (``postgresql://`` means psycopg 3).
            In-memory SQLite is per-thread; use a file when sharing a store across threads.
        echo: log every SQL statement (SQLAlchemy ``echo``).
        outage_retry_seconds: how long each operation keeps retrying (exponential backoff with
            jitter, at most 10 s apart) while the database is unreachable; 0 (default) fails at
            once. Runners use 300 s so that a database restart does not fail a run.

    Raises:
        UnsupportedDatabaseError: unparsable URL or a backend other than SQLite/PostgreSQL.
    """

    def __init__(self, url: str, *, echo: bool = False, outage_retry_seconds: float = 0.0) -> None:
        parsed = parse_url(url)
        try:
            self._engine = create_store_engine(parsed, echo=echo)
        except ArgumentError as e:  # e.g. credentials in a SQLite URL
            raise UnsupportedDatabaseError(translate_error("creating the engine", e, parsed).args[0]) from e
        except SQLAlchemyError as e:
            raise translate_error("creating the engine", e, parsed) from e
        self._db = Database(self._engine, outage_retry_seconds=outage_retry_seconds)
        self._dialect = self._db.dialect
        self._runs = RunRepository(self._db)
        self._cases = CaseRepository(self._db)
        self._versions = VersionRepository(self._db)
        self._checkpoints = CheckpointRepository(self._db)
        self._eval_cache = EvalCacheRepository(self._db)
        self._llm_cache = LlmCacheRepository(self._db)
        # A store dropped without close() still closes its pooled connections when collected;
        # otherwise each is garbage-collected open (psycopg warns, the server keeps a backend).
        self._finalizer = weakref.finalize(self, self._engine.dispose)
        log.debug("store opened on %s", self.url)

    @property
    def outage_retry_seconds(self) -> float:
        """Seconds each operation keeps retrying while the database is unreachable (0: fail at once)."""
        return self._db.outage_retry_seconds

    @outage_retry_seconds.setter
    def outage_retry_seconds(self, seconds: float) -> None:
        self._db.outage_retry_seconds = seconds

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL with the password masked as ``***``."""
        return self._engine.url.render_as_string(hide_password=True)

    def url_with_password(self) -> str:
        """The database URL including its password (a DSN), for a library that opens its own
        connections to the same database, e.g. Optuna's ``RDBStorage``.

        A secret: never log it, put it in status, an Event or an error message (use :attr:`url`).
        """
        return self._engine.url.render_as_string(hide_password=False)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    def __repr__(self) -> str:
        return f"Store(url={self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (the store reconnects if used again).

        A store that is garbage-collected unclosed is closed then.
        """
        self._engine.dispose()

    # -- change notifications ---------------------------------------------------------------

    def listen_run_changes(self) -> RunChangeListener | None:
        """A dedicated connection that LISTENs for run changes (``None`` on SQLite).

        :meth:`update_run`, :meth:`add_checkpoint` and :meth:`record_verdict` notify
        :data:`RUN_CHANGES_CHANNEL` with the run id when they commit, so a reader (the
        operator) reflects a run when it changes instead of polling every run.

        Raises:
            DatabaseUnavailableError: the connection cannot be opened.
        """
        if self._dialect != "postgresql":
            return None
        return RunChangeListener(self._engine.url)

    # -- schema -----------------------------------------------------------------------------

    @retry_unavailable
    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision`` (default: the newest shipped with the package).

        Safe to call on every start-up and from concurrent processes (SQLite: serialised by
        the write lock; PostgreSQL: by an advisory lock). Other tables in the database
        (LangGraph, Optuna) are left alone.

        Raises:
            MigrationError: unknown revision or a failing migration.
            DatabaseUnavailableError: cannot connect.
        """
        from . import _migrate  # alembic is imported only when migrating

        self._run_migration("upgrade", lambda: _migrate.upgrade(self._engine, revision))

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``"base"`` drops every agentensor table)."""
        from . import _migrate

        self._run_migration("downgrade", lambda: _migrate.downgrade(self._engine, revision))

    def _run_migration(self, operation: str, fn: Callable[[], None]) -> None:
        try:
            with self._db.guard(operation):
                fn()
        except MigrationError as e:
            raise MigrationError(f"{e} (on {self.url})") from e.__cause__
        except DatabaseUnavailableError:
            raise
        except StoreError as e:
            raise MigrationError(str(e)) from e.__cause__
        log.info("%s of %s done (now at %s)", operation, self.url, self.current_revision())

    @retry_unavailable
    def current_revision(self) -> str | None:
        """The applied alembic revision, or ``None`` before the first :meth:`upgrade`."""
        from . import _migrate

        with self._db.guard("reading the schema revision"):
            return _migrate.current_revision(self._engine)

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision shipped with this package."""
        from . import _migrate

        return _migrate.head_revision()

    def schema_diff(self) -> list[Any]:
        """Differences between the ORM models and the live ``agentensor_*`` tables.

        Empty when the schema is exactly what the models expect; entries are alembic
        autogenerate diff tuples (e.g. ``("add_table", Table(...))``).
        """
        from . import _migrate

        with self._db.guard("comparing the schema"):
            return _migrate.schema_diff(self._engine)
