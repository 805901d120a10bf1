"""RunnableConfig: merge rules, and propagation of tags/metadata/run_name/configurable to every node."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agentensor_api import EvaluatorSpec, RunnableConfigSpec
from agentensor_runner import PromptSet, merge_configs, resolve_run_config
from agentensor_runner.data import Case
from agentensor_runner.evaluators import build_evaluators
from agentensor_runner.execution import run_cases
from agentensor_runner.workflows import Workflow


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param({"tags": ["x", "y"]}, {"tags": ["y", "z"]}, {"tags": ["x", "y", "z"]}, id="tags-union"),
        pytest.param(
            {"metadata": {"a": {"b": 1, "c": 2}}},
            {"metadata": {"a": {"c": 3}}},
            {"metadata": {"a": {"b": 1, "c": 3}}},
            id="metadata-deep",
        ),
        pytest.param(
            {"configurable": {"m": {"t": 0.1}, "k": 1}},
            {"configurable": {"m": {"p": 2}}},
            {"configurable": {"m": {"t": 0.1, "p": 2}, "k": 1}},
            id="configurable-deep",
        ),
        pytest.param(
            {"run_name": "a", "recursion_limit": 5},
            {"run_name": "b"},
            {"run_name": "b", "recursion_limit": 5},
            id="scalars-replaced",
        ),
        pytest.param({}, {}, {}, id="empty"),
    ],
)
def test_merge(a: dict[str, Any], b: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_configs(a, b) == expected


class S(TypedDict, total=False):
    input: str
    seen: list[dict[str, Any]]
    answer: str


def _recording_graph(log: list[dict[str, Any]]) -> Any:
    def node(name: str) -> Any:
        def fn(state: S, config: RunnableConfig) -> dict[str, Any]:
            cfg = config.get("configurable", {})
            log.append(
                {
                    "node": name,
                    "tags": list(config.get("tags", [])),
                    "metadata": dict(config.get("metadata", {})),
                    "run_name": config.get("run_name"),
                    "thread_id": cfg.get("thread_id"),
                    "custom": cfg.get("custom"),
                    "prompt": cfg["prompts"]["sys"].text,
                    "input": state["input"],
                }
            )
            return {"answer": state["input"].upper()}

        return fn

    g: StateGraph[S, Any, S, S] = StateGraph(S)
    for n in ("a", "b", "c"):
        g.add_node(n, node(n))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile()


def test_config_reaches_every_node_and_thread_ids_are_unique() -> None:
    log: list[dict[str, Any]] = []
    wf = Workflow(
        graph=_recording_graph(log),
        defaults={"tags": ["wf-default"], "metadata": {"wf": 1}, "configurable": {"custom": {"x": 1, "y": 1}}},
    )
    spec = RunnableConfigSpec.model_validate(
        {
            "tags": ["from-spec"],
            "metadata": {"team": "support"},
            "run_name": "my-run",
            "configurable": {"custom": {"y": 2}},
        }
    )
    base = resolve_run_config(spec, wf.defaults)
    cases = [Case(str(i), f"case {i}", f"CASE {i}", {}) for i in range(12)]
    evals = build_evaluators([EvaluatorSpec(name="em", type="exact_match", output_field="answer")])
    ps = PromptSet({"sys": "be nice"}, frozenset({"sys"}))
    result = asyncio.run(
        run_cases(
            wf, ps, cases, evals, base_config=base, run_id="r1", stage="eval", parallelism=4, case_timeout_seconds=5
        )
    )
    assert result.means["em"] == 1.0
    assert len(log) == 36  # 12 cases x 3 nodes
    for rec in log:
        assert rec["tags"][:2] == ["wf-default", "from-spec"]
        assert rec["metadata"]["team"] == "support" and rec["metadata"]["wf"] == 1
        assert rec["metadata"]["agentensor_run_id"] == "r1"
        assert rec["metadata"]["run_name"] == "my-run"  # run_name itself names the root run
        assert rec["custom"] == {"x": 1, "y": 2}
        assert rec["prompt"] == "be nice"
    threads: dict[str, set[str]] = {}
    for rec in log:
        threads.setdefault(rec["input"], set()).add(rec["thread_id"])
    assert all(len(t) == 1 for t in threads.values()), "a case's nodes share its thread_id"
    all_ids = [next(iter(t)) for t in threads.values()]
    assert len(set(all_ids)) == 12, "no two cases share a thread_id"
    assert {r.thread_id for r in result.cases} == set(all_ids)
    assert all(r.used_prompts == {"sys"} for r in result.cases)


def test_failing_and_slow_cases_become_error_rows() -> None:
    async def node(state: S) -> dict[str, Any]:
        if state["input"] == "boom":
            raise RuntimeError("kaput")
        if state["input"] == "slow":
            await asyncio.sleep(5)
        return {"answer": state["input"]}

    g: StateGraph[S, Any, S, S] = StateGraph(S)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    wf = Workflow(graph=g.compile())
    cases = [
        Case("0", "ok", "ok", {}),
        Case("1", "boom", "boom", {}),
        Case("2", "slow", "slow", {}),
        Case("3", None, "x", {}, error="row 3 has no field 'text'"),
    ]
    evals = build_evaluators([EvaluatorSpec(name="em", type="exact_match", output_field="answer")])
    res = asyncio.run(
        run_cases(
            wf,
            PromptSet({}, frozenset()),
            cases,
            evals,
            base_config={},
            run_id="r",
            stage="eval",
            parallelism=4,
            case_timeout_seconds=0.2,
        )
    )
    by_id = {r.case.case_id: r for r in res.cases}
    assert by_id["0"].error is None and by_id["0"].passed("em")
    assert by_id["1"].error == "RuntimeError: kaput"
    assert by_id["2"].error is not None and "caseTimeoutSeconds=0.2" in by_id["2"].error
    assert by_id["3"].error == "row 3 has no field 'text'"
    assert res.errors == 3
    assert res.means["em"] == pytest.approx(0.25)
