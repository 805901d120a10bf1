"""The :class:`Store`: runs, per-case results, prompt versions and checkpoints in SQL."""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from agentensor_api import TERMINAL_PHASES, PromptConfig, RunStatus, canonical_json, config_checksum

from ._changes import RUN_CHANGES_CHANNEL, RunChangeListener
from ._engine import WRITE_OPTION, create_store_engine, parse_url, translate_error
from ._errors import (
    DatabaseUnavailableError,
    InvalidValueError,
    MigrationError,
    RunNotFoundError,
    StoreError,
    UnsupportedDatabaseError,
    VersionConflictError,
    VersionNotFoundError,
)
from ._lease import DEFAULT_LEASE_SECONDS, RunIdentityError, RunLeasedError, owner_is_dead
from ._models import (
    CaseResultModel,
    CheckpointModel,
    EvalCacheModel,
    LlmResponseModel,
    PromptVersionModel,
    RunModel,
    utcnow,
)
from ._records import (
    DEFAULT_NAMESPACE,
    DIRECTIONS,
    INITIAL_PHASE,
    RUN_KINDS,
    VERSION_SOURCES,
    CaseResultId,
    CaseRow,
    CheckpointId,
    CheckpointRecord,
    EvalCacheEntry,
    RunId,
    RunRecord,
    VersionId,
    VersionRecord,
)
from ._retry import retry_unavailable

log = logging.getLogger("agentensor_store")

"""The phases of a run's verdict (:meth:`Store.record_verdict`)."""

REGISTER_VERSION_ATTEMPTS = 20
"""Bound on ``register_version`` retries after losing a race for a version number."""

_CASE_UPDATE_COLUMNS = (
    "thread_id",
    "epoch",
    "version",
    "input",
    "expected",
    "output",
    "scores",
    "passed",
    "error",
    "latency_seconds",
    "reasons",
    "usage",
)
_CHECKPOINT_UPDATE_COLUMNS = (
    "version_id",
    "score",
    "scores",
    "train_score",
    "accepted",
    "seed",
    "dataset_hash",
    "extra",
)


class Store:
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
        self.outage_retry_seconds = outage_retry_seconds
        parsed = parse_url(url)
        try:
            self._engine = create_store_engine(parsed, echo=echo)
        except ArgumentError as e:  # e.g. credentials in a SQLite URL
            raise UnsupportedDatabaseError(translate_error("creating the engine", e, parsed).args[0]) from e
        except SQLAlchemyError as e:
            raise translate_error("creating the engine", e, parsed) from e
        self._dialect = self._engine.dialect.name
        # A store dropped without close() still closes its pooled connections when collected;
        # otherwise each is garbage-collected open (psycopg warns, the server keeps a backend).
        self._finalizer = weakref.finalize(self, self._engine.dispose)
        log.debug("store opened on %s", self.url)

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

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as e:
            raise translate_error(operation, e, self._engine.url) from e

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        """A session in one transaction, committed on normal exit (SQLite writers: IMMEDIATE)."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            session.connection(execution_options={WRITE_OPTION: True} if write else None)
            yield session

    def _upsert(self, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    # -- change notifications ---------------------------------------------------------------

    def _notify_run_changed(self, s: Session, run_id: str) -> None:
        """``pg_notify(RUN_CHANGES_CHANNEL, run_id)`` inside the writer's transaction (PostgreSQL only).

        PostgreSQL delivers it on commit, and folds duplicates within one transaction; on
        SQLite (local runs, no operator) it is a no-op.
        """
        if self._dialect == "postgresql":
            s.execute(text("SELECT pg_notify(:channel, :run_id)"), {"channel": RUN_CHANGES_CHANNEL, "run_id": run_id})

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
            with self._guard(operation):
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

        with self._guard("reading the schema revision"):
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

        with self._guard("comparing the schema"):
            return _migrate.schema_diff(self._engine)

    # -- runs -------------------------------------------------------------------------------

    @retry_unavailable
    def create_run(
        self,
        *,
        run_id: str,
        kind: str,
        namespace: str,
        name: str,
        workflow: str,
        spec: dict[str, Any],
        seed: int | None = None,
        dataset_hash: str | None = None,
    ) -> RunRecord:
        """Insert a run in phase ``Pending``; if ``run_id`` exists, return that row unchanged.

        Raises:
            InvalidValueError: ``kind`` is not ``TrainingRun``/``EvaluationRun``, an empty or
                over-long ``run_id``, or a ``spec`` that is not JSON.
        """
        _check_run_id(run_id)
        if kind not in RUN_KINDS:
            raise InvalidValueError(f"kind must be one of {sorted(RUN_KINDS)}, got {kind!r}")
        _check_json("spec", spec)
        now = utcnow()
        values = {
            "id": run_id,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "workflow": workflow,
            "phase": INITIAL_PHASE,
            "spec": without_nul(spec),  # an inline dataset row may hold NUL (it becomes an error row)
            "status": {},
            "seed": seed,
            "dataset_hash": dataset_hash,
            "created_at": now,
            "updated_at": now,
        }
        with self._guard("create_run"), self._session(write=True) as s:
            stmt = self._upsert(RunModel).values(values)
            s.execute(stmt.on_conflict_do_nothing(index_elements=[RunModel.id]))
            row = s.get_one(RunModel, run_id)
            return _run_record(row)

    @retry_unavailable
    def get_run(self, run_id: str) -> RunRecord | None:
        with self._guard("get_run"), self._session(write=False) as s:
            row = s.get(RunModel, run_id)
            return None if row is None else _run_record(row)

    @retry_unavailable
    def find_runs(
        self, *, namespace: str | None = None, name: str | None = None, kind: str | None = None
    ) -> list[RunRecord]:
        """Runs matching every given filter, oldest first."""
        stmt = select(RunModel).order_by(RunModel.created_at, RunModel.id)
        if namespace is not None:
            stmt = stmt.where(RunModel.namespace == namespace)
        if name is not None:
            stmt = stmt.where(RunModel.name == name)
        if kind is not None:
            stmt = stmt.where(RunModel.kind == kind)
        with self._guard("find_runs"), self._session(write=False) as s:
            return [_run_record(r) for r in s.scalars(stmt)]

    @retry_unavailable
    def update_run(
        self,
        run_id: str,
        *,
        phase: str | None = None,
        status: dict[str, Any] | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        dataset_hash: str | None = None,
    ) -> None:
        """Set the given fields (``None`` = leave as is; ``status`` replaces the whole dict).

        ``updated_at`` is always bumped.

        Raises:
            RunNotFoundError: no such run.
            InvalidValueError: a naive datetime, or a ``status`` that is not JSON.
        """
        _check_aware(started_at, "started_at")
        _check_aware(completed_at, "completed_at")
        if status is not None:
            _check_json("status", status)
        with self._guard("update_run"), self._session(write=True) as s:
            row = s.get(RunModel, run_id)
            if row is None:
                raise RunNotFoundError(f"no run with id {run_id!r}")
            if phase is not None:
                row.phase = phase
            if status is not None:
                row.status = without_nul(status)
            if started_at is not None:
                row.started_at = started_at
            if completed_at is not None:
                row.completed_at = completed_at
            if dataset_hash is not None:
                row.dataset_hash = dataset_hash
            row.updated_at = utcnow()
            self._notify_run_changed(s, run_id)

    @retry_unavailable
    def record_verdict(
        self,
        *,
        run_id: str,
        kind: str,
        namespace: str,
        name: str,
        workflow: str,
        spec: dict[str, Any],
        status: RunStatus,
        seed: int | None = None,
        completed_at: datetime | None = None,
    ) -> RunRecord:
        """Write a finished run's row: insert it if missing, then set its phase, status and completion.

        For a verdict the writer computed itself (e.g. the operator's aggregate of a sharded
        EvaluationRun, whose shards keep their own rows). The row is created as by
        :meth:`create_run` (an existing row keeps its kind, names, spec and seed), then gets
        ``phase = status.phase``, ``status = status.to_wire()`` and ``completed_at`` (default:
        now, UTC). Both steps are idempotent, so calling again after a fault is safe.

        Raises:
            InvalidValueError: ``status.phase`` is not ``Succeeded``/``Failed``, or the
                arguments :meth:`create_run` rejects.
        """
        if status.phase not in TERMINAL_PHASES:
            raise InvalidValueError(f"status.phase must be one of {sorted(TERMINAL_PHASES)}, got {status.phase!r}")
        _check_aware(completed_at, "completed_at")
        wire = status.to_wire()
        _check_json("status", wire)
        self.create_run(
            run_id=run_id, kind=kind, namespace=namespace, name=name, workflow=workflow, spec=spec, seed=seed
        )
        with self._guard("record_verdict"), self._session(write=True) as s:
            row = s.get_one(RunModel, run_id)
            row.phase = status.phase
            row.status = wire
            row.completed_at = completed_at or utcnow()
            row.updated_at = utcnow()
            self._notify_run_changed(s, run_id)
            return _run_record(row)

    @retry_unavailable
    def delete_run(self, run_id: str) -> bool:
        """Delete a run with its case results and checkpoints (prompt versions stay).

        Returns:
            whether the run existed.
        """
        with self._guard("delete_run"), self._session(write=True) as s:
            if s.get(RunModel, run_id) is None:
                return False
            s.execute(delete(RunModel).where(RunModel.id == run_id))
            return True

    # -- run identity and leases (see _lease.py) --------------------------------------------

    @retry_unavailable
    def claim_run(
        self, run_id: str, *, kind: str, spec_checksum: str, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        """Check a run's identity and take its lease for ``owner``, in one conditional ``UPDATE``.

        The first claim records ``spec_checksum``. A claim succeeds when the row's kind and
        checksum match and the lease is free, expired, already ``owner``'s, or held by a dead
        process of this host. Both backends serialise the ``UPDATE`` on the row, so of two
        concurrent claimants exactly one succeeds.

        Raises:
            RunNotFoundError: no such run (call :meth:`create_run` first).
            RunIdentityError: the run is of another kind or was created with another spec;
                the message names both kinds and both checksums.
            RunLeasedError: another live process holds the lease (its owner and expiry named).
        """
        with self._guard("claim_run"), self._session(write=True) as s:
            row = s.get(RunModel, run_id)
            if row is None:
                raise RunNotFoundError(f"no run with id {run_id!r}")
            _check_identity(row, run_id, kind, spec_checksum)
            now = utcnow()
            free = [RunModel.lease_owner.is_(None), RunModel.lease_owner == owner, RunModel.lease_expires_at < now]
            if owner_is_dead(row.lease_owner):
                free.append(RunModel.lease_owner == row.lease_owner)
            stmt = (
                update(RunModel)
                .where(RunModel.id == run_id, RunModel.kind == kind, or_(*free))
                .where(or_(RunModel.spec_checksum.is_(None), RunModel.spec_checksum == spec_checksum))
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    spec_checksum=spec_checksum,
                )
                .execution_options(synchronize_session=False)
            )
            if s.execute(stmt).rowcount == 1:  # type: ignore[attr-defined]
                return
            s.expire_all()
            row = s.get_one(RunModel, run_id)
            _check_identity(row, run_id, kind, spec_checksum)
            until = row.lease_expires_at.isoformat(timespec="seconds") if row.lease_expires_at else "?"
            raise RunLeasedError(
                f"run {run_id!r} is being executed by another process ({row.lease_owner}, lease until {until}); "
                "wait for it to finish, or use another run id"
            )

    @retry_unavailable
    def renew_run_lease(self, run_id: str, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend ``owner``'s lease by ``lease_seconds`` from now; ``False`` if ``owner`` no longer holds it."""
        stmt = (
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        with self._guard("renew_run_lease"), self._session(write=True) as s:
            return bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    @retry_unavailable
    def release_run_lease(self, run_id: str, owner: str) -> None:
        """Drop ``owner``'s lease (no-op if another owner holds it, or none does)."""
        stmt = (
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        with self._guard("release_run_lease"), self._session(write=True) as s:
            s.execute(stmt)

    # -- case results -----------------------------------------------------------------------

    @retry_unavailable
    def record_cases(self, run_id: str, rows: Sequence[CaseRow]) -> None:
        """Upsert case results on ``(run_id, stage, case_id)`` in one transaction.

        Recording a stage again (e.g. after a crash and resume) replaces the earlier rows; if
        ``rows`` holds the same key twice, the last one wins. ``created_at`` keeps the time of
        the first recording.

        Raises:
            RunNotFoundError: no such run.
            InvalidValueError: a non-finite latency, or a value that is not JSON (NaN too).
        """
        if not rows:
            return
        now = utcnow()
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            if not math.isfinite(r.latency_seconds):
                raise InvalidValueError(f"case {r.case_id!r}: latency_seconds must be finite, got {r.latency_seconds}")
            for label in ("input", "expected", "output", "scores", "reasons", "usage"):
                _check_json(f"case {r.case_id!r} {label}", getattr(r, label))
            by_key[(r.stage, r.case_id)] = {
                "run_id": run_id,
                "stage": r.stage,
                "case_id": r.case_id,
                "thread_id": r.thread_id,
                "epoch": r.epoch,
                "version": r.version,
                "input": without_nul(r.input),
                "expected": without_nul(r.expected),
                "output": without_nul(r.output),
                "scores": dict(r.scores),
                "passed": r.passed,
                "error": without_nul(r.error),
                "latency_seconds": float(r.latency_seconds),
                "reasons": without_nul(r.reasons),
                "usage": r.usage,
                "created_at": now,
            }
        with self._guard("record_cases"), self._session(write=True) as s:
            _require_run(s, run_id)
            stmt = self._upsert(CaseResultModel)
            stmt = stmt.on_conflict_do_update(
                index_elements=[CaseResultModel.run_id, CaseResultModel.stage, CaseResultModel.case_id],
                set_={c: stmt.excluded[c] for c in _CASE_UPDATE_COLUMNS},
            )
            s.execute(stmt, list(by_key.values()))

    @retry_unavailable
    def list_cases(self, run_id: str, *, stage: str | None = None, errors_only: bool = False) -> list[CaseRow]:
        """A run's case results in recording order, optionally of one stage or errors only."""
        stmt = select(CaseResultModel).where(CaseResultModel.run_id == run_id).order_by(CaseResultModel.id)
        if stage is not None:
            stmt = stmt.where(CaseResultModel.stage == stage)
        if errors_only:
            stmt = stmt.where(CaseResultModel.error.is_not(None))
        with self._guard("list_cases"), self._session(write=False) as s:
            return [_case_row(r) for r in s.scalars(stmt)]

    def iter_cases(self, run_id: str, *, stage: str | None = None, batch_size: int = 1000) -> Iterator[CaseRow]:
        """A run's case results in recording order, read ``batch_size`` rows per query.

        Keyset pagination on the row id (``id > last ORDER BY id LIMIT n``), one short
        transaction per batch, so memory stays bounded however many rows the run has and no
        connection is held while the caller works. Rows recorded while iterating may or may not
        appear (those with a higher id do).

        Raises:
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        last = 0
        while True:
            stmt = select(CaseResultModel).where(CaseResultModel.run_id == run_id, CaseResultModel.id > last)
            if stage is not None:
                stmt = stmt.where(CaseResultModel.stage == stage)
            stmt = stmt.order_by(CaseResultModel.id).limit(batch_size)
            rows = self._case_batch(stmt)
            yield from rows
            if len(rows) < batch_size:
                return
            last = int(rows[-1].id or 0)

    @retry_unavailable
    def _case_batch(self, stmt: Select[CaseResultModel]) -> list[CaseRow]:
        with self._guard("iter_cases"), self._session(write=False) as s:
            return [_case_row(r) for r in s.scalars(stmt)]

    # -- prompt versions --------------------------------------------------------------------

    @retry_unavailable
    def register_version(
        self,
        workflow: str,
        prompts: dict[str, str],
        parameters: dict[str, Any],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        source: str = "inline",
        source_run_id: str | None = None,
        seed: int | None = None,
        dataset_hash: str | None = None,
    ) -> VersionRecord:
        """Store a prompt config as the next version of ``(namespace, workflow)``, or return its existing twin.

        The same ``workflow`` in two namespaces is two independent sequences (both start at 1),
        neither reading the other's texts. Configs are identified by
        :func:`agentensor_api.config_checksum`: registering a config again in the namespace returns
        the stored version unchanged (``source``/``seed`` of the first registration). New
        versions are numbered ``max(version) + 1`` per key, starting at 1.

        Concurrent callers (threads or processes) never get duplicate numbers or checksums:
        the unique constraints decide, and a caller that loses the race retries in a fresh
        transaction (at most :data:`REGISTER_VERSION_ATTEMPTS` times). On PostgreSQL the
        attempt also takes a transaction-scoped advisory lock on the workflow, so contenders
        queue instead of starving each other; SQLite writers queue on ``BEGIN IMMEDIATE``.

        Raises:
            InvalidValueError: unknown ``source``, non-string prompts, parameters that are not
                JSON (NaN included), or a namespace that is empty or over 253 characters.
            VersionConflictError: every attempt lost the race.
        """
        _check_namespace(namespace)
        checksum = _version_checksum(source, prompts, parameters)
        values = {
            "namespace": namespace,
            "workflow": workflow,
            "version": _next_version(namespace, workflow),
            "checksum": checksum,
            "prompts": dict(prompts),
            "parameters": dict(parameters),
            "source": source,
            "source_run_id": source_run_id,
            "seed": seed,
            "dataset_hash": dataset_hash,
        }
        last_error: BaseException | None = None
        for attempt in range(REGISTER_VERSION_ATTEMPTS):
            try:
                rec = self._insert_version(values)
                log.debug("registered %s/%s version %d (%s)", namespace, workflow, rec.version, checksum[:12])
                return rec
            except StoreError as e:
                if not _is_unique_violation(e.__cause__):
                    raise
                last_error = e.__cause__
                log.debug("register_version(%r, %r): lost a race (attempt %d)", namespace, workflow, attempt + 1)
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
        raise VersionConflictError(
            f"register_version({workflow!r}, namespace={namespace!r}) lost the race {REGISTER_VERSION_ATTEMPTS} times"
        ) from last_error

    def _insert_version(self, values: dict[str, Any]) -> VersionRecord:
        """One attempt of :meth:`register_version`: the stored twin, or the row inserted now.

        Raises StoreError chaining an IntegrityError when a concurrent caller took the number.
        """
        namespace, workflow = values["namespace"], values["workflow"]
        by_checksum = _versions_of(namespace, workflow).where(PromptVersionModel.checksum == values["checksum"])
        with self._guard("register_version"), self._session(write=True) as s:
            if self._dialect == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(namespace, workflow)})
            found = s.scalars(by_checksum).one_or_none()
            if found is not None:
                return _version_record(found)
            s.execute(insert(PromptVersionModel).values({**values, "created_at": utcnow()}))
            return _version_record(s.scalars(by_checksum).one())

    def register_inline_version(self, prompt_config: PromptConfig) -> VersionRecord:
        """Register a PromptConfig's inline ``spec.prompts`` texts and ``spec.parameters``.

        The version of ``(metadata.namespace, spec.workflow)`` with ``source="inline"``
        (deduplicated by checksum, as :meth:`register_version`; a manifest without a namespace
        is in ``"default"``). The runner registers its starting config this way and the
        operator a PromptConfig's spec, so both get the same version for the same spec.

        Raises:
            InvalidValueError, VersionConflictError: as :meth:`register_version`.
        """
        spec = prompt_config.spec
        texts = {name: prompt.text for name, prompt in spec.prompts.items()}
        return self.register_version(
            spec.workflow, texts, dict(spec.parameters), namespace=prompt_config.namespace, source="inline"
        )

    @retry_unavailable
    def get_version(self, workflow: str, version: int, *, namespace: str = DEFAULT_NAMESPACE) -> VersionRecord | None:
        """Version number ``version`` of ``(namespace, workflow)``, or None (another namespace's is never returned)."""
        stmt = _versions_of(namespace, workflow).where(PromptVersionModel.version == version)
        with self._guard("get_version"), self._session(write=False) as s:
            row = s.scalars(stmt).one_or_none()
            return None if row is None else _version_record(row)

    @retry_unavailable
    def find_version_by_checksum(
        self, workflow: str, checksum: str, *, namespace: str = DEFAULT_NAMESPACE
    ) -> VersionRecord | None:
        """The version of ``(namespace, workflow)`` whose config has ``checksum``, or None."""
        stmt = _versions_of(namespace, workflow).where(PromptVersionModel.checksum == checksum)
        with self._guard("find_version_by_checksum"), self._session(write=False) as s:
            row = s.scalars(stmt).one_or_none()
            return None if row is None else _version_record(row)

    @retry_unavailable
    def list_versions(self, workflow: str, *, namespace: str = DEFAULT_NAMESPACE) -> list[VersionRecord]:
        """Every version of ``(namespace, workflow)``, by version number."""
        stmt = _versions_of(namespace, workflow).order_by(PromptVersionModel.version)
        with self._guard("list_versions"), self._session(write=False) as s:
            return [_version_record(r) for r in s.scalars(stmt)]

    # -- checkpoints ------------------------------------------------------------------------

    @retry_unavailable
    def add_checkpoint(
        self,
        run_id: str,
        *,
        epoch: int,
        version: VersionRecord,
        score: float | None,
        scores: dict[str, float],
        train_score: float | None = None,
        accepted: int = 0,
        seed: int | None = None,
        dataset_hash: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CheckpointRecord:
        """Record the config kept after ``epoch`` (upsert on ``(run_id, epoch)``).

        ``score`` must be the validation objective of ``version`` itself, so that every
        score is attributable to exactly one config. Re-adding an epoch replaces its fields
        and keeps its id and ``created_at``.

        Raises:
            RunNotFoundError: no such run.
            VersionNotFoundError: ``version`` is not stored here (or its checksum differs), or
                it belongs to another namespace than the run.
            InvalidValueError: a non-finite score, or values that are not JSON.
        """
        _check_checkpoint_values(score, train_score, scores, extra)
        values = {
            "run_id": run_id,
            "epoch": epoch,
            "version_id": version.id,
            "score": score,
            "scores": dict(scores),
            "train_score": train_score,
            "accepted": accepted,
            "seed": seed,
            "dataset_hash": dataset_hash,
            "extra": dict(extra or {}),
            "created_at": utcnow(),
        }
        with self._guard("add_checkpoint"), self._session(write=True) as s:
            run = _require_run(s, run_id)
            _check_checkpoint_version(s.get(PromptVersionModel, version.id), version, run)
            stmt = self._upsert(CheckpointModel).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=[CheckpointModel.run_id, CheckpointModel.epoch],
                set_={c: stmt.excluded[c] for c in _CHECKPOINT_UPDATE_COLUMNS},
            )
            s.execute(stmt)
            self._notify_run_changed(s, run_id)
            query = _checkpoints().where(CheckpointModel.run_id == run_id, CheckpointModel.epoch == epoch)
            c, v = s.execute(query).one()
            return _checkpoint_record(c, v)

    @retry_unavailable
    def list_checkpoints(
        self, *, run_id: str | None = None, workflow: str | None = None, namespace: str | None = None
    ) -> list[CheckpointRecord]:
        """Checkpoints of a run and/or a workflow and/or a namespace (all if none), in creation order.

        A ``workflow`` is looked up in ``namespace`` (``"default"`` when not given): the
        checkpoints of the same workflow key in another namespace are never listed.
        """
        stmt = _filter_checkpoints(_checkpoints(), run_id, workflow, namespace).order_by(CheckpointModel.id)
        with self._guard("list_checkpoints"), self._session(write=False) as s:
            return [_checkpoint_record(c, v) for c, v in s.execute(stmt)]

    @retry_unavailable
    def latest_checkpoint(self, run_id: str) -> CheckpointRecord | None:
        """The run's checkpoint with the highest epoch."""
        stmt = _checkpoints().where(CheckpointModel.run_id == run_id).order_by(CheckpointModel.epoch.desc()).limit(1)
        with self._guard("latest_checkpoint"), self._session(write=False) as s:
            row = s.execute(stmt).one_or_none()
            return None if row is None else _checkpoint_record(row[0], row[1])

    @retry_unavailable
    def best_checkpoint(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        namespace: str | None = None,
        direction: str = "maximize",
    ) -> CheckpointRecord | None:
        """The best-scoring checkpoint (``score`` not null) of a run and/or workflow and/or namespace.

        ``workflow`` and ``namespace`` filter as in :meth:`list_checkpoints`. Ties go to the
        earliest prompt version, then to the earliest checkpoint.

        Raises:
            InvalidValueError: ``direction`` is not ``maximize``/``minimize``.
        """
        if direction not in DIRECTIONS:
            raise InvalidValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        score = CheckpointModel.score
        order = score.desc() if direction == "maximize" else score.asc()
        stmt = (
            _filter_checkpoints(_checkpoints(), run_id, workflow, namespace)
            .where(CheckpointModel.score.is_not(None))
            .order_by(order, PromptVersionModel.version, CheckpointModel.id)
            .limit(1)
        )
        with self._guard("best_checkpoint"), self._session(write=False) as s:
            row = s.execute(stmt).one_or_none()
            return None if row is None else _checkpoint_record(row[0], row[1])

    # -- helpers ------------------------------------------------------------------------------------

    # -- stop requests ----------------------------------------------------------------------

    @retry_unavailable
    def request_stop(self, run_id: str) -> bool:
        """Ask a run to stop gracefully (``agentensor.dev/stop=true``); True if the request is new.

        The runner polls :meth:`stop_requested` at candidate boundaries. Idempotent: the first
        request's time is kept.

        Raises:
            RunNotFoundError: no such run.
        """
        with self._guard("request_stop"), self._session(write=True) as s:
            _require_run(s, run_id)
            result = s.execute(
                update(RunModel)
                .where(RunModel.id == run_id, RunModel.stop_requested_at.is_(None))
                .values(stop_requested_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @retry_unavailable
    def stop_requested(self, run_id: str) -> datetime | None:
        """When a stop was requested for the run (aware UTC), or None (also for an unknown run)."""
        with self._guard("stop_requested"), self._session(write=False) as s:
            return s.scalar(select(RunModel.stop_requested_at).where(RunModel.id == run_id))

    # -- evaluation cache -------------------------------------------------------------------

    @retry_unavailable
    def cached_results(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{cache_key: result}`` for the keys that have an entry (queried in chunks of 500)."""
        out: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        with self._guard("cached_results"), self._session(write=False) as s:
            for i in range(0, len(unique), 500):
                chunk = unique[i : i + 500]
                stmt = select(EvalCacheModel.cache_key, EvalCacheModel.result).where(
                    EvalCacheModel.cache_key.in_(chunk)
                )
                out.update({k: v for k, v in s.execute(stmt)})
        return out

    @retry_unavailable
    def cache_results(self, entries: Sequence[EvalCacheEntry]) -> None:
        """Insert evaluation-cache entries in one transaction; an existing key keeps its first result.

        Raises:
            InvalidValueError: a result that is not JSON (NaN too).
        """
        if not entries:
            return
        now = utcnow()
        values: dict[str, dict[str, Any]] = {}
        for e in entries:
            _check_json(f"cache entry {e.cache_key!r} result", e.result)
            values[e.cache_key] = {
                "cache_key": e.cache_key,
                "config_checksum": e.config_checksum,
                "dataset_hash": e.dataset_hash,
                "case_id": e.case_id,
                "result": without_nul(e.result),
                "created_at": now,
            }
        with self._guard("cache_results"), self._session(write=True) as s:
            stmt = self._upsert(EvalCacheModel).on_conflict_do_nothing(index_elements=[EvalCacheModel.cache_key])
            s.execute(stmt, list(values.values()))

    # -- LLM response cache -----------------------------------------------------------------

    @retry_unavailable
    def llm_response(self, key: str) -> Any | None:
        """The cached reply stored under ``key`` (JSON), or None."""
        with self._guard("llm_response"), self._session(write=False) as s:
            return s.scalar(select(LlmResponseModel.value).where(LlmResponseModel.cache_key == key))

    @retry_unavailable
    def put_llm_response(self, key: str, value: Any) -> None:
        """Store a reply under ``key`` (last write wins).

        Raises:
            InvalidValueError: a value that is not JSON.
        """
        _check_json(f"llm response {key!r}", value)
        with self._guard("put_llm_response"), self._session(write=True) as s:
            stmt = self._upsert(LlmResponseModel).values(cache_key=key, value=without_nul(value), created_at=utcnow())
            stmt = stmt.on_conflict_do_update(
                index_elements=[LlmResponseModel.cache_key], set_={"value": stmt.excluded.value}
            )
            s.execute(stmt)

    @retry_unavailable
    def clear_llm_responses(self) -> int:
        """Delete every cached LLM reply; returns how many there were."""
        with self._guard("clear_llm_responses"), self._session(write=True) as s:
            return int(s.execute(delete(LlmResponseModel)).rowcount)  # type: ignore[attr-defined]


def without_nul(value: Any) -> Any:
    """``value`` with every U+0000 in its strings and keys written as the six characters ``\\u0000``.

    PostgreSQL ``text`` and ``jsonb`` refuse NUL; one such case output must not fail the whole
    batch of case rows, so it is stored escaped (on SQLite too, so both backends read the same).
    """
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def _check_identity(row: RunModel, run_id: str, kind: str, spec_checksum: str) -> None:
    if row.kind != kind or (row.spec_checksum is not None and row.spec_checksum != spec_checksum):
        stored = f"{row.kind} with spec sha256 {(row.spec_checksum or 'unrecorded')[:12]}"
        raise RunIdentityError(
            f"run id {run_id!r} belongs to a {stored}; this is a {kind} with spec sha256 {spec_checksum[:12]}; "
            "a run id is resumed only by the same kind and spec: use another run id"
        )


def _check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 64:
        raise InvalidValueError(f"run_id must be 1..64 characters, got {run_id!r}")


def _check_aware(value: datetime | None, label: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidValueError(f"{label} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _check_json(label: str, value: Any) -> None:
    """Reject what the JSON columns cannot store identically on every backend (NaN, objects)."""
    try:
        canonical_json(value)
    except (TypeError, ValueError) as e:
        raise InvalidValueError(f"{label} is not JSON-serialisable: {e}") from e


def _check_checkpoint_values(
    score: float | None, train_score: float | None, scores: dict[str, float], extra: dict[str, Any] | None
) -> None:
    for label, value in (("score", score), ("train_score", train_score)):
        if value is not None and not math.isfinite(value):
            raise InvalidValueError(f"{label} must be finite or None, got {value}")
    _check_json("scores", scores)
    _check_json("extra", extra or {})


def _require_run(s: Session, run_id: str) -> RunModel:
    row = s.get(RunModel, run_id)
    if row is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    return row


def _check_namespace(namespace: str) -> None:
    """The column holds 253 characters on both backends (a Kubernetes namespace has at most 63)."""
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 253:
        raise InvalidValueError(f"namespace must be 1..253 characters, got {namespace!r}")


def _check_checkpoint_version(stored: PromptVersionModel | None, version: VersionRecord, run: RunModel) -> None:
    """A checkpoint points at a version stored here, of the run's own namespace."""
    if stored is None or stored.checksum != version.checksum:
        raise VersionNotFoundError(
            f"prompt version id {version.id} ({version.workflow} v{version.version}) is not stored in this database"
        )
    if stored.namespace != run.namespace:
        raise VersionNotFoundError(
            f"prompt version id {version.id} ({stored.workflow} v{stored.version}) belongs to namespace "
            f"{stored.namespace!r}, not to the run's namespace {run.namespace!r}: versions are per namespace"
        )


def _is_unique_violation(exc: BaseException | None) -> bool:
    if not isinstance(exc, IntegrityError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(exc.orig)  # SQLite


def _version_checksum(source: str, prompts: dict[str, str], parameters: dict[str, Any]) -> str:
    """Validate a version's fields and return its :func:`agentensor_api.config_checksum`."""
    if source not in VERSION_SOURCES:
        raise InvalidValueError(f"source must be one of {sorted(VERSION_SOURCES)}, got {source!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise InvalidValueError("prompts must map prompt names (str) to texts (str)")
    try:
        return config_checksum(dict(prompts), dict(parameters))
    except (TypeError, ValueError) as e:
        raise InvalidValueError(f"prompts/parameters are not canonical JSON: {e}") from e


def _versions_of(namespace: str, workflow: str) -> Select[PromptVersionModel]:
    """``SELECT`` of the versions of one workflow key, ``(namespace, workflow)``."""
    return select(PromptVersionModel).where(
        PromptVersionModel.namespace == namespace, PromptVersionModel.workflow == workflow
    )


def _next_version(namespace: str, workflow: str) -> Any:
    """SQL for ``max(version) + 1`` of ``(namespace, workflow)`` (1 for its first version), evaluated on insert."""
    return (
        select(func.coalesce(func.max(PromptVersionModel.version), 0) + 1)
        .where(PromptVersionModel.namespace == namespace, PromptVersionModel.workflow == workflow)
        .scalar_subquery()
    )


def _lock_key(namespace: str, workflow: str) -> int:
    """A stable signed 64-bit advisory-lock key for the version numbering of ``(namespace, workflow)``."""
    key = canonical_json(["agentensor_prompt_versions", namespace, workflow])  # unambiguous, unlike "ns/wf"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


_CheckpointSelect = Select[CheckpointModel, PromptVersionModel]


def _checkpoints() -> _CheckpointSelect:
    return select(CheckpointModel, PromptVersionModel).join(
        PromptVersionModel, CheckpointModel.version_id == PromptVersionModel.id
    )


def _filter_checkpoints(
    stmt: _CheckpointSelect, run_id: str | None, workflow: str | None, namespace: str | None
) -> _CheckpointSelect:
    """Filter on the run, the namespace and the workflow; a workflow without a namespace is ``"default"``'s."""
    if run_id is not None:
        stmt = stmt.where(CheckpointModel.run_id == run_id)
    if workflow is not None:
        stmt = stmt.where(PromptVersionModel.workflow == workflow)
        namespace = DEFAULT_NAMESPACE if namespace is None else namespace
    if namespace is not None:
        stmt = stmt.where(PromptVersionModel.namespace == namespace)
    return stmt


def _run_record(r: RunModel) -> RunRecord:
    return RunRecord(
        id=RunId(r.id),
        kind=r.kind,
        namespace=r.namespace,
        name=r.name,
        workflow=r.workflow,
        phase=r.phase,
        spec=r.spec,
        status=r.status,
        seed=r.seed,
        dataset_hash=r.dataset_hash,
        created_at=r.created_at,
        updated_at=r.updated_at,
        started_at=r.started_at,
        completed_at=r.completed_at,
    )


def _case_row(r: CaseResultModel) -> CaseRow:
    return CaseRow(
        stage=r.stage,
        case_id=r.case_id,
        thread_id=r.thread_id,
        input=r.input,
        expected=r.expected,
        output=r.output,
        scores=r.scores,
        passed=r.passed,
        error=r.error,
        latency_seconds=r.latency_seconds,
        epoch=r.epoch,
        version=r.version,
        reasons=r.reasons,
        usage=r.usage,
        run_id=RunId(r.run_id),
        id=CaseResultId(r.id),
        created_at=r.created_at,
    )


def _version_record(v: PromptVersionModel) -> VersionRecord:
    return VersionRecord(
        id=VersionId(v.id),
        namespace=v.namespace,
        workflow=v.workflow,
        version=v.version,
        checksum=v.checksum,
        prompts=v.prompts,
        parameters=v.parameters,
        source=v.source,
        source_run_id=v.source_run_id,
        seed=v.seed,
        dataset_hash=v.dataset_hash,
        created_at=v.created_at,
    )


def _checkpoint_record(c: CheckpointModel, v: PromptVersionModel) -> CheckpointRecord:
    return CheckpointRecord(
        id=CheckpointId(c.id),
        run_id=RunId(c.run_id),
        epoch=c.epoch,
        version=v.version,
        version_id=VersionId(v.id),
        namespace=v.namespace,
        workflow=v.workflow,
        checksum=v.checksum,
        prompts=v.prompts,
        parameters=v.parameters,
        score=c.score,
        scores=c.scores,
        train_score=c.train_score,
        accepted=c.accepted,
        seed=c.seed,
        dataset_hash=c.dataset_hash,
        extra=c.extra,
        created_at=c.created_at,
    )
