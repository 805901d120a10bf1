"""Status shapes: Kubernetes-style conditions plus run progress and scores.

The same shape is written by the local CLI as ``summary.json`` and by the operator as
``.status``; only the ``checkpoints`` list is trimmed on the cluster (history lives in the DB).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from ._base import ApiModel
from ._display import StatusDisplay
from ._phases import Phase, PhaseValue

ConditionStatus = Literal["True", "False", "Unknown"]


def now_rfc3339() -> str:
    """Current UTC time as RFC 3339 with second precision (``2026-01-02T03:04:05Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Condition(ApiModel):
    """A ``metav1.Condition``: type, status, reason (CamelCase), message, lastTransitionTime."""

    type: str = Field(description="Accepted, Queued, Running, Succeeded, Failed or Promotable.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", description="CamelCase machine-readable reason."
    )
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(default_factory=now_rfc3339, description="RFC 3339 time the status last changed.")
    observed_generation: int | None = Field(default=None, description="Generation this was computed for.")


class HoldoutScores(ApiModel):
    """Objective score of the baseline and of the best config on the holdout split."""

    baseline: float | None = Field(default=None, description="Baseline config's holdout objective.")
    best: float | None = Field(default=None, description="Best config's holdout objective.")
    delta: float | None = Field(default=None, description="Mean per-case difference best - baseline on holdout.")
    delta_low: float | None = Field(default=None, description="Lower end of the paired bootstrap interval of delta.")
    delta_high: float | None = Field(default=None, description="Upper end of the paired bootstrap interval of delta.")
    confidence: float | None = Field(default=None, description="Confidence level of the interval and the test.")
    p_value: float | None = Field(
        default=None, description="One-sided p-value of 'best is no better than baseline' (paired test)."
    )
    test: str | None = Field(default=None, description="Paired test used: mcnemar-exact or paired-bootstrap.")


class UsageSummary(ApiModel):
    """LLM usage from LangChain ``usage_metadata``: tokens, cost (price table) and calls by purpose.

    Purposes: ``task`` (workflow nodes), ``judge`` (llm_judge), ``gradient`` and ``rewrite``
    (textgrad). Cache hits count in ``cachedCalls`` and cost nothing.
    """

    input_tokens: int = Field(default=0, ge=0, description="Prompt tokens sent (cache hits excluded).")
    output_tokens: int = Field(default=0, ge=0, description="Completion tokens received (cache hits excluded).")
    cost: float = Field(default=0.0, ge=0, description="Cost in the currency of spec.pricing.")
    llm_calls: dict[str, int] = Field(default_factory=dict, description="Calls that reached a model, by purpose.")
    cached_calls: dict[str, int] = Field(default_factory=dict, description="Calls answered by the cache, by purpose.")
    llm_seconds: float = Field(default=0.0, ge=0, description="Summed LLM call time (overlapping).")
    truncated_calls: dict[str, int] = Field(
        default_factory=dict,
        description="Calls whose reply the token limit cut (finish_reason: length), by purpose.",
    )
    parse_failures: dict[str, int] = Field(
        default_factory=dict,
        description="llm_judge replies that did not parse, by evaluator name (unscored: not in means or pass rates).",
    )


class EvaluationCacheStatus(ApiModel):
    """``status.evaluationCache``: cases answered from the evaluation cache and cases run.

    Prometheus-style names of the same counters: ``agentensor_runner_evaluation_cache_hits_total``
    and ``agentensor_runner_evaluation_cache_misses_total``.
    """

    hits: int = Field(default=0, ge=0, description="Case evaluations answered from the cache (no model call).")
    misses: int = Field(default=0, ge=0, description="Case evaluations run (looked up, not found).")
    stored: int = Field(default=0, ge=0, description="Scored cases written to the cache by this process.")


class BudgetUse(ApiModel):
    """One budget: what the run has used and its limit (``spec.budget``; None: unlimited)."""

    used: float = Field(default=0, ge=0, description="Used so far (calls, tokens, USD or seconds).")
    limit: float | None = Field(default=None, description="The spec.budget limit; unset means unlimited.")


class BudgetStatus(ApiModel):
    """``status.budget``: used against limit for each budget of ``spec.budget``."""

    metric_calls: BudgetUse = Field(
        default_factory=BudgetUse, description="Case evaluations run (cache hits excluded)."
    )
    model_calls: BudgetUse = Field(default_factory=BudgetUse, description="LLM calls that reached a model.")
    tokens: BudgetUse = Field(default_factory=BudgetUse, description="Input + output tokens.")
    cost_usd: BudgetUse = Field(default_factory=BudgetUse, alias="costUSD", description="Cost in USD (spec.pricing).")
    duration_seconds: BudgetUse = Field(default_factory=BudgetUse, description="Wall-clock seconds of training.")
    exhausted: str | None = Field(default=None, description="The budget that stopped the run (e.g. maxMetricCalls).")


class ProjectedCalls(ApiModel):
    """``status.projected``: the calls the run plans, computed before its first call.

    Metric calls are exact upper bounds from the split sizes; model calls are an estimate from
    the workflow template (``chat`` 1 per case, ``task`` 1 per step), the ``llm_judge`` evaluators
    (1 per case each) and the optimizer (``textgrad`` 2 per trainable prompt per minibatch).
    """

    epochs: int = Field(description="Planned epochs (optimizer.epochs).")
    minibatches_per_epoch: int = Field(description="ceil(train / batchSize).")
    metric_calls_baseline: int = Field(description="Case evaluations of the baseline (validation split).")
    metric_calls_per_epoch: int = Field(
        description="Upper bound per epoch: train forward + per minibatch candidates x (validation + gate minibatch)."
    )
    metric_calls_holdout: int = Field(description="Case evaluations of the holdout comparison (2 x holdout).")
    metric_calls_total: int = Field(description="baseline + epochs x perEpoch + holdout.")
    model_calls_per_case: int = Field(description="Estimated LLM calls per case evaluation (task + judge).")
    model_calls_per_epoch: int = Field(description="Estimate: metricCallsPerEpoch x perCase + optimizer calls.")
    model_calls_total: int = Field(description="Estimate over the whole run.")


class LeakedInput(ApiModel):
    """A validation or holdout input found verbatim in a prompt of the best config."""

    prompt: str = Field(description="Prompt name.")
    split: Literal["validation", "holdout"] = Field(description="Split the input belongs to.")
    case_id: str = Field(description="Case id of the input.")


class EvaluatorResults(ApiModel):
    """``status.results[evaluator]``: the aggregate of one evaluator over the final evaluation.

    The final evaluation is the best config on holdout (TrainingRun) or every case
    (EvaluationRun), as in TrustyAI LMEvalJob's ``status.results``. An error row scores 0 and
    fails; a judge reply that did not parse is left out of ``mean``, ``passRate`` and ``n`` and
    counted in ``parseFailures``.
    """

    mean: float = Field(description="Mean score over the n scored cases, in [0, 1].")
    pass_rate: float = Field(description="Fraction of the n scored cases that passed, in [0, 1].")
    n: int = Field(ge=0, description="Cases scored by this evaluator (the denominator of mean and passRate).")
    parse_failures: int = Field(default=0, ge=0, description="Cases left unscored: judge replies that did not parse.")


class CheckpointSummary(ApiModel):
    """One checkpoint: the config version and the validation score *of that same config*."""

    epoch: int = Field(description="Epoch (0 is the baseline).")
    version: int = Field(description="Prompt-config version number of this checkpoint's config.")
    score: float | None = Field(default=None, description="Validation objective of this same config.")
    checksum: str = Field(description="sha256 of the config's prompts and parameters.")
    accepted: int = Field(default=0, description="Candidates accepted during this epoch.")
    usage: UsageSummary | None = Field(default=None, description="LLM usage of this epoch.")


class RunStatus(ApiModel):
    """Status of a TrainingRun or EvaluationRun (and the body of ``summary.json``)."""

    observed_generation: int | None = Field(default=None, description="metadata.generation last acted on.")
    phase: PhaseValue = Field(default=Phase.PENDING, description="Summary of the conditions for printer columns.")
    conditions: list[Condition] = Field(default_factory=list, description="Standard conditions.")
    run_id: str | None = Field(default=None, description="Id of the run's rows in the database.")
    epoch: int | None = Field(default=None, description="Current epoch (TrainingRun).")
    epochs: int | None = Field(default=None, description="Planned epochs (TrainingRun).")
    cases_completed: int | None = Field(default=None, description="Case invocations finished.")
    cases_total: int | None = Field(
        default=None, description="Case invocations planned (an upper bound while training)."
    )
    cases_failed: int | None = Field(default=None, description="Cases that raised (error rows).")
    scores: dict[str, float] | None = Field(
        default=None, description="Mean score per evaluator (EvaluationRun, or best on holdout)."
    )
    baseline_score: float | None = Field(default=None, description="Objective on validation, baseline.")
    best_score: float | None = Field(default=None, description="Objective on validation, best config.")
    holdout: HoldoutScores | None = Field(default=None, description="Objective on the holdout split.")
    best_version: int | None = Field(default=None, description="Version of the best config.")
    best_checksum: str | None = Field(default=None, description="sha256 of the best config.")
    dataset_hash: str | None = Field(default=None, description="sha256 of the cases, split and seed.")
    checkpoints: list[CheckpointSummary] | None = Field(
        default=None, description="Checkpoints (all in summary.json; the latest few on the cluster)."
    )
    start_time: str | None = Field(default=None, description="RFC 3339 start time.")
    completion_time: str | None = Field(default=None, description="RFC 3339 completion time.")
    message: str | None = Field(default=None, description="Why the run failed, if it did.")
    usage: UsageSummary | None = Field(default=None, description="LLM usage of the whole run so far.")
    display: StatusDisplay | None = Field(
        default=None, description="Rounded strings for kubectl printer columns (set by the operator)."
    )
    budget: BudgetStatus | None = Field(default=None, description="TrainingRun: spec.budget used against limit.")
    projected: ProjectedCalls | None = Field(
        default=None, description="TrainingRun: the planned calls, recorded before the first call."
    )
    leaked_inputs: list[LeakedInput] | None = Field(
        default=None,
        description="TrainingRun: validation/holdout inputs found verbatim in the best config (the first 20).",
    )
    evaluation_cache: EvaluationCacheStatus | None = Field(
        default=None, description="TrainingRun: evaluation-cache hits and misses of this process."
    )
    results: dict[str, EvaluatorResults] | None = Field(
        default=None,
        description="Per-evaluator mean, passRate, n and parseFailures of the final evaluation "
        "(best config on holdout, or every case of an EvaluationRun).",
    )


class PromptConfigStatus(ApiModel):
    """Status of a PromptConfig."""

    observed_generation: int | None = Field(default=None, description="metadata.generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Standard conditions.")
    active_version: int | None = Field(default=None, description="Version materialized as live.")
    active_checksum: str | None = Field(default=None, description="sha256 of the live config.")
    latest_version: int | None = Field(default=None, description="Highest stored version.")
    best_version: int | None = Field(default=None, description="Best version from TrainingRuns.")
    best_score: float | None = Field(default=None, description="Validation objective of bestVersion.")
    versions: int | None = Field(default=None, description="Number of stored versions.")
