"""``spec.runner`` checks of the API models (issue 20): what no cluster may allow a run author.

The operator parses runs with the same models (Accepted=False InvalidSpec) and ``agentensor run``
refuses them locally (exit 2), so these rows hold on both paths.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agentensor_api import RunnerSpec, VolumeMount, denied_env_name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, id=n)
        for n in (
            "AGENTENSOR_DATABASE_URL",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PYTHONHOME",
            "PYTHONUSERBASE",
            "pythonpath",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "GCONV_PATH",
            "GLIBC_TUNABLES",
            "HTTP_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "no_proxy",
            "OPENAI_PROXY",
            "PGHOST",
            "PGPASSFILE",
            "PGSERVICEFILE",
            "PGSSLROOTCERT",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "OPENSSL_CONF",
            "HF_HUB_OFFLINE",
            "HF_ENDPOINT",
            "HF_HOME",
            "TRANSFORMERS_CACHE",
            "SENTENCE_TRANSFORMERS_HOME",
            "TORCH_HOME",
            "XDG_CACHE_HOME",
            "PATH",
            "HOME",
            "BASH_ENV",
            "ENV",
            "TMPDIR",
            "OPENAI_BASE_URL",
            "OPENAI_API_BASE",
            "ANTHROPIC_BASE_URL",
            "AZURE_OPENAI_ENDPOINT",
            "LANGSMITH_ENDPOINT",
            "COV_CORE_SOURCE",
            "COVERAGE_PROCESS_START",
            "SSLKEYLOGFILE",
            "MPLBACKEND",
            "MPLCONFIGDIR",
            "PSYCOPG_IMPL",
            "LANGCHAIN_TRACING_V2",
            "LANGSMITH_API_KEY",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "PYTORCH_JIT",
            "LOCPATH",
        )
    ],
)
def test_env_names_that_change_what_the_runner_loads_are_refused(name: str) -> None:
    assert denied_env_name(name) is not None
    with pytest.raises(ValidationError) as e:
        RunnerSpec.model_validate({"env": [{"name": name, "value": "x"}]})
    assert f"{name}: a run may not set this variable: it " in str(e.value)


@pytest.mark.parametrize(
    "name", [pytest.param(n, id=n) for n in ("HF_TOKEN", "LOG_LEVEL", "RUNNER_NOTE", "OPENAI_API_KEY", "TEAM")]
)
def test_ordinary_env_names_are_accepted(name: str) -> None:
    assert denied_env_name(name) is None
    RunnerSpec.model_validate({"env": [{"name": name, "value": "x"}]})


@pytest.mark.parametrize(
    ("mount", "error"),
    [
        pytest.param({"mountPath": "/x/../tmp"}, "'..' part", id="dotdot-into-tmp"),
        pytest.param({"mountPath": "/data/.."}, "'..' part", id="dotdot-trailing"),
        pytest.param({"mountPath": "//etc/agentensor/run"}, "overlaps /etc/agentensor", id="double-slash-reserved"),
        pytest.param({"mountPath": "/./tmp/"}, "overlaps /tmp", id="dot-reserved"),
        pytest.param({"mountPath": "///"}, "overlaps", id="root"),
        pytest.param({"mountPath": "/data", "subPath": "../../etc"}, "'..' part", id="subpath-dotdot"),
        pytest.param({"mountPath": "/data", "subPath": "/etc"}, "relative", id="subpath-absolute"),
    ],
)
def test_mount_paths_are_normalised_before_they_are_checked(mount: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        VolumeMount.model_validate({"name": "d", **mount})


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        pytest.param("//data/./x/", "/data/x", id="slashes-dots"),
        pytest.param("/models", "/models", id="plain"),
    ],
)
def test_mount_paths_are_rendered_normalised(path: str, normal: str) -> None:
    assert VolumeMount.model_validate({"name": "d", "mountPath": path, "subPath": "a//b/"}).to_wire() == {
        "name": "d",
        "mountPath": normal,
        "subPath": "a/b",
    }
