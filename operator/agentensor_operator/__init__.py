"""agentensor control plane: a kopf operator for PromptConfig, TrainingRun and EvaluationRun.

    from agentensor_operator import OperatorSettings, run
    run(OperatorSettings())        # reads AGENTENSOR_* from the environment; blocks

Layout: ``_settings`` (grouped settings), ``_decisions/`` (pure: spec in, Job/ConfigMap/status
out), ``_k8s`` (the only Kubernetes client import), ``handlers/`` (one module per kind, thin),
``_metrics`` (Prometheus), ``_errors`` (our errors, translated to kopf's in one place).
"""

from ._errors import DependencyNotReadyError, KubernetesApiError, OperatorError
from ._runtime import ConfigurationError, build, run
from ._settings import (
    DatabaseSettings,
    JobSettings,
    OperatorSettings,
    ServerSettings,
    StatusSettings,
    WatchSettings,
    describe_settings_error,
)

__all__ = [
    "ConfigurationError",
    "DatabaseSettings",
    "DependencyNotReadyError",
    "JobSettings",
    "KubernetesApiError",
    "OperatorError",
    "OperatorSettings",
    "ServerSettings",
    "StatusSettings",
    "WatchSettings",
    "build",
    "describe_settings_error",
    "run",
]
