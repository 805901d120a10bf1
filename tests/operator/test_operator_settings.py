"""Settings: environment names, comma-separated namespaces, secret DSN, validation by field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentensor_operator import OperatorSettings, describe_settings_error


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("AGENTENSOR_"):
            monkeypatch.delenv(key)


def test_defaults_are_cluster_wide_and_capped() -> None:
    s = OperatorSettings()
    assert s.jobs.allowed_modules == []  # no entrypoint may run until an admin lists modules
    assert s.watch.namespaces == []
    assert s.jobs.max_concurrent_jobs == 4
    assert s.status.poll_interval_seconds == 1.0
    assert s.status.resync_seconds == 300.0
    assert s.database.url is None
    assert s.watch.client_timeout_seconds > s.watch.server_timeout_seconds
    assert isinstance(s.watch.server_timeout_seconds, int)


@pytest.mark.parametrize(
    ("env", "path", "expected"),
    [
        pytest.param({"AGENTENSOR_WATCH_NAMESPACES": "a, b,,c"}, ("watch", "namespaces"), ["a", "b", "c"], id="ns"),
        pytest.param({"AGENTENSOR_MAX_CONCURRENT_JOBS": "7"}, ("jobs", "max_concurrent_jobs"), 7, id="cap"),
        pytest.param({"AGENTENSOR_JOB_IMAGE": "r/x:1"}, ("jobs", "image"), "r/x:1", id="image"),
        pytest.param({"AGENTENSOR_DB_SECRET_NAME": "pg"}, ("database", "secret_name"), "pg", id="secret"),
        pytest.param(
            {"AGENTENSOR_STATUS_POLL_INTERVAL_SECONDS": "0.5"}, ("status", "poll_interval_seconds"), 0.5, id="poll"
        ),
        pytest.param({"AGENTENSOR_STATUS_RESYNC_SECONDS": "60"}, ("status", "resync_seconds"), 60.0, id="resync"),
        pytest.param({"AGENTENSOR_METRICS_PORT": "0"}, ("server", "metrics_port"), 0, id="metrics-off"),
        pytest.param(
            {"AGENTENSOR_JOB_ALLOWED_MODULES": "mycompany.agents, scorers,,mycompany.agents"},
            ("jobs", "allowed_modules"),
            ["mycompany.agents", "scorers"],
            id="allowed-modules",
        ),
        pytest.param({"AGENTENSOR_JOB_ALLOWED_MODULES": ""}, ("jobs", "allowed_modules"), [], id="allowed-none"),
    ],
)
def test_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], path: tuple[str, str], expected: object
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    group, name = path
    assert getattr(getattr(OperatorSettings(), group), name) == expected


def test_database_url_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTENSOR_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/x")
    s = OperatorSettings()
    assert s.database.url is not None and s.database.url.get_secret_value().endswith("@db/x")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AGENTENSOR_MAX_CONCURRENT_JOBS", "0"), ("AGENTENSOR_STATUS_RESYNC_SECONDS", "1")],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as e:
        OperatorSettings()
    message = describe_settings_error(e.value)
    assert message.startswith(f"{variable}: Input should be greater than or equal to")
    assert f"'{value}'" not in message  # values are left out: one of them may be the DSN


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("mycompany.agents,my-company", id="dash"),
        pytest.param("os;rm", id="semicolon"),
        pytest.param("mycompany..agents", id="empty-part"),
        pytest.param(".agents", id="leading-dot"),
        pytest.param("1agents", id="leading-digit"),
        pytest.param("mycompany.agents:factory", id="entrypoint-not-module"),
    ],
)
def test_bad_allowed_module_names_the_field_and_the_entry(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AGENTENSOR_JOB_ALLOWED_MODULES", value)
    with pytest.raises(ValidationError) as e:
        OperatorSettings()
    message = str(e.value)
    assert "allowed_modules" in message and "not a Python dotted module name" in message
    bad = [m.strip() for m in value.split(",") if m.strip() and m.strip() != "mycompany.agents"]
    assert all(repr(m) in message for m in bad)


@pytest.mark.parametrize(("namespaces", "limit"), [(0, 32), (3, 56)])
def test_kopf_gets_a_bounded_session_with_the_same_credentials(namespaces: int, limit: int) -> None:
    import asyncio

    import kopf

    from agentensor_operator._runtime import bounded_session

    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t0k3n", insecure=True, default_namespace="ns")

    async def check() -> None:
        ctx = bounded_session(info, namespaces=namespaces)
        assert isinstance(ctx, kopf.AiohttpSession)
        try:
            assert ctx.server == info.server and ctx.default_namespace == "ns"
            assert ctx.aiohttp_session.connector is not None and ctx.aiohttp_session.connector.limit == limit
            assert ctx.aiohttp_session.headers["Authorization"] == "Bearer t0k3n"
        finally:
            await ctx.aiohttp_session.close()

    asyncio.run(check())
    assert bounded_session(None) is None


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        pytest.param("AGENTENSOR_JOB_MODEL_KEY_ENVS", "VLLM_KEY,AGENTENSOR_DATABASE_URL", "never a key", id="dsn"),
        pytest.param("AGENTENSOR_JOB_MODEL_KEY_ENVS", "VLLM-KEY", "not an environment variable name", id="dash"),
        pytest.param("AGENTENSOR_JOB_MODEL_HOSTS", "https://vllm:8000/v1", "not a host name", id="url-not-host"),
    ],
)
def test_bad_model_grants_stop_the_operator(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    """The admin's model-credential lists are checked at startup with the rule the runner applies."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as e:
        OperatorSettings()
    assert fragment in str(e.value)


def test_model_grants_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTENSOR_JOB_MODEL_KEY_ENVS", "VLLM_KEY, VLLM_KEY,OTHER")
    monkeypatch.setenv("AGENTENSOR_JOB_MODEL_HOSTS", "vllm.llm.svc,*.corp.example,10.0.0.0/8")
    monkeypatch.setenv("AGENTENSOR_JOB_MODEL_HOSTS_STRICT", "true")
    jobs = OperatorSettings().jobs
    assert jobs.model_key_envs == ["VLLM_KEY", "OTHER"]
    assert jobs.model_hosts == ["vllm.llm.svc", "*.corp.example", "10.0.0.0/8"]
    assert jobs.model_hosts_strict is True
