"""Immutable records returned by :class:`~agentensor_store.Store` (never live ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NewType

from agentensor_api import RUN_KINDS as API_RUN_KINDS
from agentensor_api import Phase

RunId = NewType("RunId", str)
"""Caller-chosen run id: a Kubernetes uid or a uuid4 hex (at most 64 characters)."""
VersionId = NewType("VersionId", int)
"""Row id of a prompt version (not its per-workflow ``version`` number)."""
CheckpointId = NewType("CheckpointId", int)
CaseResultId = NewType("CaseResultId", int)

RunKind = Literal["TrainingRun", "EvaluationRun"]
VersionSource = Literal["inline", "checkpoint", "import"]
Direction = Literal["maximize", "minimize"]

RUN_KINDS: frozenset[str] = frozenset(API_RUN_KINDS)
VERSION_SOURCES: frozenset[str] = frozenset({"inline", "checkpoint", "import"})
DIRECTIONS: frozenset[str] = frozenset({"maximize", "minimize"})
INITIAL_PHASE = Phase.PENDING
DEFAULT_NAMESPACE = "default"
"""The namespace of a manifest without ``metadata.namespace`` (kubectl's default too)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: RunId
    kind: str
    namespace: str
    name: str
    workflow: str
    phase: str
    spec: dict[str, Any]
    status: dict[str, Any]
    seed: int | None
    dataset_hash: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case scored at one stage. ``run_id``/``id``/``created_at`` are filled on reads only.

    ``stage`` names where the case was scored, e.g. ``baseline/validation``,
    ``epoch-2/train/batch-3``, ``holdout/best`` or ``eval``; ``version`` is the prompt version
    number that was scored.
    """

    stage: str
    case_id: str
    thread_id: str
    input: Any
    expected: Any = None
    output: Any = None
    scores: dict[str, float] = field(default_factory=dict)
    passed: bool | None = None
    error: str | None = None
    latency_seconds: float = 0.0
    epoch: int | None = None
    version: int | None = None
    reasons: dict[str, str] | None = None
    """``{evaluator: reason}`` of the evaluators that did not pass."""
    usage: dict[str, Any] | None = None
    """The case's LLM usage, ``UsageSummary`` wire form (camelCase keys)."""
    run_id: RunId | None = None
    id: CaseResultId | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A stored prompt version; ``version`` is numbered per ``(namespace, workflow)`` from 1."""

    id: VersionId
    namespace: str
    workflow: str
    version: int
    checksum: str
    prompts: dict[str, str]
    parameters: dict[str, Any]
    source: str
    source_run_id: str | None
    seed: int | None
    dataset_hash: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint joined with its prompt version (``version`` is the version *number*)."""

    id: CheckpointId
    run_id: RunId
    epoch: int
    version: int
    version_id: VersionId
    namespace: str
    workflow: str
    checksum: str
    prompts: dict[str, str]
    parameters: dict[str, Any]
    score: float | None
    scores: dict[str, float]
    train_score: float | None
    accepted: int
    seed: int | None
    dataset_hash: str | None
    extra: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EvalCacheEntry:
    """One evaluation-cache entry (:meth:`Store.cache_results`).

    ``cache_key`` is the caller's sha256 hex over the config checksum, dataset hash, case id and
    whatever else decides the result (the runner adds its scoring checksum); the other fields
    are kept for inspection. ``result`` is JSON.
    """

    cache_key: str
    config_checksum: str
    dataset_hash: str
    case_id: str
    result: dict[str, Any]
