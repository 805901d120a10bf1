"""The runner's overhead on a real model: raw OpenAI client vs an EvaluationRun, same prompts.

    .venv/bin/python benchmarks/llm_real.py [--n 100] [--concurrency 2] [--max-tokens 16] [--rounds 4]
    .venv/bin/python benchmarks/llm_real.py --base-url http://127.0.0.1:8080/v1   # a running server

Starts SmolLM2-135M on llama-cpp-python's server (hack/llm-server.sh, a free port) unless
``--base-url`` is given. The same N prompts are sent both ways at the same concurrency c, in
``rounds`` alternating slices (a, b, then b, a, ...), so machine load affects both alike:

- (a) the raw ``openai.AsyncOpenAI`` client, ``asyncio.Semaphore(c)`` + ``gather``;
- (b) an EvaluationRun with the ``chat`` template at ``parallelism: c`` (response cache off,
  one ``contains`` evaluator, a SQLite store in a temporary directory).

Prints one JSON object: wall seconds, completion tokens and tokens/s of each, and the ratio
(b)/(a) of wall times (target <= 1.05). Temperature 0, so both get the same replies. Both ways
are warmed up first; ``coldStartSeconds`` is the wall time of the first, 2-case EvaluationRun of
the process (imports of LangChain, LangGraph and langchain-openai), paid once per runner Pod.

Because wall time on a shared 2-core machine is noisy, it also reports CPU seconds, which load
does not inflate: this process's CPU in each way (``time.process_time``: (a) is the client alone,
(b) the client plus the runner), the server's CPU in each way (from ``/proc/PID/stat`` of the
server, when this script started it: equal work means equal CPU), and
``runnerCpuOverhead = (cpu_b - cpu_a) / wall_a``, the fraction of the model's own time the loop
spends on top of a raw client: an upper bound on what it adds to wall time when it cannot
overlap with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOPICS = ["bicycles", "rain", "volcanoes", "bread", "owls", "trains", "tea", "glaciers", "bees", "maps"]


def prompts(n: int) -> list[str]:
    return [f"Write one sentence about {TOPICS[i % len(TOPICS)]} (note {i})." for i in range(n)]


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLM_PORT": str(port), "PYTHON": sys.executable}
    proc = subprocess.Popen(
        ["bash", str(REPO / "hack" / "llm-server.sh")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).close()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}") from None
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not start in 120 s")


async def raw(url: str, items: list[str], c: int, max_tokens: int) -> tuple[float, int]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="local-no-key", max_retries=0, timeout=300)
    sem = asyncio.Semaphore(c)
    tokens = 0

    async def one(text: str) -> None:
        nonlocal tokens
        async with sem:
            r = await client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}],
                temperature=0,
                max_tokens=max_tokens,
            )
            tokens += r.usage.completion_tokens if r.usage else 0

    t0 = time.perf_counter()
    await asyncio.gather(*(one(t) for t in items))
    wall = time.perf_counter() - t0
    await client.close()
    return wall, tokens


async def through_run(url: str, items: list[str], c: int, max_tokens: int, tmp: Path) -> tuple[float, int]:
    from agentensor_api import EvaluationRun, PromptConfig, parse_resource
    from agentensor_runner import execute
    from agentensor_store import Store

    pc = parse_resource(
        {
            "apiVersion": "agentensor.dev/v1alpha1",
            "kind": "PromptConfig",
            "metadata": {"name": "bench"},
            "spec": {
                "workflow": "bench",
                "prompts": {"system": {"text": "Answer briefly."}},
                "parameters": {"temperature": 0, "maxTokens": max_tokens},
            },
        }
    )
    spec: dict[str, Any] = {
        "promptConfigRef": {"name": "bench"},
        "workflow": {"template": "chat"},
        "models": {"task": {"model": "openai:smollm2", "baseUrl": url, "maxRetries": 0, "timeoutSeconds": 300}},
        "dataset": {"inline": [{"input": t, "expected": "."} for t in items]},
        "evaluators": [{"name": "dot", "type": "contains", "outputField": "output"}],
        "parallelism": c,
        "caseTimeoutSeconds": 600,
        "responseCache": {"enabled": False},
    }
    run = parse_resource(
        {"apiVersion": "agentensor.dev/v1alpha1", "kind": "EvaluationRun", "metadata": {"name": "b"}, "spec": spec}
    )
    assert isinstance(pc, PromptConfig) and isinstance(run, EvaluationRun)
    store = Store(f"sqlite:///{tmp / f'{time.monotonic_ns()}.db'}")
    store.upgrade()
    t0 = time.perf_counter()
    status = await execute(run, pc, store, base_dir=tmp)
    wall = time.perf_counter() - t0
    store.close()
    if status.phase != "Succeeded" or status.usage is None:
        raise SystemExit(f"EvaluationRun ended {status.phase}: {status.message}")
    return wall, status.usage.output_tokens


def server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of the process ``pid`` and its children so far; 0 without a pid."""
    if pid is None:
        return 0.0
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for k in kids:
            out += [int(k), *_children(int(k))]
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("OPENAI_API_KEY", "local-no-key")
    items = prompts(args.n)
    size = -(-args.n // args.rounds)
    walls = {"a": 0.0, "b": 0.0}
    cpus = {"a": 0.0, "b": 0.0}
    server = {"a": 0.0, "b": 0.0}
    tokens = {"a": 0, "b": 0}
    with tempfile.TemporaryDirectory() as d:
        # Warm up both ways: the first EvaluationRun in a process imports LangChain, LangGraph and
        # the OpenAI integration (about 3.7 CPU-seconds here), a one-time cost reported apart as
        # coldStartSeconds rather than charged to the first timed slice.
        await raw(args.base_url, items[:2], args.concurrency, args.max_tokens)
        t0 = time.perf_counter()
        await through_run(args.base_url, items[:2], args.concurrency, args.max_tokens, Path(d))
        cold = time.perf_counter() - t0
        for r in range(args.rounds):
            part = items[r * size : (r + 1) * size]
            for way in "ab" if r % 2 == 0 else "ba":
                c0, s0 = time.process_time(), server_cpu(args.server_pid)
                if way == "a":
                    w, t = await raw(args.base_url, part, args.concurrency, args.max_tokens)
                else:
                    w, t = await through_run(args.base_url, part, args.concurrency, args.max_tokens, Path(d))
                walls[way] += w
                tokens[way] += t
                cpus[way] += time.process_time() - c0
                server[way] += server_cpu(args.server_pid) - s0
    return {
        "n": args.n,
        "concurrency": args.concurrency,
        "maxTokens": args.max_tokens,
        "rounds": args.rounds,
        "raw": {
            "wallSeconds": round(walls["a"], 2),
            "completionTokens": tokens["a"],
            "tokensPerSecond": round(tokens["a"] / walls["a"], 1),
        },
        "evaluationRun": {
            "wallSeconds": round(walls["b"], 2),
            "completionTokens": tokens["b"],
            "tokensPerSecond": round(tokens["b"] / walls["b"], 1),
        },
        "ratio": round(walls["b"] / walls["a"], 3),
        "coldStartSeconds": round(cold, 2),
        "clientCpuSeconds": {"raw": round(cpus["a"], 2), "evaluationRun": round(cpus["b"], 2)},
        "serverCpuSeconds": {"raw": round(server["a"], 2), "evaluationRun": round(server["b"], 2)},
        "runnerCpuOverhead": round((cpus["b"] - cpus["a"]) / walls["a"], 4),
        "loadAverage": os.getloadavg()[0],
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--base-url", default=None)
    a = p.parse_args()
    proc = None
    a.server_pid = None
    if a.base_url is None:
        proc, a.base_url = start_server()
        a.server_pid = proc.pid
    try:
        print(json.dumps(asyncio.run(main(a)), indent=2))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
