"""Fixtures for the LLM tests: a scripted OpenAI-compatible server and manifest builders."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import KEY_ENV_ALLOWLIST_ENV, EvaluationRun, PromptConfig, TrainingRun, parse_resource

from .scripted_server import ScriptedServer

API_KEY = "sk-scripted-3f9c1a7e5b2d4c68"
"""The key the scripted server requires; the hygiene tests grep everything for it."""
KEY_ENV = "SCRIPTED_LLM_API_KEY"
"""Not a well-known provider variable, so it must be granted (:data:`KEY_ENV_GRANT`), as a user would."""
KEY_ENV_GRANT = {KEY_ENV_ALLOWLIST_ENV: KEY_ENV}
"""The local user's grant of :data:`KEY_ENV` as an API key variable (``AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST``)."""


def set_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Export the scripted server's key in :data:`KEY_ENV` and grant that variable."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    for name, value in KEY_ENV_GRANT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(require_key=API_KEY) as srv:
        yield srv


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The API key in the environment and the response cache in ``tmp_path``; returns the cache path."""
    cache = tmp_path / "llm-cache.sqlite"
    set_key(monkeypatch)
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(cache))
    return cache


def model(server: ScriptedServer, name: str = "gpt-scripted") -> dict[str, Any]:
    return {"model": f"openai:{name}", "baseUrl": server.base_url, "apiKeyEnv": KEY_ENV, "maxRetries": 0}


def prompt_config(
    prompts: dict[str, str], parameters: dict[str, Any] | None = None, workflow: str = "chat-wf"
) -> PromptConfig:
    doc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {"name": "pc"},
        "spec": {
            "workflow": workflow,
            "prompts": {k: {"text": v} for k, v in prompts.items()},
            "parameters": parameters or {"temperature": 0},
        },
    }
    res = parse_resource(doc)
    assert isinstance(res, PromptConfig)
    return res


def run_doc(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    base = {"promptConfigRef": {"name": "pc"}, "parallelism": 4}
    return {"apiVersion": "agentensor.dev/v1alpha1", "kind": kind, "metadata": {"name": "r"}, "spec": {**base, **spec}}


def training_run(spec: dict[str, Any]) -> TrainingRun:
    res = parse_resource(run_doc("TrainingRun", copy.deepcopy(spec)))
    assert isinstance(res, TrainingRun)
    return res


def evaluation_run(spec: dict[str, Any]) -> EvaluationRun:
    res = parse_resource(run_doc("EvaluationRun", copy.deepcopy(spec)))
    assert isinstance(res, EvaluationRun)
    return res
