"""The engine shared by the repositories, and :func:`transaction`: retry, error translation and a session.

Every public store operation is one short transaction. :func:`transaction` is the one place that
composes the three things each of them needs, outermost first:

1. the outage retry (:func:`~agentensor_store._retry.call_retrying`, for up to
   ``Database.outage_retry_seconds``);
2. the translation of SQLAlchemy/driver errors into the store's tree (:meth:`Database.guard`),
   which also covers the commit;
3. a session in one transaction, committed on normal exit (SQLite writers: ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ._changes import RUN_CHANGES_CHANNEL
from ._engine import WRITE_OPTION, translate_error
from ._retry import call_retrying

P = ParamSpec("P")
R = TypeVar("R")


class Database:
    """An engine with the store's retry budget; the repositories share one.

    Args:
        engine: the store's engine (see :func:`~agentensor_store._engine.create_store_engine`).
        outage_retry_seconds: how long each operation retries while the database is unreachable.
    """

    def __init__(self, engine: Engine, *, outage_retry_seconds: float = 0.0) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.outage_retry_seconds = outage_retry_seconds

    @contextmanager
    def guard(self, operation: str) -> Iterator[None]:
        """Raise SQLAlchemy errors as the store's (:func:`translate_error`), password hidden."""
        try:
            yield
        except SQLAlchemyError as e:
            raise translate_error(operation, e, self.engine.url) from e

    @contextmanager
    def session(self, operation: str, *, write: bool) -> Iterator[Session]:
        """A guarded session in one transaction, committed on normal exit (SQLite writers: IMMEDIATE)."""
        with (
            self.guard(operation),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            session.connection(execution_options={WRITE_OPTION: True} if write else None)
            yield session

    def run(self, operation: str, fn: Callable[[Session], R], *, write: bool) -> R:
        """``fn(session)`` in one guarded transaction, retried while the database is unavailable."""

        def attempt() -> R:
            with self.session(operation, write=write) as s:
                return fn(s)

        return call_retrying(self.outage_retry_seconds, attempt)

    def upsert(self, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
        """The dialect's ``INSERT`` with ``ON CONFLICT`` support."""
        if self.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    def notify_run_changed(self, s: Session, run_id: str) -> None:
        """``pg_notify(RUN_CHANGES_CHANNEL, run_id)`` inside the writer's transaction (PostgreSQL only).

        PostgreSQL delivers it on commit, and folds duplicates within one transaction; on
        SQLite (local runs, no operator) it is a no-op.
        """
        if self.dialect == "postgresql":
            s.execute(text("SELECT pg_notify(:channel, :run_id)"), {"channel": RUN_CHANGES_CHANNEL, "run_id": run_id})


class HasDatabase(Protocol):
    """A repository: anything holding the shared :class:`Database` as ``db``."""

    @property
    def db(self) -> Database: ...


RepoT = TypeVar("RepoT", bound=HasDatabase)


def transaction(
    operation: str, *, write: bool = False
) -> Callable[[Callable[Concatenate[RepoT, Session, P], R]], Callable[Concatenate[RepoT, P], R]]:
    """Decorate a repository method that takes a session after ``self``: the caller omits it.

    The method runs as :meth:`Database.run` (retry, then guard, then one transaction); errors are
    named after ``operation``.
    """

    def decorate(method: Callable[Concatenate[RepoT, Session, P], R]) -> Callable[Concatenate[RepoT, P], R]:
        @functools.wraps(method)
        def wrapper(repo: RepoT, /, *args: P.args, **kwargs: P.kwargs) -> R:
            return repo.db.run(operation, lambda s: method(repo, s, *args, **kwargs), write=write)

        return wrapper

    return decorate


class Repository:
    """Base of the per-aggregate repositories: holds the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        """The shared engine, dialect and retry budget."""
        return self._db
