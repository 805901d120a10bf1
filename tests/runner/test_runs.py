"""A failed EvaluationRun carries the same status vocabulary as a failed TrainingRun, and keeps its progress."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ConditionType, Reason, RunStatus, condition_of, parse_resource
from agentensor_runner import execute

from ._synthetic import INTENTS, manifests

ROWS = [{"text": "", "label": k, "id": f"e{i}"} for i, k in enumerate(list(INTENTS) * 5)]
"""30 cases whose empty input every case of the router refuses (``input must be a non-empty string``)."""


def _evaluation(tr: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in tr["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")}
    spec["dataset"] = {k: v for k, v in spec["dataset"].items() if k != "split"}
    return {**tr, "kind": "EvaluationRun", "metadata": {"name": "synthetic-eval"}, "spec": spec}


def _run(store: Any, pc: dict[str, Any], run: dict[str, Any], run_id: str, **kw: Any) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(run), parse_resource(pc), store, base_dir=Path("."), run_id=run_id, **kw)  # type: ignore[arg-type]
    )


def _verdict(status: RunStatus) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for type_ in (ConditionType.RUNNING, ConditionType.SUCCEEDED, ConditionType.FAILED):
        cond = condition_of(status, type_)
        assert cond is not None, f"no {type_} condition in {status.conditions}"
        out[type_] = (cond.status, cond.reason)
    return out


@pytest.mark.one_backend
def test_failed_evaluation_run_looks_like_a_failed_training_run(store: Any) -> None:
    pc, tr = manifests(ROWS, epochs=1)
    failed_training = _run(store, pc, tr, "train-fail")
    seen: list[RunStatus] = []
    failed_eval = _run(store, pc, _evaluation(tr), "eval-fail", on_status=lambda s: seen.append(s.model_copy()))

    expected = {
        ConditionType.RUNNING: ("False", Reason.ALL_CASES_FAILED),
        ConditionType.SUCCEEDED: ("False", Reason.ALL_CASES_FAILED),
        ConditionType.FAILED: ("True", Reason.ALL_CASES_FAILED),
    }
    assert _verdict(failed_training) == _verdict(failed_eval) == expected
    assert failed_eval.phase == failed_training.phase == "Failed"
    message = "every case failed; case e0: ValueError: input must be a non-empty string, got ''"
    assert failed_eval.message == message
    assert condition_of(failed_eval, ConditionType.FAILED).message == message  # type: ignore[union-attr]
    # the progress made before the failure is kept
    assert (failed_eval.cases_total, failed_eval.cases_completed, failed_eval.cases_failed) == (30, 30, 30)
    assert failed_eval.scores == {"accuracy": 0.0} and failed_eval.baseline_score == 0.0
    assert failed_eval.start_time is not None and failed_eval.completion_time is not None
    assert failed_eval.best_version is not None and failed_eval.best_checksum is not None
    # the stored status is the returned one, and the status sink saw the failure too
    row = store.get_run("eval-fail")
    assert row.phase == "Failed" and row.completed_at is not None
    assert row.status == failed_eval.to_wire()
    assert seen[-1].phase == "Failed" and seen[0].phase == "Running"
    assert len(store.list_cases("eval-fail", errors_only=True)) == 30
