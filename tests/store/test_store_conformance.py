"""Every Store method on SQLite and PostgreSQL (real databases, no mocks)."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from agentensor_api import AgentensorError, PromptConfig, RunStatus, config_checksum, parse_resource
from agentensor_store import (
    CaseRow,
    CheckpointRecord,
    InvalidValueError,
    RunNotFoundError,
    RunRecord,
    Store,
    StoreError,
    UnsupportedDatabaseError,
    VersionId,
    VersionNotFoundError,
    VersionRecord,
    default_database_url,
)

WF = "support-bot"


def _run(store: Store, run_id: str = "run-1", **kw: Any) -> RunRecord:
    args: dict[str, Any] = {
        "kind": "TrainingRun",
        "namespace": "default",
        "name": "tr-1",
        "workflow": WF,
        "spec": {"epochs": 3, "dataset": {"path": "data.jsonl"}},
    }
    args.update(kw)
    return store.create_run(run_id=run_id, **args)


def _case(case_id: str, stage: str = "eval", **kw: Any) -> CaseRow:
    args: dict[str, Any] = {
        "thread_id": f"t-{case_id}",
        "input": {"question": f"q{case_id}"},
        "expected": {"answer": "a"},
        "output": {"answer": "a"},
        "scores": {"exact": 1.0},
        "passed": True,
        "error": None,
        "latency_seconds": 0.25,
    }
    args.update(kw)
    return CaseRow(stage=stage, case_id=case_id, **args)


def _scalar(url: str, sql: str, **params: Any) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def _count(url: str, table: str) -> int:
    return _scalar(url, f"SELECT count(*) FROM {table}")


# -- runs -----------------------------------------------------------------------------------------


def test_create_and_get_run(store: Store) -> None:
    before = datetime.now(UTC)
    run = _run(store, seed=7, dataset_hash="sha256:abc")
    assert run.id == "run-1"
    assert (run.kind, run.namespace, run.name) == ("TrainingRun", "default", "tr-1")
    assert run.workflow == WF
    assert run.phase == "Pending"
    assert run.spec == {"epochs": 3, "dataset": {"path": "data.jsonl"}}
    assert run.status == {}
    assert (run.seed, run.dataset_hash) == (7, "sha256:abc")
    assert run.started_at is None and run.completed_at is None
    assert run.created_at.tzinfo is not None and run.created_at.utcoffset() == timedelta(0)
    slack = timedelta(seconds=5)
    assert before - slack <= run.created_at <= datetime.now(UTC) + slack
    assert store.get_run("run-1") == run
    assert store.get_run("missing") is None


def test_create_run_is_idempotent(store: Store) -> None:
    first = _run(store)
    again = _run(store, name="other-name", spec={"different": True})
    assert again == first
    assert len(store.find_runs()) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "PromptConfig"}, "kind"),
        ({"run_id": ""}, "run_id"),
        ({"run_id": "x" * 65}, "run_id"),
    ],
)
def test_create_run_rejects_bad_arguments(store: Store, kwargs: dict[str, Any], match: str) -> None:
    kwargs = dict(kwargs)  # parametrize values are shared between backends
    run_id = kwargs.pop("run_id", "run-1")
    with pytest.raises(InvalidValueError, match=match) as info:
        _run(store, run_id, **kwargs)
    assert isinstance(info.value, ValueError | AgentensorError)
    assert store.find_runs() == []


def test_find_runs_filters_and_orders(store: Store) -> None:
    _run(store, "a", namespace="ns1", name="x")
    _run(store, "b", namespace="ns1", name="y", kind="EvaluationRun")
    _run(store, "c", namespace="ns2", name="x")
    assert [r.id for r in store.find_runs()] == ["a", "b", "c"]
    assert [r.id for r in store.find_runs(namespace="ns1")] == ["a", "b"]
    assert [r.id for r in store.find_runs(name="x")] == ["a", "c"]
    assert [r.id for r in store.find_runs(namespace="ns1", name="x")] == ["a"]
    assert [r.id for r in store.find_runs(kind="EvaluationRun")] == ["b"]
    assert store.find_runs(namespace="nope") == []


def test_update_run(store: Store) -> None:
    run = _run(store)
    started = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    store.update_run("run-1", phase="Running", status={"epoch": 1, "best": {"score": 0.5}}, started_at=started)
    got = store.get_run("run-1")
    assert got is not None
    assert got.phase == "Running"
    assert got.status == {"epoch": 1, "best": {"score": 0.5}}
    assert got.started_at == started  # same instant ...
    assert got.started_at is not None and got.started_at.utcoffset() == timedelta(0)  # ... in UTC
    assert got.updated_at >= run.updated_at
    assert got.dataset_hash is None

    completed = datetime.now(UTC)
    store.update_run("run-1", phase="Succeeded", status={"done": True}, completed_at=completed, dataset_hash="sha256:d")
    got2 = store.get_run("run-1")
    assert got2 is not None
    assert (got2.phase, got2.status, got2.dataset_hash) == ("Succeeded", {"done": True}, "sha256:d")
    assert got2.completed_at == completed
    assert got2.started_at == started  # None leaves fields alone
    assert got2.created_at == run.created_at

    store.update_run("run-1")  # nothing but updated_at
    got3 = store.get_run("run-1")
    assert got3 is not None and got3.phase == "Succeeded" and got3.updated_at >= got2.updated_at


def test_update_run_errors(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="missing"):
        store.update_run("missing", phase="Running")
    _run(store)
    with pytest.raises(InvalidValueError, match="naive"):
        store.update_run("run-1", started_at=datetime(2025, 1, 1))
    with pytest.raises(InvalidValueError):
        store.update_run("run-1", status={"nan": math.nan})
    run = store.get_run("run-1")
    assert run is not None and run.status == {} and run.started_at is None


def test_record_verdict_creates_a_missing_row_and_finishes_it(store: Store, store_url: str) -> None:
    status = RunStatus(phase="Succeeded", cases_total=4, cases_completed=4, scores={"accuracy": 0.75})
    done = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    rec = store.record_verdict(
        run_id="agg-1", kind="EvaluationRun", namespace="ns", name="er", workflow=WF,
        spec={"parallelism": 8}, seed=7, status=status, completed_at=done,
    )  # fmt: skip
    assert (rec.id, rec.kind, rec.namespace, rec.name, rec.workflow, rec.seed) == (
        "agg-1", "EvaluationRun", "ns", "er", WF, 7,
    )  # fmt: skip
    assert (rec.phase, rec.status, rec.spec, rec.completed_at) == (
        "Succeeded",
        status.to_wire(),
        {"parallelism": 8},
        done,
    )
    assert store.get_run("agg-1") == rec
    assert RunStatus.model_validate(rec.status).scores == {"accuracy": 0.75}
    # again (a retried pass): the same single row, the newer verdict
    failed = RunStatus(phase="Failed", message="shard 1/2: boom")
    again = store.record_verdict(
        run_id="agg-1", kind="EvaluationRun", namespace="ns", name="er", workflow=WF, spec={}, status=failed
    )
    assert (again.phase, again.status["message"], again.spec, again.created_at) == (
        "Failed", "shard 1/2: boom", {"parallelism": 8}, rec.created_at,
    )  # fmt: skip
    assert again.completed_at is not None and again.completed_at > done  # default: now
    assert _count(store_url, "agentensor_runs") == 1


def test_record_verdict_keeps_an_existing_rows_identity(store: Store) -> None:
    created = _run(store, "run-1", seed=3)
    rec = store.record_verdict(
        run_id="run-1", kind="TrainingRun", namespace="elsewhere", name="other", workflow="other-wf",
        spec={"changed": True}, seed=9, status=RunStatus(phase="Succeeded"),
    )  # fmt: skip
    assert (rec.namespace, rec.name, rec.workflow, rec.spec, rec.seed) == (
        created.namespace, created.name, created.workflow, created.spec, 3,
    )  # fmt: skip
    assert rec.phase == "Succeeded" and rec.updated_at >= created.updated_at


@pytest.mark.parametrize(
    ("over", "match"),
    [
        pytest.param({"status": RunStatus(phase="Running")}, "status.phase", id="not-a-verdict"),
        pytest.param({"status": RunStatus()}, "status.phase", id="pending"),
        pytest.param({"completed_at": datetime(2025, 1, 1)}, "completed_at", id="naive-time"),
        pytest.param({"kind": "PromptConfig"}, "kind", id="bad-kind"),
        pytest.param({"run_id": ""}, "run_id", id="empty-id"),
    ],
)
def test_record_verdict_rejects_bad_input(store: Store, over: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "run_id": "agg-1", "kind": "EvaluationRun", "namespace": "ns", "name": "er", "workflow": WF, "spec": {},
        "status": RunStatus(phase="Succeeded"),
    }  # fmt: skip
    args.update(over)
    with pytest.raises(InvalidValueError, match=match):
        store.record_verdict(**args)
    assert store.get_run("agg-1") is None


# -- case results ---------------------------------------------------------------------------------


def test_record_and_list_cases(store: Store) -> None:
    _run(store)
    rows = [
        _case("1", stage="baseline/validation", epoch=None, version=1),
        _case(
            "2",
            stage="baseline/validation",
            version=1,
            passed=False,
            scores={"exact": 0.0, "judge": 0.25},
            output={"answer": "b"},
        ),
        _case(
            "1",
            stage="epoch-2/train/batch-3",
            epoch=2,
            version=3,
            input={"nested": [1, {"ü": "ünïcode ✓"}]},
            expected=None,
            output=None,
            scores={},
            passed=None,
            error="TimeoutError: model took too long",
        ),
        _case("1", stage="holdout/best", input="plain string input", expected=["list"]),
    ]
    store.record_cases("run-1", rows)

    got = store.list_cases("run-1")
    assert [(c.stage, c.case_id) for c in got] == [(r.stage, r.case_id) for r in rows]
    for want, have in zip(rows, got, strict=True):
        assert dataclasses.replace(have, run_id=None, id=None, created_at=None) == want
        assert have.run_id == "run-1"
        assert have.id is not None
        assert have.created_at is not None and have.created_at.utcoffset() == timedelta(0)
    assert got[2].expected is None and got[2].output is None

    baseline = store.list_cases("run-1", stage="baseline/validation")
    assert [c.case_id for c in baseline] == ["1", "2"]
    errors = store.list_cases("run-1", errors_only=True)
    assert [(c.stage, c.error) for c in errors] == [("epoch-2/train/batch-3", "TimeoutError: model took too long")]
    assert store.list_cases("run-1", stage="eval", errors_only=True) == []
    assert store.list_cases("other-run") == []


def test_record_cases_upserts(store: Store, store_url: str) -> None:
    _run(store)
    first = [_case(str(i), stage="epoch-1/validation", epoch=1, version=2) for i in range(5)]
    store.record_cases("run-1", first)
    ids = [c.id for c in store.list_cases("run-1")]
    created = [c.created_at for c in store.list_cases("run-1")]

    store.record_cases("run-1", first)  # resumed stage: identical rows again
    assert _count(store_url, "agentensor_case_results") == 5

    redo = [
        _case(
            "3",
            stage="epoch-1/validation",
            epoch=1,
            version=2,
            passed=False,
            scores={"exact": 0.0},
            error="boom",
            output=None,
            latency_seconds=1.5,
        ),
        _case("9", stage="epoch-1/validation", epoch=1, version=2),
    ]
    store.record_cases("run-1", redo)
    got = store.list_cases("run-1")
    assert [c.case_id for c in got] == ["0", "1", "2", "3", "4", "9"]
    assert [c.id for c in got[:5]] == ids  # updated in place: ids survive
    assert [c.created_at for c in got[:5]] == created
    three = got[3]
    assert (three.passed, three.scores, three.error, three.output, three.latency_seconds) == (
        False,
        {"exact": 0.0},
        "boom",
        None,
        1.5,
    )

    dupes = [_case("d", error="first"), _case("d", error="second")]  # same key twice: last wins
    store.record_cases("run-1", dupes)
    d = store.list_cases("run-1", stage="eval")
    assert [(c.case_id, c.error) for c in d] == [("d", "second")]


def test_record_cases_errors(store: Store) -> None:
    store.record_cases("missing", [])  # empty batch: no-op, no lookup
    with pytest.raises(RunNotFoundError):
        store.record_cases("missing", [_case("1")])
    _run(store)
    with pytest.raises(InvalidValueError):
        store.record_cases("run-1", [_case("1"), _case("2", scores={"exact": math.nan})])
    with pytest.raises(InvalidValueError, match="latency"):
        store.record_cases("run-1", [_case("1", latency_seconds=math.inf)])
    with pytest.raises(InvalidValueError):
        store.record_cases("run-1", [_case("1", input={"obj": object()})])
    assert store.list_cases("run-1") == []  # all-or-nothing


# -- prompt versions ------------------------------------------------------------------------------


def test_register_version_numbers_and_dedupes(store: Store) -> None:
    prompts = {"system": "Be brief.", "user": "{q}"}
    v1 = store.register_version(WF, prompts, {"temperature": 0.2})
    assert (v1.workflow, v1.version, v1.source) == (WF, 1, "inline")
    assert v1.checksum == config_checksum(prompts, {"temperature": 0.2})
    assert len(v1.checksum) == 64
    assert v1.prompts == {"system": "Be brief.", "user": "{q}"}
    assert v1.parameters == {"temperature": 0.2}
    assert v1.created_at.utcoffset() == timedelta(0)

    # same config (dict order irrelevant), different provenance: the existing version comes back
    again = store.register_version(
        WF,
        {"user": "{q}", "system": "Be brief."},
        {"temperature": 0.2},
        source="checkpoint",
        source_run_id="run-x",
        seed=3,
    )
    assert again == v1

    v2 = store.register_version(
        WF,
        {"system": "Be brief.", "user": "{q}"},
        {"temperature": 0.3},
        source="checkpoint",
        source_run_id="run-x",
        seed=3,
        dataset_hash="sha256:d",
    )
    assert v2.version == 2 and v2.id != v1.id
    assert (v2.source, v2.source_run_id, v2.seed, v2.dataset_hash) == (
        "checkpoint",
        "run-x",
        3,
        "sha256:d",
    )
    v3 = store.register_version(WF, {"system": "Be kind."}, {}, source="import")
    assert v3.version == 3

    other = store.register_version("other-wf", {"system": "Be brief.", "user": "{q}"}, {"temperature": 0.2})
    assert (other.version, other.checksum) == (1, v1.checksum) and other.id != v1.id

    assert store.list_versions(WF) == [v1, v2, v3]
    assert store.list_versions("other-wf") == [other]
    assert store.list_versions("nope") == []
    assert store.get_version(WF, 2) == v2
    assert store.get_version(WF, 4) is None
    assert store.get_version("other-wf", 2) is None
    # a config registered again is found by its checksum: the stored twin comes back unchanged
    assert store.register_version(WF, {"system": "Be kind."}, {}, source="inline") == v3


def _prompt_config(parameters: dict[str, Any], namespace: str | None = None) -> PromptConfig:
    doc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {"name": "bot", **({"namespace": namespace} if namespace else {})},
        "spec": {
            "workflow": WF,
            "prompts": {"system": {"text": "Be brief."}, "user": {"text": "{q}", "requiresGrad": False}},
            "parameters": parameters,
        },
    }
    pc = parse_resource(doc)
    assert isinstance(pc, PromptConfig)
    return pc


def test_register_inline_version_is_the_spec_as_an_inline_version(store: Store) -> None:
    v1 = store.register_inline_version(_prompt_config({"temperature": 0.2}))
    assert (v1.workflow, v1.version, v1.source) == (WF, 1, "inline")
    assert (v1.prompts, v1.parameters) == ({"system": "Be brief.", "user": "{q}"}, {"temperature": 0.2})
    assert v1.checksum == config_checksum({"system": "Be brief.", "user": "{q}"}, {"temperature": 0.2})
    # the same spec (as the operator and the runner each register it): the same version
    assert store.register_inline_version(_prompt_config({"temperature": 0.2})) == v1
    assert store.register_version(WF, {"user": "{q}", "system": "Be brief."}, {"temperature": 0.2}) == v1
    v2 = store.register_inline_version(_prompt_config({"temperature": 0.3}))
    assert v2.version == 2 and store.list_versions(WF) == [v1, v2]


def test_register_version_rejects_bad_input(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="source"):
        store.register_version(WF, {"s": "x"}, {}, source="manual")
    with pytest.raises(InvalidValueError, match="prompts"):
        store.register_version(WF, {"s": 3}, {})  # type: ignore[dict-item]
    with pytest.raises(InvalidValueError):
        store.register_version(WF, {"s": "x"}, {"t": math.nan})
    with pytest.raises(InvalidValueError):
        store.register_version(WF, {"s": "x"}, {"t": object()})
    assert store.list_versions(WF) == []


def test_versions_are_frozen_records(store: Store) -> None:
    v = store.register_version(WF, {"s": "x"}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.version = 9  # type: ignore[misc]


# -- checkpoints ----------------------------------------------------------------------------------


def _versions(store: Store, n: int, workflow: str = WF) -> list[VersionRecord]:
    return [store.register_version(workflow, {"system": f"prompt {i}"}, {}) for i in range(n)]


def test_add_and_list_checkpoints(store: Store) -> None:
    _run(store, "r1")
    _run(store, "r2", workflow="other-wf")
    v1, v2 = _versions(store, 2)
    (o1,) = _versions(store, 1, "other-wf")

    c0 = store.add_checkpoint(
        "r1",
        epoch=0,
        version=v1,
        score=0.5,
        scores={"exact": 0.5},
        train_score=0.4,
        accepted=0,
        seed=11,
        dataset_hash="sha256:d",
        extra={"llm_calls": {"workflow": 20, "optimizer": 0}},
    )
    assert isinstance(c0, CheckpointRecord)
    assert (c0.run_id, c0.epoch, c0.version, c0.version_id) == ("r1", 0, 1, v1.id)
    assert (c0.workflow, c0.checksum, c0.prompts, c0.parameters) == (
        WF,
        v1.checksum,
        v1.prompts,
        v1.parameters,
    )
    assert (c0.score, c0.scores, c0.train_score, c0.accepted) == (0.5, {"exact": 0.5}, 0.4, 0)
    assert (c0.seed, c0.dataset_hash) == (11, "sha256:d")
    assert c0.extra == {"llm_calls": {"workflow": 20, "optimizer": 0}}
    assert c0.created_at.utcoffset() == timedelta(0)

    c1 = store.add_checkpoint("r1", epoch=1, version=v2, score=0.75, scores={"exact": 0.75}, accepted=2)
    assert (c1.train_score, c1.seed, c1.dataset_hash, c1.extra) == (None, None, None, {})
    c_other = store.add_checkpoint("r2", epoch=0, version=o1, score=None, scores={})

    assert store.list_checkpoints() == [c0, c1, c_other]
    assert store.list_checkpoints(run_id="r1") == [c0, c1]
    assert store.list_checkpoints(workflow="other-wf") == [c_other]
    assert store.list_checkpoints(run_id="r1", workflow="other-wf") == []
    assert store.list_checkpoints(run_id="nope") == []


def test_add_checkpoint_upserts(store: Store, store_url: str) -> None:
    _run(store)
    v1, v2 = _versions(store, 2)
    first = store.add_checkpoint("run-1", epoch=3, version=v1, score=0.5, scores={"a": 0.5})
    again = store.add_checkpoint("run-1", epoch=3, version=v1, score=0.5, scores={"a": 0.5})
    assert again == first
    redo = store.add_checkpoint(
        "run-1",
        epoch=3,
        version=v2,
        score=0.9,
        scores={"a": 0.9},
        train_score=0.8,
        accepted=4,
        seed=5,
        dataset_hash="h",
        extra={"k": 1},
    )
    assert (redo.id, redo.created_at) == (first.id, first.created_at)
    assert (redo.version, redo.version_id, redo.checksum) == (2, v2.id, v2.checksum)
    assert (redo.score, redo.scores, redo.train_score, redo.accepted) == (0.9, {"a": 0.9}, 0.8, 4)
    assert (redo.seed, redo.dataset_hash, redo.extra) == (5, "h", {"k": 1})
    assert store.list_checkpoints(run_id="run-1") == [redo]
    assert _count(store_url, "agentensor_checkpoints") == 1


def test_add_checkpoint_errors(store: Store) -> None:
    (v1,) = _versions(store, 1)
    with pytest.raises(RunNotFoundError):
        store.add_checkpoint("missing", epoch=0, version=v1, score=0.1, scores={})
    _run(store)
    ghost = dataclasses.replace(v1, id=VersionId(v1.id + 1000))
    with pytest.raises(VersionNotFoundError):
        store.add_checkpoint("run-1", epoch=0, version=ghost, score=0.1, scores={})
    forged = dataclasses.replace(v1, checksum="f" * 64)
    with pytest.raises(VersionNotFoundError):
        store.add_checkpoint("run-1", epoch=0, version=forged, score=0.1, scores={})
    for bad in (math.nan, math.inf):
        with pytest.raises(InvalidValueError, match="score"):
            store.add_checkpoint("run-1", epoch=0, version=v1, score=bad, scores={})
    with pytest.raises(InvalidValueError):
        store.add_checkpoint("run-1", epoch=0, version=v1, score=0.1, scores={"a": math.nan})
    assert store.list_checkpoints() == []


def test_best_checkpoint(store: Store) -> None:
    _run(store, "r1")
    _run(store, "r2")
    _run(store, "r3", workflow="other-wf")
    v1, v2, v3 = _versions(store, 3)
    (o1,) = _versions(store, 1, "other-wf")
    assert store.best_checkpoint(run_id="r1") is None

    store.add_checkpoint("r1", epoch=0, version=v1, score=0.5, scores={})
    store.add_checkpoint("r1", epoch=1, version=v3, score=0.8, scores={})  # tie, later version
    store.add_checkpoint("r1", epoch=2, version=v2, score=0.8, scores={})  # tie, earlier version
    store.add_checkpoint("r1", epoch=3, version=v3, score=None, scores={})  # unscored: ignored
    store.add_checkpoint("r2", epoch=0, version=v1, score=0.1, scores={})
    store.add_checkpoint("r3", epoch=0, version=o1, score=0.99, scores={})

    best = store.best_checkpoint(run_id="r1")
    assert best is not None and (best.epoch, best.version, best.score) == (2, 2, 0.8)
    worst = store.best_checkpoint(run_id="r1", direction="minimize")
    assert worst is not None and (worst.epoch, worst.version) == (0, 1)
    across = store.best_checkpoint(workflow=WF)
    assert across is not None and (across.run_id, across.version) == ("r1", 2)
    low = store.best_checkpoint(workflow=WF, direction="minimize")
    assert low is not None and (low.run_id, low.score) == ("r2", 0.1)
    overall = store.best_checkpoint()
    assert overall is not None and overall.workflow == "other-wf"
    assert store.best_checkpoint(run_id="r3", workflow=WF) is None
    with pytest.raises(InvalidValueError, match="direction"):
        store.best_checkpoint(run_id="r1", direction="max")


def test_best_checkpoint_tie_on_same_version_takes_earliest_checkpoint(store: Store) -> None:
    _run(store)
    (v1,) = _versions(store, 1)
    first = store.add_checkpoint("run-1", epoch=0, version=v1, score=0.7, scores={})
    store.add_checkpoint("run-1", epoch=1, version=v1, score=0.7, scores={})
    assert store.best_checkpoint(run_id="run-1") == first


# -- tenancy: versions are keyed by (namespace, workflow) --------------------------------------------


def test_two_namespaces_number_the_same_workflow_key_independently(store: Store) -> None:
    a1 = store.register_version(WF, {"system": "team a, first"}, {}, namespace="team-a")
    a2 = store.register_version(WF, {"system": "team a, secret"}, {}, namespace="team-a")
    b1 = store.register_version(WF, {"system": "team b, first"}, {}, namespace="team-b")
    assert [(v.namespace, v.version) for v in (a1, a2, b1)] == [("team-a", 1), ("team-a", 2), ("team-b", 1)]
    # the same config in both: one row each, numbered in each namespace, never the other's row
    shared_a = store.register_version(WF, {"system": "same"}, {}, namespace="team-a")
    shared_b = store.register_version(WF, {"system": "same"}, {}, namespace="team-b")
    assert (shared_a.version, shared_b.version) == (3, 2) and shared_a.id != shared_b.id
    assert shared_a.checksum == shared_b.checksum
    b3 = store.register_version(WF, {"system": "team b, third"}, {}, namespace="team-b")
    assert b3.version == 3

    assert store.list_versions(WF, namespace="team-a") == [a1, a2, shared_a]
    assert store.list_versions(WF, namespace="team-b") == [b1, shared_b, b3]
    assert store.list_versions(WF) == [] and store.list_versions(WF, namespace="default") == []


def test_a_namespace_cannot_read_another_namespaces_versions(store: Store) -> None:
    a1 = store.register_version(WF, {"system": "team a, public"}, {}, namespace="team-a")
    secret = store.register_version(WF, {"system": "team a, secret"}, {}, namespace="team-a")
    store.register_version(WF, {"system": "team b"}, {}, namespace="team-b")
    assert store.get_version(WF, 2, namespace="team-a") == secret
    assert store.get_version(WF, 2, namespace="team-b") is None  # team b has only version 1
    assert store.get_version(WF, 1, namespace="team-b") != a1
    assert store.get_version(WF, 2) is None  # nor does "default"
    assert [v.checksum for v in store.list_versions(WF, namespace="team-a")] == [a1.checksum, secret.checksum]
    assert secret.checksum not in {v.checksum for v in store.list_versions(WF, namespace="team-b")}


def test_register_inline_version_is_keyed_by_the_prompt_configs_namespace(store: Store) -> None:
    a = store.register_inline_version(_prompt_config({"t": 1}, namespace="team-a"))
    b = store.register_inline_version(_prompt_config({"t": 1}, namespace="team-b"))
    default = store.register_inline_version(_prompt_config({"t": 1}))
    assert [(v.namespace, v.version) for v in (a, b, default)] == [("team-a", 1), ("team-b", 1), ("default", 1)]
    assert len({a.id, b.id, default.id}) == 3


def test_checkpoints_and_best_scores_are_per_namespace(store: Store) -> None:
    _run(store, "ra", namespace="team-a")
    _run(store, "rb", namespace="team-b")
    va = store.register_version(WF, {"system": "a"}, {}, namespace="team-a", source="checkpoint")
    vb = store.register_version(WF, {"system": "b"}, {}, namespace="team-b", source="checkpoint")
    store.add_checkpoint("ra", epoch=1, version=va, score=0.9, scores={})
    store.add_checkpoint("rb", epoch=1, version=vb, score=0.4, scores={})

    assert [c.run_id for c in store.list_checkpoints(workflow=WF, namespace="team-a")] == ["ra"]
    assert [c.run_id for c in store.list_checkpoints(workflow=WF, namespace="team-b")] == ["rb"]
    assert [c.namespace for c in store.list_checkpoints(namespace="team-b")] == ["team-b"]
    assert store.list_checkpoints(workflow=WF) == []  # a workflow without a namespace is default's
    best_b = store.best_checkpoint(workflow=WF, namespace="team-b")
    assert best_b is not None and (best_b.run_id, best_b.score, best_b.prompts) == ("rb", 0.4, {"system": "b"})
    assert store.best_checkpoint(workflow=WF) is None


def test_a_run_cannot_checkpoint_another_namespaces_version(store: Store) -> None:
    _run(store, "rb", namespace="team-b")
    va = store.register_version(WF, {"system": "team a's"}, {}, namespace="team-a")
    with pytest.raises(
        VersionNotFoundError, match="belongs to namespace 'team-a', not to the run's namespace 'team-b'"
    ):
        store.add_checkpoint("rb", epoch=1, version=va, score=1.0, scores={})
    assert store.list_checkpoints(run_id="rb") == []


@pytest.mark.parametrize("namespace", ["", "n" * 254], ids=["empty", "over-253"])
def test_register_version_rejects_a_bad_namespace(store: Store, namespace: str) -> None:
    with pytest.raises(InvalidValueError, match=r"namespace must be 1\.\.253 characters"):
        store.register_version(WF, {"s": "x"}, {}, namespace=namespace)


# -- deletion -------------------------------------------------------------------------------------


def test_deleting_a_run_cascades_but_keeps_versions(store: Store, store_url: str) -> None:
    """Deleting a run's row (SQL: the store has no delete method) takes its cases and checkpoints, not versions."""
    _run(store, "r1")
    _run(store, "r2")
    v1, v2 = _versions(store, 2)
    store.register_version(WF, {"system": "from r1"}, {}, source="checkpoint", source_run_id="r1")
    store.record_cases("r1", [_case(str(i)) for i in range(3)])
    store.record_cases("r2", [_case("x")])
    store.add_checkpoint("r1", epoch=0, version=v1, score=0.1, scores={})
    store.add_checkpoint("r1", epoch=1, version=v2, score=0.2, scores={})
    store.add_checkpoint("r2", epoch=0, version=v2, score=0.3, scores={})

    with store._engine.begin() as conn:  # the store's own pooled connections
        assert conn.execute(text("DELETE FROM agentensor_runs WHERE id = 'r1'")).rowcount == 1
    assert store.get_run("r1") is None
    assert store.list_cases("r1") == [] and store.list_checkpoints(run_id="r1") == []
    assert len(store.list_cases("r2")) == 1 and len(store.list_checkpoints(run_id="r2")) == 1
    versions = store.list_versions(WF)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[2].source_run_id == "r1"  # provenance survives, no FK
    assert _count(store_url, "agentensor_case_results") == 1


def test_foreign_keys_cascade_in_sql(store: Store, store_url: str) -> None:
    """ON DELETE CASCADE is enforced by the database itself (SQLite: foreign_keys pragma)."""
    _run(store)
    (v1,) = _versions(store, 1)
    store.record_cases("run-1", [_case("1")])
    store.add_checkpoint("run-1", epoch=0, version=v1, score=0.1, scores={})
    with store._engine.begin() as conn:  # the store's own pooled connections
        conn.execute(text("DELETE FROM agentensor_runs WHERE id = 'run-1'"))
    assert _count(store_url, "agentensor_case_results") == 0
    assert _count(store_url, "agentensor_checkpoints") == 0
    assert _count(store_url, "agentensor_prompt_versions") == 1


# -- plumbing -------------------------------------------------------------------------------------


def test_store_is_a_context_manager(store_url: str) -> None:
    with Store(store_url) as s:
        _run(s)
        assert s.get_run("run-1") is not None
        assert s.dialect in ("sqlite", "postgresql")
        assert repr(s) == f"Store(url={s.url!r})"


@pytest.mark.postgres
def test_a_store_dropped_unclosed_closes_its_connections(pg_session_url: str) -> None:
    """Its pooled connections are closed when it is collected, not left open for psycopg's
    ``__del__`` (a ResourceWarning) and the server (an idle backend per connection)."""
    import gc
    import warnings

    name = f"leak-check-{uuid.uuid4().hex[:8]}"
    url = make_url(pg_session_url).update_query_dict({"application_name": name}).render_as_string(False)

    def backends() -> int:
        return _scalar(pg_session_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n", n=name)

    dropped = Store(url)
    dropped.get_run("nobody")  # checks a connection out of the pool and back in
    assert backends() == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del dropped
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert backends() == 0


def test_url_with_password_reaches_the_same_database(store: Store, store_url: str) -> None:
    _run(store)
    assert store.url_with_password() == Store(store_url).url_with_password()
    with Store(store.url_with_password()) as again:
        assert again.get_run("run-1") is not None


def test_url_with_password_is_the_only_accessor_showing_it() -> None:
    with Store("postgresql://agent:hunter2-pw@127.0.0.1:5432/db") as s:
        assert "hunter2-pw" not in s.url and "hunter2-pw" not in repr(s)
        assert s.url_with_password() == "postgresql+psycopg://agent:hunter2-pw@127.0.0.1:5432/db"


def test_unsupported_urls() -> None:
    with pytest.raises(UnsupportedDatabaseError, match="mysql"):
        Store("mysql://user:hunter2-pw@localhost/db")
    with pytest.raises(UnsupportedDatabaseError) as info:
        Store("not a url hunter2-pw")
    assert "hunter2-pw" not in str(info.value)
    assert isinstance(info.value, StoreError)


def test_postgresql_url_defaults_to_psycopg() -> None:
    s = Store("postgresql://postgres@127.0.0.1:5432/db")
    try:
        assert s.url.startswith("postgresql+psycopg://")
        assert s.dialect == "postgresql"
    finally:
        s.close()


def test_default_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTENSOR_DATABASE_URL", raising=False)
    assert default_database_url() == f"sqlite:///{tmp_path / 'agentensor.db'}"
    monkeypatch.setenv("AGENTENSOR_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert default_database_url() == "postgresql+psycopg://u@h/db"
