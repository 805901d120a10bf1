"""textgrad on the scripted server: accepted when the judge prefers a rewrite, rejected when a
rewrite scores worse, one gradient + one rewrite call per prompt per minibatch, concurrently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentensor_runner import execute
from agentensor_store import Store

from .conftest import model, prompt_config, training_run
from .scripted_server import ScriptedServer, system_of, user_of

GREETING = "Dear customer"


def judge(body: dict[str, Any]) -> str:
    """Passes a reply that greets; a refund question also needs the word 'refund'."""
    text = user_of(body)
    question = text.split("INPUT:\n", 1)[1].split("\n\n", 1)[0] if "INPUT:\n" in text else ""
    output = text.rsplit("OUTPUT:\n", 1)[-1]
    greets = GREETING in output
    refund_ok = "refund" not in question or "refund" in output
    if greets and refund_ok:
        return json.dumps({"score": 1, "reason": "greets the customer and answers"})
    reason = "The reply does not greet the customer." if not greets else "The reply ignores the refund question."
    return json.dumps({"score": 0, "reason": reason})


def task_reply(body: dict[str, Any]) -> str:
    system, question = system_of(body), user_of(body)
    if "one word" in system:
        return "No."
    if GREETING in system:
        answer = "our refund policy applies." if "mention refunds" in system else "done."
        return f"{GREETING}, here is the answer to question {question.split()[1]}: {answer}"
    return "Done."


def script(server: ScriptedServer, rewrites: str, gradient_latency: float = 0.0) -> None:
    server.add(
        system="Diagnose what in the prompt",
        reply="Ask the agent to greet the customer.",
        latency_seconds=gradient_latency,
    )
    server.add(system="You rewrite one prompt", reply=rewrites)
    server.add(system="strict evaluator", reply=judge)
    server.add(reply=task_reply)


def spec(server: ScriptedServer, cases: list[dict[str, Any]], **optimizer: Any) -> dict[str, Any]:
    return {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": model(server, "judge-m"), "opt": model(server, "opt-m")},
        "dataset": {"inline": cases, "split": {"train": 0.5, "validation": 0.25, "holdout": 0.25, "stratify": False}},
        "evaluators": [
            {"name": "judge", "type": "llm_judge", "threshold": 0.5, "options": {"rubric": "Greets and answers."}}
        ],
        "optimizer": {"type": "textgrad", "model": "opt", "epochs": 1, "batchSize": 100, **optimizer},
        "responseCache": {"enabled": False},
    }


CASES = [{"input": f"question {i}" + (" about a refund" if i % 2 else ""), "expected": "-"} for i in range(16)]


async def test_improves_validation_when_the_judge_prefers_a_rewrite(
    server: ScriptedServer, llm_env: Path, tmp_path: Path
) -> None:
    good = f"<prompt>Start every reply with '{GREETING}' and mention refunds.</prompt>"
    script(server, good + "\n<prompt>Answer in one word.</prompt>")
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    pc = prompt_config({"system": "You are a support agent."})
    status = await execute(training_run(spec(server, CASES, candidates=2)), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.baseline_score == 0.0 and status.best_score == 1.0
    assert status.holdout is not None and status.holdout.best == 1.0
    cps = store.list_checkpoints(run_id=status.run_id)
    assert cps[-1].prompts["system"].startswith(f"Start every reply with '{GREETING}'") and cps[-1].accepted == 1
    # One batch, one trainable prompt: exactly one gradient and one rewrite call.
    calls = cps[-1].extra["calls"]
    assert calls["gradient"] == 1 and calls["rewrite"] == 1
    assert len(server.requests("Diagnose what in the prompt")) == 1
    # The gradient call saw the failed cases and their losses (aggregated, not one call per case).
    grad_user = user_of(server.requests("Diagnose what in the prompt")[0].body)
    assert grad_user.count("### Case") == 8 and "does not greet" in grad_user
    # Both candidates were scored on validation; the second (worse than the first) was not taken.
    stages = {r.stage for r in store.list_cases(status.run_id or "")}
    assert {"epoch-1/batch-0/candidate-0", "epoch-1/batch-0/candidate-1"} <= stages
    usage = cps[-1].extra["usage"]
    assert usage["llmCalls"]["gradient"] == 1 and usage["llmCalls"]["task"] > 0 and usage["llmCalls"]["judge"] > 0
    assert status.checkpoints is not None and status.checkpoints[-1].usage is not None
    store.close()


async def test_rejects_a_candidate_that_scores_worse(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    script(server, "<prompt>Answer in one word.</prompt>")
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    pc = prompt_config({"system": f"Start every reply with '{GREETING}'."})
    status = await execute(training_run(spec(server, CASES)), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    baseline = status.baseline_score
    assert baseline is not None and 0 < baseline < 1  # greets, but ignores refund questions
    cand = [r for r in store.list_cases(status.run_id or "") if r.stage == "epoch-1/batch-0/candidate-0"]
    assert cand and sum(bool(r.passed) for r in cand) == 0  # the rewrite scores 0 < baseline
    cps = store.list_checkpoints(run_id=status.run_id)
    assert cps[-1].accepted == 0 and cps[-1].checksum == cps[0].checksum
    assert status.best_score == baseline
    promotable = next(c for c in status.conditions if c.type == "Promotable")
    assert (promotable.status, promotable.reason) == ("False", "NoImprovement")
    store.close()


async def test_one_gradient_per_prompt_per_batch_concurrently(
    server: ScriptedServer, llm_env: Path, tmp_path: Path
) -> None:
    """A two-step task workflow: two trainable prompts -> two gradient calls per minibatch, overlapping."""
    script(server, f"<prompt>Start every reply with '{GREETING}'.</prompt>", gradient_latency=0.3)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    pc = prompt_config({"draft": "Draft an answer.", "polish": "Polish the draft."}, workflow="task-wf")
    s = spec(server, CASES, batchSize=4)
    s["workflow"] = {"template": "task", "options": {"steps": [{"name": "draft"}, {"name": "polish"}]}}
    status = await execute(training_run(s), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    grads = server.requests("Diagnose what in the prompt")
    rewrites = server.requests("You rewrite one prompt")
    batches = {r.stage for r in store.list_cases(status.run_id or "") if "/train/" in r.stage}
    failing_batches = len(batches)  # the baseline fails every train case; after acceptance some batches may pass
    assert 2 <= len(grads) <= 2 * failing_batches and len(grads) % 2 == 0
    assert len(rewrites) == len(grads)
    assert {user_of(g.body).split("`")[1] for g in grads[:2]} == {"draft", "polish"}
    first, second = sorted(grads[:2], key=lambda r: r.started)
    assert second.started < first.finished, "the two gradient calls of one batch did not overlap"
    cp = store.list_checkpoints(run_id=status.run_id)[-1]
    assert cp.extra["calls"]["gradient"] == len(grads) and cp.extra["calls"]["rewrite"] == len(rewrites)
    store.close()
