"""Table-driven tests of each evaluator type's specific behaviour."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from agentensor_runner.evaluators import EvalResult
from agentensor_runner.llm import HashingEmbedder, Vector

from ._support import SCORERS, make

# (options, output, expected, passed, reason fragment or "" for a pass)
EXACT_MATCH = [
    pytest.param({}, "card_arrival", "card_arrival", True, "", id="same-text"),
    pytest.param(
        {}, "card_linking", "card_arrival", False, "expected 'card_arrival', got 'card_linking'", id="reason-names-both"
    ),
    pytest.param({}, "  card_arrival\n", "card_arrival", True, "", id="strips-by-default"),
    pytest.param({"strip": False}, " card_arrival", "card_arrival", False, "got ' card_arrival'", id="strip-off"),
    pytest.param({}, "Card_Arrival", "card_arrival", False, "expected", id="case-sensitive"),
    pytest.param({"ignoreCase": True}, "Card_Arrival", "card_arrival", True, "", id="ignore-case"),
    pytest.param({}, 3, "3", True, "", id="int-vs-csv-text"),
    pytest.param({}, 1.0, 1, True, "", id="equal-numbers"),
    pytest.param({}, True, 1, False, "expected", id="bool-is-not-number"),
    pytest.param({}, True, "true", True, "", id="bool-renders-as-json"),
    pytest.param({}, {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True, "", id="equal-dicts"),
    pytest.param({}, {"a": 1}, {"a": 2}, False, "expected '{\"a\":2}'", id="different-dicts"),
    pytest.param({}, "x" * 500, "y", False, "...", id="long-output-shortened"),
]


@pytest.mark.parametrize(("options", "output", "expected", "passed", "reason"), EXACT_MATCH)
async def test_exact_match(options: dict[str, Any], output: Any, expected: Any, passed: bool, reason: str) -> None:
    r = await make("exact_match", options).evaluate(input=None, output=output, expected=expected)
    assert r.passed is passed
    assert r.score == (1.0 if passed else 0.0)
    assert reason in r.reason
    assert len(r.reason) < 400
    if passed:
        assert r.reason == ""


async def test_exact_match_reason_text() -> None:
    r = await make("exact_match").evaluate(input=None, output="card_linking", expected="card_arrival")
    assert r == EvalResult(0.0, False, "expected 'card_arrival', got 'card_linking'")


CONTAINS = [
    pytest.param({}, "your card arrives Monday", "card arrives", True, "", id="contains"),
    pytest.param(
        {},
        "no idea",
        "card arrives",
        False,
        "expected the output to contain 'card arrives', got 'no idea'",
        id="missing",
    ),
    pytest.param({}, "Card Arrives", "card arrives", False, "contain", id="case-sensitive"),
    pytest.param({"ignoreCase": True}, "CARD ARRIVES", "card arrives", True, "", id="ignore-case"),
    pytest.param({"substring": "refund"}, "we issued a refund", None, True, "", id="substring-without-expected"),
    pytest.param(
        {"substring": "refund"}, "we issued a refund", "something else", True, "", id="substring-overrides-expected"
    ),
    pytest.param({"substring": "refund"}, "no money back", "no money", False, "'refund'", id="substring-missing"),
    pytest.param({}, {"answer": "card arrives soon"}, "card arrives", True, "", id="dict-output-as-json-text"),
]


@pytest.mark.parametrize(("options", "output", "expected", "passed", "reason"), CONTAINS)
async def test_contains(options: dict[str, Any], output: Any, expected: Any, passed: bool, reason: str) -> None:
    r = await make("contains", options).evaluate(input=None, output=output, expected=expected)
    assert (r.passed, r.score) == (passed, 1.0 if passed else 0.0)
    assert reason in r.reason


REGEX = [
    pytest.param({"pattern": r"\d+"}, "order 123 shipped", True, "", id="search-anywhere"),
    pytest.param(
        {"pattern": r"\d+", "fullmatch": True},
        "order 123",
        False,
        r"output 'order 123' does not fully match the pattern '\\d+'",
        id="fullmatch",
    ),
    pytest.param({"pattern": r"\d+", "fullmatch": True}, "123", True, "", id="fullmatch-ok"),
    pytest.param({"pattern": "^yes$"}, "YES", False, "does not match", id="case-sensitive"),
    pytest.param({"pattern": "^yes$", "ignoreCase": True}, "YES", True, "", id="ignore-case"),
    pytest.param({"pattern": r"^\d{4}$"}, 2024, True, "", id="int-output"),
    pytest.param({"pattern": "^$"}, None, True, "", id="none-is-empty-text"),
]


@pytest.mark.parametrize(("options", "output", "passed", "reason"), REGEX)
async def test_regex(options: dict[str, Any], output: Any, passed: bool, reason: str) -> None:
    r = await make("regex", options).evaluate(input=None, output=output, expected="unused")
    assert (r.passed, r.score) == (passed, 1.0 if passed else 0.0)
    assert reason in r.reason


SCHEMA = {
    "type": "object",
    "required": ["intent", "items"],
    "properties": {
        "intent": {"type": "string"},
        "items": {"type": "array", "items": {"type": "integer"}},
        "email": {"type": "string", "format": "email"},
    },
}


class Answer(BaseModel):
    intent: str
    items: list[int]


JSON_SCHEMA = [
    pytest.param({}, {"intent": "a", "items": [1, 2]}, True, "", id="dict"),
    pytest.param({}, '{"intent": "a", "items": []}', True, "", id="json-text"),
    pytest.param({}, b'{"intent": "a", "items": []}', True, "", id="json-bytes"),
    pytest.param({}, '```json\n{"intent": "a", "items": []}\n```', True, "", id="code-fence"),
    pytest.param(
        {"stripCodeFence": False},
        '```json\n{"intent": "a", "items": []}\n```',
        False,
        "output is not valid JSON",
        id="code-fence-off",
    ),
    pytest.param({}, "intent: a", False, "output is not valid JSON", id="not-json"),
    pytest.param(
        {},
        {"intent": "a"},
        False,
        "output does not match the schema at $: 'items' is a required property",
        id="missing-required",
    ),
    pytest.param(
        {},
        {"intent": "a", "items": [1, "two"]},
        False,
        "at $.items[1]: 'two' is not of type 'integer'",
        id="nested-path",
    ),
    pytest.param({}, {"intent": 1, "items": ["x"]}, False, "(and 1 more error(s))", id="counts-errors"),
    pytest.param({}, Answer(intent="a", items=[1]), True, "", id="pydantic-model"),
    pytest.param({}, {"intent": "a", "items": [], "email": "nope"}, True, "", id="formats-not-checked-by-default"),
    pytest.param(
        {"checkFormats": True}, {"intent": "a", "items": [], "email": "nope"}, False, "$.email", id="check-formats"
    ),
    pytest.param({}, [1, 2], False, "is not of type 'object'", id="wrong-top-level-type"),
]


@pytest.mark.parametrize(("options", "output", "passed", "reason"), JSON_SCHEMA)
async def test_json_schema(options: dict[str, Any], output: Any, passed: bool, reason: str) -> None:
    ev = make("json_schema", {"schema": SCHEMA, **options})
    r = await ev.evaluate(input=None, output=output, expected=None)
    assert (r.passed, r.score) == (passed, 1.0 if passed else 0.0)
    assert reason in r.reason


NUMERIC = [
    pytest.param({}, 42, 42, True, "", id="equal-ints"),
    pytest.param({}, "42", 42, True, "", id="parses-output-text"),
    pytest.param({}, 42.0, "42", True, "", id="parses-expected-text"),
    pytest.param({}, " 1e3 ", 1000, True, "", id="scientific"),
    pytest.param({}, "$1,234.50", 1234.5, True, "", id="currency-and-thousands"),
    pytest.param({}, "The answer is 7.", 7, True, "", id="single-number-in-text"),
    pytest.param({}, "3 apples and 4 pears", 7, False, "2 numbers in", id="ambiguous-text"),
    pytest.param({}, "no idea", 7, False, "the output is not a number: no number in", id="no-number"),
    pytest.param({}, True, 1, False, "is a boolean", id="bool-refused"),
    pytest.param({}, 41, 42, False, "expected 42, got 41 (off by 1)", id="exact-by-default"),
    pytest.param({"tolerance": 0.5}, 41.6, 42, True, "", id="abs-tolerance"),
    pytest.param(
        {"tolerance": 0.5}, 40, 42, False, "expected 42 ± 0.5, got 40 (off by 2)", id="abs-tolerance-exceeded"
    ),
    pytest.param({"relativeTolerance": 0.01}, 1009, 1000, True, "", id="rel-tolerance"),
    pytest.param({"relativeTolerance": 0.01}, 1011, 1000, False, "± 10", id="rel-exceeded"),
    pytest.param({"tolerance": 20, "relativeTolerance": 0.01}, 1015, 1000, True, "", id="larger-of-both"),
    pytest.param({}, "nan", "nan", False, "NaN never matches", id="nan"),
    pytest.param({}, "inf", float("inf"), True, "", id="same-infinity"),
    pytest.param({"tolerance": 1e9}, "-inf", float("inf"), False, "expected inf", id="other-infinity"),
    pytest.param({}, 10**400, 1, False, "not a number", id="overflow"),
    pytest.param({}, 5, "five", False, "expected value is not a number", id="bad-expected"),
    pytest.param({}, [5], 5, False, "a list is not a number", id="list-output"),
]


@pytest.mark.parametrize(("options", "output", "expected", "passed", "reason"), NUMERIC)
async def test_numeric(options: dict[str, Any], output: Any, expected: Any, passed: bool, reason: str) -> None:
    r = await make("numeric", options).evaluate(input=None, output=output, expected=expected)
    assert (r.passed, r.score) == (passed, 1.0 if passed else 0.0)
    assert reason in r.reason


class CountingEmbedder:
    """Wraps HashingEmbedder and records every call."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.dim = self.inner.dim
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> Vector:
        self.calls.append(list(texts))
        return self.inner.embed(texts)


class BrokenEmbedder:
    dim = 4

    def __init__(self, result: Vector | Exception) -> None:
        self.result = result

    def embed(self, texts: Sequence[str]) -> Vector:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


EMBEDDING = [
    pytest.param("card delivery is late", "card delivery is late", 1.0, 1.0, id="identical"),
    pytest.param("Card delivery, is LATE!", "card delivery is late", 1.0, 1.0, id="same-tokens"),
    pytest.param("my card delivery is late again", "card delivery is late", 0.5, 0.99, id="partial-overlap"),
    pytest.param("reset my password", "card delivery is late", 0.0, 0.3, id="unrelated"),
    pytest.param("", "card delivery is late", 0.0, 0.0, id="empty-output"),
]


@pytest.mark.parametrize(("output", "expected", "low", "high"), EMBEDDING)
async def test_embedding_similarity(output: str, expected: str, low: float, high: float) -> None:
    ev = make("embedding_similarity", threshold=0.8)
    r = await ev.evaluate(input=None, output=output, expected=expected)
    assert low <= r.score <= high
    assert r.passed == (r.score >= 0.8)
    if not r.passed:
        assert r.reason.startswith("similarity ")
        assert "below the threshold 0.8" in r.reason
        assert repr(expected) in r.reason


async def test_embedding_similarity_is_cosine_of_one_batched_call() -> None:
    emb = CountingEmbedder()
    ev = make("embedding_similarity", threshold=0.5, embedder=emb)
    r = await ev.evaluate(input=None, output="my card is late", expected="the card is late")
    assert emb.calls == [["my card is late", "the card is late"]]
    a, b = HashingEmbedder().embed(["my card is late", "the card is late"])
    assert r.score == pytest.approx(max(0.0, float(np.dot(a, b))), abs=1e-6)


async def test_embedding_identical_texts_skip_the_model() -> None:
    emb = CountingEmbedder()
    r = await make("embedding_similarity", embedder=emb).evaluate(input=None, output="same", expected="same")
    assert r == EvalResult(1.0, True, "")
    assert emb.calls == []


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        pytest.param(
            RuntimeError("model exploded"), "evaluator raised RuntimeError: model exploded", id="embedder-raises"
        ),
        pytest.param(
            np.zeros((3, 4), dtype=np.float32),
            "evaluator raised ValueError: embedder returned shape (3, 4)",
            id="wrong-shape",
        ),
    ],
)
async def test_embedding_embedder_failures_are_scored(result: Any, reason: str) -> None:
    ev = make("embedding_similarity", embedder=BrokenEmbedder(result))
    r = await ev.evaluate(input=None, output="a", expected="b")
    assert (r.score, r.passed) == (0.0, False)
    assert r.reason.startswith(reason)


# (function, threshold, input, output, expected, score, passed, reason fragment)
PYTHON = [
    pytest.param("exact", None, None, "a", "a", 1.0, True, "", id="bool-true"),
    pytest.param("exact", None, None, "a", "b", 0.0, False, "returned False", id="bool-false"),
    pytest.param("async_exact", None, None, "a", "a", 1.0, True, "", id="async-function"),
    pytest.param("length_ratio", None, None, "abcd", "ab", 1.0, True, "", id="clamped-above"),
    pytest.param("length_ratio", 0.5, None, "ab", "abcd", 0.5, True, "", id="number-threshold"),
    pytest.param(
        "length_ratio",
        None,
        None,
        "ab",
        "abcd",
        0.5,
        False,
        "score 0.5 is below the threshold 1",
        id="number-below-threshold",
    ),
    pytest.param("graded", None, None, "x", "x", 1.0, True, "compared 'x' with 'x'", id="reason-kept-on-pass"),
    pytest.param("graded", None, None, "x", "y", 0.25, False, "compared 'x' with 'y'", id="mapping-reason"),
    pytest.param("vetoes", 0.5, None, "x", "y", 0.9, False, "returned passed=false", id="explicit-passed-wins"),
    pytest.param("echo_input", None, {"text": "hi"}, "HI", None, 1.0, True, "", id="input-is-passed"),
    pytest.param(
        "returns_text",
        None,
        None,
        "x",
        "x",
        0.0,
        False,
        "returned str; expected a bool, a number in [0, 1], or a mapping",
        id="unsupported-return",
    ),
    pytest.param("returns_nan", None, None, "x", "x", 0.0, False, "returned NaN", id="nan"),
    pytest.param("returns_result", 0.4, None, "x", "x", 0.5, False, "half right", id="eval-result-passthrough"),
    pytest.param(
        "raises",
        None,
        None,
        "x",
        "x",
        0.0,
        False,
        "evaluator raised TypeError: cannot compare apples to oranges",
        id="raises",
    ),
    pytest.param(
        "raises_unprintable",
        None,
        None,
        "x",
        "x",
        0.0,
        False,
        "evaluator raised UnprintableError: <unprintable exception>",
        id="raises-unprintable",
    ),
]


@pytest.mark.parametrize(("fn", "threshold", "input", "output", "expected", "score", "passed", "reason"), PYTHON)
async def test_python(
    fn: str,
    threshold: float | None,
    input: Any,
    output: Any,
    expected: Any,
    score: float,
    passed: bool,
    reason: str,
) -> None:
    ev = make("python", {"entrypoint": f"{SCORERS}:{fn}"}, threshold=threshold)
    r = await ev.evaluate(input=input, output=output, expected=expected)
    assert r.score == pytest.approx(score)
    assert r.passed is passed
    assert reason in r.reason
