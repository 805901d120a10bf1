"""The optimizer loop on a real model: SmolLM2-135M as task, judge and optimizer (issue 11).

Whatever the small model's scores do, the loop's invariants hold: no accepted candidate scores
lower on validation than the config it replaced, every checkpoint stores the validation score
of its own config, and the holdout guard (not the validation score) decides promotion.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from agentensor_runner import execute
from agentensor_store import Store

from .conftest import LlmServer, model, prompt_config, run

pytestmark = pytest.mark.llm_real

CASES = [
    {"input": "I love this phone, the battery lasts all day.", "expected": "positive"},
    {"input": "The food was cold and the waiter was rude.", "expected": "negative"},
    {"input": "Great movie, I laughed from start to finish.", "expected": "positive"},
    {"input": "This book is dull and badly written.", "expected": "negative"},
    {"input": "Fast delivery and the shoes fit perfectly.", "expected": "positive"},
    {"input": "The printer jams on every page.", "expected": "negative"},
]


async def test_textgrad_loop_invariants_with_smollm2_everywhere(llm_server: LlmServer, tmp_path: Path) -> None:
    pc = prompt_config(
        {"system": "Classify the sentiment of the review as positive or negative."},
        {"temperature": 0, "maxTokens": 8},
    )
    spec: dict[str, Any] = {
        "workflow": {"template": "chat", "options": {"user": "Review: {{state.input}}"}},
        "models": {
            "task": model(llm_server, maxConcurrency=2),
            "judge": model(llm_server, maxConcurrency=2),
            "opt": model(llm_server, maxConcurrency=1, timeoutSeconds=300),
        },
        "dataset": {"inline": CASES, "split": {"train": 0.34, "validation": 0.33, "holdout": 0.33, "stratify": False}},
        "evaluators": [
            {
                "name": "judged",
                "type": "llm_judge",
                "outputField": "output",
                "threshold": 0.5,
                "options": {
                    "model": "judge",
                    "rubric": "The output is the word positive or negative and matches the expected label.",
                    "parameters": {"temperature": 0, "maxTokens": 48},
                },
            },
        ],
        "optimizer": {
            "type": "textgrad",
            "model": "opt",
            "epochs": 1,
            "batchSize": 2,
            "candidates": 2,
            "options": {"maxExamples": 2, "maxChars": 120, "parameters": {"temperature": 0.7, "maxTokens": 64}},
        },
        "caseTimeoutSeconds": 300,
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(run("TrainingRun", spec), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    cps = store.list_checkpoints(run_id=status.run_id)
    assert cps and cps[0].epoch == 0
    scores = [c.score for c in cps]
    assert all(s is not None for s in scores)
    # No accepted candidate scores lower than the config it replaced: checkpoint scores never fall.
    assert all(b >= a for a, b in itertools.pairwise(scores)), scores  # type: ignore[operator]
    # Each checkpoint's score is its own config's validation objective, recomputed from its case rows.
    for cp in cps:
        same = [c for c in cps if c.checksum == cp.checksum]
        assert len({c.score for c in same}) == 1
    assert status.best_score == max(s for s in scores if s is not None)
    # The rewrite call happened and each rewrite ended as a candidate or a counted rejection.
    calls = cps[-1].extra["calls"]
    if calls.get("rewrite"):
        rejected = sum(v for k, v in calls.items() if k.startswith("rejected"))
        candidates = {r.stage for r in store.list_cases(status.run_id or "") if "/candidate-" in r.stage}
        assert rejected + len(candidates) >= 1, calls
    # The holdout guard decides promotion.
    promotable = next(c for c in status.conditions if c.type == "Promotable")
    assert status.holdout is not None
    if promotable.status == "True":
        assert promotable.reason == "HoldoutGuardPassed"
        assert status.holdout.best is not None and status.holdout.baseline is not None
    else:
        assert promotable.reason in ("NoImprovement", "HoldoutRegression"), promotable.reason
    assert status.usage is not None and status.usage.input_tokens > 0 and status.usage.llm_calls.get("judge")
    store.close()
