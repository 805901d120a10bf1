"""The same limits on SQLite and PostgreSQL, enforced where the data enters.

SQLite stores a string of any length in a ``VARCHAR(n)`` column; PostgreSQL refuses it, and a
case id over 255 characters once aborted a PostgreSQL run and left it ``Running`` while the same
run succeeded on SQLite. Each string column that data can reach has its limit checked at entry
(manifest validation, dataset loading, CLI options), and the tables below pin those limits to the
columns, so a column made narrower without its entry check fails here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String

from agentensor_api import EvaluationRun, ManifestError, PromptConfig, RunStatus, TrainingRun, parse_resource
from agentensor_api._resources import UID_MAX_CHARS
from agentensor_cli._common import RUN_ID_MAX_CHARS, VERSION_MAX
from agentensor_runner import execute
from agentensor_runner.data.datasets import MAX_CASE_ID_CHARS, storable_case_id
from agentensor_store import Store
from agentensor_store._models import (
    CaseResultModel,
    CheckpointModel,
    EvalCacheModel,
    PromptVersionModel,
    RunModel,
)

from .catalogue import _as_evaluation, base


def _length(column: Any) -> int:
    assert isinstance(column.type, String) and column.type.length is not None
    return int(column.type.length)


@pytest.mark.parametrize(
    ("column", "entry_limit"),
    [
        pytest.param(CaseResultModel.__table__.c.case_id, MAX_CASE_ID_CHARS, id="case_results.case_id"),
        pytest.param(EvalCacheModel.__table__.c.case_id, MAX_CASE_ID_CHARS, id="eval_cache.case_id"),
        pytest.param(RunModel.__table__.c.id, RUN_ID_MAX_CHARS, id="runs.id<-run-id"),
        pytest.param(RunModel.__table__.c.id, UID_MAX_CHARS, id="runs.id<-metadata.uid"),
        pytest.param(RunModel.__table__.c.namespace, 63, id="runs.namespace"),
        pytest.param(RunModel.__table__.c.name, 253, id="runs.name"),
        pytest.param(RunModel.__table__.c.workflow, 253, id="runs.workflow"),
        pytest.param(PromptVersionModel.__table__.c.workflow, 253, id="prompt_versions.workflow"),
    ],
)
def test_every_entry_check_fits_its_column(column: Any, entry_limit: int) -> None:
    assert entry_limit <= _length(column)


def test_version_numbers_are_bounded_by_the_integer_columns() -> None:
    for column in (PromptVersionModel.__table__.c.version, CheckpointModel.__table__.c.epoch):
        assert isinstance(column.type, Integer) and not column.type.__class__.__name__.startswith("Big")
    assert VERSION_MAX == 2**31 - 1  # PostgreSQL INTEGER


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        pytest.param({"name": "a", "namespace": "[/x]"}, "metadata.namespace", id="namespace-markup"),
        pytest.param({"name": "a", "namespace": "n" * 64}, "metadata.namespace", id="namespace-64"),
        pytest.param({"name": "a", "namespace": "Team"}, "metadata.namespace", id="namespace-upper"),
        pytest.param({"name": "a", "namespace": "a.b"}, "metadata.namespace", id="namespace-dot"),
        pytest.param({"name": "a", "namespace": ""}, "metadata.namespace", id="namespace-empty"),
        pytest.param({"name": "a..b"}, "metadata.name", id="name-empty-label"),
        pytest.param({"name": "a_b"}, "metadata.name", id="name-underscore"),
        pytest.param({"name": "a" * 254}, "metadata.name", id="name-254"),
        pytest.param({"name": "a", "uid": "u" * 65}, "metadata.uid", id="uid-65"),
    ],
)
def test_metadata_is_checked_as_the_api_server_does(metadata: dict[str, Any], field: str) -> None:
    pc, _ = base()
    with pytest.raises(ManifestError) as refused:
        parse_resource({**pc, "metadata": metadata})
    assert refused.value.field == field


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"name": "a", "namespace": "n" * 63}, id="namespace-63"),
        pytest.param({"name": "a.b-c", "namespace": "team-1"}, id="dotted-name"),
        pytest.param({"name": ".".join(["a" * 63] * 4)}, id="name-255-in-labels"),
    ],
)
def test_valid_metadata_is_accepted(metadata: dict[str, Any]) -> None:
    pc, _ = base()
    if len(metadata["name"]) > 253:
        with pytest.raises(ManifestError):
            parse_resource({**pc, "metadata": metadata})
        return
    assert isinstance(parse_resource({**pc, "metadata": metadata}), PromptConfig)


@pytest.mark.parametrize(
    ("case_id", "expected"),
    [
        pytest.param("c1", "c1", id="short"),
        pytest.param("x" * 255, "x" * 255, id="at-the-limit"),
    ],
)
def test_storable_case_id_keeps_ids_that_fit(case_id: str, expected: str) -> None:
    assert storable_case_id(case_id) == expected


def test_storable_case_id_shortens_distinct_ids_to_distinct_values() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert len(storable_case_id(a)) == MAX_CASE_ID_CHARS and storable_case_id(a) != storable_case_id(b)
    assert storable_case_id(a) == storable_case_id(a)


LONG_IDS = ["L" * 256, "L" * 10_000, "é" * 300]


def _with_long_ids(docs: tuple[dict[str, Any], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pc, run = docs
    for r, long_id in zip(run["spec"]["dataset"]["inline"], LONG_IDS, strict=False):
        r["id"] = long_id
    return pc, run


def _execute(store: Store, docs: tuple[dict[str, Any], dict[str, Any]], run_id: str) -> RunStatus:
    pc, run = parse_resource(docs[0]), parse_resource(docs[1])
    assert isinstance(pc, PromptConfig) and isinstance(run, TrainingRun | EvaluationRun)
    return asyncio.run(execute(run, pc, store, base_dir=Path("."), run_id=run_id))


@pytest.mark.parametrize("kind", ["EvaluationRun", "TrainingRun"])
def test_long_case_ids_are_error_rows_on_both_backends(kind: str, store: Store) -> None:
    docs = _with_long_ids(_as_evaluation(base()) if kind == "EvaluationRun" else base())
    n_rows = len(docs[1]["spec"]["dataset"]["inline"])
    status = _execute(store, docs, f"long-ids-{kind.lower()}")
    assert status.phase == "Succeeded", status.message
    record = store.get_run(f"long-ids-{kind.lower()}")
    assert record is not None and record.phase == "Succeeded"
    rows = store.list_cases(f"long-ids-{kind.lower()}")
    errors = {r.case_id: r.error or "" for r in rows if r.error}
    assert set(errors) == {storable_case_id(i) for i in LONG_IDS}, sorted(errors)
    assert all("more than the 255 a case id may hold" in e for e in errors.values())
    assert all(len(r.case_id) <= MAX_CASE_ID_CHARS for r in rows)
    if kind == "EvaluationRun":
        assert len(rows) == n_rows  # nothing is lost: every row is recorded, scored or as an error
