"""Scorers loaded by ``python`` evaluator tests as ``tests.evaluators.sample_scorers:<fn>``."""

from __future__ import annotations

import asyncio
from typing import Any

from agentensor_runner.evaluators import EvalResult

NOT_CALLABLE = 42


def exact(*, input: Any, output: Any, expected: Any) -> bool:
    """True iff output == expected (never raises on odd values)."""
    try:
        return bool(output == expected)
    except Exception:
        return False


async def async_exact(*, input: Any, output: Any, expected: Any) -> bool:
    await asyncio.sleep(0)
    return exact(input=input, output=output, expected=expected)


def length_ratio(*, input: Any, output: Any, expected: Any) -> float:
    """len(output) / len(expected) as a raw number (may exceed 1: the evaluator clamps)."""
    return len(str(output)) / max(1, len(str(expected)))


def graded(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    """A mapping result with a reason."""
    score = 1.0 if output == expected else 0.25
    return {"score": score, "reason": f"compared {output!r} with {expected!r}"}


def vetoes(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    """High score but an explicit failure."""
    return {"score": 0.9, "passed": False}


def echo_input(*, input: Any, output: Any, expected: Any) -> dict[str, Any]:
    """Passes when output equals input["text"] upper-cased (checks input is passed)."""
    return {"score": float(output == str(input["text"]).upper())}


def returns_text(*, input: Any, output: Any, expected: Any) -> str:
    return "great"


def returns_nan(*, input: Any, output: Any, expected: Any) -> float:
    return float("nan")


def returns_result(*, input: Any, output: Any, expected: Any) -> EvalResult:
    return EvalResult(0.5, False, "half right")


def raises(*, input: Any, output: Any, expected: Any) -> bool:
    raise TypeError("cannot compare apples to oranges")


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


def raises_unprintable(*, input: Any, output: Any, expected: Any) -> bool:
    raise UnprintableError


def wrong_signature(text: str) -> bool:
    return bool(text)
