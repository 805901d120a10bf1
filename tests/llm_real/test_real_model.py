"""What a real model does, against SmolLM2-135M on llama-cpp-python's server (issue 11).

Few cases and small ``maxTokens`` keep the tier to a few minutes on 2 busy cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agentensor_api import EvaluatorSpec, ModelSpec
from agentensor_runner import execute, write_outputs
from agentensor_runner.evaluators._llm_judge import PARSE_FAILURE, LlmJudgeEvaluator
from agentensor_runner.llm import LlmRuntime
from agentensor_store import Store

from .conftest import LlmServer, model, prompt_config, run

pytestmark = pytest.mark.llm_real

QUESTIONS = [
    "Explain how a bicycle works.",
    "Describe the water cycle.",
    "Why is the sky blue?",
]


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    return store


async def test_usage_truncation_cost_and_parse_failures(llm_server: LlmServer, tmp_path: Path) -> None:
    """Real usage blocks land in status with cost from spec.pricing; an 8-token limit truncates
    every reply; a judge without structured output and 4 tokens cannot answer JSON: each such
    reply is a counted parse failure, shown in the report."""
    pc = prompt_config({"system": "You are a helpful assistant."}, {"temperature": 0, "maxTokens": 8})
    spec: dict[str, Any] = {
        "workflow": {"template": "chat"},
        "models": {"task": model(llm_server), "judge": model(llm_server, structuredOutput="none")},
        "pricing": {"openai:smollm2": {"inputPerMillionTokens": 1.0, "outputPerMillionTokens": 2.0}},
        "dataset": {"inline": [{"input": q, "expected": "x"} for q in QUESTIONS[:2]]},
        "evaluators": [
            {
                "name": "helpful",
                "type": "llm_judge",
                "threshold": 0.5,
                "options": {"rubric": "Helpful.", "parameters": {"temperature": 0, "maxTokens": 4}},
            },
            {"name": "said", "type": "contains", "outputField": "output", "threshold": 0.5},
        ],
    }
    store = _store(tmp_path)
    status = await execute(run("EvaluationRun", spec), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    u = status.usage
    assert u is not None
    rows = store.list_cases(status.run_id or "")
    assert u.llm_calls == {"judge": 2, "task": 2}, [(r.case_id, r.error, r.output) for r in rows]
    assert u.input_tokens > 2 * 10 and 0 < u.output_tokens <= 2 * 8 + 2 * 4
    assert u.truncated_calls.get("task") == 2
    assert u.parse_failures == {"helpful": 2}
    assert math.isclose(u.cost, u.input_tokens * 1e-6 + u.output_tokens * 2e-6, rel_tol=1e-6)
    _rows_carry_reasons_and_usage(rows, u.input_tokens, u.output_tokens)
    # Unscored: neither row holds a helpful score, so its mean is over no case (0.0, n 0).
    assert status.scores is not None and status.scores["helpful"] == 0.0
    assert "2 helpful parse failure(s)" in (status.conditions[-1].message or ""), status.conditions
    report = write_outputs(tmp_path / "out", "r", status, store, training=False)["report"].read_text()
    assert "helpful=2" in report
    store.close()


def _rows_carry_reasons_and_usage(rows: list[Any], input_tokens: int, output_tokens: int) -> None:
    """Each row: the judge's raw (rambling) reply in ``reasons``, no ``helpful`` score, its own
    real token counts, and the per-row figures add up to the run's."""
    assert len(rows) == 2
    for r in rows:
        assert r.error is None, r.error
        assert "helpful" not in r.scores and "said" in r.scores
        assert r.reasons is not None and r.reasons["helpful"].startswith(PARSE_FAILURE), r.reasons
        assert "raw reply: '" in r.reasons["helpful"] and len(r.reasons["helpful"]) <= 2000
        assert r.usage is not None
        assert r.usage["llmCalls"] == {"judge": 1, "task": 1}
        assert r.usage["parseFailures"] == {"helpful": 1}
        assert r.usage["truncatedCalls"]["task"] == 1  # the 4-token judge reply may be cut too
        assert r.usage["inputTokens"] > 10 and r.usage["outputTokens"] > 0
    assert sum(r.usage["inputTokens"] for r in rows) == input_tokens
    assert sum(r.usage["outputTokens"] for r in rows) == output_tokens


async def test_judge_structured_output_falls_back_to_json_object(llm_server: LlmServer) -> None:
    """llama-cpp-python answers OpenAI's json_schema form with HTTP 500; ``auto`` falls back to
    ``json_object`` + schema (grammar-constrained), remembers it, and the verdict parses."""
    spec = EvaluatorSpec.model_validate(
        {
            "name": "j",
            "type": "llm_judge",
            "threshold": 0.5,
            "options": {"rubric": "The output names the capital of France.", "parameters": {"maxTokens": 60}},
        }
    )
    forced = LlmRuntime({"judge": ModelSpec.model_validate(model(llm_server, structuredOutput="json_schema"))})
    failed = await LlmJudgeEvaluator(spec, index=0, llm=forced).evaluate(input="?", output="Paris", expected=None)
    await forced.aclose()
    assert "Error code: 500" in failed.reason and not failed.passed

    rt = LlmRuntime({"judge": ModelSpec.model_validate(model(llm_server))})
    judge = LlmJudgeEvaluator(spec, index=0, llm=rt)
    try:
        results = [
            await judge.evaluate(input="Capital of France?", output=out, expected=None) for out in ("Paris", "Berlin")
        ]
    finally:
        await rt.aclose()
    assert rt.json_forms == {"judge": "json_object"}
    # The grammar makes every reply a JSON object with a numeric score. SmolLM2 may still give a
    # score outside 0..1 (4.5 for "Paris" in one run): that is a parse failure by design (it was
    # clamped to 1 before, which inflated the mean), counted in the ledger, never a crash.
    for r in results:
        if r.reason.startswith(PARSE_FAILURE):
            raw = r.reason.split("raw reply: ", 1)[1].strip("'")
            assert isinstance(json.loads(raw).get("score"), int | float), r.reason
    assert sum(rt.ledger.total.parse_failures.values()) == sum(r.reason.startswith(PARSE_FAILURE) for r in results)


async def test_prompt_longer_than_context_is_a_case_error_and_the_run_goes_on(
    llm_server: LlmServer, tmp_path: Path
) -> None:
    pc = prompt_config({"system": "Answer briefly."}, {"temperature": 0, "maxTokens": 4})
    long_input = "word " * 6000  # > n_ctx 4096 tokens
    spec: dict[str, Any] = {
        "workflow": {"template": "chat"},
        "models": {"task": model(llm_server)},
        "dataset": {"inline": [{"input": long_input, "expected": "x"}, {"input": "Say hi.", "expected": "x"}]},
        "evaluators": [{"name": "has", "type": "contains", "outputField": "output"}],
    }
    store = _store(tmp_path)
    status = await execute(run("EvaluationRun", spec), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    rows = store.list_cases(status.run_id or "")
    errors = [r.error for r in rows if r.error]
    assert len(rows) == 2 and len(errors) == 1
    assert "Error code: 400" in errors[0] and "maximum context length is 4096 tokens" in errors[0]
    store.close()


async def test_parallelism_beyond_the_servers_slot_only_queues(llm_server: LlmServer) -> None:
    """llama-cpp-python's server runs one completion at a time: 4 calls at concurrency 4 are not
    served in parallel (a 4-slot server would take about a quarter of the serial time; other
    engineers' load on the 2 cores makes the bound loose). Replies are cut at 24 tokens."""
    import asyncio
    import time

    rt = LlmRuntime({"m": ModelSpec.model_validate(model(llm_server))})
    msgs = [[HumanMessage(f"Count from 1 to 20, case {i}.")] for i in range(4)]
    kw = {"temperature": 0.0, "max_tokens": 24}
    await rt.ainvoke("m", "task", kw, [HumanMessage("warm up")], None)
    t0 = time.perf_counter()
    for m in msgs:
        await rt.ainvoke("m", "task", kw, m, None)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    await asyncio.gather(*(rt.ainvoke("m", "task", kw, [HumanMessage(str(m[0].content) + " ")], None) for m in msgs))
    parallel = time.perf_counter() - t0
    await rt.aclose()
    assert parallel > 0.5 * serial, (serial, parallel)
    assert rt.ledger.total.truncated.get("task", 0) >= 1
