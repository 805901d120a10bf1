"""resolve_path, EvalResult and aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from agentensor_runner.evaluators import (
    EvalResult,
    FieldNotFoundError,
    aggregate,
    resolve_path,
)


@dataclass
class State:
    intent: str
    extra: dict[str, Any]
    _secret: str = "hidden"


DOC = {"a": {"b": [{"c": 1}, {"c": 2}]}, "state": State("card", {"k": (10, 20)}), "n": None}

RESOLVES = [
    pytest.param(None, DOC, id="none-path"),
    pytest.param("", DOC, id="empty-path"),
    pytest.param("a.b.0.c", 1, id="dicts-and-list"),
    pytest.param("a.b.-1.c", 2, id="negative-index"),
    pytest.param("state.intent", "card", id="attribute"),
    pytest.param("state.extra.k.1", 20, id="attr-dict-tuple"),
    pytest.param("n", None, id="null-leaf"),
]


@pytest.mark.parametrize(("path", "value"), RESOLVES)
def test_resolve_path(path: str | None, value: Any) -> None:
    assert resolve_path(DOC, path) == value


def test_resolve_path_on_plain_objects() -> None:
    assert resolve_path(SimpleNamespace(x=SimpleNamespace(y=3)), "x.y") == 3


MISSING = [
    pytest.param("intent", "intent", "no key 'intent' at the top level (keys: 'a', 'n', 'state')", id="top-level-key"),
    pytest.param("a.x.c", "x", "no key 'x' under 'a' (keys: 'b')", id="nested-key"),
    pytest.param("a.b.5", "5", "index 5 is out of range under 'a.b' (a list of length 2)", id="index-out-of-range"),
    pytest.param("a.b.first", "first", "'first' is not a list index", id="non-integer-index"),
    pytest.param("n.x", "x", "the value under 'n' is null", id="through-null"),
    pytest.param("state.missing", "missing", "State under 'state' has no field 'missing'", id="missing-attribute"),
    pytest.param("state._secret", "_secret", "private attribute '_secret' is not readable", id="private-attribute"),
    pytest.param("state.intent.0", "0", "str under 'state.intent' has no field '0'", id="strings-are-not-indexed"),
]


@pytest.mark.parametrize(("path", "segment", "detail"), MISSING)
def test_resolve_path_missing(path: str, segment: str, detail: str) -> None:
    with pytest.raises(KeyError) as info:
        resolve_path(DOC, path)
    err = info.value
    assert isinstance(err, FieldNotFoundError)
    assert (err.path, err.segment) == (path, segment)
    assert detail in err.detail
    assert str(err) == f"path {path!r}: {err.detail}"  # no KeyError-style extra quoting


def test_resolve_path_lists_at_most_ten_keys() -> None:
    with pytest.raises(FieldNotFoundError, match=r"\.\.\. \(30 in all\)"):
        resolve_path({f"k{i:02d}": i for i in range(30)}, "x")


def test_resolve_path_malformed() -> None:
    with pytest.raises(ValueError, match="empty segment"):
        resolve_path(DOC, "a..b")


@pytest.mark.parametrize(
    "score",
    [
        pytest.param(-0.1, id="negative"),
        pytest.param(1.5, id="above-one"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_eval_result_rejects_scores_outside_unit_interval(score: float) -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        EvalResult(score, False, "x")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"score": 0.0, "passed": True, "outcome": "parseFailure"}, "must have score 0.0", id="passed"),
        pytest.param({"score": 0.5, "passed": False, "outcome": "parseFailure"}, "must have score 0.0", id="scored"),
        pytest.param({"score": 0.5, "passed": False, "outcome": "skipped"}, "outcome must be one of", id="unknown"),
    ],
)
def test_eval_result_rejects_inconsistent_outcomes(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EvalResult(reason="x", **kwargs)


def test_unscored_result_is_not_scored() -> None:
    assert EvalResult(0.0, False, "x", "parseFailure").scored is False
    assert EvalResult(0.0, False, "x").scored is True


def test_eval_result_is_frozen() -> None:
    r = EvalResult(1.0, True, "")
    with pytest.raises(AttributeError):
        r.score = 0.5  # type: ignore[misc]


AGGREGATES = [
    pytest.param([], {"mean": 0.0, "passRate": 0.0, "n": 0, "parseFailures": 0}, id="empty"),
    pytest.param([EvalResult(1.0, True, "")], {"mean": 1.0, "passRate": 1.0, "n": 1, "parseFailures": 0}, id="one"),
    pytest.param(
        [
            EvalResult(1.0, True, ""),
            EvalResult(0.5, False, "x"),
            EvalResult(0.0, False, "y"),
            EvalResult(0.7, True, ""),
        ],
        {"mean": pytest.approx(0.55), "passRate": 0.5, "n": 4, "parseFailures": 0},
        id="mixed",
    ),
    pytest.param(
        [EvalResult(0.9, True, ""), EvalResult(0.0, False, "judge reply did not parse", "parseFailure")],
        {"mean": 0.9, "passRate": 1.0, "n": 1, "parseFailures": 1},
        id="parse-failure-left-out",
    ),
    pytest.param(
        [EvalResult(0.0, False, "judge reply did not parse", "parseFailure")] * 2,
        {"mean": 0.0, "passRate": 0.0, "n": 0, "parseFailures": 2},
        id="only-parse-failures",
    ),
]


@pytest.mark.parametrize(("results", "expected"), AGGREGATES)
def test_aggregate(results: list[EvalResult], expected: dict[str, Any]) -> None:
    assert aggregate(results) == expected
