"""Migration 0003 on SQLite and PostgreSQL: case reasons/usage, stop requests, the evaluation and LLM caches."""

from __future__ import annotations

import math

import pytest

from agentensor_store import CaseRow, EvalCacheEntry, InvalidValueError, RunNotFoundError, Store


def _run(store: Store, run_id: str = "run-1") -> None:
    store.create_run(
        run_id=run_id, kind="TrainingRun", namespace="default", name="tr-1", workflow="wf", spec={"epochs": 1}
    )


def test_case_rows_keep_reasons_and_usage(store: Store) -> None:
    _run(store)
    usage = {"inputTokens": 12, "outputTokens": 30, "calls": 2, "costUSD": 0.0004, "parseFailures": {"judge": 1}}
    store.record_cases(
        "run-1",
        [
            CaseRow(stage="eval", case_id="a", thread_id="t-a", input="x", reasons={"judge": "too long"}, usage=usage),
            CaseRow(stage="eval", case_id="b", thread_id="t-b", input="y"),
        ],
    )
    a, b = store.list_cases("run-1")
    assert (a.reasons, a.usage) == ({"judge": "too long"}, usage)
    assert (b.reasons, b.usage) == (None, None)
    # An upsert of the same key replaces both.
    store.record_cases("run-1", [CaseRow(stage="eval", case_id="a", thread_id="t-a", input="x")])
    assert store.list_cases("run-1")[0].reasons is None


def test_case_usage_must_be_json(store: Store) -> None:
    _run(store)
    with pytest.raises(InvalidValueError, match="usage"):
        store.record_cases(
            "run-1", [CaseRow(stage="eval", case_id="a", thread_id="t", input="x", usage={"costUSD": math.nan})]
        )


def test_stop_request_is_recorded_once(store: Store) -> None:
    _run(store)
    assert store.stop_requested("run-1") is None
    assert store.request_stop("run-1") is True
    first = store.stop_requested("run-1")
    assert first is not None and first.tzinfo is not None
    assert store.request_stop("run-1") is False
    assert store.stop_requested("run-1") == first
    assert store.stop_requested("no-such-run") is None
    with pytest.raises(RunNotFoundError):
        store.request_stop("no-such-run")


def test_eval_cache_keeps_the_first_result(store: Store) -> None:
    entries = [EvalCacheEntry(f"k{i}", "cfg", "ds", f"case-{i}", {"scores": {"exact": i / 10}}) for i in range(1200)]
    store.cache_results(entries)
    store.cache_results([EvalCacheEntry("k1", "cfg", "ds", "case-1", {"scores": {"exact": 0.99}})])
    got = store.cached_results([f"k{i}" for i in range(1200)] + ["missing", "k1"])
    assert len(got) == 1200
    assert got["k1"] == {"scores": {"exact": 0.1}}
    assert got["k1199"] == {"scores": {"exact": 119.9}}
    assert store.cached_results([]) == {}


def test_llm_responses_round_trip(store: Store) -> None:
    assert store.llm_response("key") is None
    store.put_llm_response("key", [{"text": "hello", "message": {"type": "ai"}}])
    store.put_llm_response("key", [{"text": "again"}])
    assert store.llm_response("key") == [{"text": "again"}]
    assert store.clear_llm_responses() == 1
    assert store.llm_response("key") is None


def test_iter_cases_pages_in_recording_order(store: Store) -> None:
    _run(store)
    store.record_cases("run-1", [CaseRow(stage="s", case_id=f"c{i:03d}", thread_id="t", input=i) for i in range(25)])
    store.record_cases("run-1", [CaseRow(stage="other", case_id="x", thread_id="t", input=0)])
    got = list(store.iter_cases("run-1", stage="s", batch_size=7))
    assert [r.case_id for r in got] == [f"c{i:03d}" for i in range(25)]
    assert [r.case_id for r in store.iter_cases("run-1", batch_size=25)][-1] == "x"
    assert list(store.iter_cases("no-such-run")) == []
    with pytest.raises(ValueError, match="batch_size"):
        list(store.iter_cases("run-1", batch_size=0))
