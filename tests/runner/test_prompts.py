"""TextTensor interpolation: whole-value, mixed strings, .text, missing paths, the tape."""

from __future__ import annotations

from typing import Any

import pytest

from agentensor_runner import PromptSet, TextTensor, interpolate
from agentensor_runner.prompts import start_tape, stop_tape

PS = PromptSet(
    {"intent.a": "alpha", "intent.b": "beta", "sys": "be brief"},
    frozenset({"intent.a", "intent.b"}),
    {"temperature": 0.2, "nested": {"k": [1, 2]}},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{{prompts.sys}}", "be brief", id="whole-value-tensor"),
        pytest.param("{{prompts.sys.text}}", "be brief", id="whole-value-text"),
        pytest.param("System: {{prompts.sys}} (t={{parameters.temperature}})", "System: be brief (t=0.2)", id="mixed"),
        pytest.param("{{ parameters.nested.k.1 }}", 2, id="list-index-spaces"),
        pytest.param({"a": ["{{prompts.intent.a.text}}", 3]}, {"a": ["alpha", 3]}, id="nested-containers"),
        pytest.param("no placeholders", "no placeholders", id="plain"),
    ],
)
def test_interpolate(template: Any, expected: Any) -> None:
    out = interpolate(template, PS.configurable())
    if isinstance(out, TextTensor):
        out = out.text
    assert out == expected


def test_whole_value_returns_mapping_of_tensors() -> None:
    out = interpolate("{{prompts.intent}}", PS.configurable())
    assert set(out) == {"a", "b"}
    assert all(isinstance(t, TextTensor) for t in out.values())
    assert out["a"].requires_grad and not PS.tensors()["sys"].requires_grad


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param("{{prompts.nope}}", "prompts has no 'nope'", id="missing"),
        pytest.param("{{prompts.sys.foo}}", "only .text can follow", id="after-tensor"),
    ],
)
def test_missing_path_is_named(template: str, message: str) -> None:
    with pytest.raises(KeyError, match=message):
        interpolate(template, PS.configurable())


def test_tape_records_reads() -> None:
    ctx = PS.configurable()
    tape, token = start_tape()
    try:
        interpolate("x {{prompts.intent.a}} y", ctx)
    finally:
        stop_tape(token)
    assert tape.used == {"intent.a"}


def test_requires_grad_false_is_fixed() -> None:
    with pytest.raises(ValueError, match="requiresGrad: false"):
        PS.with_texts({"sys": "changed"})
    new = PS.with_texts({"intent.a": "alpha\nmore"})
    assert new.texts["intent.a"] == "alpha\nmore" and PS.texts["intent.a"] == "alpha"
    assert new.checksum() != PS.checksum()
