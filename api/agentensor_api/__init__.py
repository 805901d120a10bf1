"""agentensor.dev/v1alpha1 API: the single source of truth for manifests, CRDs and status.

Both the operator (control plane) and the runner (data plane) import only this package and
``agentensor_store`` from each other's world.
"""

from ._base import API_VERSION, GROUP, VERSION, ApiModel
from ._common import (
    DatasetSpec,
    EvaluatorSpec,
    ModelSpec,
    ObjectiveSpec,
    PriceSpec,
    PromptConfigRef,
    ResponseCacheSpec,
    SecretKeyRef,
    SplitSpec,
    WorkflowSpec,
    api_key_env_name,
)
from ._conditions import ConditionType, Reason, condition_of, mark_failed, mark_running, mark_succeeded, set_condition
from ._crd import crd_for, render_crds, schema_for
from ._docs import render_api_docs
from ._errors import AgentensorError, ManifestError, UnknownKindError
from ._prompt_config import ActiveSnapshot, PromotionSpec, PromptConfigSpec, PromptSpec
from ._resources import (
    KINDS,
    AnyResource,
    EvaluationRun,
    ObjectMeta,
    PromptConfig,
    TrainingRun,
    canonical_json,
    config_checksum,
    load_manifests,
    parse_resource,
)
from ._runnable_config import (
    MAX_CONCURRENCY,
    MAX_RECURSION_LIMIT,
    RUNNABLE_CONFIG_KEYS,
    RunnableConfigSpec,
)
from ._runner import EnvVar, ResourceRequirements, RunnerSpec, Toleration, Volume, VolumeMount
from ._runs import (
    CheckpointSpec,
    EvaluationCacheSpec,
    EvaluationRunSpec,
    HoldoutGuardSpec,
    OptimizerSpec,
    SearchDimension,
    TrainingRunSpec,
)
from ._status import (
    CheckpointSummary,
    Condition,
    EvaluationCacheStatus,
    HoldoutScores,
    PromptConfigStatus,
    RunStatus,
    UsageSummary,
    now_rfc3339,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "MAX_CONCURRENCY",
    "MAX_RECURSION_LIMIT",
    "RUNNABLE_CONFIG_KEYS",
    "VERSION",
    "ActiveSnapshot",
    "AgentensorError",
    "AnyResource",
    "ApiModel",
    "CheckpointSpec",
    "CheckpointSummary",
    "Condition",
    "ConditionType",
    "DatasetSpec",
    "EnvVar",
    "EvaluationCacheSpec",
    "EvaluationCacheStatus",
    "EvaluationRun",
    "EvaluationRunSpec",
    "EvaluatorSpec",
    "HoldoutGuardSpec",
    "HoldoutScores",
    "ManifestError",
    "ModelSpec",
    "ObjectMeta",
    "ObjectiveSpec",
    "OptimizerSpec",
    "PriceSpec",
    "PromotionSpec",
    "PromptConfig",
    "PromptConfigRef",
    "PromptConfigSpec",
    "PromptConfigStatus",
    "PromptSpec",
    "Reason",
    "ResourceRequirements",
    "ResponseCacheSpec",
    "RunStatus",
    "RunnableConfigSpec",
    "RunnerSpec",
    "SearchDimension",
    "SecretKeyRef",
    "SplitSpec",
    "Toleration",
    "TrainingRun",
    "TrainingRunSpec",
    "UnknownKindError",
    "UsageSummary",
    "Volume",
    "VolumeMount",
    "WorkflowSpec",
    "api_key_env_name",
    "canonical_json",
    "condition_of",
    "config_checksum",
    "crd_for",
    "load_manifests",
    "mark_failed",
    "mark_running",
    "mark_succeeded",
    "now_rfc3339",
    "parse_resource",
    "render_api_docs",
    "render_crds",
    "schema_for",
    "set_condition",
]
