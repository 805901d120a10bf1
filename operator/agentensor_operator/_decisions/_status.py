"""Run status transitions (accepted, queued, started, refused, invalid), merge patches and Events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from agentensor_api import (
    ConditionType,
    EventReason,
    EventType,
    ManifestError,
    Phase,
    PromptConfigStatus,
    Reason,
    RunStatus,
    canonical_json,
    condition_of,
    mark_failed,
    set_condition,
)

from ._names import JsonDict, RunRef


def parse_run_status(status: Mapping[str, Any] | None) -> RunStatus:
    """The run's current ``.status`` as a model; an unreadable one starts afresh."""
    try:
        return RunStatus.model_validate(dict(status or {}))
    except ValidationError:
        return RunStatus()


def _put(s: RunStatus, type_: str, value: Literal["True", "False"], reason: str, message: str, now: str) -> None:
    s.conditions = set_condition(s.conditions, type_, value, reason, message, now=now)


def accepted_status(prev: RunStatus, ref: RunRef, *, now: str) -> RunStatus:
    """The spec at ``ref.generation`` is valid and acted on."""
    s = prev.model_copy(deep=True)
    s.observed_generation = ref.generation
    s.run_id = ref.uid
    _put(s, ConditionType.ACCEPTED, "True", Reason.ACCEPTED, f"spec generation {ref.generation} is valid", now)
    _stamp(s, ConditionType.ACCEPTED, ref.generation)
    return s


def _stamp(s: RunStatus, type_: str, generation: int) -> None:
    s.conditions = [
        c.model_copy(update={"observed_generation": generation}) if c.type == type_ else c for c in s.conditions
    ]


def spec_change_rejected(prev: RunStatus, ref: RunRef, message: str, *, now: str) -> RunStatus:
    """A started run's spec changed outside suspend/parallelism: keep running the accepted spec.

    ``observedGeneration`` stays at the accepted generation; the Accepted condition (still True,
    reason SpecChangeRejected) records that ``ref.generation`` was looked at.
    """
    s = prev.model_copy(deep=True)
    _put(s, ConditionType.ACCEPTED, "True", Reason.SPEC_CHANGE_REJECTED, message, now)
    _stamp(s, ConditionType.ACCEPTED, ref.generation)
    return s


def invalid_status(prev: RunStatus, ref: RunRef, error: ManifestError, *, now: str) -> RunStatus:
    """The spec is invalid: the run fails without a Job and waits for a corrected spec.

    ``Accepted=False`` and the failure conditions of :func:`agentensor_api.mark_failed`, all
    with reason InvalidSpec and the message ``<field>: <reason>``.
    """
    s = prev.model_copy(deep=True)
    s.observed_generation = ref.generation
    s.run_id = ref.uid
    msg = f"{error.field}: {error.reason}"
    _put(s, ConditionType.ACCEPTED, "False", Reason.INVALID_SPEC, msg, now)
    _stamp(s, ConditionType.ACCEPTED, ref.generation)
    return mark_failed(s, Reason.INVALID_SPEC, msg, now=now)


def refused_status(prev: RunStatus, ref: RunRef, reason: str, message: str, *, now: str) -> RunStatus:
    """The spec is valid but cannot start yet (e.g. its PromptConfig does not exist)."""
    s = prev.model_copy(deep=True)
    s.run_id = ref.uid
    s.phase = Phase.PENDING
    _put(s, ConditionType.ACCEPTED, "False", reason, message, now)
    return s


def queued_status(prev: RunStatus, ref: RunRef, reason: str, message: str, *, now: str) -> RunStatus:
    """Waiting for a runner slot (``reason`` Waiting) or held by ``spec.suspend`` (Suspended)."""
    queued, accepted = condition_of(prev, ConditionType.QUEUED), condition_of(prev, ConditionType.ACCEPTED)
    if (
        prev.phase == Phase.QUEUED
        and prev.observed_generation == ref.generation
        and queued is not None
        and (queued.status, queued.reason, queued.message) == ("True", reason, message)
        and accepted is not None
        and (accepted.status, accepted.observed_generation) == ("True", ref.generation)
    ):
        return prev  # the common case for a long queue: nothing to copy, nothing to patch
    s = accepted_status(prev, ref, now=now)
    s.phase = Phase.QUEUED
    _put(s, ConditionType.QUEUED, "True", reason, message, now)
    if condition_of(s, ConditionType.RUNNING) is not None:
        _put(s, ConditionType.RUNNING, "False", reason, message, now)
    return s


def started_status(prev: RunStatus, ref: RunRef, job: str, *, now: str) -> RunStatus:
    """A runner Job exists now; the runner has not reported yet."""
    s = accepted_status(prev, ref, now=now)
    s.phase = Phase.RUNNING
    _put(s, ConditionType.QUEUED, "False", Reason.ADMITTED, f"runner Job {job} created", now)
    _put(s, ConditionType.RUNNING, "True", Reason.JOB_CREATED, f"runner Job {job} created; waiting for the runner", now)
    return s


def status_patch(old: Mapping[str, Any] | None, new: RunStatus | PromptConfigStatus) -> JsonDict:
    """A merge patch turning ``old`` into ``new`` (``{}`` if equal); removed keys become null."""
    target = _without_empty_strings(new.to_wire())
    before = _without_empty_strings(dict(old or {}))
    patch: JsonDict = {k: v for k, v in target.items() if canonical_json(before.get(k)) != canonical_json(v)}
    for k in before:
        if k not in target:
            patch[k] = None
    return patch


def _without_empty_strings(value: Any) -> Any:
    """Drop ``""`` values from mappings, recursively.

    The 1.20 API server's merge-patch turns an empty string inside a list item into null,
    which the schema then rejects (``conditions[].message: ""``); an absent optional field
    means the same thing and survives the round trip.
    """
    if isinstance(value, Mapping):
        return {k: _without_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_without_empty_strings(v) for v in value]
    return value


def milestones(prev: RunStatus, new: RunStatus) -> list[tuple[str, str, str]]:
    """Kubernetes Events ``(type, reason, message)`` for what changed between two statuses."""
    events: list[tuple[str, str, str]] = []
    prev_epochs = {c.epoch for c in prev.checkpoints or []}
    for cp in new.checkpoints or []:
        if cp.epoch not in prev_epochs and (not prev.checkpoints or cp.epoch > max(prev_epochs)):
            score = "-" if cp.score is None else f"{cp.score:.4f}"
            events.append(
                (EventType.NORMAL, EventReason.CHECKPOINTED, f"epoch {cp.epoch}: version {cp.version}, score {score}")
            )
    if new.phase != prev.phase:
        if new.phase == Phase.SUCCEEDED:
            cond = condition_of(new, ConditionType.SUCCEEDED)
            events.append((EventType.NORMAL, EventReason.SUCCEEDED, cond.message if cond else "run succeeded"))
        elif new.phase == Phase.FAILED:
            events.append((EventType.WARNING, EventReason.FAILED, new.message or "run failed"))
        elif new.phase == Phase.QUEUED:
            cond = condition_of(new, ConditionType.QUEUED)
            events.append(
                (EventType.NORMAL, cond.reason if cond else EventReason.QUEUED, cond.message if cond else "queued")
            )
    return events
