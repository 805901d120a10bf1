"""Narrow views of the :class:`~agentensor_store.Store`: what each plane needs, and nothing more.

A caller that takes one of these instead of ``Store`` states what it reads and writes, and a test
double implements a handful of methods instead of forty. :class:`~agentensor_store.Store` satisfies
every one (checked statically by mypy and at run time by ``isinstance``; see
``tests/store/test_store_protocols.py``). Signatures and contracts are those of the ``Store`` methods
of the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from agentensor_api import PromptConfig, RunStatus

from ._changes import RunChangeListener
from ._records import CaseRow, CheckpointRecord, EvalCacheEntry, RunRecord, VersionRecord


@runtime_checkable
class TrainingStore(Protocol):
    """What the runner's training loop persists: the run's phase and status, versions and checkpoints."""

    def update_run(
        self,
        run_id: str,
        *,
        phase: str | None = ...,
        status: dict[str, Any] | None = ...,
        started_at: datetime | None = ...,
        completed_at: datetime | None = ...,
        dataset_hash: str | None = ...,
    ) -> None: ...

    def register_version(
        self,
        workflow: str,
        prompts: dict[str, str],
        parameters: dict[str, Any],
        *,
        namespace: str = ...,
        source: str = ...,
        source_run_id: str | None = ...,
        seed: int | None = ...,
        dataset_hash: str | None = ...,
    ) -> VersionRecord: ...

    def add_checkpoint(
        self,
        run_id: str,
        *,
        epoch: int,
        version: VersionRecord,
        score: float | None,
        scores: dict[str, float],
        train_score: float | None = ...,
        accepted: int = ...,
        seed: int | None = ...,
        dataset_hash: str | None = ...,
        extra: dict[str, Any] | None = ...,
    ) -> CheckpointRecord: ...

    def list_checkpoints(
        self, *, run_id: str | None = ..., workflow: str | None = ..., namespace: str | None = ...
    ) -> list[CheckpointRecord]: ...


@runtime_checkable
class EvalCacheStore(Protocol):
    """The runner's evaluation cache: per-case results keyed by config, dataset and case."""

    def cached_results(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def cache_results(self, entries: Sequence[EvalCacheEntry]) -> None: ...


@runtime_checkable
class LlmResponseStore(Protocol):
    """The runner's LLM response cache (record/replay of model replies)."""

    def llm_response(self, key: str) -> Any | None: ...

    def put_llm_response(self, key: str, value: Any) -> None: ...

    def clear_llm_responses(self) -> int: ...


@runtime_checkable
class OperatorStore(Protocol):
    """What the operator reads and writes: run rows and verdicts, stop requests, versions and scores;
    and the masked URL it logs and the dialect that says whether it can LISTEN for run changes."""

    @property
    def url(self) -> str: ...

    @property
    def dialect(self) -> str: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

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
        seed: int | None = ...,
        completed_at: datetime | None = ...,
    ) -> RunRecord: ...

    def request_stop(self, run_id: str) -> bool: ...

    def listen_run_changes(self) -> RunChangeListener | None: ...

    def list_cases(self, run_id: str, *, stage: str | None = ..., errors_only: bool = ...) -> list[CaseRow]: ...

    def list_checkpoints(
        self, *, run_id: str | None = ..., workflow: str | None = ..., namespace: str | None = ...
    ) -> list[CheckpointRecord]: ...

    def best_checkpoint(
        self,
        *,
        run_id: str | None = ...,
        workflow: str | None = ...,
        namespace: str | None = ...,
        direction: str = ...,
    ) -> CheckpointRecord | None: ...

    def get_version(self, workflow: str, version: int, *, namespace: str = ...) -> VersionRecord | None: ...

    def list_versions(self, workflow: str, *, namespace: str = ...) -> list[VersionRecord]: ...

    def register_inline_version(self, prompt_config: PromptConfig) -> VersionRecord: ...

    def close(self) -> None: ...
