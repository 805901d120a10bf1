"""The chat template through the real LangChain OpenAI client against the scripted server:
outputs, RunnableConfig, accounting, the response cache and API-key hygiene."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agentensor_api import ManifestError
from agentensor_runner import execute, write_outputs
from agentensor_runner.llm import SqliteResponseCache
from agentensor_store import Store

from .conftest import API_KEY, KEY_ENV, evaluation_run, model, prompt_config
from .scripted_server import ScriptedServer, count_tokens, system_of, user_of

CASES = [{"input": f"question {i}", "expected": f"answer {i}"} for i in range(6)]


def echo(body: dict[str, object]) -> str:
    return "answer " + user_of(body).split()[-1]


def eval_spec(server: ScriptedServer, **extra: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "workflow": {"template": "chat", "options": {"user": "Q: {{state.input}}"}},
        "models": {"task": model(server)},
        "dataset": {"inline": CASES},
        "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "output"}],
        "pricing": {"openai:gpt-scripted": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0}},
        "config": {"tags": ["t1"], "metadata": {"team": "qa"}},
    }
    spec.update(extra)
    return spec


async def test_chat_eval_outputs_usage_and_cost(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    server.add(system="^Be exact", reply=echo)
    pc = prompt_config({"system": "Be exact."}, {"temperature": 0.25, "maxTokens": 32})
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    status = await execute(evaluation_run(eval_spec(server)), pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded", status.message
    assert status.scores == {"exact": 1.0}
    # The real client sent the system prompt, the rendered user template and the parameters.
    assert len(server.log) == len(CASES)
    body = server.log[0].body
    assert system_of(body) == "Be exact."
    assert user_of(body).startswith("Q: question")
    assert body["temperature"] == 0.25 and body["model"] == "gpt-scripted"
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 32
    # Accounting: tokens as the server counted them, cost from the price table.
    expected_in = sum(count_tokens("Be exact.") + count_tokens(f"Q: {c['input']}") for c in CASES)
    expected_out = sum(count_tokens(f"answer {i}") for i in range(len(CASES)))
    usage = status.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (expected_in, expected_out)
    assert usage.llm_calls == {"task": len(CASES)}
    assert usage.cost == pytest.approx(expected_in * 2.0 / 1e6 + expected_out * 8.0 / 1e6)
    wire_usage = status.to_wire()["usage"]
    assert isinstance(wire_usage, dict) and wire_usage["inputTokens"] == expected_in
    store.close()


async def test_response_cache_answers_the_second_run(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    server.add(reply=echo)
    pc = prompt_config({"system": "Be exact."})
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    first = await execute(evaluation_run(eval_spec(server)), pc, store, base_dir=tmp_path)
    assert first.usage is not None and first.usage.llm_calls == {"task": len(CASES)}
    second = await execute(evaluation_run(eval_spec(server)), pc, store, base_dir=tmp_path)
    assert len(server.log) == len(CASES)  # nothing new reached the server
    assert second.usage is not None
    assert second.usage.cached_calls == {"task": len(CASES)} and second.usage.llm_calls == {}
    assert second.usage.input_tokens == 0 and second.scores == first.scores
    assert len(SqliteResponseCache(llm_env)) == len(CASES)
    # A different parameter is a different key; a disabled cache always calls.
    pc2 = prompt_config({"system": "Be exact."}, {"temperature": 0.5})
    await execute(evaluation_run(eval_spec(server)), pc2, store, base_dir=tmp_path)
    assert len(server.log) == 2 * len(CASES)
    await execute(evaluation_run(eval_spec(server, responseCache={"enabled": False})), pc, store, base_dir=tmp_path)
    assert len(server.log) == 3 * len(CASES)
    store.close()


async def test_missing_key_variable_names_the_field(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    with pytest.raises(ManifestError) as info:
        await execute(evaluation_run(eval_spec(server)), prompt_config({"system": "x"}), store, base_dir=tmp_path)
    assert info.value.field == "spec.models.task.apiKeyEnv"
    assert KEY_ENV in info.value.reason
    store.close()


async def test_unknown_model_name_names_the_option(server: ScriptedServer, llm_env: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    spec = eval_spec(server, workflow={"template": "chat", "options": {"model": "nope"}})
    with pytest.raises(ManifestError) as info:
        await execute(evaluation_run(spec), prompt_config({"system": "x"}), store, base_dir=tmp_path)
    assert info.value.field == "spec.workflow.options.model"
    store.close()


async def test_api_key_never_leaks(
    server: ScriptedServer,
    llm_env: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The key reaches the server (it answers 401 otherwise) and nothing we write.

    One scripted error echoes the Authorization header, like a provider quoting the key back.
    """
    caplog.set_level(logging.DEBUG)
    server.add(user="leak", status=400, error="bad request with {auth}")
    server.add(reply=echo)
    cases = [*CASES, {"input": "please leak", "expected": "x"}]
    pc = prompt_config({"system": "Be exact."})
    db = tmp_path / "a.db"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    run = evaluation_run(eval_spec(server, dataset={"inline": cases}))
    status = await execute(run, pc, store, base_dir=tmp_path)
    assert status.phase == "Succeeded" and status.cases_failed == 1
    assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r in server.log)
    rows = store.list_cases(status.run_id or "")
    err = next(r.error for r in rows if r.error)
    assert err is not None and "***" in err and "400" in err
    out = write_outputs(tmp_path / "out", "r", status, store, training=False)
    store.close()
    logging.getLogger("httpx").info("flush")
    captured = capfd.readouterr()
    places = {
        "database": db.read_bytes(),
        "summary": out["summary"].read_bytes(),
        "report": out["report"].read_bytes(),
        "cache": llm_env.read_bytes(),
        "logs": caplog.text.encode(),
        "stdout/stderr": (captured.out + captured.err).encode(),
        "status": json.dumps(status.to_wire()).encode(),
    }
    assert caplog.records, "debug logging was captured"
    for where, blob in places.items():
        assert API_KEY.encode() not in blob, f"API key leaked into {where}"
        assert API_KEY[8:].encode() not in blob, f"part of the API key leaked into {where}"
