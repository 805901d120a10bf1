"""spec.budget, graceful stop and projected calls in real training runs (SQLite and PostgreSQL).

The LLM-counted budgets (model calls, tokens, cost) are in ``test_budget_llm.py`` against the
scripted OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ConditionType, ManifestError, Reason, RunStatus, condition_of, parse_resource
from agentensor_runner import execute
from agentensor_store import Store

from ._synthetic import make_rows, manifests


def _run(store: Store, pc: dict[str, Any], tr: dict[str, Any], run_id: str, **kw: Any) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(tr), parse_resource(pc), store, base_dir=Path("."), run_id=run_id, **kw)  # type: ignore[arg-type]
    )


def _stages(store: Store, run_id: str) -> list[str]:
    return [r.stage for r in store.list_cases(run_id)]


def _assert_finished_by(status: RunStatus, reason: str, budget: str | None) -> None:
    assert status.phase == "Succeeded", status.conditions
    succeeded = condition_of(status, ConditionType.SUCCEEDED)
    assert succeeded is not None and succeeded.status == "True"
    assert succeeded.reason == reason, succeeded
    if budget is not None:
        assert f"budget {budget} exhausted" in succeeded.message
        assert status.budget is not None and status.budget.exhausted == budget
    # the best config so far is still compared on holdout and the guard decides as usual
    assert status.holdout is not None and status.holdout.baseline is not None and status.holdout.best is not None
    promotable = condition_of(status, ConditionType.PROMOTABLE)
    assert promotable is not None and promotable.reason in (
        Reason.HOLDOUT_GUARD_PASSED,
        Reason.NO_IMPROVEMENT,
        Reason.NOT_SIGNIFICANT,
        Reason.HOLDOUT_REGRESSION,
    )


@pytest.mark.one_backend
def test_max_metric_calls_stops_mid_epoch_and_still_guards_on_holdout(store: Store) -> None:
    pc, tr = manifests(make_rows(), epochs=3, batch_size=16)
    # validation is 45 cases, so the baseline (45) + one minibatch (16) + one candidate (45) pass 100
    tr["spec"]["budget"] = {"maxMetricCalls": 100}
    status = _run(store, pc, tr, "budget-metric")
    _assert_finished_by(status, Reason.BUDGET_EXHAUSTED, "maxMetricCalls")
    assert status.budget is not None
    used, limit = status.budget.metric_calls.used, status.budget.metric_calls.limit
    assert limit == 100 and used >= limit
    stages = _stages(store, "budget-metric")
    assert not any(s.startswith("epoch-2/") for s in stages), "the loop stopped inside epoch 1"
    assert "holdout/baseline" in stages and "holdout/best" in stages
    # used counts every case evaluation that ran, holdout included (no (config, case) pair repeats here)
    assert used == len(stages)
    wire = status.to_wire()["budget"]
    assert wire["metricCalls"] == {"used": used, "limit": 100.0}  # type: ignore[index]
    assert status.checkpoints is not None and max(c.epoch for c in status.checkpoints) == 1


@pytest.mark.one_backend
def test_a_budget_the_baseline_uses_up_trains_no_epoch(store: Store) -> None:
    """Defined behaviour: the baseline always completes (nothing can be accepted without its score);
    if it exhausts a budget, no epoch runs, the holdout comparison still runs and, the best config
    being the baseline, Promotable is False with NoImprovement."""
    pc, tr = manifests(make_rows(), epochs=3)
    tr["spec"]["budget"] = {"maxMetricCalls": 1}
    status = _run(store, pc, tr, "budget-baseline")
    _assert_finished_by(status, Reason.BUDGET_EXHAUSTED, "maxMetricCalls")
    stages = set(_stages(store, "budget-baseline"))
    assert stages == {"epoch-0/validation", "holdout/baseline", "holdout/best"}
    assert status.checkpoints is not None and [c.epoch for c in status.checkpoints] == [0]
    promotable = condition_of(status, ConditionType.PROMOTABLE)
    assert promotable is not None and (promotable.status, promotable.reason) == ("False", Reason.NO_IMPROVEMENT)


@pytest.mark.one_backend
def test_max_duration_seconds(store: Store) -> None:
    pc, tr = manifests(make_rows(), epochs=2)
    tr["spec"]["budget"] = {"maxDurationSeconds": 1e-6}
    status = _run(store, pc, tr, "budget-time")
    _assert_finished_by(status, Reason.BUDGET_EXHAUSTED, "maxDurationSeconds")
    assert status.budget is not None and status.budget.duration_seconds.limit == 1e-6
    assert status.budget.duration_seconds.used > 1e-6


@pytest.mark.one_backend
def test_stop_requested_through_the_store(store: Store) -> None:
    pc, tr = manifests(make_rows(), epochs=3, batch_size=16)
    requested: list[bool] = []

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage.startswith("epoch-1/train") and not requested:
            requested.append(store.request_stop("stop-1"))

    status = _run(store, pc, tr, "stop-1", on_progress=on_progress)
    assert requested == [True]
    assert store.stop_requested("stop-1") is not None
    _assert_finished_by(status, Reason.STOP_REQUESTED, None)
    succeeded = condition_of(status, ConditionType.SUCCEEDED)
    assert succeeded is not None and "stop requested" in succeeded.message
    stages = _stages(store, "stop-1")
    assert not any(s.startswith("epoch-2/") for s in stages), "the stop landed at a boundary of epoch 1"


@pytest.mark.one_backend
def test_a_stopped_run_resumed_stops_again_and_keeps_its_budget(store: Store) -> None:
    pc, tr = manifests(make_rows(), epochs=3, batch_size=16)
    tr["spec"]["budget"] = {"maxMetricCalls": 100}
    first = _run(store, pc, tr, "budget-resume")
    assert first.budget is not None
    again = _run(store, pc, tr, "budget-resume")
    _assert_finished_by(again, Reason.BUDGET_EXHAUSTED, "maxMetricCalls")
    # the budget spent before the last checkpoint is restored from it, so the resume is not a fresh budget
    latest = max(store.list_checkpoints(run_id="budget-resume"), key=lambda c: c.epoch)
    spent = latest.extra["budget"]["metricCalls"]
    assert spent >= 100
    assert again.budget is not None and again.budget.metric_calls.used >= spent
    assert not any(s.startswith("epoch-2/") for s in _stages(store, "budget-resume"))


@pytest.mark.one_backend
def test_projected_calls_are_recorded_and_bound_the_run(store: Store) -> None:
    pc, tr = manifests(make_rows(), epochs=2, batch_size=16)
    tr["spec"]["optimizer"].update({"candidates": 2, "minibatchGate": True})
    seen: list[RunStatus] = []
    status = _run(store, pc, tr, "projected-1", on_status=lambda s: seen.append(s.model_copy(deep=True)))
    first = next(s for s in seen if s.projected is not None)
    assert not first.cases_completed, "recorded before the first case ran"
    p = first.projected
    assert p is not None
    n_val = len(store.list_cases("projected-1", stage="epoch-0/validation"))
    n_hold = len(store.list_cases("projected-1", stage="holdout/baseline"))
    n_train = 180 - n_val - n_hold
    batches = -(-n_train // 16)
    assert (p.epochs, p.minibatches_per_epoch, p.metric_calls_baseline) == (2, batches, n_val)
    assert p.metric_calls_holdout == 2 * n_hold
    # per epoch: the train forward, then per minibatch 2 candidates on validation and on their gate minibatch
    assert p.metric_calls_per_epoch == n_train + batches * 2 * n_val + 2 * n_train
    assert p.metric_calls_total == n_val + 2 * p.metric_calls_per_epoch + 2 * n_hold
    assert (p.model_calls_per_case, p.model_calls_total) == (0, 0), "embedding router and exact_match call no LLM"
    assert status.budget is not None and status.budget.metric_calls.used <= p.metric_calls_total
    assert status.projected == p


def test_budget_fields_are_validated_by_name() -> None:
    _pc, tr = manifests(make_rows(n_per_intent=3), epochs=1)
    tr["spec"]["budget"] = {"maxMetricCalls": 0}
    with pytest.raises(ManifestError) as exc:
        parse_resource(tr)
    assert exc.value.field == "spec.budget.maxMetricCalls"
    tr["spec"]["budget"] = {"maxCostUsd": 1}
    with pytest.raises(ManifestError) as exc:
        parse_resource(tr)
    assert "maxCostUsd" in exc.value.field
