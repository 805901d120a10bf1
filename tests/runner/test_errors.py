"""The runner's exception tree (agentensor_runner._errors): one root under AgentensorError."""

from __future__ import annotations

import pytest

import agentensor_runner as r
from agentensor_api import AgentensorError, ManifestError, Reason
from agentensor_runner.evaluators import EvaluatorConfigError


@pytest.mark.parametrize(
    ("error", "also"),
    [
        pytest.param(r.RunFailed, (), id="RunFailed"),
        pytest.param(r.EntrypointRefused, (), id="EntrypointRefused"),
        pytest.param(r.OptimizerConfigError, (ValueError,), id="OptimizerConfigError-is-a-ValueError"),
        pytest.param(r.LlmCallError, (RuntimeError,), id="LlmCallError-is-a-RuntimeError"),
    ],
)
def test_each_runner_error_is_a_runner_error(error: type[Exception], also: tuple[type[Exception], ...]) -> None:
    assert issubclass(error, r.RunnerError) and issubclass(error, AgentensorError)
    for base in also:  # kept so that callers catching the builtin still do
        assert issubclass(error, base)


def test_evaluator_config_errors_are_manifest_errors_not_runner_errors() -> None:
    assert issubclass(EvaluatorConfigError, ManifestError) and not issubclass(EvaluatorConfigError, r.RunnerError)


def test_run_failed_keeps_its_reason_and_message() -> None:
    e = r.RunFailed(Reason.ALL_CASES_FAILED, "every case failed")
    assert (e.reason, e.message, str(e)) == ("AllCasesFailed", "every case failed", "every case failed")
