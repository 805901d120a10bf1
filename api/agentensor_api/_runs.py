"""TrainingRun and EvaluationRun specs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ._base import ApiModel
from ._common import (
    NAME_PATTERN,
    DatasetSpec,
    EvaluatorSpec,
    ModelSpec,
    ObjectiveSpec,
    PriceSpec,
    PromptConfigRef,
    ResponseCacheSpec,
    WorkflowSpec,
    check_model_ref,
    check_objective,
)
from ._runnable_config import MAX_CONCURRENCY, RunnableConfigSpec
from ._runner import RunnerSpec


class _RunSpecBase(ApiModel):
    workflow: WorkflowSpec
    prompt_config_ref: PromptConfigRef
    config: RunnableConfigSpec = Field(
        default_factory=RunnableConfigSpec,
        description="LangChain RunnableConfig (keys verbatim) given to every case: tags, metadata, run_name, "
        "max_concurrency, recursion_limit, configurable (callbacks and run_id are refused).",
        # Unknown keys (e.g. callbacks) are kept so the runner can refuse them by name
        # instead of the API server pruning them silently.
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    dataset: DatasetSpec
    evaluators: list[EvaluatorSpec] = Field(min_length=1, description="Scorers for every case.")
    objective: ObjectiveSpec | None = Field(
        default=None, description="Objective; defaults to the first evaluator, maximized."
    )
    parallelism: int = Field(default=4, ge=1, le=MAX_CONCURRENCY, description="Cases in flight at once (per runner).")
    case_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Per-case timeout; a timeout is an error row."
    )
    suspend: bool = Field(
        default=False,
        description="Hold the run: no runner Job while true; a running one is stopped (SIGTERM, checkpoint) and "
        "resumes from its last checkpoint when set back to false (Kueue's suspend).",
    )
    runner: RunnerSpec | None = Field(
        default=None,
        description="Runner Pod resources, placement (nodeSelector, tolerations, priorityClassName), env, "
        "volumes, serviceAccountName, labels and annotations.",
    )
    models: dict[str, ModelSpec] = Field(
        default_factory=dict,
        description="Named chat models, referenced by name from workflow options (`model: task`), llm_judge "
        "options (`model: judge`) and `optimizer.model`.",
    )
    pricing: dict[str, PriceSpec] = Field(
        default_factory=dict,
        description="`provider:name` -> price per million tokens; cost in status.usage (0 for unpriced models).",
    )
    response_cache: ResponseCacheSpec = Field(
        default_factory=ResponseCacheSpec, description="Response cache for task and judge LLM calls."
    )

    def resolved_objective(self) -> ObjectiveSpec:
        """The objective, defaulting to the first evaluator maximized."""
        return self.objective or ObjectiveSpec(evaluator=self.evaluators[0].name)

    @model_validator(mode="after")
    def _check_objective(self) -> _RunSpecBase:
        check_objective(self.evaluators, self.objective)
        return self


class PassCriterion(ApiModel):
    """A gate on one evaluator's aggregate over every case (``status.results[evaluator]``).

    Like promptfoo's assertions and Katib's objective goal: the run's ``Passed`` condition is
    True when every criterion holds, False naming each one that does not (a CI pipeline gate).
    """

    evaluator: str = Field(pattern=NAME_PATTERN, max_length=63, description="Name of a spec.evaluators entry.")
    min_mean: float | None = Field(
        default=None, ge=0, le=1, description="Lowest acceptable mean score (inclusive), in [0, 1]."
    )
    min_pass_rate: float | None = Field(
        default=None, ge=0, le=1, description="Lowest acceptable fraction of passing cases (inclusive), in [0, 1]."
    )

    @model_validator(mode="after")
    def _has_bound(self) -> PassCriterion:
        if self.min_mean is None and self.min_pass_rate is None:
            raise ValueError("set minMean, minPassRate or both")
        return self


class EvaluationRunSpec(_RunSpecBase):
    """Spec of an EvaluationRun: score one PromptConfig version over a dataset."""

    pass_criteria: list[PassCriterion] = Field(
        default_factory=list,
        max_length=64,
        description="Gates on the per-evaluator aggregates; all must hold for Passed=True (empty: no Passed).",
    )

    @model_validator(mode="after")
    def _no_split(self) -> EvaluationRunSpec:
        if self.dataset.split is not None:
            raise ValueError("dataset.split is only valid for a TrainingRun")
        return self

    @model_validator(mode="after")
    def _criteria_name_evaluators(self) -> EvaluationRunSpec:
        names = {e.name for e in self.evaluators}
        for i, criterion in enumerate(self.pass_criteria):
            if criterion.evaluator not in names:
                known = sorted(names)
                raise ValueError(
                    f"passCriteria[{i}].evaluator: {criterion.evaluator!r} is not in spec.evaluators {known}"
                )
        return self


class SearchDimension(ApiModel):
    """One dimension of an ``optuna`` search space.

    ``categorical`` picks one of ``choices`` (prompt variants are categorical strings); ``float``
    and ``int`` sample in ``[low, high]``, optionally on a log scale or with a ``step``.
    """

    type: Literal["categorical", "float", "int"] = Field(description="Distribution kind.")
    choices: list[Any] | None = Field(
        default=None,
        min_length=1,
        description="categorical: the values (strings, numbers, booleans).",
        json_schema_extra={"items": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    low: float | None = Field(default=None, description="float/int: lower bound (inclusive).")
    high: float | None = Field(default=None, description="float/int: upper bound (inclusive).")
    log: bool = Field(default=False, description="float/int: sample on a log scale (low > 0).")
    step: float | None = Field(default=None, gt=0, description="float/int: discretisation step.")

    @model_validator(mode="after")
    def _shape(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical dimensions need choices")
            if self.low is not None or self.high is not None:
                raise ValueError("categorical dimensions take choices, not low/high")
        else:
            if self.choices is not None:
                raise ValueError(f"{self.type} dimensions take low/high, not choices")
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"{self.type} dimensions need low < high")
            if self.log and self.low <= 0:
                raise ValueError("log dimensions need low > 0")
        return self


class OptimizerSpec(ApiModel):
    """The optimizer that turns feedback into candidate prompts."""

    type: Literal["exemplar", "textgrad", "optuna", "fewshot"] = Field(description="Optimizer type.")
    model: str | None = Field(
        default=None,
        description="textgrad: name of the spec.models entry used for feedback and rewrites "
        "(kept separate from the task model).",
    )
    search_space: dict[str, SearchDimension] | None = Field(
        default=None,
        description="optuna: `prompts.<name>` (categorical text variants) or `parameters.<name>` -> dimension.",
    )
    epochs: int = Field(default=3, ge=1, le=1000, description="Passes over the train split.")
    batch_size: int = Field(default=64, ge=1, le=100_000, description="Cases per minibatch.")
    candidates: int = Field(default=1, ge=1, le=64, description="Candidates proposed per step.")
    min_delta: float = Field(
        default=0.0, ge=0, description="A candidate must beat the current validation score by more."
    )
    patience: int | None = Field(
        default=None, ge=1, description="Stop after this many epochs without an accepted candidate."
    )
    selection: Literal["greedy", "pareto"] = Field(
        default="greedy",
        description=(
            "Parent of each step: greedy (the current best) or pareto (sampled from the per-case Pareto front of "
            "the candidates kept so far, in proportion to the validation cases each wins; GEPA)."
        ),
    )
    minibatch_gate: bool = Field(
        default=False,
        description=(
            "A candidate reaches the validation split only if it beats its parent on the minibatch it came from "
            "(the saved case evaluations are counted as calls.gateSavedCases)."
        ),
    )
    max_merges: int = Field(
        default=0,
        ge=0,
        description=(
            "selection: pareto: at most this many merges per run (0: none). After a step that kept a candidate, two "
            "Pareto-front members that descend from a common ancestor are crossed per prompt (each prompt from the "
            "member that changed it; GEPA's merge) and the result is scored on validation; it joins the front if it "
            "beats both. Counted as calls.mergeProposals and calls.mergesAccepted."
        ),
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Optimizer-specific options.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _per_type(self) -> OptimizerSpec:
        if self.type == "textgrad" and self.model is None:
            raise ValueError("optimizer.model is required for textgrad (a name from spec.models)")
        if self.type == "optuna":
            if not self.search_space:
                raise ValueError("optimizer.searchSpace is required for optuna")
            for key, dim in self.search_space.items():
                kind, _, name = key.partition(".")
                if kind not in ("prompts", "parameters") or not name:
                    raise ValueError(f"optimizer.searchSpace key {key!r} must be prompts.<name> or parameters.<name>")
                texts = all(isinstance(c, str) for c in dim.choices or [])
                if kind == "prompts" and (dim.type != "categorical" or not texts):
                    raise ValueError(f"optimizer.searchSpace.{key}: prompt variants must be categorical strings")
        elif self.search_space is not None:
            raise ValueError(f"optimizer.searchSpace is only used by optuna, not {self.type}")
        return self

    @model_validator(mode="after")
    def _merges_need_a_front(self) -> OptimizerSpec:
        if self.max_merges and self.selection != "pareto":
            raise ValueError("optimizer.maxMerges needs selection: pareto (merges cross two Pareto-front members)")
        return self


class HoldoutGuardSpec(ApiModel):
    """Refuse to promote a best config that regresses on the holdout split, or whose gain is noise."""

    max_regression: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Largest allowed drop (absolute objective units) from baseline on holdout.",
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Smallest holdout improvement over baseline (objective units) that counts; the paired test must "
            "also say it is more than noise."
        ),
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description=(
            "Confidence of the paired test on holdout (McNemar's exact test for 0/1 scores, else a paired "
            "bootstrap interval); a gain the test cannot tell from noise is NotSignificant."
        ),
    )


class EvaluationCacheSpec(ApiModel):
    """The evaluation cache: a scored (config, case) pair is answered from the store, not run again.

    The key is the sha256 of the config checksum, the dataset hash, the case id (and row) and a
    checksum of the workflow, evaluators, models and RunnableConfig (docs/training.md, "Evaluation
    cache"). Error rows (timeouts, exceptions) are never cached.
    """

    enabled: bool = Field(
        default=True,
        description="Reuse stored results of (config, case) pairs already scored; false: run every case.",
    )


class BudgetSpec(ApiModel):
    """Limits on what a TrainingRun may spend; unset limits are unlimited.

    Counted across task, judge and optimizer calls (the run's usage ledger). Checked at candidate
    boundaries (before each minibatch and before each candidate's gate or validation), so a run
    can overshoot a limit by the step in flight. The baseline's validation score and the final
    holdout comparison always run; their calls count in ``status.budget`` too.
    """

    max_metric_calls: int | None = Field(
        default=None,
        ge=1,
        description="Case evaluations actually run (forward + scoring of one case; evaluation-cache hits excluded).",
    )
    max_model_calls: int | None = Field(
        default=None, ge=1, description="LLM calls that reached a model (response-cache hits excluded)."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Input + output tokens of every LLM call.")
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        alias="maxCostUSD",
        description="Cost in USD from spec.pricing (unpriced models cost 0).",
    )
    max_duration_seconds: float | None = Field(
        default=None, gt=0, description="Wall-clock seconds of training, from the runner's start (resumes add up)."
    )


class CheckpointSpec(ApiModel):
    """How often the current config and its score are checkpointed."""

    every: int = Field(default=1, ge=1, description="Checkpoint every N epochs (and the last).")


class TrainingRunSpec(_RunSpecBase):
    """Spec of a TrainingRun: the agentensor loop with validation and holdout."""

    optimizer: OptimizerSpec
    holdout_guard: HoldoutGuardSpec = Field(default_factory=HoldoutGuardSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    evaluation_cache: EvaluationCacheSpec = Field(
        default_factory=EvaluationCacheSpec,
        description="Reuse results of (config, case) pairs already scored (resume, repeats, other runs).",
    )
    budget: BudgetSpec = Field(
        default_factory=BudgetSpec,
        description="Limits on metric calls, model calls, tokens, cost and time; exhausted -> BudgetExhausted.",
    )

    @model_validator(mode="after")
    def _optimizer_model(self) -> TrainingRunSpec:
        check_model_ref(self.models, self.optimizer.model, "optimizer.model")
        return self

    @model_validator(mode="after")
    def _split_default(self) -> TrainingRunSpec:
        if self.dataset.split is None:
            from ._common import SplitSpec

            self.dataset.split = SplitSpec()
        if self.dataset.expected_field is None:
            raise ValueError("dataset.expectedField is required for a TrainingRun")
        return self
