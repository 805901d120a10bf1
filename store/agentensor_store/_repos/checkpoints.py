"""Checkpoints (``agentensor_checkpoints``): the config a run kept after each epoch, read with its version."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .._checks import check_checkpoint_version, require_run
from .._db import Repository, transaction
from .._models import CheckpointModel, PromptVersionModel, utcnow
from .._records import CheckpointRecord, VersionRecord
from .._rows import checkpoint_record, checkpoints, filter_checkpoints

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


class CheckpointRepository(Repository):
    """Checkpoints keyed by ``(run_id, epoch)``, joined to their prompt version on read."""

    @transaction("add_checkpoint", write=True)
    def upsert(self, s: Session, version: VersionRecord, values: dict[str, Any]) -> CheckpointRecord:
        """Upsert prepared ``values`` after checking the run and the version; notify the run's change."""
        run_id, epoch = values["run_id"], values["epoch"]
        run = require_run(s, run_id)
        check_checkpoint_version(s.get(PromptVersionModel, version.id), version, run)
        stmt = self.db.upsert(CheckpointModel).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CheckpointModel.run_id, CheckpointModel.epoch],
            set_={c: stmt.excluded[c] for c in _CHECKPOINT_UPDATE_COLUMNS},
        )
        s.execute(stmt)
        self.db.notify_run_changed(s, run_id)
        query = checkpoints().where(CheckpointModel.run_id == run_id, CheckpointModel.epoch == epoch)
        c, v = s.execute(query).one()
        return checkpoint_record(c, v)

    @transaction("list_checkpoints")
    def list_all(
        self, s: Session, run_id: str | None, workflow: str | None, namespace: str | None
    ) -> list[CheckpointRecord]:
        """Checkpoints matching the filters, in creation order."""
        stmt = filter_checkpoints(checkpoints(), run_id, workflow, namespace).order_by(CheckpointModel.id)
        return [checkpoint_record(c, v) for c, v in s.execute(stmt)]

    @transaction("best_checkpoint")
    def best(
        self, s: Session, run_id: str | None, workflow: str | None, namespace: str | None, maximize: bool
    ) -> CheckpointRecord | None:
        """The best-scoring checkpoint matching the filters; ties to the earliest version, then checkpoint."""
        score = CheckpointModel.score
        stmt = (
            filter_checkpoints(checkpoints(), run_id, workflow, namespace)
            .where(score.is_not(None))
            .order_by(score.desc() if maximize else score.asc(), PromptVersionModel.version, CheckpointModel.id)
            .limit(1)
        )
        row = s.execute(stmt).one_or_none()
        return None if row is None else checkpoint_record(row[0], row[1])


def checkpoint_values(
    run_id: str,
    epoch: int,
    version: VersionRecord,
    score: float | None,
    scores: dict[str, float],
    train_score: float | None,
) -> dict[str, Any]:
    """Insert values of the checkpoint of ``(run_id, epoch)`` (``created_at`` now)."""
    return {
        "run_id": run_id,
        "epoch": epoch,
        "version_id": version.id,
        "score": score,
        "scores": dict(scores),
        "train_score": train_score,
        "created_at": utcnow(),
    }
