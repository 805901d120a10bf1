"""An EvaluationRun streams its case rows to the store in batches and resumes from the rows written.

Real store (SQLite and PostgreSQL through the ``store`` fixture), real workflow entrypoint; the
"crash" is an exception the executor does not catch (a ``BaseException``), raised by the workflow
itself after a given number of invocations, so the run stops mid-way with its batches written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agentensor_api import parse_resource
from agentensor_runner import execute, runs
from agentensor_runner.evaluators import ALLOWLIST_ENV
from agentensor_store import Store

from .sample_workflows import State

CASES = 230
INVOKED: list[str] = []
"""Inputs of the cases the workflow below ran, in order (reset by each test)."""
CRASH_AFTER: list[int] = []
"""When set, the workflow raises :class:`Crash` on that invocation."""


class Crash(BaseException):
    """Stands in for the process dying: not an ``Exception``, so no case swallows it."""


def build_counting(options: dict[str, Any]) -> StateGraph[State, Any, State, State]:
    """Answers ``<input>!``; every 4th input also fails the exact match (``wrong``)."""

    def answer(state: State, config: RunnableConfig) -> dict[str, Any]:
        INVOKED.append(state["input"])
        if CRASH_AFTER and len(INVOKED) == CRASH_AFTER[0]:
            raise Crash
        n = int(state["input"].split("-")[1])
        return {"answer": "wrong" if n % 4 == 0 else state["input"] + "!"}

    g: StateGraph[State, Any, State, State] = StateGraph(State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def _manifests() -> tuple[Any, Any]:
    pc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {"name": "pc"},
        "spec": {"workflow": "counting", "prompts": {"p": {"text": "x"}}},
    }
    run = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "EvaluationRun",
        "metadata": {"name": "big"},
        "spec": {
            "promptConfigRef": {"name": "pc"},
            "workflow": {"entrypoint": f"{__name__}:build_counting"},
            "dataset": {"inline": [{"input": f"c-{i}", "expected": f"c-{i}!"} for i in range(CASES)]},
            "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "answer"}],
            "parallelism": 4,
        },
    }
    return parse_resource(pc), parse_resource(run)


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWLIST_ENV, "tests.runner")
    monkeypatch.setattr(runs, "BATCH_CASES", 50)
    INVOKED.clear()
    CRASH_AFTER.clear()


def _spy_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = store.record_cases

    def record(run_id: str, rows: Any) -> None:
        sizes.append(len(rows))
        real(run_id, rows)

    monkeypatch.setattr(store, "record_cases", record)
    return sizes


def _execute(store: Store, run_id: str) -> Any:
    pc, run = _manifests()
    return asyncio.run(execute(run, pc, store, base_dir=Path("."), run_id=run_id))


@pytest.mark.one_backend
def test_rows_go_out_in_batches_and_aggregates_match_the_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _spy_batches(store, monkeypatch)
    status = _execute(store, "stream-1")
    assert status.phase == "Succeeded", status.message
    assert sizes == [50, 50, 50, 50, 30]
    rows = store.list_cases("stream-1")
    assert len(rows) == CASES == status.cases_completed
    wrong = sum(1 for i in range(CASES) if i % 4 == 0)
    assert status.scores == {"exact": pytest.approx((CASES - wrong) / CASES)}
    assert sum(r.scores["exact"] for r in rows) / CASES == pytest.approx(status.scores["exact"])
    failed = [r for r in rows if not r.passed]
    assert len(failed) == wrong and all(r.reasons and "exact" in r.reasons for r in failed)


@pytest.mark.one_backend
def test_a_crashed_run_resumes_from_its_rows_and_runs_only_the_rest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _execute(store, "stream-ref")
    INVOKED.clear()
    CRASH_AFTER.append(121)
    with pytest.raises(Crash):
        _execute(store, "stream-2")
    written = {r.case_id for r in store.list_cases("stream-2")}
    crashed = INVOKED[120]
    # the full batches and the partial one flushed on the way out: at least 100 of the 120 cases
    # finished before the crash, and nothing that was not invoked or that crashed
    assert 100 <= len(written) < len(INVOKED)
    assert written <= {x.split("-")[1] for x in INVOKED} - {crashed.split("-")[1]}
    INVOKED.clear()
    CRASH_AFTER.clear()
    status = _execute(store, "stream-2")
    assert status.phase == "Succeeded", status.message
    assert len(INVOKED) == CASES - len(written)
    assert not written & {f"{int(x.split('-')[1])}" for x in INVOKED}
    assert len(store.list_cases("stream-2")) == CASES == status.cases_completed
    assert status.scores == reference.scores and status.cases_failed == reference.cases_failed == 0


def test_a_worker_pool_streams_its_results_in_batches() -> None:
    """With worker processes the cases go to the pool a batch at a time; the aggregates equal
    the in-process ones and no result is kept."""
    from agentensor_api import EvaluationRunSpec
    from agentensor_runner import PromptSet
    from agentensor_runner.data import Case
    from agentensor_runner.evaluators import build_evaluators
    from agentensor_runner.execution import Aggregator, CaseStream, WorkerPool, WorkerRecipe, run_cases
    from agentensor_runner.workflows import load_workflow

    spec = EvaluationRunSpec.model_validate(
        {
            "workflow": {"entrypoint": "tests.runner.sample_workflows:build_pid_echo"},
            "promptConfigRef": {"name": "x"},
            "dataset": {"inline": [{"input": "a", "expected": "b"}]},
            "evaluators": [
                {"name": "has", "type": "contains", "outputField": "answer", "options": {"substring": "7|"}}
            ],
            "parallelism": 32,
        }
    )
    prompts = PromptSet({"prefix": "Q:"}, frozenset({"prefix"}))
    cases = [Case(str(i), f"case-{i}", None, {}) for i in range(45)]
    evaluators = build_evaluators(spec.evaluators)
    kw: dict[str, Any] = {"base_config": {}, "run_id": "r", "stage": "s", "parallelism": 32, "case_timeout_seconds": 30}
    local = asyncio.run(run_cases(load_workflow(spec.workflow), prompts, cases, evaluators, **kw))
    batches: list[list[str]] = []
    stream = CaseStream(lambda b: batches.append([r.case.case_id for r in b]), Aggregator(["has"]), batch_size=20)
    with WorkerPool(WorkerRecipe(spec, str(Path.cwd())), 2) as pool:
        streamed = asyncio.run(
            run_cases(load_workflow(spec.workflow), prompts, cases, evaluators, **kw, pool=pool, stream=stream)
        )
    assert [len(b) for b in batches] == [20, 20, 5]
    assert [c for b in batches for c in b] == [c.case_id for c in cases]
    assert streamed.cases == [] and streamed.size == 45
    # the answer ends in "|<pid>", so only the input decides "7|": case-7, 17, 27 and 37
    assert local.aggregates["has"]["n"] == 45 and local.means["has"] == pytest.approx(4 / 45)
    assert streamed.aggregates == local.aggregates and streamed.means == local.means
