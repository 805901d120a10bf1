"""Model credentials come only from what the admin or the local user granted, and go only where granted.

The rule (:class:`agentensor_api.ModelAccess`, docs/llm.md "API keys"): a manifest names a variable
(``apiKeyEnv``) and a host (``baseUrl``); the runner refuses, before any client exists, a variable
that was not granted and a key bound for a host that may not receive it. The scripted server here
records every request's ``Authorization`` header, so "refused" means the value never left.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import (
    HOST_ALLOWLIST_ENV,
    HOST_STRICT_ENV,
    KEY_ENV_ALLOWLIST_ENV,
    ManifestError,
    ModelAccess,
    ModelSpec,
)
from agentensor_runner import execute
from agentensor_store import Store

from .conftest import evaluation_run, prompt_config
from .scripted_server import ScriptedServer

DSN = "postgresql+psycopg://agentensor:db-pass-5e1f0c9a@db.internal/agentensor"
GITHUB = "ghp_exfiltrate0123456789abcdef"
OPENAI = "sk-openai-7d2e9b4c1a"
SECRETS = {"AGENTENSOR_DATABASE_URL": DSN, "GITHUB_TOKEN": GITHUB, "OPENAI_API_KEY": OPENAI}


def foreign_address() -> str | None:
    """A non-loopback address of this machine (the route to TEST-NET-1; no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.fixture
def foreign() -> Iterator[ScriptedServer]:
    """A scripted server on a non-loopback address: a host nobody granted."""
    address = foreign_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand for a foreign host")
    with ScriptedServer(host=address) as srv:
        yield srv


@pytest.fixture
def local() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A shell holding the secrets an attacker wants, no grants, the LLM cache in tmp_path."""
    for name in (KEY_ENV_ALLOWLIST_ENV, HOST_ALLOWLIST_ENV, HOST_STRICT_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "cache.sqlite"))


def spec_with(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "workflow": {"template": "chat"},
        "models": {"task": {"model": "openai:gpt-scripted", "maxRetries": 0, **model}},
        "dataset": {"inline": [{"input": "hi", "expected": "ok"}]},
        "evaluators": [{"name": "em", "type": "exact_match", "outputField": "output"}],
        "responseCache": {"enabled": False},
    }


async def run_with(model: dict[str, Any], tmp_path: Path) -> str:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upgrade()
    try:
        status = await execute(
            evaluation_run(spec_with(model)), prompt_config({"system": "s"}), store, base_dir=tmp_path
        )
        return status.phase
    finally:
        store.close()


def sent_keys(server: ScriptedServer) -> list[str]:
    return [r.headers.get("Authorization", "") for r in server.log]


@pytest.mark.parametrize(
    ("model", "grants", "field", "fragment"),
    [
        pytest.param(
            {"apiKeyEnv": "AGENTENSOR_DATABASE_URL"}, {}, "apiKeyEnv", "never read as an API key", id="dsn-loopback"
        ),
        pytest.param({"apiKeyEnv": "GITHUB_TOKEN"}, {}, "apiKeyEnv", "not a granted API key variable", id="ungranted"),
        pytest.param(
            {"apiKeyEnv": "GITHUB_TOKEN"},
            {KEY_ENV_ALLOWLIST_ENV: "GITHUB_TOKEN"},
            "baseUrl",
            "not one (loopback always is)",
            id="granted-variable-foreign-host",
        ),
        pytest.param({"apiKeyEnv": "OPENAI_API_KEY"}, {}, "baseUrl", "OPENAI_API_KEY", id="well-known-foreign-host"),
        pytest.param({}, {}, "baseUrl", "client's default key", id="client-default-key-foreign-host"),
    ],
)
async def test_a_key_never_leaves_for_what_was_not_granted(
    foreign: ScriptedServer,
    local: ScriptedServer,
    secrets: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model: dict[str, Any],
    grants: dict[str, str],
    field: str,
    fragment: str,
) -> None:
    """Refused before any request, naming the field; no server saw a value, no message holds one."""
    for name, value in grants.items():
        monkeypatch.setenv(name, value)
    server = local if "AGENTENSOR_" in model.get("apiKeyEnv", "") else foreign
    with pytest.raises(ManifestError) as info:
        await run_with({"baseUrl": server.base_url, **model}, tmp_path)
    assert info.value.field == f"spec.models.task.{field}"
    assert fragment in info.value.reason
    assert foreign.log == [] and local.log == []
    for value in SECRETS.values():
        assert value not in str(info.value)
    assert not any(value.encode() in (tmp_path / "a.db").read_bytes() for value in SECRETS.values())


async def test_a_granted_pairing_sends_the_key(
    foreign: ScriptedServer, secrets: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same variable and host, both granted: the run goes through and the server gets that key."""
    monkeypatch.setenv(KEY_ENV_ALLOWLIST_ENV, "GITHUB_TOKEN")
    monkeypatch.setenv(HOST_ALLOWLIST_ENV, foreign.host)
    assert await run_with({"baseUrl": foreign.base_url, "apiKeyEnv": "GITHUB_TOKEN"}, tmp_path) == "Succeeded"
    assert sent_keys(foreign) == [f"Bearer {GITHUB}"]


async def test_the_model_default_variable_and_loopback_need_no_grant(
    local: ScriptedServer, secrets: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``AGENTENSOR_MODEL_<NAME>_API_KEY`` (what the operator fills from the model's Secret) on loopback."""
    monkeypatch.setenv("AGENTENSOR_MODEL_TASK_API_KEY", "sk-from-the-secret")
    model = {"baseUrl": local.base_url, "apiKeySecretRef": {"name": "llm", "key": "api-key"}}
    assert await run_with(model, tmp_path) == "Succeeded"
    assert sent_keys(local) == ["Bearer sk-from-the-secret"]


async def test_strict_mode_refuses_an_unlisted_host_even_without_a_key(
    foreign: ScriptedServer, secrets: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(HOST_STRICT_ENV, "true")
    monkeypatch.setenv(KEY_ENV_ALLOWLIST_ENV, "GITHUB_TOKEN")
    with pytest.raises(ManifestError) as info:
        await run_with({"baseUrl": foreign.base_url, "apiKeyEnv": "GITHUB_TOKEN"}, tmp_path)
    assert info.value.field == "spec.models.task.baseUrl" and HOST_STRICT_ENV in info.value.reason
    assert foreign.log == []


def _spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"model": "openai:m", **fields})


def _access(**env: str) -> ModelAccess:
    return ModelAccess.from_env(env)


@pytest.mark.parametrize(
    ("spec", "access", "expected"),
    [
        pytest.param(_spec(), _access(), None, id="provider-default-endpoint"),
        pytest.param(_spec(apiKeyEnv="OPENAI_API_KEY"), _access(), "OPENAI_API_KEY", id="well-known-own-provider"),
        pytest.param(
            ModelSpec(model="anthropic:c", api_key_env="OPENAI_API_KEY"),
            _access(),
            ("apiKeyEnv", "for anthropic: ANTHROPIC_API_KEY"),
            id="well-known-other-provider",
        ),
        pytest.param(
            _spec(apiKeyEnv="AGENTENSOR_MODEL_TASK_API_KEY"),
            _access(),
            "AGENTENSOR_MODEL_TASK_API_KEY",
            id="own-default-name",
        ),
        pytest.param(
            _spec(apiKeyEnv="AGENTENSOR_MODEL_JUDGE_API_KEY"),
            _access(),
            ("apiKeyEnv", "its own AGENTENSOR_MODEL_TASK_API_KEY"),
            id="another-models-default-name",
        ),
        pytest.param(
            _spec(apiKeyEnv="AGENTENSOR_EVALUATOR_ALLOWLIST"), _access(), ("apiKeyEnv", "never"), id="operator-var"
        ),
        pytest.param(
            _spec(apiKeySecretRef={"name": "s", "key": "k"}, apiKeyEnv="AWS_SECRET_ACCESS_KEY"),
            _access(),
            ("apiKeyEnv", "AWS_SECRET_ACCESS_KEY is not a granted"),
            id="secret-ref-renamed-to-ungranted",
        ),
        pytest.param(
            _spec(apiKeyEnv="VLLM_KEY", baseUrl="http://vllm.llm.svc:8000/v1"),
            _access(**{KEY_ENV_ALLOWLIST_ENV: "VLLM_KEY", HOST_ALLOWLIST_ENV: "*.llm.svc"}),
            "VLLM_KEY",
            id="suffix-listed",
        ),
        pytest.param(
            _spec(apiKeyEnv="VLLM_KEY", baseUrl="http://llm.svc.evil.example/v1"),
            _access(**{KEY_ENV_ALLOWLIST_ENV: "VLLM_KEY", HOST_ALLOWLIST_ENV: "*.llm.svc"}),
            ("baseUrl", "'llm.svc.evil.example'"),
            id="suffix-not-a-prefix",
        ),
        pytest.param(
            _spec(apiKeyEnv="OPENAI_API_KEY", baseUrl="http://10.1.2.3:8000/v1"),
            _access(**{HOST_ALLOWLIST_ENV: "10.0.0.0/8"}),
            "OPENAI_API_KEY",
            id="cidr-listed",
        ),
        pytest.param(
            _spec(apiKeyEnv="OPENAI_API_KEY", baseUrl="http://[::1]:8000/v1"), _access(), "OPENAI_API_KEY", id="ipv6-lo"
        ),
        pytest.param(
            _spec(apiKeyEnv="OPENAI_API_KEY", baseUrl="http://127.0.0.1:80@evil.example/v1"),
            _access(),
            ("baseUrl", "user info"),
            id="userinfo-confuses-parsers",
        ),
        pytest.param(
            _spec(apiKeyEnv="OPENAI_API_KEY", baseUrl="http://evil.example\\@127.0.0.1/v1"),
            _access(),
            ("baseUrl", "backslash"),
            id="backslash",
        ),
        pytest.param(
            _spec(apiKeyEnv="OPENAI_API_KEY", baseUrl="http://%31%32%37.0.0.1/v1"),
            _access(),
            ("baseUrl", "not a valid host name"),
            id="percent-encoded-host",
        ),
        pytest.param(
            ModelSpec(model="ollama:llama3", base_url="http://gpu-box:11434"), _access(), None, id="keyless-any-host"
        ),
        pytest.param(
            ModelSpec(model="ollama:llama3", base_url="http://gpu-box:11434"),
            _access(**{HOST_STRICT_ENV: "true"}),
            ("baseUrl", HOST_STRICT_ENV),
            id="keyless-strict",
        ),
        pytest.param(
            ModelSpec(model="ollama:llama3", base_url="http://gpu-box:11434"),
            _access(**{HOST_STRICT_ENV: "1", HOST_ALLOWLIST_ENV: "gpu-box"}),
            None,
            id="keyless-strict-listed",
        ),
    ],
)
def test_model_access_decisions(spec: ModelSpec, access: ModelAccess, expected: str | tuple[str, str] | None) -> None:
    if isinstance(expected, tuple):
        field, fragment = expected
        with pytest.raises(ManifestError) as info:
            access.check("task", spec)
        assert info.value.field == f"spec.models.task.{field}"
        assert fragment in info.value.reason
    else:
        assert access.check("task", spec) == expected


@pytest.mark.parametrize(
    ("env", "field"),
    [
        pytest.param({KEY_ENV_ALLOWLIST_ENV: "AGENTENSOR_DATABASE_URL"}, KEY_ENV_ALLOWLIST_ENV, id="grant-the-dsn"),
        pytest.param({KEY_ENV_ALLOWLIST_ENV: "A-B"}, KEY_ENV_ALLOWLIST_ENV, id="not-a-name"),
        pytest.param({HOST_ALLOWLIST_ENV: "https://vllm:8000"}, HOST_ALLOWLIST_ENV, id="url-not-host"),
    ],
)
def test_malformed_grants_are_refused(env: dict[str, str], field: str) -> None:
    with pytest.raises(ManifestError) as info:
        ModelAccess.from_env(env)
    assert info.value.field == f"${field}"
