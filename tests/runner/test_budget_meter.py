"""BudgetMeter and StopPoller with an injected clock and a real store (no training run)."""

from __future__ import annotations

import pytest

from agentensor_api import BudgetSpec
from agentensor_runner.llm import Usage
from agentensor_runner.training.budget import BudgetMeter, StopPoller
from agentensor_store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _spend(meter: BudgetMeter, clock: Clock, usage: Usage, field: str, amount: float) -> None:
    if field == "metric_calls":
        meter.metric_calls = int(amount)
    elif field == "model_calls":
        usage.calls.clear()
        usage.calls["task"], usage.calls["judge"], usage.calls["gradient"] = int(amount) - 2, 1, 1
    elif field == "tokens":
        usage.input_tokens, usage.output_tokens = int(amount) // 2, int(amount) - int(amount) // 2
    elif field == "cost_usd":
        usage.cost = amount
    else:
        clock.now = 100.0 + amount


@pytest.mark.parametrize(
    ("spec_field", "field", "wire", "limit", "below"),
    [
        pytest.param("max_metric_calls", "metric_calls", "maxMetricCalls", 10, 9, id="metric-calls"),
        pytest.param("max_model_calls", "model_calls", "maxModelCalls", 5, 4, id="model-calls"),
        pytest.param("max_tokens", "tokens", "maxTokens", 100, 99, id="tokens"),
        pytest.param("max_cost_usd", "cost_usd", "maxCostUSD", 0.5, 0.49, id="cost"),
        pytest.param("max_duration_seconds", "duration_seconds", "maxDurationSeconds", 60, 59.5, id="duration"),
    ],
)
def test_each_budget_is_exhausted_at_its_limit_and_named(
    spec_field: str, field: str, wire: str, limit: float, below: float
) -> None:
    clock, usage = Clock(), Usage()
    meter = BudgetMeter(BudgetSpec(**{spec_field: limit}), clock=clock)
    _spend(meter, clock, usage, field, below)
    assert meter.exhausted(usage) is None
    _spend(meter, clock, usage, field, limit)
    hit = meter.exhausted(usage)
    assert hit is not None and hit[0] == wire
    assert hit[1].startswith(f"budget {wire} exhausted: used ")
    status = meter.to_status(usage, hit[0]).to_wire()
    assert status[_camel(field)] == {"used": pytest.approx(limit), "limit": limit}
    assert status["exhausted"] == wire
    others = [k for k in status if k not in (_camel(field), "exhausted")]
    assert all("limit" not in status[k] for k in others), "unset budgets have no limit"  # type: ignore[operator]


def _camel(field: str) -> str:
    return {"cost_usd": "costUSD"}.get(field) or field.split("_")[0] + "".join(w.title() for w in field.split("_")[1:])


def test_restore_adds_what_earlier_processes_spent() -> None:
    clock = Clock()
    meter = BudgetMeter(BudgetSpec(max_metric_calls=100), clock=clock)
    meter.restore({"metricCalls": 60, "modelCalls": 2, "durationSeconds": 30.5, "tokens": "bad", "costUSD": -1})
    meter.restore(None)  # a checkpoint written before budgets existed
    meter.metric_calls = 39
    clock.now += 1.0
    used = meter.used(None)
    assert used == {"metric_calls": 99.0, "model_calls": 2.0, "tokens": 0.0, "cost_usd": 0.0, "duration_seconds": 31.5}
    assert meter.exhausted(None) is None
    meter.metric_calls = 40
    assert meter.exhausted(None) == ("maxMetricCalls", "budget maxMetricCalls exhausted: used 100 of 100")
    assert meter.to_extra(None)["metricCalls"] == 100.0


def test_stop_poller_reads_the_store_at_most_every_interval(store: Store) -> None:
    store.create_run(run_id="r1", kind="TrainingRun", namespace="default", name="r1", workflow="w", spec={})
    clock = Clock()
    poller = StopPoller(store, "r1", interval_seconds=2.0, clock=clock)
    assert poller.poll() is False  # first read
    assert store.request_stop("r1") is True
    assert store.request_stop("r1") is False, "idempotent"
    clock.now += 1.0
    assert poller.poll() is False, "within the interval the store is not read again"
    assert poller.poll(force=True) is True, "a forced poll reads it"
    other = StopPoller(store, "r1", interval_seconds=2.0, clock=clock)
    assert other.poll() is True
    clock.now += 1.0
    assert poller.poll() is True, "once seen it stays seen"
