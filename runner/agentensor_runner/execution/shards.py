"""Split one EvaluationRun's cases over N runner Jobs (``agentensor runner --shard I/N``).

The operator starts N Jobs for a sharded EvaluationRun, each with ``--shard I/N`` and its own run id;
each Job scores only the cases whose id hashes to shard I, and the operator sums the shards' verdicts.
This is the split *between* Jobs; :mod:`agentensor_runner.execution.workers` is the split of one Job's cases
over worker processes, which a shard Job may also do.

A case's shard depends on its id alone (sha256, not Python's salted ``hash``), so every Job computes
the same partition independently: the shards are disjoint and their union is the whole dataset.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from agentensor_api import (
    ConditionType,
    EvaluationRun,
    Phase,
    PromptConfig,
    Reason,
    RunStatus,
    now_rfc3339,
    set_condition,
)
from agentensor_store import Store

from ..data import DataRoots, load_cases

CASE_ID_COLUMN = "_case"
"""The column that carries a case's original id into a shard's inline dataset when the dataset
has no ``idField`` (ids are then row numbers, which must survive the split)."""


def shard_of(case_id: str, shards: int) -> int:
    """The shard in ``[0, shards)`` of a case: the first 8 bytes of sha256(case id), big-endian, mod ``shards``.

    Raises:
        ZeroDivisionError: ``shards`` is 0 (callers validate ``I/N`` first).
    """
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_run(
    run: EvaluationRun, base_dir: Path, shard: tuple[int, int], roots: DataRoots | None = None
) -> EvaluationRun:
    """The EvaluationRun restricted to shard ``(index, count)``'s cases, as an inline dataset.

    Cases keep their ids (a ``_case`` column carries the original id when the dataset has no
    ``idField``), so shards' rows never collide and their union is the whole dataset. The dataset's
    ``limit`` applies before the split. Concurrency per shard is ``ceil(parallelism / count)``.
    ``base_dir`` is where a relative ``dataset.path`` resolves, ``roots`` what else it may be under.
    A shard with no case has an empty ``inline`` list (see :func:`record_empty_shard`).

    Raises:
        ManifestError: the dataset cannot be read (from :func:`~agentensor_runner.load_cases`).
    """
    index, count = shard
    spec = run.spec
    id_field = spec.dataset.id_field or CASE_ID_COLUMN
    rows = [
        {**case.row, id_field: case.case_id}
        for case in load_cases(spec.dataset, base_dir=base_dir, roots=roots)
        if shard_of(case.case_id, count) == index
    ]
    dataset = spec.dataset.model_copy(
        update={"path": None, "format": None, "inline": rows, "id_field": id_field, "limit": None}
    )
    parallelism = max(1, -(-spec.parallelism // count))
    return run.model_copy(update={"spec": spec.model_copy(update={"dataset": dataset, "parallelism": parallelism})})


def record_empty_shard(store: Store, run: EvaluationRun, pc: PromptConfig, run_id: str) -> RunStatus:
    """Record a shard that holds no case (more shards than cases) as Succeeded with zero cases.

    The run row is created under ``run_id`` with condition ``Succeeded=True`` (reason
    ``EmptyShard``); returns that status.
    """
    status = RunStatus(run_id=run_id, phase=Phase.SUCCEEDED, cases_total=0, cases_completed=0, cases_failed=0)
    status.start_time = status.completion_time = now_rfc3339()
    status.conditions = set_condition(
        [], ConditionType.SUCCEEDED, "True", Reason.EMPTY_SHARD, "no case hashes to this shard"
    )
    store.create_run(
        run_id=run_id, kind=run.kind, namespace=run.namespace, name=run.name, workflow=pc.spec.workflow,
        spec=run.spec.to_wire(),
    )  # fmt: skip
    store.update_run(run_id, phase=Phase.SUCCEEDED, status=status.to_wire(), completed_at=datetime.now(UTC))
    return status
