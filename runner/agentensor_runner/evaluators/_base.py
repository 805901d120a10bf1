"""Shared machinery: output-field resolution, error capture, threshold, text rendering."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agentensor_api import EvaluatorSpec

from ._paths import FieldNotFoundError, resolve_path
from ._result import EvalResult

_PREVIEW_CHARS = 120
_ERROR_CHARS = 500

NO_EXPECTED = "no expected value for this case (check dataset.expectedField or this evaluator's expectedField)"


def as_text(value: Any) -> str:
    """Render an output or expected value as text for string comparison.

    ``str`` as is; ``bytes`` decoded as UTF-8; ``None`` -> ``""``; booleans -> ``"true"`` /
    ``"false"`` (JSON); numbers -> ``str()``; dicts/lists/tuples -> compact JSON with sorted
    keys (falling back to ``str()``); anything else -> ``str()``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        try:
            return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return str(value)
    return str(value)


def preview(value: Any, limit: int = _PREVIEW_CHARS) -> str:
    """``repr`` of the value's text, shortened to about ``limit`` characters."""
    text = as_text(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def jsonish(value: Any) -> Any:
    """Pydantic models and dataclass instances as plain dicts; anything else unchanged."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


@dataclass(frozen=True, slots=True)
class Score:
    """What a concrete evaluator computes; :class:`BaseEvaluator` turns it into an EvalResult.

    ``score`` may be any float (clamped to [0, 1]; NaN -> 0); ``reason`` explains a failure;
    ``passed`` overrides the threshold rule when not ``None``; ``unscored`` makes the result a
    ``parseFailure`` (score 0, not passed, left out of means), keeping ``reason`` as given.
    """

    score: float
    reason: str = ""
    passed: bool | None = None
    unscored: bool = False


class BaseEvaluator:
    """Template for the built-in evaluators.

    :meth:`evaluate` resolves ``spec.outputField``, checks ``expected`` when the type needs
    it, calls :meth:`score` and turns any exception into a failed result.
    """

    type: ClassVar[str] = ""
    keeps_reason_on_pass: ClassVar[bool] = False
    """If False, ``reason`` is blanked for passing cases."""

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        self.name: str = spec.name
        self.spec: EvaluatorSpec = spec
        self.index = index
        """Position in ``spec.evaluators`` (used in error messages)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} threshold={self.spec.threshold:g}>"

    def needs_expected(self) -> bool:
        """Whether a case without an expected value scores 0 without calling :meth:`score`."""
        return True

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        """Compute the raw score of the (already resolved) output. May raise."""
        raise NotImplementedError

    async def evaluate(self, *, input: Any, output: Any, expected: Any) -> EvalResult:
        """Score one case; see :class:`Evaluator`. Never raises ``Exception``."""
        try:
            value = resolve_path(output, self.spec.output_field)
        except FieldNotFoundError as e:
            return EvalResult(0.0, False, f"output has no field {e.path!r} ({e.detail})")
        except Exception as e:
            return self._raised(e)
        if expected is None and self.needs_expected():
            return EvalResult(0.0, False, NO_EXPECTED)
        try:
            raw = await self.score(input=input, output=value, expected=expected)
        except Exception as e:
            return self._raised(e)
        return self._finish(raw)

    def _raised(self, exc: Exception) -> EvalResult:
        try:
            text = " ".join(str(exc).split())
        except Exception:
            text = "<unprintable exception>"
        if len(text) > _ERROR_CHARS:
            text = text[:_ERROR_CHARS] + "..."
        return EvalResult(0.0, False, f"evaluator raised {type(exc).__name__}: {text}".rstrip())

    def _finish(self, raw: Score) -> EvalResult:
        if raw.unscored:
            return EvalResult(0.0, False, raw.reason, "parseFailure")
        score = float(raw.score)
        score = 0.0 if math.isnan(score) else min(1.0, max(0.0, score))
        threshold = self.spec.threshold
        passed = score >= threshold if raw.passed is None else bool(raw.passed)
        reason = raw.reason
        if passed and not self.keeps_reason_on_pass:
            reason = ""
        elif not passed and not reason:
            reason = f"score {score:.3g} is below the threshold {threshold:g}"
        return EvalResult(score, passed, reason)
