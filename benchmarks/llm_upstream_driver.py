"""Upstream agentensor 0.1.2 side of ``llm_throughput.py``; runs in its own Python 3.12 venv.

Usage: ``/tmp/upstream-venv/bin/python benchmarks/llm_upstream_driver.py BASE_URL N CONCURRENCY``.
Evaluates N cases of a one-node chat graph (ChatOpenAI.ainvoke with the system prompt from
``runtime_prompts``) through ``GraphTrainer.evaluate`` with an ``EqualsExpected`` evaluator,
and prints ``{"wall_seconds": ..., "cpu_seconds": ...}`` (process CPU, server excluded).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TypedDict

from agentensor.tensor import TextTensor
from agentensor.train import GraphTrainer
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected


class State(TypedDict, total=False):
    messages: list[Any]
    results: dict[str, Any]
    inputs: dict[str, Any]
    structured_response: Any
    config: dict[str, Any]
    output: str


def main() -> None:
    base_url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    llm = ChatOpenAI(model="gpt-scripted", base_url=base_url, api_key="sk-bench", temperature=0, max_retries=0)

    async def respond(state: State) -> dict[str, Any]:
        system = state["config"]["prompts"]["system"].text
        reply = await llm.ainvoke([SystemMessage(system), HumanMessage(state["inputs"]["input"])])
        return {"output": reply.content}

    g = StateGraph(State)
    g.add_node("respond", respond)
    g.add_edge(START, "respond")
    g.add_edge("respond", END)
    graph = g.compile()
    prompts = {"system": TextTensor("Answer the customer.", requires_grad=True, model=llm)}

    def trainer(cases: int) -> GraphTrainer:
        dataset = Dataset(
            name="bench",
            cases=[Case(name=f"c{i}", inputs={"input": f"question {i}"}, expected_output="ok") for i in range(cases)],
            evaluators=[EqualsExpected()],
        )
        return GraphTrainer(
            graph=graph,
            dataset=dataset,
            epochs=1,
            runtime_prompts=prompts,
            max_concurrency=concurrency,
            case_timeout=60,
        )

    # Warm-up (imports, connection pool). upstream's evaluate(limit_cases=...) fails with the
    # pydantic-evals it installs (Dataset needs name=), so the warm-up uses its own small dataset.
    trainer(min(n, 32)).evaluate("eval", max_concurrency=concurrency)
    main_run = trainer(n)
    cpu0, t0 = time.process_time(), time.perf_counter()
    main_run.evaluate("eval", max_concurrency=concurrency)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({"wall_seconds": wall, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
