"""Statements and row-to-record conversions shared by the repositories."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Select, func, select

from agentensor_api import canonical_json

from ._models import CaseResultModel, CheckpointModel, PromptVersionModel, RunModel
from ._records import (
    DEFAULT_NAMESPACE,
    CaseResultId,
    CaseRow,
    CheckpointId,
    CheckpointRecord,
    RunId,
    RunRecord,
    VersionId,
    VersionRecord,
)


def versions_of(namespace: str, workflow: str) -> Select[PromptVersionModel]:
    """``SELECT`` of the versions of one workflow key, ``(namespace, workflow)``."""
    return select(PromptVersionModel).where(
        PromptVersionModel.namespace == namespace, PromptVersionModel.workflow == workflow
    )


def next_version(namespace: str, workflow: str) -> Any:
    """SQL for ``max(version) + 1`` of ``(namespace, workflow)`` (1 for its first version), evaluated on insert."""
    return (
        select(func.coalesce(func.max(PromptVersionModel.version), 0) + 1)
        .where(PromptVersionModel.namespace == namespace, PromptVersionModel.workflow == workflow)
        .scalar_subquery()
    )


def lock_key(namespace: str, workflow: str) -> int:
    """A stable signed 64-bit advisory-lock key for the version numbering of ``(namespace, workflow)``."""
    key = canonical_json(["agentensor_prompt_versions", namespace, workflow])  # unambiguous, unlike "ns/wf"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


CheckpointSelect = Select[CheckpointModel, PromptVersionModel]


def checkpoints() -> CheckpointSelect:
    return select(CheckpointModel, PromptVersionModel).join(
        PromptVersionModel, CheckpointModel.version_id == PromptVersionModel.id
    )


def filter_checkpoints(
    stmt: CheckpointSelect, run_id: str | None, workflow: str | None, namespace: str | None
) -> CheckpointSelect:
    """Filter on the run, the namespace and the workflow; a workflow without a namespace is ``"default"``'s."""
    if run_id is not None:
        stmt = stmt.where(CheckpointModel.run_id == run_id)
    if workflow is not None:
        stmt = stmt.where(PromptVersionModel.workflow == workflow)
        namespace = DEFAULT_NAMESPACE if namespace is None else namespace
    if namespace is not None:
        stmt = stmt.where(PromptVersionModel.namespace == namespace)
    return stmt


def run_record(r: RunModel) -> RunRecord:
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


def case_row(r: CaseResultModel) -> CaseRow:
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


def version_record(v: PromptVersionModel) -> VersionRecord:
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


def checkpoint_record(c: CheckpointModel, v: PromptVersionModel) -> CheckpointRecord:
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
