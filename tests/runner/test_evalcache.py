"""The evaluation cache and the store-backed LLM response cache, against the scripted
OpenAI-compatible server (it logs every request) and a real store (SQLite and PostgreSQL).

The LLM response cache is off in the run tests (``responseCache.enabled: false``) so that only the
evaluation cache can be what spares a request.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from agentensor_api import TrainingRun
from agentensor_runner import execute
from agentensor_runner.data import Case
from agentensor_runner.evaluators import EvalResult
from agentensor_runner.execution import CaseResult
from agentensor_runner.execution.evalcache import cache_key, cacheable, from_entry, scoring_checksum, to_entry
from agentensor_runner.llm import StoreResponseCache, Usage
from agentensor_runner.llm._usage import CACHE_HIT_KEY
from agentensor_store import Store
from tests.llm.conftest import API_KEY, model, prompt_config, set_key, training_run
from tests.llm.scripted_server import ScriptedServer, system_of, user_of
from tests.llm.test_textgrad import CASES, GREETING, judge, task_reply

OPTIMIZER = "Diagnose what in the prompt|You rewrite one prompt"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ScriptedServer]:
    set_key(monkeypatch)
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "llm-cache.sqlite"))
    with ScriptedServer(require_key=API_KEY) as srv:
        srv.add(system="Diagnose what in the prompt", reply="Ask the agent to greet the customer.")
        srv.add(
            system="You rewrite one prompt",
            reply=f"<prompt>Start every reply with '{GREETING}' and mention refunds.</prompt>",
        )
        srv.add(system="strict evaluator", reply=judge)
        srv.add(user=r"\bquestion 4$", status=500, error="scripted outage")  # an error row, every time
        srv.add(reply=task_reply)
        yield srv


def spec(server: ScriptedServer, **extra: Any) -> dict[str, Any]:
    return {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": model(server, "judge-m"), "opt": model(server, "opt-m")},
        "dataset": {"inline": CASES, "split": {"train": 0.5, "validation": 0.25, "holdout": 0.25, "stratify": False}},
        "evaluators": [
            {"name": "judge", "type": "llm_judge", "threshold": 0.5, "options": {"rubric": "Greets and answers."}}
        ],
        "optimizer": {"type": "textgrad", "model": "opt", "epochs": 1, "batchSize": 100, "candidates": 1},
        "responseCache": {"enabled": False},
        **extra,
    }


def case_requests(server: ScriptedServer, since: int = 0) -> list[str]:
    """The user message of every task and judge request after the first ``since`` requests."""
    return [user_of(r.body) for r in server.log[since:] if not _is_optimizer(r.body)]


def _is_optimizer(body: dict[str, Any]) -> bool:
    import re

    return re.search(OPTIMIZER, system_of(body)) is not None


async def _train(store: Store, tr: TrainingRun, run_id: str, tmp_path: Path) -> Any:
    pc = prompt_config({"system": "You are a support agent."})
    status = await execute(tr, pc, store, base_dir=tmp_path, run_id=run_id)
    assert status.phase == "Succeeded", status.message
    return status


@pytest.mark.one_backend
async def test_a_repeated_run_makes_no_task_or_judge_call_for_a_scored_case(
    server: ScriptedServer, store: Store, tmp_path: Path
) -> None:
    first = await _train(store, training_run(spec(server)), "first", tmp_path)
    assert first.best_score is not None and first.baseline_score is not None
    assert first.best_score > first.baseline_score and first.evaluation_cache is not None
    assert first.evaluation_cache.stored > 0
    n = len(server.log)
    second = await _train(store, training_run(spec(server)), "second", tmp_path)
    repeated = case_requests(server, n)
    # The only task requests again are the error rows (question 4 answers 500 every time: never cached).
    assert repeated and all(q.endswith("question 4") for q in repeated), repeated
    assert second.evaluation_cache is not None and second.evaluation_cache.misses == len(repeated)
    assert (second.best_score, second.baseline_score, second.holdout, second.scores) == (
        first.best_score,
        first.baseline_score,
        first.holdout,
        first.scores,
    )
    assert second.cases_completed == first.cases_completed
    rows = {(r.stage, r.case_id): r for r in store.list_cases("second")}
    assert rows and all(r.scores or r.error for r in rows.values())


@pytest.mark.one_backend
async def test_a_changed_rubric_or_a_disabled_cache_runs_every_case(
    server: ScriptedServer, store: Store, tmp_path: Path
) -> None:
    await _train(store, training_run(spec(server)), "base", tmp_path)
    n = len(server.log)
    changed = spec(server)
    changed["evaluators"][0]["options"]["rubric"] = "Greets the customer and answers."
    status = await _train(store, training_run(changed), "rubric", tmp_path)
    assert status.evaluation_cache is not None and status.evaluation_cache.hits == 0
    judged = [r for r in server.log[n:] if "strict evaluator" in system_of(r.body)]
    assert judged, "a changed rubric must score again"
    n = len(server.log)
    off = await _train(store, training_run(spec(server, evaluationCache={"enabled": False})), "off", tmp_path)
    assert off.evaluation_cache is None
    assert len(case_requests(server, n)) >= len(CASES)  # every case ran: task (and judge) calls again


def _case(**row: Any) -> Case:
    return Case(case_id="c1", input=row.get("text", "hi"), expected=row.get("label", "x"), row=dict(row))


def test_the_key_changes_with_config_dataset_case_row_and_scoring(server: ScriptedServer) -> None:
    tr = training_run(spec(server))
    scoring = scoring_checksum(tr.spec, {"configurable": {}, "recursion_limit": None})
    base = cache_key("cfg", "data", _case(text="hi", label="x"), scoring)
    assert base == cache_key("cfg", "data", _case(text="hi", label="x"), scoring)
    assert base != cache_key("cfg2", "data", _case(text="hi", label="x"), scoring)
    assert base != cache_key("cfg", "data2", _case(text="hi", label="x"), scoring)
    assert base != cache_key("cfg", "data", _case(text="hi", label="x", other="col"), scoring)
    other = copy.deepcopy(spec(server))
    other["evaluators"][0]["threshold"] = 0.7
    assert scoring_checksum(training_run(other).spec, {}) != scoring_checksum(tr.spec, {})
    quieter = copy.deepcopy(spec(server))
    quieter["models"]["task"]["maxConcurrency"] = 1  # queues calls, changes no answer
    quieter["parallelism"] = 1
    assert scoring_checksum(training_run(quieter).spec, {}) == scoring_checksum(tr.spec, {})
    assert scoring_checksum(tr.spec, {"configurable": {"k": 1}}) != scoring_checksum(tr.spec, {})


def _result(**kw: Any) -> CaseResult:
    usage = Usage(3, 4, 0.5, 0.1)
    usage.calls["task"] = 1
    fields: dict[str, Any] = {
        "case": _case(text="hi"),
        "stage": "epoch-1/train",
        "thread_id": "t",
        "output": {"output": "hello", "n": [1, 2]},
        "results": {"judge": EvalResult(0.0, False, "does not greet")},
        "error": None,
        "latency_seconds": 0.25,
        "used_prompts": frozenset({"system"}),
        "usage": usage,
    }
    fields.update(kw)
    return CaseResult(**fields)


def test_an_entry_round_trips_and_only_scored_cases_are_cacheable() -> None:
    r = _result()
    entry = to_entry(r, key="k", config_checksum="cfg", dataset_hash="d")
    back = from_entry(entry.result, r.case, run_id="run", stage="holdout/best")
    assert back is not None
    assert (back.output, dict(back.results), back.used_prompts, back.latency_seconds) == (
        r.output,
        dict(r.results),
        r.used_prompts,
        r.latency_seconds,
    )
    assert back.stage == "holdout/best" and back.thread_id != r.thread_id and back.error is None
    assert back.usage is not None and back.usage.to_json() == r.usage.to_json()  # type: ignore[union-attr]
    assert cacheable(r)
    assert not cacheable(_result(error="TimeoutError: case exceeded caseTimeoutSeconds=1"))
    assert not cacheable(_result(output=("a", "tuple")))  # would come back as a list
    assert not cacheable(_result(results={}))
    if "outcome" in {f.name for f in dataclasses.fields(EvalResult)}:  # judge replies that did not parse
        unparsed = EvalResult(0.0, False, "judge reply did not parse", outcome="parseFailure")
        assert not cacheable(_result(results={"judge": unparsed}))
    assert from_entry({"results": "garbage"}, r.case, run_id="run", stage="s") is None


def test_store_response_cache_replays_a_reply_per_scope(store: Store) -> None:
    gens = [ChatGeneration(message=AIMessage(content="a rewrite"))]
    shared = StoreResponseCache(store)
    run_a = StoreResponseCache(store, scope="run:a")
    assert shared.lookup("prompt", "llm") is None
    run_a.update("prompt", "llm", gens)
    assert shared.lookup("prompt", "llm") is None
    assert StoreResponseCache(store, scope="run:b").lookup("prompt", "llm") is None
    hit = StoreResponseCache(store, scope="run:a").lookup("prompt", "llm")  # a new process: same store
    assert hit is not None and isinstance(hit[0], ChatGeneration)
    assert hit[0].message.content == "a rewrite" and hit[0].message.response_metadata[CACHE_HIT_KEY] is True
    assert run_a.lookup("prompt", "other llm") is None
    run_a.clear()
    assert run_a.lookup("prompt", "llm") is None
