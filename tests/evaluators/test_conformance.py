"""One conformance suite run against every evaluator type.

Every type must: build from a manifest entry, pass its passing example and fail its failing
example with a reason, keep ``score`` in [0, 1] and ``passed == (score >= threshold)``,
resolve ``outputField`` (a missing field is a scored failure, not an exception), reject an
unknown option naming the field, and never raise on odd outputs.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentensor_api import ManifestError
from agentensor_api._common import EVALUATOR_TYPES
from agentensor_runner.evaluators import EvalResult, Evaluator, EvaluatorConfigError

from ._support import SCORERS, make


@dataclass(frozen=True)
class Example:
    output: Any
    expected: Any
    input: Any = "case input"


@dataclass(frozen=True)
class Conformance:
    options: dict[str, Any]
    passing: Example
    failing: Example
    needs_expected: bool
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CONFORMANCE: dict[str, Conformance] = {
    "exact_match": Conformance(
        {},
        Example("card_arrival", "card_arrival"),
        Example("card_linking", "card_arrival"),
        needs_expected=True,
    ),
    "contains": Conformance(
        {"ignoreCase": True},
        Example("Your Card Arrives on Monday", "card arrives"),
        Example("No idea, sorry", "card arrives"),
        needs_expected=True,
    ),
    "regex": Conformance(
        {"pattern": r"^\d{4}-\d{2}-\d{2}$"},
        Example("2024-05-01", None),
        Example("May 1st", None),
        needs_expected=False,
    ),
    "json_schema": Conformance(
        {
            "schema": {
                "type": "object",
                "required": ["intent"],
                "properties": {"intent": {"type": "string"}},
            }
        },
        Example('{"intent": "card_arrival"}', None),
        Example('{"intent": 3}', None),
        needs_expected=False,
    ),
    "numeric": Conformance(
        {"tolerance": 0.5},
        Example("41.7", 42),
        Example("40", 42),
        needs_expected=True,
    ),
    "embedding_similarity": Conformance(
        {},
        Example("My card has not arrived yet", "my card has NOT arrived yet!"),
        Example("how do I reset my password", "card delivery is late"),
        needs_expected=True,
        threshold=0.8,
    ),
    "python": Conformance(
        {"entrypoint": f"{SCORERS}:exact"},
        Example("card_arrival", "card_arrival"),
        Example("card_linking", "card_arrival"),
        needs_expected=False,
    ),
    "llm_judge": Conformance(  # judged by tests.llm.fakes.ExactJudgeModel
        {"rubric": "The output names the same intent as the reference."},
        Example("card_arrival", "card_arrival"),
        Example("card_linking", "card_arrival"),
        needs_expected=False,
    ),
}

TYPES = [pytest.param(t, id=t) for t in CONFORMANCE]


def build(type: str, **kw: Any) -> Evaluator:
    c = CONFORMANCE[type]
    kw.setdefault("threshold", c.threshold)
    return make(type, c.options, **kw)


@functools.cache
def cached(type: str) -> Evaluator:
    """One evaluator per type for the hypothesis tests (no function-scoped fixtures there)."""
    return build(type)


def check_invariants(ev: Evaluator, r: EvalResult) -> None:
    assert isinstance(r, EvalResult)
    assert isinstance(r.score, float)
    assert 0.0 <= r.score <= 1.0
    assert isinstance(r.reason, str)
    if ev.spec.type != "python":  # only python evaluators may decide `passed` themselves
        assert r.passed == (r.score >= ev.spec.threshold)
    if not r.passed:
        assert r.reason.strip(), "a failing result must say why"


def test_every_type_has_a_conformance_entry() -> None:
    assert set(CONFORMANCE) == set(EVALUATOR_TYPES)


@pytest.mark.parametrize("type", TYPES)
def test_builds_an_evaluator(type: str) -> None:
    ev = build(type)
    assert isinstance(ev, Evaluator)
    assert ev.name == "score"
    assert ev.spec.type == type


@pytest.mark.parametrize("type", TYPES)
async def test_passing_example(type: str) -> None:
    ev = build(type)
    ex = CONFORMANCE[type].passing
    r = await ev.evaluate(input=ex.input, output=ex.output, expected=ex.expected)
    check_invariants(ev, r)
    assert r.passed, r.reason
    assert r.score >= ev.spec.threshold


@pytest.mark.parametrize("type", TYPES)
async def test_failing_example(type: str) -> None:
    ev = build(type)
    ex = CONFORMANCE[type].failing
    r = await ev.evaluate(input=ex.input, output=ex.output, expected=ex.expected)
    check_invariants(ev, r)
    assert not r.passed
    assert r.score < ev.spec.threshold
    assert r.reason


@pytest.mark.parametrize("type", TYPES)
async def test_threshold_zero_passes_the_failing_example(type: str) -> None:
    ev = build(type, threshold=0.0)
    ex = CONFORMANCE[type].failing
    r = await ev.evaluate(input=ex.input, output=ex.output, expected=ex.expected)
    check_invariants(ev, r)
    assert r.passed


@pytest.mark.parametrize("type", TYPES)
async def test_output_field_is_resolved(type: str) -> None:
    ev = build(type, output_field="result.answers.0")
    ex = CONFORMANCE[type].passing
    output = {"result": {"answers": [ex.output, "ignored"]}, "trace": [1, 2, 3]}
    r = await ev.evaluate(input=ex.input, output=output, expected=ex.expected)
    assert r.passed, r.reason


@pytest.mark.parametrize("type", TYPES)
async def test_missing_output_field_is_a_scored_failure(type: str) -> None:
    ev = build(type, output_field="intent")
    ex = CONFORMANCE[type].passing
    r = await ev.evaluate(input=ex.input, output={"label": ex.output}, expected=ex.expected)
    assert r == EvalResult(0.0, False, r.reason)
    assert r.reason.startswith("output has no field 'intent'")
    assert "'label'" in r.reason  # the keys that do exist


@pytest.mark.parametrize("type", TYPES)
async def test_missing_expected(type: str) -> None:
    ev = build(type)
    ex = CONFORMANCE[type].passing
    r = await ev.evaluate(input=ex.input, output=ex.output, expected=None)
    check_invariants(ev, r)
    if CONFORMANCE[type].needs_expected:
        assert (r.score, r.passed) == (0.0, False)
        assert "no expected value" in r.reason


@pytest.mark.parametrize("type", TYPES)
def test_unknown_option_names_the_field(type: str) -> None:
    options = {**CONFORMANCE[type].options, "bogus": 1}
    with pytest.raises(EvaluatorConfigError) as info:
        make(type, options, index=3)
    assert isinstance(info.value, ManifestError)
    assert info.value.field == "spec.evaluators[3].options.bogus"
    assert "unknown option" in info.value.reason


class Hostile:
    """An output whose every dunder used for rendering or comparison raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize("type", TYPES)
async def test_hostile_output_does_not_raise(type: str) -> None:
    ev = build(type)
    ex = CONFORMANCE[type].passing
    r = await ev.evaluate(input=ex.input, output=Hostile(), expected=ex.expected)
    check_invariants(ev, r)
    assert not r.passed


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40) | st.binary(max_size=8)
odd_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4) | st.tuples(inner, inner)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("type", TYPES)
@settings(max_examples=60, deadline=None)
@given(output=odd_values, expected=odd_values, input=odd_values)
def test_never_raises_on_odd_values(type: str, output: Any, expected: Any, input: Any) -> None:
    ev = cached(type)
    r = asyncio.run(ev.evaluate(input=input, output=output, expected=expected))
    check_invariants(ev, r)
