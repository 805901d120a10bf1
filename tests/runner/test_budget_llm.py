"""The LLM-counted budgets (maxModelCalls, maxTokens, maxCostUSD) on the scripted OpenAI-compatible
server: task, judge and optimizer (textgrad gradient/rewrite) calls all count, each stop reason is
reached, and the holdout comparison still runs after the stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ConditionType, Reason, condition_of
from agentensor_runner import execute
from agentensor_store import Store
from tests.llm.conftest import API_KEY, prompt_config, set_key, training_run
from tests.llm.scripted_server import ScriptedServer
from tests.llm.test_textgrad import CASES, GREETING, script, spec


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ScriptedServer]:
    set_key(monkeypatch)
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "llm-cache.sqlite"))
    with ScriptedServer(require_key=API_KEY) as srv:
        yield srv


def _spec(server: ScriptedServer, budget: dict[str, Any]) -> dict[str, Any]:
    s = spec(server, CASES, batchSize=4)
    s["budget"] = budget
    s["pricing"] = {"openai:gpt-scripted": {"inputPerMillionTokens": 1e6, "outputPerMillionTokens": 1e6}}
    return s


@pytest.mark.parametrize(
    ("budget", "name", "mid_epoch"),
    [
        # baseline: 4 validation cases x (task + judge) = 8 calls; the first minibatch (4 x 2) and
        # its gradient + rewrite pass 10, so the loop stops before that candidate's validation
        pytest.param({"maxModelCalls": 10}, "maxModelCalls", True, id="model-calls"),
        pytest.param({"maxTokens": 1}, "maxTokens", False, id="tokens"),
        # priced at 1 USD per token (task model only): the baseline's task calls use it up
        pytest.param({"maxCostUSD": 0.5}, "maxCostUSD", False, id="cost"),
    ],
)
async def test_each_llm_budget_stops_the_run(
    server: ScriptedServer, tmp_path: Path, budget: dict[str, Any], name: str, mid_epoch: bool
) -> None:
    script(server, f"<prompt>Start every reply with '{GREETING}' and mention refunds.</prompt>")
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    pc = prompt_config({"system": "You are a support agent."})
    status = await execute(training_run(_spec(server, budget)), pc, store, base_dir=tmp_path, run_id="llm-budget")
    assert status.phase == "Succeeded", status.message
    succeeded = condition_of(status, ConditionType.SUCCEEDED)
    assert succeeded is not None and succeeded.reason == Reason.BUDGET_EXHAUSTED
    assert f"budget {name} exhausted" in succeeded.message
    assert status.budget is not None and status.budget.exhausted == name
    assert status.usage is not None
    calls = sum(status.usage.llm_calls.values())
    assert status.budget.model_calls.used == calls == len(server.requests())
    assert status.budget.tokens.used == status.usage.input_tokens + status.usage.output_tokens
    assert status.budget.cost_usd.used == pytest.approx(status.usage.cost)
    stages = {r.stage for r in store.list_cases("llm-budget")}
    assert not any("/candidate-" in s for s in stages), "stopped before any candidate reached validation"
    assert any(s.startswith("epoch-1/train") for s in stages) == mid_epoch
    if mid_epoch:
        assert len(server.requests("Diagnose what in the prompt")) == 1, "the optimizer's calls count too"
    assert status.holdout is not None and status.holdout.baseline is not None
    assert "holdout/baseline" in stages
    promotable = condition_of(status, ConditionType.PROMOTABLE)
    assert promotable is not None and (promotable.status, promotable.reason) == ("False", Reason.NO_IMPROVEMENT)
    assert status.projected is not None and status.projected.model_calls_per_case == 2
    # textgrad: 1 gradient + 1 rewrite per trainable prompt per minibatch (8 train / 4 -> 2 minibatches)
    assert status.projected.minibatches_per_epoch == 2
    assert status.projected.model_calls_per_epoch == status.projected.metric_calls_per_epoch * 2 + 2 * 2
    store.close()
