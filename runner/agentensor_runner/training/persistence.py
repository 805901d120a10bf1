"""Everything the training loop writes to or reads from the store, in one place.

The run row (:meth:`RunRecords.publish`, :meth:`RunRecords.opened`, :meth:`RunRecords.completed`),
versions and checkpoints (:meth:`RunRecords.checkpoint`, :meth:`RunRecords.checkpoints`). Case
rows go through ``RunContext.record``, the evaluation cache through
:mod:`agentensor_runner.execution.evalcache` and the stop request through
:class:`agentensor_runner.training.budget.StopPoller`.

A checkpoint's ``extra`` (:func:`checkpoint_extra`): ``calls`` (optimizer counters plus LLM
calls by purpose, this epoch), ``usage`` (this epoch's LLM usage), ``loop`` (the whole
:class:`~agentensor_runner.training.state.LoopState`), and, beside it for the readers of the
format before ``loop`` (reports, dashboards, older tools), ``stale`` and ``budget``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentensor_api import CheckpointSummary, RunStatus, UsageSummary
from agentensor_store import CheckpointRecord, TrainingStore

from ..execution import RunContext
from ..llm import Usage
from .budget import BUDGET_KEY
from .state import LOOP_KEY, STALE_KEY, LoopState


@dataclass(frozen=True)
class EpochResult:
    """One epoch's figures for its checkpoint: candidates accepted, mean train score, calls, usage."""

    accepted: int
    train_score: float | None
    calls: dict[str, int]
    usage: Usage | None


def checkpoint_extra(calls: dict[str, int], usage: Usage | None, state: LoopState) -> dict[str, Any]:
    """A checkpoint's ``extra``; see the module docstring. ``state.budget`` must be current."""
    merged = dict(calls)
    out: dict[str, Any] = {}
    if usage is not None:
        for purpose, n in usage.calls.items():
            merged[purpose] = merged.get(purpose, 0) + n
        out["usage"] = usage.to_json()
    return {"calls": merged, **out, STALE_KEY: state.stale, BUDGET_KEY: dict(state.budget), LOOP_KEY: state.to_json()}


def summary(cp: CheckpointRecord) -> CheckpointSummary:
    """``status.checkpoints[]`` of one checkpoint."""
    usage = cp.extra.get("usage") if isinstance(cp.extra, dict) else None
    return CheckpointSummary(
        epoch=cp.epoch,
        version=cp.version,
        score=cp.score,
        checksum=cp.checksum,
        accepted=cp.accepted,
        usage=UsageSummary.model_validate(usage) if usage else None,
    )


class RunRecords:
    """The store calls of one training run; see the module docstring.

    Args:
        ctx: the run context (its run id, workflow key, namespace, status sink, and its store, of
            which the loop uses only the :class:`~agentensor_store.TrainingStore` part).
        seed: ``spec.dataset.seed``, stored with every version and checkpoint.
    """

    def __init__(self, ctx: RunContext, seed: int) -> None:
        self.ctx, self.seed = ctx, seed
        self.store: TrainingStore = ctx.store

    def publish(self, status: RunStatus) -> None:
        """Write ``status`` (and its phase) to the run row, then hand it to ``ctx.on_status``."""
        self.store.update_run(self.ctx.run_id, phase=status.phase, status=status.to_wire())
        if self.ctx.on_status is not None:
            self.ctx.on_status(status)

    def opened(self, dataset_hash: str) -> None:
        """The run started on the dataset ``dataset_hash``."""
        self.store.update_run(self.ctx.run_id, dataset_hash=dataset_hash, started_at=datetime.now(UTC))

    def completed(self) -> None:
        """The run finished training (its completion time)."""
        self.store.update_run(self.ctx.run_id, completed_at=datetime.now(UTC))

    def checkpoints(self) -> list[CheckpointRecord]:
        """This run's checkpoints so far (none for a new run id)."""
        return self.store.list_checkpoints(run_id=self.ctx.run_id)

    def checkpoint(self, epoch: int, state: LoopState, dataset_hash: str, result: EpochResult) -> CheckpointRecord:
        """Register ``state.current`` as a version and checkpoint it with its own validation score,
        ``result``'s figures and the whole loop state (:func:`checkpoint_extra`)."""
        store, ctx, current = self.store, self.ctx, state.current
        version = store.register_version(
            ctx.workflow_key,
            dict(current.prompts.texts),
            dict(current.prompts.parameters),
            namespace=ctx.namespace,
            source="checkpoint",
            source_run_id=ctx.run_id,
            seed=self.seed,
            dataset_hash=dataset_hash,
        )
        return store.add_checkpoint(
            ctx.run_id,
            epoch=epoch,
            version=version,
            score=current.objective,
            scores=current.means,
            train_score=result.train_score,
            accepted=result.accepted,
            seed=self.seed,
            dataset_hash=dataset_hash,
            extra=checkpoint_extra(result.calls, result.usage, state),
        )
