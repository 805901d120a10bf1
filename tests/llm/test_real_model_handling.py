"""Issue 11 handling on the scripted server (deterministic twins of tests/llm_real): the per-model
concurrency limit, client timeouts capped by caseTimeoutSeconds, rewrite rejection reasons,
judge parse failures and truncated replies counted in status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from agentensor_api import ModelSpec
from agentensor_runner import execute, write_outputs
from agentensor_runner.llm import LlmRuntime
from agentensor_runner.optimizers.textgrad import parse_candidates
from agentensor_store import Store

from .conftest import API_KEY, KEY_ENV, evaluation_run, model, prompt_config
from .scripted_server import ScriptedServer


def _max_overlap(server: ScriptedServer) -> int:
    events = sorted([(r.started, 1) for r in server.log] + [(r.finished, -1) for r in server.log])
    depth = peak = 0
    for _, d in events:
        depth += d
        peak = max(peak, depth)
    return peak


async def test_max_concurrency_limits_calls_in_flight_across_purposes(server: ScriptedServer) -> None:
    server.add(reply="ok", latency_seconds=0.1)
    spec = ModelSpec.model_validate({**model(server), "maxConcurrency": 2})
    rt = LlmRuntime({"m": spec}, env={KEY_ENV: API_KEY})
    purposes = ["task", "judge", "gradient", "rewrite"] * 2
    await asyncio.gather(*(rt.ainvoke("m", p, {}, [HumanMessage(f"q{i}")], None) for i, p in enumerate(purposes)))
    await rt.aclose()
    assert len(server.log) == 8
    assert _max_overlap(server) == 2
    unlimited = LlmRuntime({"m": ModelSpec.model_validate(model(server))}, env={KEY_ENV: API_KEY})
    server.log.clear()
    await asyncio.gather(*(unlimited.ainvoke("m", "task", {}, [HumanMessage(f"q{i}")], None) for i in range(8)))
    await unlimited.aclose()
    assert _max_overlap(server) > 2


def test_client_timeout_is_capped_by_case_timeout(server: ScriptedServer) -> None:
    spec = ModelSpec.model_validate({**model(server), "timeoutSeconds": 300})
    rt = LlmRuntime({"m": spec}, env={KEY_ENV: API_KEY}, timeout_cap=20)
    assert rt.chat("m", "task").request_timeout == 20  # type: ignore[attr-defined]
    assert LlmRuntime({"m": spec}, env={KEY_ENV: API_KEY}).chat("m", "task").request_timeout == 300  # type: ignore[attr-defined]


def test_weak_rewrites_are_rejected_with_a_counted_reason() -> None:
    current = "Answer {{state.topic}} politely."
    rejected: dict[str, int] = {}
    assert parse_candidates("Sure! Here is a better prompt: be nice.", current, 3, rejected) == []
    assert parse_candidates("   ", current, 3, rejected) == []
    reply = "<prompt></prompt><prompt>Be polite.</prompt><prompt>Answer {{ state.topic }} briefly.</prompt>"
    assert parse_candidates(reply, current, 3, rejected) == ["Answer {{ state.topic }} briefly."]
    assert rejected == {"untagged": 1, "empty": 2, "lostPlaceholder": 1}


async def test_parse_failures_and_truncation_are_counted_in_status(
    server: ScriptedServer, llm_env: Path, tmp_path: Path
) -> None:
    server.add(system="strict evaluator", reply="I think it is good!")
    server.add(reply="a long answer cut by the limit", finish_reason="length")
    spec: dict[str, Any] = {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": {**model(server, "judge-m"), "structuredOutput": "none"}},
        "dataset": {"inline": [{"input": "q1", "expected": "a"}, {"input": "q2", "expected": "b"}]},
        "evaluators": [{"name": "helpful", "type": "llm_judge", "threshold": 0.5, "options": {"rubric": "Helps."}}],
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(evaluation_run(spec), prompt_config({"system": "Help."}), store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.usage is not None
    assert status.usage.parse_failures == {"helpful": 2}
    assert status.usage.truncated_calls == {"task": 2}
    assert "response_format" not in server.requests("strict evaluator")[0].body
    report = write_outputs(tmp_path / "out", "r", status, store, training=False)["report"].read_text()
    assert "judge parse failures" in report and "helpful=2" in report
    store.close()


async def test_parse_failure_is_unscored_excluded_from_the_mean_and_kept_raw_in_the_row(
    server: ScriptedServer, llm_env: Path, tmp_path: Path
) -> None:
    """One judge reply parses (score 0.8), the other rambles: the mean is 0.8 over 1 scored case,
    not 0.4 over 2; the unparsable case's row has no score, its raw reply in ``reasons`` and its
    own usage (1 task + 1 judge call, the parse failure)."""
    server.add(system="strict evaluator", user="q1", reply='{"score": 0.8, "reason": "fine"}')
    server.add(system="strict evaluator", user="q2", reply="Well, as a judge I would say it rambles on " * 3)
    server.add(reply="an answer")
    spec: dict[str, Any] = {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": {**model(server, "judge-m"), "structuredOutput": "none"}},
        "dataset": {"inline": [{"input": "q1", "expected": "a"}, {"input": "q2", "expected": "b"}]},
        "evaluators": [{"name": "helpful", "type": "llm_judge", "threshold": 0.5, "options": {"rubric": "Helps."}}],
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(evaluation_run(spec), prompt_config({"system": "Help."}), store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.scores == {"helpful": 0.8}
    assert status.best_score == 0.8
    assert status.usage is not None and status.usage.parse_failures == {"helpful": 1}
    assert "1 helpful parse failure(s)" in (status.conditions[-1].message or "")
    rows = {r.input: r for r in store.list_cases(status.run_id or "")}
    assert rows["q1"].scores == {"helpful": 0.8} and rows["q1"].passed is True and rows["q1"].reasons is None
    bad = rows["q2"]
    assert bad.scores == {} and bad.passed is False
    assert bad.reasons is not None and bad.reasons["helpful"].startswith("judge reply did not parse")
    assert "the judge failed, not the output" in bad.reasons["helpful"]
    assert "Well, as a judge I would say it rambles on" in bad.reasons["helpful"]
    assert bad.usage is not None
    assert bad.usage["llmCalls"] == {"judge": 1, "task": 1}
    assert bad.usage["parseFailures"] == {"helpful": 1}
    assert rows["q1"].usage is not None and rows["q1"].usage["parseFailures"] == {}
    assert bad.usage["inputTokens"] > 0 and bad.usage["outputTokens"] > 0
    store.close()
