"""The status vocabulary: condition types, reasons, and the helpers every writer of status uses.

Condition types and reasons are API (users ``kubectl wait`` on them, alerts and Argo CD health
checks match them), so they are named constants here and nowhere else, in the manner of kueue's
``apis/kueue/v1beta1/*_types.go``. Writers of status, the local runner and the operator alike, set
conditions only through :func:`set_condition` and the ``mark_*`` helpers below, so a failed
EvaluationRun carries the same conditions as a failed TrainingRun whoever wrote it.

Shapes follow the Kubernetes API conventions (``metav1.Condition``): a condition type is a
CamelCase noun or adjective whose ``True`` status is the notable state; a reason is a CamelCase
word for why.
"""

from __future__ import annotations

from typing import Final

from ._phases import Phase
from ._status import Condition, ConditionStatus, RunStatus, now_rfc3339


class ConditionType:
    """The ``status.conditions[].type`` values."""

    ACCEPTED: Final = "Accepted"
    """The spec at ``observedGeneration`` is valid and acted on (False: InvalidSpec)."""
    QUEUED: Final = "Queued"
    """Waiting for a runner slot or held by ``spec.suspend``."""
    RUNNING: Final = "Running"
    """A runner is working on the run."""
    SUCCEEDED: Final = "Succeeded"
    """The run finished and recorded its verdict."""
    FAILED: Final = "Failed"
    """The run ended without a verdict it could stand by."""
    FINISHED: Final = "Finished"
    """The run ended, either way: set ``True`` beside ``Succeeded=True`` (reason ``Succeeded``) or
    ``Failed=True`` (reason ``Failed``), so ``kubectl wait --for=condition=Finished`` returns for
    both outcomes and the reason says which. Named after kueue's Workload ``Finished`` condition;
    not ``Complete``, because a batch/v1 Job's ``Complete`` means success only."""
    PROMOTABLE: Final = "Promotable"
    """TrainingRun: the best config passed the holdout guard."""
    READY: Final = "Ready"
    """PromptConfig: the active version is materialized."""
    DATABASE_AVAILABLE: Final = "DatabaseAvailable"
    """Operator: False while it cannot read the run's rows (True again once it can)."""
    OVERFITTING: Final = "Overfitting"
    """TrainingRun: True when the best config contains validation or holdout inputs verbatim."""
    PASSED: Final = "Passed"
    """EvaluationRun with ``spec.passCriteria``: True when every criterion held (a pipeline gate)."""


class Reason:
    """The ``status.conditions[].reason`` values (CamelCase)."""

    # Accepted
    ACCEPTED: Final = "Accepted"
    INVALID_SPEC: Final = "InvalidSpec"
    SPEC_CHANGE_REJECTED: Final = "SpecChangeRejected"
    PROMPT_CONFIG_NOT_FOUND: Final = "PromptConfigNotFound"
    # Queued
    WAITING: Final = "Waiting"
    SUSPENDED: Final = "Suspended"
    ADMITTED: Final = "Admitted"
    # Running
    JOB_CREATED: Final = "JobCreated"
    TRAINING: Final = "Training"
    EVALUATING: Final = "Evaluating"
    RESUMED: Final = "Resumed"
    GOAL_REACHED: Final = "GoalReached"
    PATIENCE_EXHAUSTED: Final = "PatienceExhausted"
    BUDGET_EXHAUSTED: Final = "BudgetExhausted"
    STOP_REQUESTED: Final = "StopRequested"
    # Finished (the outcome)
    SUCCEEDED: Final = "Succeeded"
    FAILED: Final = "Failed"
    # Succeeded
    COMPLETED: Final = "Completed"
    EMPTY_SHARD: Final = "EmptyShard"
    # Failed
    ALL_CASES_FAILED: Final = "AllCasesFailed"
    INVALID_INPUT: Final = "InvalidInput"
    JOB_FAILED: Final = "JobFailed"
    JOB_MISSING: Final = "JobMissing"
    NO_VERDICT: Final = "NoVerdict"
    SHARD_FAILED: Final = "ShardFailed"
    # Promotable
    HOLDOUT_GUARD_PASSED: Final = "HoldoutGuardPassed"
    HOLDOUT_REGRESSION: Final = "HoldoutRegression"
    NO_IMPROVEMENT: Final = "NoImprovement"
    NOT_SIGNIFICANT: Final = "NotSignificant"
    # Overfitting (TrainingRun)
    EVALUATION_INPUTS_IN_PROMPT: Final = "EvaluationInputsInPrompt"
    NO_EVALUATION_INPUTS_IN_PROMPT: Final = "NoEvaluationInputsInPrompt"
    # Ready (PromptConfig)
    MATERIALIZED: Final = "Materialized"
    VERSION_NOT_FOUND: Final = "VersionNotFound"
    CHECKSUM_MISMATCH: Final = "ChecksumMismatch"
    # Passed (EvaluationRun)
    CRITERIA_MET: Final = "CriteriaMet"
    CRITERIA_NOT_MET: Final = "CriteriaNotMet"
    # DatabaseAvailable (operator)
    DATABASE_UNAVAILABLE: Final = "DatabaseUnavailable"
    DATABASE_REACHABLE: Final = "DatabaseReachable"


class EventType:
    """The ``type`` of a Kubernetes Event (core/v1 allows exactly these two)."""

    NORMAL: Final = "Normal"
    WARNING: Final = "Warning"


class EventReason:
    """The ``reason`` of the Events the operator posts (CamelCase, like condition reasons).

    An Event that reports a condition change uses that condition's :class:`Reason` (``InvalidSpec``,
    ``JobCreated``, ``Waiting``, ``StopRequested``...); these are the milestones that are not a
    condition reason of their own.
    """

    CHECKPOINTED: Final = "Checkpointed"
    """A TrainingRun wrote an epoch's checkpoint."""
    SUCCEEDED: Final = "Succeeded"
    """A run reached phase Succeeded."""
    FAILED: Final = "Failed"
    """A run reached phase Failed."""
    QUEUED: Final = "Queued"
    """A run is queued (when its Queued condition has no reason yet)."""
    PROMOTED: Final = "Promoted"
    """A TrainingRun's best version became its PromptConfig's ``spec.activeVersion`` (policy Auto)."""
    ACTIVATED: Final = "Activated"
    """A PromptConfig's active version was materialized into its ``-active`` ConfigMap."""


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: str | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set; lastTransitionTime moves only when status changes.

    The list keeps its order (a new type is appended); the input list is not modified.
    ``now`` is an RFC 3339 time (default: the current time).
    """
    previous = next((c for c in conditions if c.type == type_), None)
    unchanged = previous is not None and previous.status == status
    since = previous.last_transition_time if unchanged and previous else (now or now_rfc3339())
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def condition_of(status: RunStatus, type_: str) -> Condition | None:
    """The condition of ``type_`` in ``status``, or None."""
    return next((c for c in status.conditions if c.type == type_), None)


def mark_running(status: RunStatus, reason: str, message: str = "", *, now: str | None = None) -> RunStatus:
    """Set phase Running and ``Running=True`` with ``reason``; returns ``status`` (modified in place)."""
    status.phase = Phase.RUNNING
    status.conditions = set_condition(status.conditions, ConditionType.RUNNING, "True", reason, message, now=now)
    return status


def mark_succeeded(
    status: RunStatus, message: str, *, reason: str = Reason.COMPLETED, now: str | None = None
) -> RunStatus:
    """Set phase Succeeded: ``Running=False``, ``Succeeded=True`` (reason Completed), completionTime.

    Also ``Finished=True`` with reason ``Succeeded`` (the terminal condition both outcomes set).
    Returns ``status`` (modified in place).
    """
    when = now or now_rfc3339()
    status.phase = Phase.SUCCEEDED
    status.completion_time = when
    status.conditions = set_condition(status.conditions, ConditionType.RUNNING, "False", reason, message, now=when)
    status.conditions = set_condition(status.conditions, ConditionType.SUCCEEDED, "True", reason, message, now=when)
    status.conditions = set_condition(
        status.conditions, ConditionType.FINISHED, "True", Reason.SUCCEEDED, message, now=when
    )
    return status


def mark_failed(status: RunStatus, reason: str, message: str, *, now: str | None = None) -> RunStatus:
    """Set phase Failed: ``Running=False``, ``Succeeded=False`` and ``Failed=True``, all with ``reason``.

    Also ``Finished=True`` with reason ``Failed`` (the terminal condition both outcomes set), and
    sets ``status.message`` and ``completionTime``. Progress fields
    (epoch, cases, scores, checkpoints) are left as they are, so a failure keeps what was done.
    Returns ``status`` (modified in place).
    """
    when = now or now_rfc3339()
    status.phase = Phase.FAILED
    status.message = message
    status.completion_time = when
    for type_, value in (
        (ConditionType.RUNNING, "False"),
        (ConditionType.SUCCEEDED, "False"),
        (ConditionType.FAILED, "True"),
    ):
        status.conditions = set_condition(status.conditions, type_, value, reason, message, now=when)  # type: ignore[arg-type]
    status.conditions = set_condition(
        status.conditions, ConditionType.FINISHED, "True", Reason.FAILED, message, now=when
    )
    return status
