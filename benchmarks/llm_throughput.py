"""LLM throughput: 1,000 cases of a one-node chat workflow against the scripted server.

    .venv/bin/python benchmarks/llm_throughput.py [--cases 1000] [--latency-ms 50] \
        [--upstream-python /tmp/upstream-venv/bin/python] [--repeats 3] [--processes N]

The scripted OpenAI-compatible server (tests/llm/scripted_server.py) runs in its own process
with a fixed latency per call, so the CPU figures are the client's alone
(``time.process_time`` of this process). Reported, each the median of ``--repeats`` runs:

- achieved / ideal, where ideal = N x latency / concurrency, for ours at concurrency 8 and 32;
- the floor: a raw aiohttp POST loop with a fixed body (what the server and loopback allow);
- ours and one bare graph row run under the runner's GC settings (``agentensor_runner.tuned_gc``,
  which the CLI and the worker-pool processes apply); the other bare rows and upstream run with CPython's
  defaults;
- client CPU ms per case for ours (``run_cases``: chat template + exact_match evaluator, response
  cache off), a bare ``ChatOpenAI.ainvoke`` and a bare one-node ``graph.ainvoke``, each with the
  OpenAI SDK's default httpx transport and with its aiohttp transport (which ours uses);
- ours / upstream wall time at concurrency 32 (upstream agentensor 0.1.2's ``GraphTrainer.evaluate``
  in its own Python 3.12 venv, see benchmarks/llm_upstream_driver.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-bench"


def start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests/llm/scripted_server.py"), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"scripted server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}/v1"


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    await fn()
    return time.perf_counter() - t0, time.process_time() - cpu0


def _chat_openai(base_url: str, aiohttp: bool) -> tuple[Any, Any]:
    """A ``ChatOpenAI`` and, with ``aiohttp``, the aiohttp-backed HTTP client it uses (to close)."""
    from langchain_openai import ChatOpenAI
    from openai import DefaultAioHttpClient

    http = DefaultAioHttpClient() if aiohttp else None
    extra = {"http_async_client": http} if http is not None else {}
    llm = ChatOpenAI(model="gpt-scripted", base_url=base_url, api_key=KEY, temperature=0, max_retries=0, **extra)  # type: ignore[arg-type]
    return llm, http


async def raw_http(base_url: str, n: int, c: int) -> tuple[float, float]:
    """The floor: one aiohttp session POSTing a fixed chat-completions body (no SDK, no LangChain)."""
    import aiohttp

    body = json.dumps(
        {
            "model": "gpt-scripted",
            "messages": [
                {"role": "system", "content": "Answer the customer."},
                {"role": "user", "content": "question 1"},
            ],
        }
    )
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(c)

        async def one() -> None:
            async with sem, session.post(f"{base_url}/chat/completions", data=body, headers=headers) as r:
                await r.json()

        async def run() -> None:
            await asyncio.gather(*(one() for _ in range(n)))

        await asyncio.gather(*(one() for _ in range(min(n, c))))
        return await timed(run)


async def bare_client(base_url: str, n: int, c: int, aiohttp: bool = False) -> tuple[float, float]:
    from langchain_core.messages import HumanMessage, SystemMessage

    llm, http = _chat_openai(base_url, aiohttp)
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> None:
        async with sem:
            await llm.ainvoke([SystemMessage("Answer the customer."), HumanMessage(f"question {i}")])

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    await asyncio.gather(*(one(i) for i in range(min(n, c))))  # warm-up
    try:
        return await timed(run)
    finally:
        if http is not None:
            await http.aclose()


async def bare_graph(base_url: str, n: int, c: int, aiohttp: bool = False) -> tuple[float, float]:
    from langchain_core.messages import HumanMessage, SystemMessage
    from langgraph.graph import END, START, StateGraph

    class S(TypedDict, total=False):
        input: str
        output: str

    llm, http = _chat_openai(base_url, aiohttp)

    async def respond(state: S) -> dict[str, Any]:
        reply = await llm.ainvoke([SystemMessage("Answer the customer."), HumanMessage(state["input"])])
        return {"output": reply.content}

    g: StateGraph[S, Any, S, S] = StateGraph(S)
    g.add_node("respond", respond)
    g.add_edge(START, "respond")
    g.add_edge("respond", END)
    graph = g.compile()
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> None:
        async with sem:
            await graph.ainvoke({"input": f"question {i}"})

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    await asyncio.gather(*(one(i) for i in range(min(n, c))))
    try:
        return await timed(run)
    finally:
        if http is not None:
            await http.aclose()


async def ours(base_url: str, n: int, c: int) -> tuple[float, float]:
    from agentensor_api import EvaluatorSpec, ModelSpec, WorkflowSpec
    from agentensor_runner import Case, PromptSet, run_cases
    from agentensor_runner.evaluators import build_evaluators
    from agentensor_runner.llm import LlmRuntime
    from agentensor_runner.workflows import load_workflow

    llm = LlmRuntime(
        {"task": ModelSpec(model="openai:gpt-scripted", base_url=base_url, api_key_env="BENCH_KEY", max_retries=0)},
        env={"BENCH_KEY": KEY},
    )
    wf = load_workflow(WorkflowSpec(template="chat"), llm=llm)
    evaluators = build_evaluators(
        [EvaluatorSpec(name="exact", type="exact_match", output_field="output")], allowed_entrypoints=()
    )
    prompts = PromptSet({"system": "Answer the customer."}, frozenset({"system"}), {"temperature": 0})
    cases = [Case(case_id=str(i), input=f"question {i}", expected="ok", row={}) for i in range(n)]

    async def run(subset: list[Any], stage: str) -> None:
        await run_cases(
            wf,
            prompts,
            subset,
            evaluators,
            base_config=dict(wf.defaults),
            run_id="bench",
            stage=stage,
            parallelism=c,
            case_timeout_seconds=60,
        )

    await run(cases[: min(n, c)], "warm")
    try:
        return await timed(lambda: run(cases, "eval"))
    finally:
        await llm.aclose()


def _proc_cpu_seconds(pids: set[int]) -> float:
    """utime + stime of processes, from /proc (Linux), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


async def ours_workers(base_url: str, n: int, c: int, processes: int) -> tuple[float, float]:
    """`run_cases` over a pool of ``processes`` worker processes; CPU includes the workers."""
    from agentensor_api import EvaluationRunSpec
    from agentensor_runner import Case, PromptSet, run_cases
    from agentensor_runner.evaluators import build_evaluators
    from agentensor_runner.execution import WorkerPool, WorkerRecipe

    spec = EvaluationRunSpec.model_validate(
        {
            "workflow": {"template": "chat"},
            "promptConfigRef": {"name": "bench"},
            "models": {
                "task": {"model": "openai:gpt-scripted", "baseUrl": base_url, "apiKeyEnv": "BENCH_KEY", "maxRetries": 0}
            },
            "responseCache": {"enabled": False},
            "dataset": {"inline": [{"input": "x", "expected": "ok"}]},
            "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "output"}],
            "parallelism": c,
        }
    )
    evaluators = build_evaluators(spec.evaluators, allowed_entrypoints=())
    prompts = PromptSet({"system": "Answer the customer."}, frozenset({"system"}), {"temperature": 0})
    cases = [Case(case_id=str(i), input=f"question {i}", expected="ok", row={}) for i in range(n)]
    with WorkerPool(WorkerRecipe(spec, str(Path.cwd()), env={"BENCH_KEY": KEY}), processes) as pool:
        started = time.perf_counter()
        pids = pool.warm()
        print(f"<!-- {len(pids)} worker processes ready in {time.perf_counter() - started:.2f} s -->", flush=True)

        async def run(subset: list[Any], stage: str) -> None:
            await run_cases(
                None,
                prompts,
                subset,
                evaluators,
                base_config={},
                run_id="bench",  # type: ignore[arg-type]
                stage=stage,
                parallelism=c,
                case_timeout_seconds=60,
                pool=pool,
            )

        await run(cases[: 2 * c], "warm")
        cpu0, parent0, wall0 = _proc_cpu_seconds(pids), time.process_time(), time.perf_counter()
        await run(cases, "eval")
        wall = time.perf_counter() - wall0
        cpu = _proc_cpu_seconds(pids) - cpu0 + time.process_time() - parent0
    return wall, cpu


def upstream(python: str, base_url: str, n: int, c: int) -> tuple[float, float]:
    out = subprocess.run(
        [python, "-W", "ignore", str(REPO / "benchmarks/llm_upstream_driver.py"), base_url, str(n), str(c)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["wall_seconds"]), float(data["cpu_seconds"])


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


async def bench(args: argparse.Namespace, base_url: str) -> None:
    """Every in-process measurement in one event loop: langchain-openai shares one pooled
    httpx client per base URL across ChatOpenAI instances, which must not outlive its loop."""
    n, lat = args.cases, args.latency_ms / 1000

    async def measure(label: str, c: int, fn: Callable[[], Awaitable[tuple[float, float]]]) -> float:
        runs = [await fn() for _ in range(args.repeats)]
        wall, cpu = median(runs)
        print(
            f"| {label} | {c} | {wall:.2f} | {n * lat / c:.2f} | {n * lat / c / wall:.2f} | {cpu / n * 1000:.2f} |",
            flush=True,
        )
        return wall

    print("| client | concurrency | wall s | ideal s | achieved / ideal | client CPU ms / case |")
    print("| --- | --- | --- | --- | --- | --- |")
    await measure("raw aiohttp POST (no SDK: the floor)", 8, lambda: raw_http(base_url, n, 8))
    await measure("raw aiohttp POST (no SDK: the floor)", 32, lambda: raw_http(base_url, n, 32))
    for aio, transport in ((False, "httpx"), (True, "aiohttp")):
        await measure(f"bare `ChatOpenAI.ainvoke`, {transport}", 8, lambda aio=aio: bare_client(base_url, n, 8, aio))
        await measure(f"bare `ChatOpenAI.ainvoke`, {transport}", 32, lambda aio=aio: bare_client(base_url, n, 32, aio))
        graph_label = f"bare one-node `graph.ainvoke`, {transport}"
        await measure(graph_label, 8, lambda aio=aio: bare_graph(base_url, n, 8, aio))
        await measure(graph_label, 32, lambda aio=aio: bare_graph(base_url, n, 32, aio))
    from agentensor_runner import tuned_gc

    with tuned_gc():  # what `agentensor run` / `agentensor runner` and pool workers set
        graph_label = "bare one-node `graph.ainvoke`, aiohttp, runner GC settings"
        await measure(graph_label, 8, lambda: bare_graph(base_url, n, 8, True))
        await measure(graph_label, 32, lambda: bare_graph(base_url, n, 32, True))
        await measure("ours: chat template + `run_cases`", 8, lambda: ours(base_url, n, 8))
        ours32 = await measure("ours: chat template + `run_cases`", 32, lambda: ours(base_url, n, 32))
    from agentensor_runner.execution import workers_for

    processes = args.processes or workers_for(32)
    if processes > 1:
        ours32 = await measure(
            f"ours: over {processes} worker processes (`parallelism: 32`)",
            32,
            lambda: ours_workers(base_url, n, 32, processes),
        )
    if Path(args.upstream_python).exists():

        async def up() -> tuple[float, float]:
            return await asyncio.to_thread(upstream, args.upstream_python, base_url, n, 32)

        up32 = await measure("upstream agentensor 0.1.2 `GraphTrainer.evaluate`", 32, up)
        print(f"\nours / upstream wall time at concurrency 32: {ours32 / up32:.2f}")
    else:
        print(f"\nupstream skipped: {args.upstream_python} not found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=0, help="worker processes (default: workers_for(32))")
    parser.add_argument("--upstream-python", default="/tmp/upstream-venv/bin/python")
    args = parser.parse_args()
    proc, base_url = start_server(args.latency_ms)
    try:
        asyncio.run(bench(args, base_url))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
