"""A hostile ``spec.models`` as users meet it: `agentensor run` exits 2 with one line, `agentensor runner`
records the run Failed; no request is made and no secret value is printed or stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentensor_store import Store
from tests.cli.test_cli import agentensor
from tests.llm.scripted_server import ScriptedServer

DSN = "postgresql+psycopg://agentensor:db-pass-5e1f0c9a@db.internal/agentensor"
GITHUB = "ghp_exfiltrate0123456789abcdef"
UID = "0b7c4a8e-1111-4222-8333-abcdefabcdef"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def docs(model: dict[str, Any], uid: str | None = None) -> list[dict[str, Any]]:
    pc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {"name": "pc"},
        "spec": {"workflow": "wf", "prompts": {"system": {"text": "s"}}},
    }
    run = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "EvaluationRun",
        "metadata": {"name": "steal", **({"uid": uid} if uid else {})},
        "spec": {
            "promptConfigRef": {"name": "pc"},
            "workflow": {"template": "chat"},
            "models": {"task": {"model": "openai:m", "maxRetries": 0, **model}},
            "dataset": {"inline": [{"input": "hi", "expected": "ok"}]},
            "evaluators": [{"name": "em", "type": "exact_match", "outputField": "output"}],
            "responseCache": {"enabled": False},
        },
    }
    return [pc, run]


@pytest.mark.parametrize(
    ("model_env", "field"),
    [
        pytest.param("AGENTENSOR_DATABASE_URL", "spec.models.task.apiKeyEnv", id="dsn"),
        pytest.param("GITHUB_TOKEN", "spec.models.task.apiKeyEnv", id="github-token"),
    ],
)
def test_run_refuses_an_ungranted_key_in_one_line(
    server: ScriptedServer, tmp_path: Path, model_env: str, field: str
) -> None:
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump_all(docs({"baseUrl": server.base_url, "apiKeyEnv": model_env})))
    db = tmp_path / "a.db"
    env = {"AGENTENSOR_DATABASE_URL": DSN, "GITHUB_TOKEN": GITHUB, "AGENTENSOR_LLM_CACHE": str(tmp_path / "c")}
    res = agentensor("run", "-f", str(manifest), "--db", f"sqlite:///{db}", "--out", str(tmp_path / "out"), env=env)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and model_env in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert DSN not in res.stderr + res.stdout and GITHUB not in res.stderr + res.stdout
    assert server.log == []


@pytest.mark.one_backend
def test_runner_records_the_refusal_as_the_runs_verdict(server: ScriptedServer, tmp_path: Path, db_url: str) -> None:
    """In a Pod: exit 2, the run Failed (InvalidSpec) with the message naming the field; no value stored
    (SQLite and PostgreSQL: the operator reads this verdict and fails the run with it)."""
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs({"baseUrl": server.base_url, "apiKeyEnv": "GITHUB_TOKEN"}, UID)))
    env = {"AGENTENSOR_DATABASE_URL": "", "GITHUB_TOKEN": GITHUB, "AGENTENSOR_LLM_CACHE": str(tmp_path / "c")}
    res = agentensor("runner", "--manifest", str(manifest), "--db", db_url, env=env)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and GITHUB not in res.stderr + res.stdout
    store = Store(db_url)
    try:
        run = store.get_run(UID)
        assert run is not None and run.phase == "Failed"
        assert run.status["message"].startswith("spec.models.task.apiKeyEnv: GITHUB_TOKEN is not a granted")
        assert {c["type"]: c["reason"] for c in run.status["conditions"]}["Failed"] == "InvalidSpec"
        assert GITHUB not in json.dumps(run.status) + json.dumps(run.spec)
    finally:
        store.close()
    if db_url.startswith("sqlite:///"):
        assert GITHUB.encode() not in Path(db_url.removeprefix("sqlite:///")).read_bytes()
    assert server.log == []
