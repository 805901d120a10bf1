"""Pure decisions behind promotion and the pass gate: the ``spec.active`` snapshot check, the
PromptConfig status it leads to, and the runner's ``Passed`` condition reaching the run's status."""

from __future__ import annotations

import pytest

from agentensor_api import ActiveSnapshot, RunStatus, config_checksum, set_condition
from agentensor_operator import _decisions as d
from agentensor_operator._decisions._promptconfig import active_snapshot_error

NOW = "2026-01-02T03:04:05Z"
PROMPTS = {"intent.a": "alpha\nline two", "intent.b": "beta"}
PARAMETERS = {"k": 3}
GOOD = config_checksum(PROMPTS, PARAMETERS)
OTHER = config_checksum({"intent.a": "alpha"}, {})


@pytest.mark.parametrize(
    ("snapshot", "stored", "fragment"),
    [
        pytest.param(None, GOOD, None, id="no-snapshot"),
        pytest.param(ActiveSnapshot(checksum=GOOD, prompts=PROMPTS, parameters=PARAMETERS), GOOD, None, id="matches"),
        pytest.param(
            ActiveSnapshot(checksum=GOOD, prompts={**PROMPTS, "intent.b": "beta, edited"}, parameters=PARAMETERS),
            GOOD,
            "spec.active.checksum: spec.active.prompts and parameters hash to",
            id="text-edited",
        ),
        pytest.param(
            ActiveSnapshot(checksum=GOOD, prompts=PROMPTS, parameters={"k": 4}),
            GOOD,
            "the promoted text was edited",
            id="parameters-edited",
        ),
        pytest.param(
            ActiveSnapshot(checksum=OTHER, prompts={"intent.a": "alpha"}, parameters={}),
            GOOD,
            f"spec.active.checksum: {OTHER[:12]} is not the checksum of stored version 4 ({GOOD[:12]})",
            id="another-versions-text",
        ),
    ],
)
def test_active_snapshot_error(snapshot: ActiveSnapshot | None, stored: str, fragment: str | None) -> None:
    error = active_snapshot_error(snapshot, version=4, stored_checksum=stored)
    if fragment is None:
        assert error is None
        return
    assert error is not None and error[0] == "ChecksumMismatch" and fragment in error[1]
    status = d.promptconfig_status(
        None, generation=2, active_version=None, active_checksum=None, latest_version=4, versions=4,
        best_version=None, best_score=None, error=error, now=NOW,
    )  # fmt: skip
    ready = status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "ChecksumMismatch")


def test_the_runners_passed_condition_reaches_the_run() -> None:
    ref = d.RunRef(kind="EvaluationRun", namespace="ns", name="gate", uid="u-1", generation=1)
    runner = RunStatus(phase="Succeeded", cases_total=4, cases_completed=4)
    runner.conditions = set_condition([], "Succeeded", "True", "Completed", "done", now=NOW)
    runner.conditions = set_condition(
        runner.conditions, "Passed", "False", "CriteriaNotMet", "accuracy: mean 0.5 < minMean 0.8", now=NOW
    )
    prev = d.started_status(RunStatus(), ref, "job", now=NOW)
    new = d.reflect_run(
        prev, ref, job=None, job_name_="job", runner=runner.to_wire(), checkpoints=[], failed_case=None, kept=5,
        now=NOW,
    )  # fmt: skip
    passed = next(c for c in new.conditions if c.type == "Passed")
    assert (passed.status, passed.reason, passed.message) == (
        "False",
        "CriteriaNotMet",
        "accuracy: mean 0.5 < minMean 0.8",
    )
