"""The embedding router against the model's own speed: raw ``encode()`` vs an EvaluationRun.

    .venv/bin/python benchmarks/embedding_router.py [--n 2000] [--rounds 4] [--parallelism 8]

Issue 15 item 4. The same Banking77 utterances (../shared/data/banking77/train.csv, CC-BY-4.0,
PolyAI), split into ``rounds`` slices, are embedded three ways in one process, the order of the
ways rotated from slice to slice (abc, cba, bca, ...) so that machine load affects all alike:

- (a) raw: sentence-transformers' ``encode()`` of all-MiniLM-L6-v2 (batch 64, normalised) of
  the texts the run must embed: the slice's utterances and the 77 intent descriptions;
- (b) an EvaluationRun of examples/banking77 (template ``embedding-router``, the 77 baseline
  intent descriptions, ``exact_match``, SQLite store in a temporary directory) over the same
  texts, with the process-wide embedding cache emptied first, so that every text is embedded
  again. Its wall time includes the store, the LangGraph invocation of each case and the scoring.
  The router prefetches: its inputs are embedded in a background thread, 256 per call, in case
  order, while the cases whose inputs are ready already run (``CachedEmbedder.prefetch``);
- (c) the same run with every input embedded in one call before the first case (the router
  before prefetching), for ``ratioWithoutPrefetch``.

Both ways share one loaded model load cost outside the timing (the model is loaded, and each way
warmed up on 64 other texts, before the first slice). Prints one JSON object: seconds and
texts/s of each way, and ``ratio = texts/s (b) / texts/s (a)`` (target >= 0.9), plus CPU
seconds of the process in each way (``time.process_time``; includes torch's threads).

It also times the floor that any per-case LangGraph workflow pays: ``ainvoke`` of a one-node
``StateGraph`` that does nothing, once per case, sequentially (``graphFloorMsPerCase``), and the
raw encode time per text (``encodeMsPerText``); ``ratioCeiling = encode / (encode + floor)`` is the
best ratio a run that invokes the graph once per case could reach without overlapping the two.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "banking77" / "train.csv"


def rows(n: int) -> list[dict[str, str]]:
    with DATA.open(newline="") as f:
        out = [{"id": str(i), "text": r["text"], "category": r["category"]} for i, r in enumerate(csv.DictReader(f))]
    if len(out) < n + 64:
        raise SystemExit(f"{DATA} has {len(out)} rows; --n {n} needs {n + 64}")
    return out[: n + 64]


def descriptions() -> list[str]:
    import yaml

    doc = yaml.safe_load((REPO / "examples" / "banking77" / "promptconfig.yaml").read_text())
    return [p["text"] for p in doc["spec"]["prompts"].values()]


def graph_floor(n: int) -> float:
    """Seconds for ``n`` sequential ``ainvoke`` calls of a one-node graph that does nothing."""
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        input: str
        intent: str

    def node(state: State) -> dict[str, str]:
        return {"intent": "x"}

    g: StateGraph[State, None, State, State] = StateGraph(State)
    g.add_node("route", node)
    g.add_edge(START, "route")
    g.add_edge("route", END)
    app = g.compile()

    async def go() -> float:
        await app.ainvoke({"input": "warm"})
        t0 = time.perf_counter()
        for i in range(n):
            await app.ainvoke({"input": str(i)}, {"tags": ["bench"], "metadata": {"case": i}})
        return time.perf_counter() - t0

    return asyncio.run(go())


def raw_encode(texts: list[str]) -> float:
    from agentensor_runner.llm import default_embedder

    model = default_embedder().inner._model  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t0


def through_run(part: list[dict[str, str]], parallelism: int, tmp: Path, *, prefetch: bool = True) -> float:
    import yaml

    from agentensor_api import parse_resource
    from agentensor_runner import execute, runs
    from agentensor_runner.llm import default_embedder
    from agentensor_store import Store

    pc = parse_resource(yaml.safe_load((REPO / "examples" / "banking77" / "promptconfig.yaml").read_text()))
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / "banking77" / "evaluationrun.yaml").read_text())
    doc["spec"]["dataset"] = {"inline": part, "idField": "id", "inputField": "text", "expectedField": "category"}
    doc["spec"]["parallelism"] = parallelism
    run = parse_resource(doc)
    store = Store(f"sqlite:///{tmp / f'{time.monotonic_ns()}.db'}")
    store.upgrade()
    cache = default_embedder()
    with cache._lock:
        cache._cache.clear()
    prepare = runs._prepare
    if not prefetch:  # way (c): every input embedded before the first case, as before prefetch
        runs._prepare = lambda ctx, inputs: ctx.workflow.prepare(inputs)  # type: ignore[assignment,misc,union-attr]
    try:
        t0 = time.perf_counter()
        status = asyncio.run(execute(run, pc, store, base_dir=tmp))  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
    finally:
        runs._prepare = prepare
    store.close()
    if status.phase != "Succeeded":
        raise SystemExit(f"EvaluationRun ended {status.phase}: {status.message}")
    return wall


def main(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data = rows(args.n)
    warm, data = data[:64], data[64:]
    lines = descriptions()
    size = -(-len(data) // args.rounds)
    walls = {"a": 0.0, "b": 0.0, "c": 0.0}
    cpus = {"a": 0.0, "b": 0.0, "c": 0.0}
    orders = ["abc", "cba", "bca", "acb", "cab", "bac"]
    with tempfile.TemporaryDirectory() as d:
        raw_encode([r["text"] for r in warm])
        through_run(warm, args.parallelism, Path(d))
        for r in range(args.rounds):
            part = data[r * size : (r + 1) * size]
            for way in orders[r % len(orders)]:
                c0 = time.process_time()
                if way == "a":
                    walls[way] += raw_encode([x["text"] for x in part] + lines)
                else:
                    walls[way] += through_run(part, args.parallelism, Path(d), prefetch=way == "b")
                cpus[way] += time.process_time() - c0
    n = len(data)
    floor = graph_floor(n) / n
    encode = walls["a"] / (n + args.rounds * len(lines))
    return {
        "n": n,
        "rounds": args.rounds,
        "parallelism": args.parallelism,
        "raw": {
            "seconds": round(walls["a"], 2),
            "textsPerSecond": round(n / walls["a"], 1),
            "cpuSeconds": round(cpus["a"], 2),
        },
        "evaluationRun": {
            "seconds": round(walls["b"], 2),
            "textsPerSecond": round(n / walls["b"], 1),
            "cpuSeconds": round(cpus["b"], 2),
        },
        "withoutPrefetch": {
            "seconds": round(walls["c"], 2),
            "textsPerSecond": round(n / walls["c"], 1),
            "cpuSeconds": round(cpus["c"], 2),
        },
        "ratio": round(walls["a"] / walls["b"], 3),
        "ratioWithoutPrefetch": round(walls["a"] / walls["c"], 3),
        "encodeMsPerText": round(1000 * encode, 2),
        "graphFloorMsPerCase": round(1000 * floor, 2),
        "ratioCeiling": round(encode / (encode + floor), 3),
        "loadAverage": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--parallelism", type=int, default=8)
    sys.exit(print(json.dumps(main(p.parse_args()), indent=2)))
