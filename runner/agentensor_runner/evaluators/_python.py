"""``python``: a user scorer loaded from an allow-listed ``module:function``."""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agentensor_api import EvaluatorSpec
from agentensor_api._common import ENTRYPOINT_PATTERN

from .._allowlist import ALLOWLIST_ENV, allowlist_from_env, is_allowed, resolve_entrypoint
from .._errors import EntrypointRefused
from ._base import BaseEvaluator, Score
from ._options import Options
from ._result import EvalResult

__all__ = ["ALLOWLIST_ENV", "PythonEvaluator", "allowlist_from_env", "is_allowed"]


def _real(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return 1.0 if value else 0.0
    if isinstance(value, numbers.Real):
        return float(value)
    return None


class PythonEvaluator(BaseEvaluator):
    """``python``: calls ``fn(input=..., output=..., expected=...)`` for each case.

    ``output`` is the resolved ``outputField``; ``expected`` may be ``None`` (the function
    decides what that means). Coroutine functions are awaited; plain functions run in a worker
    thread so a slow scorer does not stall other cases.

    The function may return:
        * ``bool``: score 1.0 / 0.0;
        * a real number: the score, clamped to ``[0, 1]`` (NaN -> 0);
        * a mapping ``{"score": number, "passed": bool?, "reason": str?}``; an explicit
          ``passed`` overrides the threshold rule; ``reason`` is kept even when passing;
        * an :class:`EvalResult`.
    Anything else scores 0 with a reason; an exception scores 0 with its type and message.

    Options:
        entrypoint (str, required): ``package.module:function``. The module must equal or lie
            below one of the allowed prefixes (``allowed_entrypoints``, by default from the
            ``AGENTENSOR_EVALUATOR_ALLOWLIST`` environment variable), and so must the module the
            function is defined in (``fn.__module__``); the module is checked before import.

    Raises (at build):
        EvaluatorConfigError: bad format, module not allow-listed, import failure (chained),
            missing or non-callable attribute, a function defined outside the allow-list, or a
            signature that cannot take the keywords.
    """

    type = "python"
    keeps_reason_on_pass = True

    def __init__(self, spec: EvaluatorSpec, *, index: int, allowed_entrypoints: Sequence[str]) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"entrypoint"})
        entrypoint = opts.get_str("entrypoint", required=True)
        assert entrypoint is not None
        if not re.fullmatch(ENTRYPOINT_PATTERN, entrypoint):
            raise opts.error("entrypoint", f"must look like 'package.module:function', got {entrypoint!r}")
        try:
            fn = resolve_entrypoint(entrypoint, tuple(allowed_entrypoints), what="python evaluators")
        except EntrypointRefused as e:
            raise opts.error("entrypoint", str(e)) from e.__cause__
        try:
            inspect.signature(fn).bind(input=None, output=None, expected=None)
        except TypeError as e:
            raise opts.error(
                "entrypoint",
                f"{entrypoint!r} must accept keyword arguments input, output, expected ({e})",
            ) from e
        except ValueError:  # no signature available (some builtins): try at call time
            pass
        self.entrypoint = entrypoint
        self.fn: Callable[..., Any] = fn

    def needs_expected(self) -> bool:
        return False

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(input=input, output=output, expected=expected)
        else:
            result = await asyncio.to_thread(self.fn, input=input, output=output, expected=expected)
            if inspect.isawaitable(result):
                result = await result
        return self._interpret(result)

    def _interpret(self, result: Any) -> Score:
        where = f"python evaluator {self.entrypoint!r}"
        if isinstance(result, EvalResult):
            return Score(result.score, result.reason, result.passed)
        number = _real(result)
        if number is not None:
            if math.isnan(number):
                return Score(0.0, f"{where} returned NaN")
            if isinstance(result, bool | np.bool_):
                return Score(number, "" if result else f"{where} returned False")
            return Score(number)
        if isinstance(result, Mapping):
            if "score" not in result:
                return Score(0.0, f"{where} returned a mapping without 'score': {sorted(result)}")
            score = _real(result["score"])
            if score is None or math.isnan(score):
                return Score(0.0, f"{where} returned a non-numeric score {result['score']!r}")
            passed = result.get("passed")
            if passed is not None and not isinstance(passed, bool | np.bool_):
                return Score(0.0, f"{where} returned a non-boolean 'passed' {passed!r}")
            reason = "" if result.get("reason") is None else str(result["reason"])
            if passed is not None and not passed and not reason:
                reason = f"{where} returned passed=false (score {score:.3g})"
            return Score(score, reason, None if passed is None else bool(passed))
        return Score(
            0.0,
            f"{where} returned {type(result).__name__}; expected a bool, a number in [0, 1], or a mapping with 'score'",
        )
