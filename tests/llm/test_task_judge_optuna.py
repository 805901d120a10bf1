"""The task template (chained steps, per-step retry and timeout), llm_judge on the wire, the
optuna search optimizer, and the API validation of the new fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ManifestError, ModelSpec, api_key_env_name, parse_resource
from agentensor_runner import execute
from agentensor_runner.evaluators._llm_judge import parse_verdict
from agentensor_runner.llm import resolve_api_key, sampling_kwargs
from agentensor_store import Store

from .conftest import evaluation_run, model, prompt_config, run_doc, training_run
from .scripted_server import ScriptedServer, system_of, user_of


def judge_contains(word: str) -> Any:
    def reply(body: dict[str, Any]) -> str:
        ok = word in user_of(body).rsplit("OUTPUT:\n", 1)[-1]
        return json.dumps({"score": 1 if ok else 0, "reason": "ok" if ok else f"the reply lacks {word!r}"})

    return reply


async def test_task_steps_feed_each_other_with_retry_on_timeout(
    server: ScriptedServer, llm_env: Path, tmp_path: Path
) -> None:
    server.add(system="^Outline", reply="OUTLINE", latency_seconds=2.0, times=1)  # first attempt times out
    server.add(system="^Outline", reply=lambda b: f"outline of {user_of(b)}")
    server.add(system="^Write", reply=lambda b: f"text from [{user_of(b)}]")
    pc = prompt_config({"outline": "Outline the answer.", "write": "Write the answer."}, workflow="task-wf")
    spec = {
        "workflow": {
            "template": "task",
            "options": {"steps": [{"name": "outline", "retries": 1, "timeoutSeconds": 0.5}, {"name": "write"}]},
        },
        "models": {"task": model(server)},
        "dataset": {"inline": [{"input": "q1", "expected": "text from [outline of q1]"}]},
        "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "output"}],
        "responseCache": {"enabled": False},
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(evaluation_run(spec), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.scores == {"exact": 1.0}
    assert [system_of(r.body) for r in server.log] == ["Outline the answer."] * 2 + ["Write the answer."]
    row = store.list_cases(status.run_id or "")[0]
    assert row.output == {
        "output": "text from [outline of q1]",
        "steps": {"outline": "outline of q1", "write": "text from [outline of q1]"},
    }
    store.close()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"steps": []}, "spec.workflow.options.steps", id="no-steps"),
        pytest.param({"steps": [{"name": "a b"}]}, "spec.workflow.options.steps[0].name", id="bad-name"),
        pytest.param({"steps": [{"name": "a", "retries": -1}]}, "spec.workflow.options.steps[0].retries", id="retries"),
        pytest.param({"steps": [{"name": "a", "bogus": 1}]}, "spec.workflow.options.steps[0].bogus", id="unknown-key"),
        pytest.param({"steps": [{"name": "a", "model": "x"}]}, "spec.workflow.options.steps[0].model", id="model"),
    ],
)
async def test_task_options_errors_name_the_field(
    server: ScriptedServer, llm_env: Path, tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    spec = {
        "workflow": {"template": "task", "options": options},
        "models": {"task": model(server)},
        "dataset": {"inline": [{"input": "q", "expected": "x"}]},
        "evaluators": [{"name": "exact", "type": "exact_match"}],
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    with pytest.raises(ManifestError) as info:
        await execute(evaluation_run(spec), prompt_config({"a": "x"}), store, base_dir=tmp_path)
    assert info.value.field == field
    store.close()


async def test_llm_judge_reason_and_bad_replies(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    server.add(system="strict evaluator", user="broken", reply="I think it is fine")
    server.add(system="strict evaluator", reply=judge_contains("thanks"))
    server.add(user="broken", reply="broken reply")
    server.add(user="nice", reply="thanks!")
    server.add(reply="no.")
    spec = {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": model(server, "judge-m")},
        "dataset": {"inline": [{"input": "nice"}, {"input": "rude"}, {"input": "broken"}], "expectedField": None},
        "evaluators": [{"name": "j", "type": "llm_judge", "outputField": "output", "options": {"rubric": "Thanks."}}],
    }
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(evaluation_run(spec), prompt_config({"system": "s"}), store, base_dir=tmp_path)
    assert status.usage is not None and status.usage.llm_calls == {"judge": 3, "task": 3}
    rows = {r.input: r for r in store.list_cases(status.run_id or "")}
    assert rows["nice"].passed and rows["nice"].scores == {"j": 1.0}
    assert not rows["rude"].passed
    # an unparsable verdict is unscored: no score in the row, the raw reply in its reasons, not in the mean
    assert not rows["broken"].passed and rows["broken"].scores == {}
    assert "raw reply: 'I think it is fine'" in (rows["broken"].reasons or {}).get("j", "")
    assert status.scores == {"j": 0.5}
    judge_bodies = server.requests("strict evaluator")
    assert all(b.body["model"] == "judge-m" and b.body["temperature"] == 0 for b in judge_bodies)
    assert "RUBRIC:\nThanks." in system_of(judge_bodies[0].body)
    store.close()


def test_parse_verdict() -> None:
    assert parse_verdict('Sure: {"score": 0.75, "reason": "r"}').score == 0.75
    assert parse_verdict('{"pass": true}').score == 1.0
    with pytest.raises(ValueError, match="no JSON"):
        parse_verdict("looks good")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_optuna_finds_the_better_variant(
    server: ScriptedServer, llm_env: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    server.add(system="strict evaluator", reply=judge_contains("Dear customer"))
    server.add(system="greet", reply=lambda b: "Dear customer, done." if b.get("temperature", 1) < 0.5 else "Hi.")
    server.add(reply="Done.")
    url = f"sqlite:///{tmp_path / 'a.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    store = Store(url)
    store.upgrade()
    cases = [{"input": f"q{i}", "expected": "-"} for i in range(8)]
    spec = {
        "workflow": {"template": "chat"},
        "models": {"task": model(server), "judge": model(server, "judge-m")},
        "dataset": {"inline": cases, "split": {"train": 0.5, "validation": 0.25, "holdout": 0.25, "stratify": False}},
        "evaluators": [{"name": "j", "type": "llm_judge", "outputField": "output", "options": {"rubric": "Greets."}}],
        "optimizer": {
            "type": "optuna",
            "epochs": 3,
            "candidates": 3,
            "batchSize": 4,
            "searchSpace": {
                "prompts.system": {"type": "categorical", "choices": ["Answer.", "Always greet."]},
                "parameters.temperature": {"type": "float", "low": 0.0, "high": 1.0},
            },
        },
    }
    status = await execute(training_run(spec), prompt_config({"system": "Answer."}), store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.baseline_score == 0.0 and status.best_score == 1.0
    best = store.list_checkpoints(run_id=status.run_id)[-1]
    assert best.prompts["system"] == "Always greet." and best.parameters["temperature"] < 0.5
    if backend == "postgres":
        import optuna

        storage = optuna.storages.RDBStorage(url)
        study = optuna.load_study(study_name=f"agentensor-{status.run_id}", storage=storage)
        assert len(study.trials) >= 3
        storage.remove_session()
        storage.engine.dispose()
    store.close()


def test_api_validation_names_fields(server: ScriptedServer) -> None:
    base: dict[str, Any] = {
        "workflow": {"template": "chat"},
        "models": {"task": model(server)},
        "dataset": {"inline": [{"input": "q", "expected": "x"}]},
        "evaluators": [{"name": "e", "type": "exact_match"}],
    }
    bad: list[tuple[dict[str, Any], str]] = [
        ({"optimizer": {"type": "textgrad"}}, "textgrad"),
        ({"optimizer": {"type": "textgrad", "model": "nope"}}, "optimizer.model 'nope'"),
        ({"optimizer": {"type": "optuna"}}, "searchSpace is required"),
        (
            {"optimizer": {"type": "optuna", "searchSpace": {"x": {"type": "float", "low": 0, "high": 1}}}},
            "prompts.<name>",
        ),
        (
            {"optimizer": {"type": "optuna", "searchSpace": {"parameters.t": {"type": "float", "low": 1, "high": 0}}}},
            "low < high",
        ),
        ({"models": {"task": {"model": "gpt-4o"}}, "optimizer": {"type": "exemplar"}}, "model"),
    ]
    for extra, needle in bad:
        with pytest.raises(ManifestError) as info:
            parse_resource(run_doc("TrainingRun", {**base, **extra}))
        assert needle in str(info.value), (extra, str(info.value))


def test_key_resolution() -> None:
    ref = ModelSpec.model_validate({"model": "openai:m", "apiKeySecretRef": {"name": "openai", "key": "api-key"}})
    assert api_key_env_name("judge-1", ref) == "AGENTENSOR_MODEL_JUDGE_1_API_KEY"
    key = resolve_api_key("judge-1", ref, {"AGENTENSOR_MODEL_JUDGE_1_API_KEY": "sk-x1234"})
    assert key is not None and key.get_secret_value() == "sk-x1234" and "sk-x1234" not in repr(key)
    with pytest.raises(ManifestError) as info:
        resolve_api_key("judge-1", ref, {})
    assert info.value.field == "spec.models.judge-1.apiKeySecretRef"
    assert resolve_api_key("t", ModelSpec(model="openai:m"), {}) is None
    assert sampling_kwargs({"temperature": 0, "maxTokens": 5, "topP": 0.5, "other": 1}, "f") == {
        "temperature": 0.0,
        "max_tokens": 5,
        "top_p": 0.5,
    }
    with pytest.raises(ManifestError) as info2:
        sampling_kwargs({"maxTokens": 0}, "spec.x")
    assert info2.value.field == "spec.x.maxTokens"
