"""The pure parts of a run's daemon pass and of shard reflection, as tables (no cluster, no database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agentensor_api import CheckpointSummary, PassCriterion
from agentensor_operator import _decisions as d

UID = "0b8f3c2e-1111-4222-8333-944445555666"


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param({"a": 1}, {"b": 2}, {"a": 1, "b": 2}, id="adds-a-key"),
        pytest.param({"a": 1, "b": 2}, {"a": None}, {"b": 2}, id="null-removes"),
        pytest.param({"a": 1}, {"z": None}, {"a": 1}, id="null-on-absent-key-is-a-no-op"),
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"y": None, "z": 3}}, {"a": {"x": 1, "z": 3}}, id="nested-merge"),
        pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="list-replaces"),
        pytest.param({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="scalar-becomes-object"),
        pytest.param({"a": {"b": 1}}, {"a": 5}, {"a": 5}, id="object-becomes-scalar"),
        pytest.param({"a": 1}, "x", "x", id="non-object-patch-replaces-all"),
        pytest.param("x", {"a": 1}, {"a": 1}, id="non-object-target-starts-empty"),
        pytest.param({"a": 1}, {}, {"a": 1}, id="empty-patch"),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    before = repr(target)
    assert d.merge_patch(target, patch) == expected
    assert repr(target) == before  # the target is not modified


def _cond(type_: str, status: str, reason: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason}


@pytest.mark.parametrize(
    ("conditions", "soon"),
    [
        pytest.param([_cond("DatabaseAvailable", "False", "DatabaseUnavailable")], True, id="database-down"),
        pytest.param([_cond("Accepted", "False", "PromptConfigNotFound")], True, id="promptconfig-missing"),
        pytest.param([_cond("DatabaseAvailable", "True", "DatabaseUnavailable")], False, id="status-true"),
        pytest.param([_cond("Accepted", "False", "InvalidSpec")], False, id="invalid-spec-waits-for-an-edit"),
        pytest.param([_cond("Ready", "False", "DatabaseUnavailable")], False, id="other-condition-type"),
        pytest.param(["not a mapping"], False, id="malformed-entry"),
        pytest.param([], False, id="no-conditions"),
    ],
)
def test_retry_soon_only_for_outages_nothing_would_wake(conditions: list[Any], soon: bool) -> None:
    assert d.retry_soon({"conditions": conditions}) is soon


def test_retry_soon_without_conditions_key() -> None:
    assert d.retry_soon({}) is False


BODY = {"metadata": {"resourceVersion": "7"}, "status": {"phase": "Queued"}}


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        pytest.param(None, {"phase": "Queued"}, id="nothing-sent"),
        pytest.param(("7", {"phase": "Running"}), {"phase": "Running"}, id="watch-behind-our-patch"),
        pytest.param(("6", {"phase": "Running"}), {"phase": "Queued"}, id="watch-caught-up"),
    ],
)
def test_pass_view_reads_our_last_patch_until_the_watch_shows_it(sent: d.Sent | None, status: dict[str, Any]) -> None:
    view = d.pass_view(BODY, sent)
    assert view["status"] == status
    assert view["metadata"] == BODY["metadata"]
    assert BODY["status"] == {"phase": "Queued"}  # the live body is not modified


@pytest.mark.parametrize(
    ("uid", "factor"),
    [
        pytest.param("00000000-0000", 0.75, id="lowest"),
        pytest.param("ffffffff-ffff", 1.25, id="highest"),
        pytest.param("", 0.75, id="empty-uid"),
    ],
)
def test_resync_seconds_spreads_runs_over_three_quarters_to_five_quarters(uid: str, factor: float) -> None:
    assert d.resync_seconds(uid, 100.0) == pytest.approx(100.0 * factor)


def test_resync_seconds_is_fixed_per_uid_and_differs_between_uids() -> None:
    assert d.resync_seconds(UID, 60.0) == d.resync_seconds(UID, 60.0)
    assert 45.0 <= d.resync_seconds(UID, 60.0) <= 75.0
    assert d.resync_seconds(UID, 60.0) != d.resync_seconds("1" + UID[1:], 60.0)


@pytest.mark.parametrize(
    ("shards", "ids"),
    [
        pytest.param(1, [UID], id="unsharded"),
        pytest.param(0, [UID], id="no-shard-annotation"),
        pytest.param(3, [f"{UID}-s0", f"{UID}-s1", f"{UID}-s2"], id="three-shards"),
    ],
)
def test_shard_run_ids(shards: int, ids: list[str]) -> None:
    assert d.shard_run_ids(UID, shards) == ids


def test_shard_pairs_align_job_states_with_runner_statuses_by_index() -> None:
    a = d.JobState(phase="Active")
    c = d.JobState(phase="Failed")
    pairs = d.shard_pairs({0: a, 2: c, None: d.JobState(phase="Succeeded")}, [{"phase": "Running"}, None, None])
    assert pairs == [(a, {"phase": "Running"}), (None, None), (c, None)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(None, [], id="no-spec"),
        pytest.param({}, [], id="no-criteria"),
        pytest.param({"passCriteria": None}, [], id="null-criteria"),
        pytest.param(
            {"passCriteria": [{"evaluator": "accuracy", "minMean": 0.8}]},
            [PassCriterion(evaluator="accuracy", min_mean=0.8)],
            id="one-criterion",
        ),
    ],
)
def test_pass_criteria(spec: dict[str, Any] | None, expected: list[PassCriterion]) -> None:
    assert d.pass_criteria(spec) == expected


@dataclass(frozen=True)
class Err:
    id: int | None
    case_id: str
    stage: str = "eval"
    epoch: int | None = None
    error: str | None = "boom"


@pytest.mark.parametrize(
    ("per_run", "expected"),
    [
        pytest.param([], None, id="no-runs"),
        pytest.param([[], []], None, id="no-errors"),
        pytest.param([[Err(1, "a"), Err(4, "b")]], d.FailedCase("b", "eval", None, "boom"), id="last-of-one-run"),
        pytest.param([[Err(9, "a")], [Err(4, "b")]], d.FailedCase("a", "eval", None, "boom"), id="newest-of-shards"),
        pytest.param([[Err(2, "a")], [], [Err(5, "c")]], d.FailedCase("c", "eval", None, "boom"), id="skips-empty"),
        pytest.param([[Err(3, "a")], [Err(3, "b")]], d.FailedCase("a", "eval", None, "boom"), id="tie-keeps-first"),
        pytest.param([[Err(None, "a", error=None, epoch=2)]], d.FailedCase("a", "eval", 2, ""), id="no-id-no-text"),
    ],
)
def test_latest_error(per_run: list[list[Err]], expected: d.FailedCase | None) -> None:
    assert d.latest_error(per_run) == expected


@dataclass(frozen=True)
class Ckpt:
    epoch: int
    version: int = 1
    score: float | None = 0.5
    checksum: str = "c"
    accepted: int = 0


@pytest.mark.parametrize(
    ("epochs", "kept", "expected"),
    [
        pytest.param([], 3, [], id="none"),
        pytest.param([0, 1], 3, [0, 1], id="fewer-than-kept"),
        pytest.param([0, 1, 2, 3, 4], 2, [3, 4], id="keeps-the-last"),
    ],
)
def test_checkpoint_summaries_keep_the_last_rows(epochs: list[int], kept: int, expected: list[int]) -> None:
    summaries = d.checkpoint_summaries([Ckpt(e) for e in epochs], kept)
    assert [s.epoch for s in summaries] == expected
    assert all(isinstance(s, CheckpointSummary) for s in summaries)
