"""Our errors reach kopf as TemporaryError or PermanentError, translated in one place."""

from __future__ import annotations

import kopf
import pytest

from agentensor_api import ManifestError
from agentensor_operator import DependencyNotReadyError, KubernetesApiError
from agentensor_operator._errors import kopf_errors, to_kopf
from agentensor_store import DatabaseUnavailableError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(ManifestError("spec.x", "bad"), kopf.PermanentError, id="invalid-spec"),
        pytest.param(DependencyNotReadyError("spec.promptConfigRef.name", "missing"), kopf.TemporaryError, id="dep"),
        pytest.param(KubernetesApiError("create Job", 503, "unavailable"), kopf.TemporaryError, id="5xx"),
        pytest.param(KubernetesApiError("create Job", 0, "reset"), kopf.TemporaryError, id="transport"),
        pytest.param(KubernetesApiError("create Job", 429, "slow down"), kopf.TemporaryError, id="429"),
        pytest.param(KubernetesApiError("create Job", 403, "forbidden"), kopf.PermanentError, id="403"),
        pytest.param(DatabaseUnavailableError("down"), kopf.TemporaryError, id="database"),
    ],
)
def test_to_kopf(error: Exception, expected: type[Exception]) -> None:
    assert isinstance(to_kopf(error), expected)


def test_unexpected_errors_are_left_to_kopf() -> None:
    assert to_kopf(RuntimeError("x")) is None


async def test_decorator_chains_the_cause() -> None:
    @kopf_errors
    async def handler() -> None:
        raise KubernetesApiError("create Job ns/x", 500, "etcd timeout")

    with pytest.raises(kopf.TemporaryError) as e:
        await handler()
    assert isinstance(e.value.__cause__, KubernetesApiError)
    assert "create Job ns/x: HTTP 500 etcd timeout" in str(e.value)
