"""Providers of ``spec.models`` (issue 22): a missing integration is a config error naming the package.

``google_genai:`` stands for a provider whose integration is not installed: its package is not
a dependency of any extra, so the ImportError is LangChain's real one. ``anthropic:`` and
``ollama:`` are built for real (the ``providers`` extra) against the scripted server's address:
building a client sends nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from agentensor_api import ManifestError, ModelSpec
from agentensor_runner.llm import LlmRuntime
from agentensor_runner.llm._providers import missing_integration
from agentensor_store import Store
from tests.cli.test_cli import agentensor
from tests.cli.test_model_access_cli import docs as chat_run_docs

from .scripted_server import ScriptedServer

ABSENT = "google_genai:gemini-2.5-flash"
UID = "5d0e7c1a-2222-4333-8444-0123456789ab"


def _absent_or_skip() -> None:
    if importlib.util.find_spec("langchain_google_genai") is not None:
        pytest.skip("langchain-google-genai is installed here; these tests need a provider without its package")


def _import_error(module: str) -> ImportError:
    """LangChain's shape: its own ImportError raised from Python's ModuleNotFoundError."""
    try:
        try:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
        except ModuleNotFoundError as cause:
            raise ImportError(f"Initializing a chat model requires {module}") from cause
    except ImportError as e:
        return e


@pytest.mark.parametrize(
    ("model", "module", "says"),
    [
        pytest.param(
            "anthropic:claude-sonnet-4-5",
            "langchain_anthropic",
            ["'anthropic'", "langchain-anthropic", "pip install 'agentensor-operator[anthropic]'", "image has it"],
            id="anthropic-extra",
        ),
        pytest.param(
            "ollama:llama3.1",
            "langchain_ollama",
            ["langchain-ollama", "agentensor-operator[ollama]"],
            id="ollama-extra",
        ),
        pytest.param(
            "anthropic:claude-sonnet-4-5",
            "anthropic",
            ["langchain-anthropic (module 'anthropic' is missing)", "agentensor-operator[anthropic]"],
            id="sdk-of-a-known-provider",
        ),
        pytest.param(
            "google_genai:gemini-2.5-flash",
            "langchain_google_genai",
            ["'google_genai'", "pip install langchain-google-genai", "FROM agentensor"],
            id="provider-without-extra",
        ),
    ],
)
def test_the_reason_names_provider_package_and_how_to_install(model: str, module: str, says: list[str]) -> None:
    reason = missing_integration(model, _import_error(module))
    for part in says:
        assert part in reason, reason


def test_a_missing_integration_is_a_config_error_on_the_models_field() -> None:
    _absent_or_skip()
    with pytest.raises(ManifestError) as info:
        LlmRuntime({"task": ModelSpec(model=ABSENT)}, env={})
    assert info.value.field == "spec.models.task.model"
    assert info.value.reason.startswith("provider 'google_genai' needs the Python package langchain-google-genai")
    assert "pip install langchain-google-genai" in info.value.reason
    assert info.value.__cause__ is None  # a config error, not a chained traceback


@pytest.mark.parametrize(
    ("model", "key_env", "cls"),
    [
        pytest.param("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY", "ChatAnthropic", id="anthropic"),
        pytest.param("ollama:llama3.1", None, "ChatOllama", id="ollama"),
    ],
)
def test_a_shipped_provider_builds_against_a_local_server(model: str, key_env: str | None, cls: str) -> None:
    with ScriptedServer() as server:
        spec = ModelSpec(model=model, base_url=server.base_url, api_key_env=key_env, max_retries=0)
        runtime = LlmRuntime({"task": spec}, env={key_env: "local-no-key"} if key_env else {})
        chat = runtime.chat("task", "task", {"temperature": 0.0, "max_tokens": 16})
        assert type(chat).__name__ == cls
        assert server.base_url in json.dumps(chat.model_dump(), default=str)
        assert server.log == []  # built, not called


def test_the_runner_records_it_as_the_runs_invalid_spec_verdict(tmp_path: Path, db_url: str) -> None:
    """In a Pod: exit 2 with one line (no traceback) and the run Failed (InvalidSpec) with that reason."""
    _absent_or_skip()
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(chat_run_docs({"model": ABSENT}, UID)))
    res = agentensor("runner", "--manifest", str(manifest), "--db", db_url, env={"AGENTENSOR_DATABASE_URL": ""})
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "langchain-google-genai" in res.stderr, res.stderr
    store = Store(db_url)
    try:
        row = store.get_run(UID)
        assert row is not None and row.phase == "Failed"
        assert row.status["message"].startswith("spec.models.task.model: provider 'google_genai' needs")
        assert {c["type"]: c["reason"] for c in row.status["conditions"]}["Failed"] == "InvalidSpec"
    finally:
        store.close()
