"""Spec pieces shared by TrainingRun and EvaluationRun."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from ._base import ApiModel
from ._limits import INT64_MAX

EvaluatorType = Literal[
    "exact_match",
    "contains",
    "regex",
    "json_schema",
    "numeric",
    "embedding_similarity",
    "python",
    "llm_judge",
]
EVALUATOR_TYPES: tuple[str, ...] = get_args(EvaluatorType)
"""Built-in evaluator types; ``python`` loads an allow-listed ``module:function``."""

ENTRYPOINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"


class WorkflowSpec(ApiModel):
    """Which LangGraph workflow to run: a built-in ``template`` or a user ``entrypoint``."""

    template: Literal["embedding-router", "chat", "task"] | None = Field(
        default=None, description="Built-in template name. Exactly one of template/entrypoint."
    )
    entrypoint: str | None = Field(
        default=None,
        pattern=ENTRYPOINT_PATTERN,
        description="`package.module:factory`; factory(options) returns a (compiled) StateGraph.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Template/factory options; strings may use {{path}} interpolation.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    image: str | None = Field(default=None, description="Runner image for this run's Jobs (operator default if unset).")

    @model_validator(mode="after")
    def _one_of(self) -> WorkflowSpec:
        if (self.template is None) == (self.entrypoint is None):
            raise ValueError("set exactly one of workflow.template or workflow.entrypoint")
        return self


class PromptConfigRef(ApiModel):
    """Reference to a PromptConfig in the same namespace."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="PromptConfig name.")
    version: int | None = Field(
        default=None,
        ge=1,
        le=INT64_MAX,
        description="Start from this stored version instead of the PromptConfig's active one.",
    )


class SplitSpec(ApiModel):
    """Fractions of the dataset for train/validation/holdout; they must sum to 1."""

    train: float = Field(default=0.6, gt=0, lt=1, description="Fraction used for minibatches.")
    validation: float = Field(default=0.2, gt=0, lt=1, description="Fraction used to accept or reject candidates.")
    holdout: float = Field(
        default=0.2, gt=0, lt=1, description="Fraction never seen during training (promotion guard)."
    )
    stratify: bool = Field(default=True, description="Keep each expected label's share equal across splits.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.validation + self.holdout
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:g}")
        return self


class DatasetSpec(ApiModel):
    """Where the cases come from and which fields hold input and expected output."""

    path: str | None = Field(
        default=None,
        description="Local file path, relative to the manifest's folder (in a cluster: the runner's data folder); "
        "it must resolve, symlinks included, under a folder the user or admin granted (never /proc, /sys, /dev).",
    )
    inline: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=10_000,
        description="Cases written in the manifest (at most 10,000).",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )
    format: Literal["csv", "jsonl"] | None = Field(
        default=None, description="File format; inferred from the path suffix when unset."
    )
    input_field: str = Field(default="input", min_length=1, description="Column holding the input.")
    expected_field: str | None = Field(
        default="expected", description="Column holding the expected output (null: none)."
    )
    id_field: str | None = Field(default=None, description="Column holding a stable case id (default: row number).")
    limit: int | None = Field(default=None, ge=1, le=INT64_MAX, description="Use at most this many cases.")
    seed: int = Field(default=0, ge=0, le=INT64_MAX, description="Seed for sampling (limit) and splitting.")
    split: SplitSpec | None = Field(default=None, description="TrainingRun only: train/validation/holdout fractions.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.path is None) == (self.inline is None):
            raise ValueError("set exactly one of dataset.path or dataset.inline")
        if self.path is not None and self.format is None:
            suffix = self.path.rsplit(".", 1)[-1].lower()
            if suffix not in ("csv", "jsonl"):
                raise ValueError(
                    f"dataset.format is unset and cannot be inferred from {self.path!r}; set format: csv or jsonl"
                )
            self.format = suffix  # type: ignore[assignment]
        return self


class EvaluatorSpec(ApiModel):
    """One scorer applied to every case. Scores are in [0, 1]; ``passed`` is score >= threshold."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Unique within the run.")
    type: EvaluatorType = Field(description="Evaluator type.")
    output_field: str | None = Field(
        default=None,
        description="Dotted path into the workflow output to score (default: the whole output).",
    )
    expected_field: str | None = Field(
        default=None, description="Dataset column to compare with (default: dataset.expectedField)."
    )
    threshold: float = Field(default=1.0, ge=0, le=1, description="Score at or above which a case passes.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Type-specific options: ignoreCase, pattern, schema, tolerance, entrypoint...",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class ObjectiveSpec(ApiModel):
    """Which evaluator's mean score is optimized, and in which direction."""

    evaluator: str = Field(description="Name of one of spec.evaluators.")
    direction: Literal["maximize", "minimize"] = Field(
        default="maximize", description="Whether a higher or a lower score is better."
    )
    goal: float | None = Field(default=None, description="Stop early once the validation score reaches this value.")


ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODEL_PATTERN = r"^[A-Za-z0-9_-]+:\S+$"


class SecretKeyRef(ApiModel):
    """A key of a Kubernetes Secret in the run's namespace (``secretKeyRef``)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret's data.")


class ModelSpec(ApiModel):
    """A LangChain chat model: ``init_chat_model(model, base_url=..., api_key=...)``.

    Sampling parameters (``temperature``, ``maxTokens``, ``topP``...) are not here: they live in
    the PromptConfig's ``parameters`` so that a search optimizer can train them.
    """

    model: str = Field(
        pattern=MODEL_PATTERN,
        max_length=253,
        description="`provider:name`, e.g. `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5`, `ollama:llama3.1`.",
    )
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="Endpoint of an OpenAI-compatible server (vLLM, llama.cpp, a proxy); unset: the provider's. "
        "An API key is sent only to a loopback host or one on the admin's (locally: the user's) host allow-list.",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="In the cluster: the Secret key holding the API key; the operator exposes it to the runner "
        "as the environment variable named by apiKeyEnv (default AGENTENSOR_MODEL_<NAME>_API_KEY).",
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=ENV_VAR_PATTERN,
        max_length=253,
        description="Environment variable holding the API key (locally); unset with no apiKeySecretRef: "
        "the provider's own default (e.g. OPENAI_API_KEY). Only a granted variable is read: the provider's "
        "well-known one, this model's AGENTENSOR_MODEL_<NAME>_API_KEY, or one on the key allow-list; "
        "never another AGENTENSOR_* variable.",
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="Client retries of a failed request.")
    timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Client timeout of one request (capped by the run's caseTimeoutSeconds so the two agree).",
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="At most this many calls to this model in flight at once, across task, judge and optimizer "
        "(unset: no limit beyond spec.parallelism). A local server with one slot queues the rest anyway.",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto",
        description="How llm_judge asks this model for JSON: OpenAI's response_format json_schema, "
        "json_object with a schema (llama-cpp-python's server), or none (parse the text). auto: "
        "json_schema, then json_object, then none, falling back when the server rejects a form.",
    )


def api_key_env_name(model_name: str, spec: ModelSpec) -> str | None:
    """The environment variable the runner reads the API key of ``spec.models[model_name]`` from.

    ``apiKeyEnv`` if set; else, with ``apiKeySecretRef``, ``AGENTENSOR_MODEL_<NAME>_API_KEY``
    (the name upper-cased, non-alphanumerics as ``_``), which the operator fills from the
    Secret; else ``None`` (the provider client's own default variable).
    """
    if spec.api_key_env:
        return spec.api_key_env
    if spec.api_key_secret_ref is not None:
        return default_api_key_env(model_name)
    return None


def default_api_key_env(model_name: str) -> str:
    """``AGENTENSOR_MODEL_<NAME>_API_KEY`` of ``spec.models[model_name]`` (upper-cased, non-alphanumerics as ``_``).

    The one ``AGENTENSOR_*`` variable a model may read its key from (see ``agentensor_api.ModelAccess``).
    """
    return "AGENTENSOR_MODEL_" + re.sub(r"[^A-Z0-9]+", "_", model_name.upper()).strip("_") + "_API_KEY"


class PriceSpec(ApiModel):
    """Price of one model, per million tokens, in the run's currency (e.g. USD)."""

    input_per_million_tokens: float = Field(ge=0, description="Price of 1,000,000 input (prompt) tokens.")
    output_per_million_tokens: float = Field(ge=0, description="Price of 1,000,000 output (completion) tokens.")


class ResponseCacheSpec(ApiModel):
    """LangChain response cache for task and judge calls (not optimizer calls)."""

    enabled: bool = Field(default=True, description="Cache responses keyed by model, prompt and parameters.")
    path: str | None = Field(
        default=None,
        description="SQLite file; default $AGENTENSOR_LLM_CACHE or ~/.cache/agentensor/llm-cache.sqlite.",
    )


def check_model_ref(models: dict[str, ModelSpec], name: str | None, field: str) -> None:
    """Raise ``ValueError`` naming ``field`` if ``name`` is set and is not a key of ``spec.models``."""
    if name is not None and name not in models:
        raise ValueError(f"{field} {name!r} is not one of spec.models {sorted(models)}")


def check_objective(evaluators: list[EvaluatorSpec], objective: ObjectiveSpec | None) -> None:
    """Raise ``ValueError`` if evaluator names repeat or the objective names none of them."""
    names = [e.name for e in evaluators]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"evaluators: duplicate name(s) {dupes}")
    if objective is not None and objective.evaluator not in names:
        raise ValueError(f"objective.evaluator {objective.evaluator!r} is not one of spec.evaluators {names}")
