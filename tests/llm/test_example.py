"""examples/support-chat runs end to end against the scripted server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentensor_api import EvaluationRun, PromptConfig, TrainingRun, load_manifests
from agentensor_runner import execute, find_prompt_config, write_outputs
from agentensor_store import Store

from .conftest import KEY_ENV
from .scripted_server import ScriptedServer, user_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-chat"


def judge(body: dict[str, Any]) -> str:
    output = user_of(body).rsplit("OUTPUT:\n", 1)[-1]
    if "Dear customer" in output:
        return json.dumps({"score": 0.9, "reason": "polite, answers, gives the next step"})
    return json.dumps({"score": 0.2, "reason": "The reply does not greet the customer or give a next step."})


def point_at(run: TrainingRun | EvaluationRun, server: ScriptedServer) -> None:
    for spec in run.spec.models.values():
        spec.base_url = server.base_url
        spec.api_key_env = KEY_ENV
        spec.max_retries = 0


async def test_support_chat_example(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    server.add(system="Diagnose what in the prompt", reply="Greet the customer and give the next step.")
    server.add(
        system="You rewrite one prompt",
        reply="<prompt>You are Acme Bank support. Start with 'Dear customer', answer, then give the next step."
        "</prompt><prompt>Be brief.</prompt>",
    )
    server.add(system="strict evaluator", reply=judge)
    server.add(system="Dear customer", reply="Dear customer, here is what to do next: open the app.")
    server.add(reply="Open the app.")
    docs = load_manifests([EXAMPLE / "promptconfig.yaml", EXAMPLE / "trainingrun.yaml", EXAMPLE / "evaluationrun.yaml"])
    pcs = [d for d in docs if isinstance(d, PromptConfig)]
    train = next(d for d in docs if isinstance(d, TrainingRun))
    evaluation = next(d for d in docs if isinstance(d, EvaluationRun))
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    point_at(train, server)
    status = await execute(train, find_prompt_config(train, pcs), store, base_dir=EXAMPLE)
    assert status.phase == "Succeeded", status.message
    assert status.best_score is not None and status.baseline_score is not None
    assert status.best_score > status.baseline_score
    assert status.usage is not None and status.usage.llm_calls["gradient"] >= 1
    assert status.usage.cost > 0  # priced in spec.pricing
    out = write_outputs(tmp_path / "out", train.name, status, store, training=True)
    assert "gradient" in out["report"].read_text()
    point_at(evaluation, server)
    ev_status = await execute(evaluation, find_prompt_config(evaluation, pcs), store, base_dir=EXAMPLE)
    assert ev_status.phase == "Succeeded" and ev_status.cases_completed == 12
    store.close()
