"""``python``: a user scorer loaded from an allow-listed ``module:function``."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agentensor_api import EvaluatorSpec
from agentensor_api._common import ENTRYPOINT_PATTERN

from ._base import BaseEvaluator, Score
from ._options import Options
from ._result import EvalResult

ALLOWLIST_ENV = "AGENTENSOR_EVALUATOR_ALLOWLIST"
"""Environment variable: comma-separated module prefixes that ``python`` evaluators may load."""


def allowlist_from_env() -> tuple[str, ...]:
    """Module prefixes from :data:`ALLOWLIST_ENV` (blank entries dropped); ``()`` if unset."""
    raw = os.environ.get(ALLOWLIST_ENV, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def is_allowed(module: str, allowed: Sequence[str]) -> bool:
    """True if ``module`` equals an allowed prefix or lies below it (``prefix + "."``)."""
    return any(module == p or module.startswith(p + ".") for p in allowed)


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
            ``AGENTENSOR_EVALUATOR_ALLOWLIST`` environment variable).

    Raises (at build):
        EvaluatorConfigError: bad format, module not allow-listed, import failure (chained),
            missing or non-callable attribute, or a signature that cannot take the keywords.
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
        module_name, func_name = entrypoint.split(":")
        allowed = tuple(allowed_entrypoints)
        if not is_allowed(module_name, allowed):
            listed = ", ".join(repr(p) for p in allowed) if allowed else "none"
            raise opts.error(
                "entrypoint",
                f"module {module_name!r} is not allow-listed for python evaluators (allowed "
                f"prefixes: {listed}); to allow it, add the module or a parent package to the "
                f"{ALLOWLIST_ENV} environment variable (comma-separated module prefixes), e.g. "
                f"{ALLOWLIST_ENV}={module_name.split('.')[0]}",
            )
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            raise opts.error(
                "entrypoint",
                f"cannot import module {module_name!r}: {type(e).__name__}: {e}",
            ) from e
        fn = getattr(module, func_name, None)
        if fn is None:
            raise opts.error("entrypoint", f"module {module_name!r} has no attribute {func_name!r}")
        if not callable(fn):
            raise opts.error("entrypoint", f"{entrypoint!r} is not callable (it is a {type(fn).__name__})")
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
