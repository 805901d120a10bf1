"""ORM models of the ``agentensor_*`` tables.

The alembic revisions in ``migrations/versions`` must produce exactly this schema; the test
suite compares them with :func:`alembic.autogenerate.compare_metadata` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

TABLE_PREFIX = "agentensor_"
VERSION_TABLE = "agentensor_alembic_version"
"""Our alembic version table (not ``alembic_version``: Optuna's RDB storage uses that one)."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE``; values are always returned as aware UTC datetimes.

    SQLite has no time zones: values are stored as naive UTC and get ``tzinfo=UTC`` on read.
    Naive datetimes are rejected on write (they are ambiguous).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type(*, nullable: bool = False) -> TypeEngine[Any]:
    """``JSON`` everywhere, ``JSONB`` on PostgreSQL; Python ``None`` is SQL NULL if ``nullable``."""
    return JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class RunModel(Base):
    """One TrainingRun or EvaluationRun execution."""

    __tablename__ = "agentensor_runs"
    __table_args__ = (Index("ix_agentensor_runs_namespace_name", "namespace", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    workflow: Mapped[str] = mapped_column(String(253))
    phase: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(json_type())
    status: Mapped[dict[str, Any]] = mapped_column(json_type())
    seed: Mapped[int | None] = mapped_column(BigInteger)
    dataset_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    spec_checksum: Mapped[str | None] = mapped_column(String(64))
    """sha256 hex of the run's spec (``run_spec_checksum``), set by the first runner that claims it."""
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    """``host/pid/nonce`` of the process executing the run, while its lease holds."""
    lease_expires_at: Mapped[datetime | None]
    stop_requested_at: Mapped[datetime | None]
    """When a graceful stop was asked for (``agentensor.dev/stop=true``, :meth:`Store.request_stop`)."""


class CaseResultModel(Base):
    """One dataset case scored at one stage of a run (upserted on ``(run_id, stage, case_id)``)."""

    __tablename__ = "agentensor_case_results"
    __table_args__ = (UniqueConstraint("run_id", "stage", "case_id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(64),
        ForeignKey("agentensor_runs.id", ondelete="CASCADE", name="fk_agentensor_case_results_run"),
    )
    stage: Mapped[str] = mapped_column(String(255))
    case_id: Mapped[str] = mapped_column(String(255))
    thread_id: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer)
    input: Mapped[Any] = mapped_column(json_type(), nullable=False)
    expected: Mapped[Any] = mapped_column(json_type(nullable=True), nullable=True)
    output: Mapped[Any] = mapped_column(json_type(nullable=True), nullable=True)
    scores: Mapped[dict[str, float]] = mapped_column(json_type())
    passed: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    latency_seconds: Mapped[float] = mapped_column(Double)
    reasons: Mapped[dict[str, str] | None] = mapped_column(json_type(nullable=True), nullable=True)
    """``{evaluator: reason}`` of the evaluators that did not pass (the textual loss), clipped."""
    usage: Mapped[dict[str, Any] | None] = mapped_column(json_type(nullable=True), nullable=True)
    """This case's LLM usage (``UsageSummary`` wire form: tokens, calls, cost, truncations, parse failures)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptVersionModel(Base):
    """An immutable, numbered prompt config of a workflow in a namespace (deduplicated by checksum).

    The workflow key is ``(namespace, workflow)``: two namespaces that pick the same
    ``spec.workflow`` number their versions independently and never see each other's.
    """

    __tablename__ = "agentensor_prompt_versions"
    __table_args__ = (
        UniqueConstraint("namespace", "workflow", "version"),
        UniqueConstraint("namespace", "workflow", "checksum"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(253))
    """The Kubernetes namespace of the resources that own the versions (locally ``metadata.namespace``)."""
    workflow: Mapped[str] = mapped_column(String(253))
    version: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))
    prompts: Mapped[dict[str, str]] = mapped_column(json_type())
    parameters: Mapped[dict[str, Any]] = mapped_column(json_type())
    source: Mapped[str] = mapped_column(String(16))
    source_run_id: Mapped[str | None] = mapped_column(String(64))  # no FK: survives run deletion
    seed: Mapped[int | None] = mapped_column(BigInteger)
    dataset_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckpointModel(Base):
    """The config a training run kept after an epoch, with that config's own scores."""

    __tablename__ = "agentensor_checkpoints"
    __table_args__ = (
        UniqueConstraint("run_id", "epoch"),
        Index("ix_agentensor_checkpoints_version_id", "version_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(64),
        ForeignKey("agentensor_runs.id", ondelete="CASCADE", name="fk_agentensor_checkpoints_run"),
    )
    epoch: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("agentensor_prompt_versions.id", name="fk_agentensor_checkpoints_version"),
    )
    score: Mapped[float | None] = mapped_column(Double)
    scores: Mapped[dict[str, float]] = mapped_column(json_type())
    train_score: Mapped[float | None] = mapped_column(Double)
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    dataset_hash: Mapped[str | None] = mapped_column(String(128))
    extra: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvalCacheModel(Base):
    """One scored (config, case) pair, reused by any later evaluation with the same key.

    ``cache_key`` is the sha256 of the config checksum, the dataset hash, the case id and the
    scoring checksum (workflow, evaluators and models of the run); no foreign key, so an entry
    outlives the run that wrote it.
    """

    __tablename__ = "agentensor_eval_cache"

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    config_checksum: Mapped[str] = mapped_column(String(64))
    dataset_hash: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[str] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LlmResponseModel(Base):
    """A model reply cached by request (LangChain ``BaseCache`` key: prompt and ``llm_string``)."""

    __tablename__ = "agentensor_llm_responses"

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
