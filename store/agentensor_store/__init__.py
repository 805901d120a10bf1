"""Persistence for agentensor: runs, per-case results, prompt versions and checkpoints.

SQLAlchemy 2 on SQLite (local runner) or PostgreSQL (operator); schema managed by the alembic
revisions shipped with the package::

    store = Store(default_database_url())
    store.upgrade()                      # idempotent, safe from concurrent processes
    run = store.create_run(run_id=uid, kind="TrainingRun", namespace="default", name="x",
                           workflow="support-bot", spec={...})
    v1 = store.register_version("support-bot", {"system": "..."}, {"temperature": 0.2}, namespace="default")

Callers that need only part of it can take a narrow view (:class:`TrainingStore`,
:class:`EvalCacheStore`, :class:`LlmResponseStore`, :class:`OperatorStore`); ``Store`` satisfies each.

Prompt versions, and the checkpoints and best scores read through them, are keyed by
``(namespace, workflow)``: the same ``spec.workflow`` in two namespaces is two workflows.
"""

from ._engine import DATABASE_URL_ENV, default_database_url
from ._errors import (
    DatabaseUnavailableError,
    InvalidValueError,
    MigrationError,
    RunNotFoundError,
    SchemaNotReadyError,
    StoreError,
    UnsupportedDatabaseError,
    VersionConflictError,
    VersionNotFoundError,
)
from ._lease import (
    LEASE_SECONDS_ENV,
    RunIdentityError,
    RunLease,
    RunLeasedError,
    RunLeaseLostError,
    lease_seconds_from_env,
    new_owner_id,
)
from ._models import VERSION_TABLE
from ._protocols import EvalCacheStore, LlmResponseStore, OperatorStore, TrainingStore
from ._records import (
    DEFAULT_NAMESPACE,
    INITIAL_PHASE,
    CaseResultId,
    CaseRow,
    CheckpointId,
    CheckpointRecord,
    Direction,
    EvalCacheEntry,
    RunId,
    RunKind,
    RunRecord,
    VersionId,
    VersionRecord,
    VersionSource,
)
from ._store import REGISTER_VERSION_ATTEMPTS, Store

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_NAMESPACE",
    "INITIAL_PHASE",
    "LEASE_SECONDS_ENV",
    "REGISTER_VERSION_ATTEMPTS",
    "VERSION_TABLE",
    "CaseResultId",
    "CaseRow",
    "CheckpointId",
    "CheckpointRecord",
    "DatabaseUnavailableError",
    "Direction",
    "EvalCacheEntry",
    "EvalCacheStore",
    "InvalidValueError",
    "LlmResponseStore",
    "MigrationError",
    "OperatorStore",
    "RunId",
    "RunIdentityError",
    "RunKind",
    "RunLease",
    "RunLeaseLostError",
    "RunLeasedError",
    "RunNotFoundError",
    "RunRecord",
    "SchemaNotReadyError",
    "Store",
    "StoreError",
    "TrainingStore",
    "UnsupportedDatabaseError",
    "VersionConflictError",
    "VersionId",
    "VersionNotFoundError",
    "VersionRecord",
    "VersionSource",
    "default_database_url",
    "lease_seconds_from_env",
    "new_owner_id",
]
