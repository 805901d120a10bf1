"""The start of a run: split the dataset, size ``casesTotal``, project the calls, set ``Running=True``."""

from __future__ import annotations

import logging

from agentensor_api import Reason, RunStatus, TrainingRunSpec, mark_running

from ..data import Splits, split_cases
from ..execution import RunContext
from .projection import project

log = logging.getLogger(__name__)


def open_splits(ctx: RunContext, spec: TrainingRunSpec, status: RunStatus) -> Splits:
    """Split ``ctx.cases`` (seeded) and set the status' dataset hash, ``casesTotal``, ``projected`` and
    ``Running=True`` (reason ``Training``). The caller publishes the status and records the start."""
    assert spec.dataset.split is not None
    splits = split_cases(ctx.cases, spec.dataset.split, spec.dataset.seed)
    status.dataset_hash = splits.dataset_hash
    n_batches = max(1, -(-len(splits.train) // spec.optimizer.batch_size))
    status.cases_total = (
        len(splits.validation)
        + spec.optimizer.epochs * (len(splits.train) + n_batches * spec.optimizer.candidates * len(splits.validation))
        + 2 * len(splits.holdout)
    )
    mark_running(status, Reason.TRAINING, f"{len(ctx.cases)} cases, dataset {splits.dataset_hash[:12]}")
    status.projected = p = project(spec, splits, len(ctx.start.trainable))
    log.info(
        "run %s projects %d metric calls (baseline %d, %d per epoch x %d epochs, holdout %d) and about %d "
        "model calls (%d per epoch)",
        ctx.run_id,
        p.metric_calls_total,
        p.metric_calls_baseline,
        p.metric_calls_per_epoch,
        p.epochs,
        p.metric_calls_holdout,
        p.model_calls_total,
        p.model_calls_per_epoch,
    )
    return splits
