"""Runner memory and crash loss of an EvaluationRun: 1k vs 100k cases, and a SIGKILL at 90 %.

    .venv/bin/python benchmarks/runner_memory.py [--sizes 1000,100000] [--kill-size 100000]
        [--kill-at 0.9] [--parallelism 8] [--db sqlite|URL]

Each measurement is a fresh child process (this file with ``--child``) that calls
``agentensor_runner.execute`` on an EvaluationRun, as ``agentensor runner`` does (no report, so
the figure is the runner's own), over a JSONL dataset of N cases. The workflow is a no-LLM
entrypoint defined here (one async node that echoes the input and bumps an invocation counter
in a memory-mapped file); one ``exact_match`` evaluator. The child prints its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``), wall and CPU seconds.

The kill test starts a child on ``--kill-size`` cases, reads the stored status's
``casesCompleted`` (written with every batch of rows) until it reaches ``--kill-at`` of the cases,
SIGKILLs it, and counts the rows in the store. ``lost <= invoked - rows``: the cases the killed
process had invoked (the counter) but whose rows were not written, an upper bound on the rows a
crash lost (it includes the few cases in flight). The run is then resumed under the same run id:
``resumed_invocations`` must equal ``cases - rows`` (the rows written are reused, not redone).

Prints one JSON line per measurement and a final summary line with the RSS ratio 100k / 1k
(target <= 1.5) and the rows lost (target <= one batch, ``runs.BATCH_CASES``).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COUNTER_ENV = "RUNNER_MEMORY_COUNTER"


def build_echo(options: dict[str, Any]) -> Any:
    """The benchmark's workflow: ``answer = input`` but for ids ending in 3 (1 case in 10), and a counted invocation."""
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        input: str
        answer: str

    path = os.environ.get(COUNTER_ENV)
    counter = None
    if path:
        fd = os.open(path, os.O_RDWR)
        counter = mmap.mmap(fd, 8)

    async def answer(state: State) -> dict[str, Any]:
        if counter is not None:  # one event loop: no two nodes bump it at once
            struct.pack_into("<q", counter, 0, struct.unpack_from("<q", counter, 0)[0] + 1)
        text = state["input"]
        return {"answer": text + "?" if text[11] == "3" else text}  # "case 0000003: ..." -> id digit at 11

    g: Any = StateGraph(State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def _write_inputs(work: Path, n: int, parallelism: int) -> Path:
    data = work / f"cases-{n}.jsonl"
    with data.open("w") as f:
        for i in range(n):
            text = f"case {i:07d}: a short support question about order {i % 977}, please help"
            f.write(json.dumps({"id": f"c{i:07d}", "input": text, "expected": text}) + "\n")
    manifest = work / f"run-{n}.yaml"
    manifest.write_text(
        f"""apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata: {{name: mem}}
spec:
  workflow: memory-bench
  prompts: {{p: {{text: "unused"}}}}
---
apiVersion: agentensor.dev/v1alpha1
kind: EvaluationRun
metadata: {{name: mem-{n}}}
spec:
  promptConfigRef: {{name: mem}}
  workflow: {{entrypoint: "runner_memory:build_echo"}}
  dataset: {{path: {data.name}, format: jsonl, idField: id, inputField: input, expectedField: expected}}
  evaluators: [{{name: exact, type: exact_match, outputField: answer}}]
  parallelism: {parallelism}
"""
    )
    return manifest


def child(manifest: Path, db: str, run_id: str) -> None:
    import asyncio

    from agentensor_api import EvaluationRun, PromptConfig, load_manifests
    from agentensor_runner import execute, tuned_gc
    from agentensor_store import Store

    docs = load_manifests([manifest])
    pc = next(d for d in docs if isinstance(d, PromptConfig))
    run = next(d for d in docs if isinstance(d, EvaluationRun))
    store = Store(db)
    store.upgrade()
    t0, c0 = time.perf_counter(), time.process_time()
    with tuned_gc():
        status = asyncio.run(execute(run, pc, store, base_dir=manifest.parent, run_id=run_id))
    out = {
        "phase": status.phase,
        "cases": status.cases_completed,
        "scores": status.scores,
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    store.close()
    print(json.dumps(out), flush=True)


def _env(counter: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "AGENTENSOR_EVALUATOR_ALLOWLIST": "runner_memory",
        "AGENTENSOR_RUN_LEASE_SECONDS": "3",
        COUNTER_ENV: str(counter),
    }


def _counter(work: Path, name: str) -> Path:
    path = work / f"{name}.counter"
    path.write_bytes(b"\0" * 8)
    return path


def _read(counter: Path) -> int:
    return int(struct.unpack("<q", counter.read_bytes()[:8])[0])


def _spawn(manifest: Path, db: str, run_id: str, counter: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--child", str(manifest), "--db", db, "--run-id", run_id]
    return subprocess.Popen(cmd, env=_env(counter), stdout=subprocess.PIPE, text=True, cwd=REPO)


def measure(manifest: Path, db: str, run_id: str, work: Path) -> dict[str, Any]:
    counter = _counter(work, run_id)
    proc = _spawn(manifest, db, run_id, counter)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child {run_id} exited {proc.returncode}")
    return {**json.loads(out.strip().splitlines()[-1]), "invocations": _read(counter)}


def kill_test(manifest: Path, db: str, n: int, at: float, work: Path) -> dict[str, Any]:
    from agentensor_store import Store

    store = Store(db)
    store.upgrade()
    run_id = f"kill-{n}"
    counter = _counter(work, run_id)
    proc = _spawn(manifest, db, run_id, counter)
    done = 0
    while proc.poll() is None:
        record = store.get_run(run_id)
        done = int(((record.status if record else None) or {}).get("casesCompleted") or 0)
        if done >= at * n:
            break
        time.sleep(0.05)
    invoked_before = _read(counter)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    invoked = _read(counter)
    rows = len(store.list_cases(run_id))
    time.sleep(4)  # the killed process's lease (3 s) runs out
    counter2 = _counter(work, run_id + "-resume")
    resumed = _spawn(manifest, db, run_id, counter2)
    out, _ = resumed.communicate()
    final = json.loads(out.strip().splitlines()[-1])
    total_rows = len(store.list_cases(run_id))
    store.close()
    return {
        "kill_at_cases_completed": done,
        "invoked_at_kill": invoked_before,
        "invoked": invoked,
        "rows_at_kill": rows,
        "lost_at_most": invoked - rows,
        "resumed_invocations": _read(counter2),
        "resume_reused_rows": _read(counter2) == n - rows,
        "rows_after_resume": total_rows,
        "resume": final,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,100000")
    p.add_argument("--kill-size", type=int, default=100_000)
    p.add_argument("--kill-at", type=float, default=0.9)
    p.add_argument("--parallelism", type=int, default=8)
    p.add_argument("--db", default="sqlite")
    p.add_argument("--child", type=Path)
    p.add_argument("--run-id", default="")
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.db, args.run_id)
        return
    from agentensor_runner import runs

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'bench.db'}" if args.db == "sqlite" else args.db
        results: dict[int, dict[str, Any]] = {}
        for n in [int(x) for x in args.sizes.split(",") if x]:
            results[n] = measure(_write_inputs(work, n, args.parallelism), db, f"mem-{n}-{os.getpid()}", work)
            print(json.dumps({"n": n, **results[n]}), flush=True)
        kill: dict[str, Any] = {}
        if args.kill_size:
            kill = kill_test(
                _write_inputs(work, args.kill_size, args.parallelism), db, args.kill_size, args.kill_at, work
            )
            print(json.dumps({"kill_test": args.kill_size, **kill}), flush=True)
        sizes = sorted(results)
        summary: dict[str, Any] = {"batch_cases": runs.BATCH_CASES}
        if len(sizes) >= 2:
            summary["rss_ratio"] = round(results[sizes[-1]]["peak_rss_mb"] / results[sizes[0]]["peak_rss_mb"], 3)
            summary["cpu_ms_per_case"] = {n: round(1000 * r["cpu_seconds"] / n, 2) for n, r in results.items()}
        if kill:
            summary["lost_at_most"] = kill["lost_at_most"]
            summary["lost_within_one_batch"] = kill["lost_at_most"] <= runs.BATCH_CASES
        print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
