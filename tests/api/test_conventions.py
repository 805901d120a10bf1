"""Issue 14 conventions at the model level: the Finished condition, display strings, every error."""

from __future__ import annotations

from typing import Any

import pytest

from agentensor_api import (
    ConditionType,
    HoldoutScores,
    ManifestError,
    Reason,
    RunStatus,
    condition_of,
    display_of,
    mark_failed,
    mark_running,
    mark_succeeded,
    parse_resource,
)
from tests.runner._synthetic import make_rows, manifests


def test_finished_is_set_on_both_outcomes_with_the_outcome_as_reason() -> None:
    ok = mark_succeeded(mark_running(RunStatus(), Reason.TRAINING), "best version 2")
    bad = mark_failed(mark_running(RunStatus(), Reason.TRAINING), Reason.ALL_CASES_FAILED, "every case failed")
    for status, reason in ((ok, Reason.SUCCEEDED), (bad, Reason.FAILED)):
        finished = condition_of(status, ConditionType.FINISHED)
        assert finished is not None and finished.status == "True" and finished.reason == reason
        assert finished.message == (status.message or "best version 2")
    assert condition_of(mark_running(RunStatus(), Reason.TRAINING), ConditionType.FINISHED) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, None, id="nothing-yet"),
        pytest.param(
            {"best_score": 0.6045751633986928, "baseline_score": 0.5, "epoch": 1, "epochs": 3,
             "cases_completed": 45, "cases_total": 100, "phase": "Running"},
            {"bestScore": "0.605", "baselineScore": "0.500", "epoch": "1/3", "progress": "45%"},
            id="training-midway",
        ),
        pytest.param(
            {"cases_completed": 999, "cases_total": 1000, "phase": "Running"}, {"progress": "99%"}, id="never-100-early"
        ),
        pytest.param(
            {"cases_completed": 40, "cases_total": 100, "phase": "Succeeded", "epoch": 2},
            {"progress": "100%", "epoch": "2"},
            id="early-stop-succeeded",
        ),
        pytest.param({"cases_completed": 3, "cases_total": 0, "phase": "Running"}, None, id="zero-total"),
        pytest.param(
            {"holdout": HoldoutScores(best=0.81249, baseline=0.7)}, {"holdoutScore": "0.812"}, id="holdout"
        ),
    ],
)  # fmt: skip
def test_display_strings(fields: dict[str, Any], expected: dict[str, str] | None) -> None:
    shown = display_of(RunStatus(**fields))
    assert (shown.to_wire() if shown is not None else None) == expected


def _run(**spec: Any) -> dict[str, Any]:
    _, tr = manifests(make_rows(2))
    tr["spec"].update(spec)
    return tr


def test_manifest_error_names_every_invalid_field() -> None:
    doc = _run(parallelism=0)
    doc["spec"]["config"]["callbacks"] = ["x"]
    doc["spec"]["dataset"]["split"] = {"train": 0.5, "validation": 0.25, "holdout": 0.5}
    with pytest.raises(ManifestError) as exc:
        parse_resource(doc)
    fields = [f for f, _ in exc.value.errors]
    assert fields == ["spec.config", "spec.dataset.split", "spec.parallelism"], exc.value.errors
    message = str(exc.value)
    for field, reason in exc.value.errors:
        assert f"{field}: {reason}" in message or (field == exc.value.field and reason in message), message
    assert "sum to 1" in message and "callbacks" in message and "greater than or equal to 1" in message


def test_manifest_error_lists_at_most_twenty_and_counts_the_rest() -> None:
    doc = _run()
    doc["spec"]["evaluators"] = [{"name": f"e{i}", "type": "nope"} for i in range(25)]
    with pytest.raises(ManifestError) as exc:
        parse_resource(doc)
    assert len(exc.value.errors) >= 25
    assert str(exc.value).count("spec.evaluators[") == 20 and f"(and {len(exc.value.errors) - 20} more" in str(
        exc.value
    )


def test_a_single_error_reads_as_before() -> None:
    with pytest.raises(ManifestError) as exc:
        parse_resource(_run(parallelism=0))
    assert exc.value.errors == ((exc.value.field, exc.value.reason),) and exc.value.field == "spec.parallelism"
