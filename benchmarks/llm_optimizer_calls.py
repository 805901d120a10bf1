"""textgrad LLM calls per epoch by purpose: 100 train cases, 30 % of them failing.

    .venv/bin/python benchmarks/llm_optimizer_calls.py [--batch-size 100] [--candidates 1]

200 cases split 0.5/0.25/0.25 (stratified), so the train split is 100 cases with 30 failing
(the scripted task model answers ``A`` and 30 % of the cases expect ``B``); ``exact_match``
scores them, so no judge calls. Upstream agentensor 0.1.2 makes 131 calls per epoch on this
(100 task, 30 serial gradient calls, 1 rewrite). Prints the calls of epoch 1 as recorded in its
checkpoint, and whether the gradient calls of one minibatch overlapped in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.llm.scripted_server import ScriptedServer  # noqa: E402

KEY = "sk-bench-calls"


async def run(batch_size: int, candidates: int, prompts: int) -> None:
    from agentensor_api import PromptConfig, TrainingRun, parse_resource
    from agentensor_runner import execute
    from agentensor_store import Store

    with ScriptedServer(require_key=KEY, default_reply="A") as server:
        server.add(system="Diagnose what in the prompt", reply="Answer B for these.", latency_seconds=0.2)
        server.add(system="You rewrite one prompt", reply="".join(f"<prompt>v{k}</prompt>" for k in range(candidates)))
        os.environ["BENCH_KEY"] = KEY
        os.environ["AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST"] = "BENCH_KEY"  # the user's grant of that variable
        names = [f"p{i}" for i in range(prompts)]
        pc = parse_resource(
            {
                "apiVersion": "agentensor.dev/v1alpha1",
                "kind": "PromptConfig",
                "metadata": {"name": "pc"},
                "spec": {"workflow": "calls", "prompts": {n: {"text": f"Answer for {n}."} for n in names}},
            }
        )
        steps = [{"name": n} for n in names]
        workflow: dict[str, Any] = (
            {"template": "chat", "options": {"system": "{{prompts.p0}}"}}
            if prompts == 1
            else {"template": "task", "options": {"steps": steps}}
        )
        cases = [{"input": f"case {i}", "expected": "B" if i % 10 < 3 else "A"} for i in range(200)]
        run_doc = {
            "apiVersion": "agentensor.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "calls"},
            "spec": {
                "promptConfigRef": {"name": "pc"},
                "workflow": workflow,
                "models": {
                    "task": {"model": "openai:m", "baseUrl": server.base_url, "apiKeyEnv": "BENCH_KEY"},
                    "opt": {"model": "openai:o", "baseUrl": server.base_url, "apiKeyEnv": "BENCH_KEY"},
                },
                "dataset": {"inline": cases, "split": {"train": 0.5, "validation": 0.25, "holdout": 0.25}},
                "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "output"}],
                "optimizer": {
                    "type": "textgrad",
                    "model": "opt",
                    "epochs": 1,
                    "batchSize": batch_size,
                    "candidates": candidates,
                },
                "parallelism": 16,
                "responseCache": {"enabled": False},
            },
        }
        tr = parse_resource(run_doc)
        assert isinstance(pc, PromptConfig) and isinstance(tr, TrainingRun)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/calls.db")
            store.upgrade()
            status = await execute(tr, pc, store, base_dir=Path(tmp))
            cp = next(c for c in store.list_checkpoints(run_id=status.run_id) if c.epoch == 1)
            train = [r for r in store.list_cases(status.run_id or "") if "/train/" in r.stage]
            store.close()
        grads = server.requests("Diagnose what in the prompt")
        overlap = any(a is not b and a.started < b.finished and b.started < a.finished for a in grads for b in grads)
        print(
            f"| {prompts} | {batch_size} | {sum(not r.passed for r in train)} / {len(train)} | "
            + " | ".join(str(cp.extra["calls"].get(p, 0)) for p in ("task", "gradient", "rewrite"))
            + f" | {sum(cp.extra['calls'].get(p, 0) for p in ('task', 'gradient', 'rewrite'))}"
            + f" | {'yes' if overlap else ('n/a' if prompts == 1 else 'no')} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1)
    args = parser.parse_args()
    print("| trainable prompts | batch size | failing train cases | task | gradient | rewrite | total | overlap |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for prompts, batch in ((1, 100), (1, 32), (2, 100)):
        asyncio.run(run(batch, args.candidates, prompts))


if __name__ == "__main__":
    main()
