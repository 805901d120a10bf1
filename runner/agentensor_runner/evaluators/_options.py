"""Validation of ``spec.evaluators[i].options`` with errors that name the field."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Collection
from typing import Any

from agentensor_api import EvaluatorSpec

from ._result import EvaluatorConfigError


def field_prefix(index: int) -> str:
    """``spec.evaluators[<index>]``: the manifest path of an evaluator entry."""
    return f"spec.evaluators[{index}]"


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _suggest(key: str, allowed: Collection[str]) -> str:
    for a in allowed:
        if _norm(a) == _norm(key):
            return a
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return close[0] if close else ""


class Options:
    """Typed reader over one evaluator's ``options``; unknown keys are rejected up front.

    Raises:
        EvaluatorConfigError: on construction for an unknown key (with a "did you mean"
            hint), and from the getters for a value of the wrong type or range.
    """

    def __init__(self, spec: EvaluatorSpec, index: int, allowed: Collection[str]) -> None:
        self._raw: dict[str, Any] = dict(spec.options)
        self._prefix = f"{field_prefix(index)}.options"
        self._type = spec.type
        for key in self._raw:
            if key not in allowed:
                hint = _suggest(str(key), allowed)
                names = ", ".join(sorted(allowed)) if allowed else "none"
                raise self.error(
                    str(key),
                    f"unknown option for {spec.type} evaluators"
                    + (f" (did you mean {hint!r}?)" if hint else "")
                    + f"; allowed options: {names}",
                )

    def field(self, key: str) -> str:
        """Manifest path of an option, e.g. ``spec.evaluators[2].options.pattern``."""
        return f"{self._prefix}.{key}"

    def error(self, key: str, reason: str) -> EvaluatorConfigError:
        """An error naming option ``key`` (to be raised by the caller)."""
        return EvaluatorConfigError(self.field(key), reason)

    def get_bool(self, key: str, default: bool) -> bool:
        value = self._raw.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def get_str(self, key: str, *, required: bool = False, nonempty: bool = True) -> str | None:
        if key not in self._raw or self._raw[key] is None:
            if required:
                raise self.error(key, f"is required for {self._type} evaluators")
            return None
        value = self._raw[key]
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {type(value).__name__} {value!r}")
        if nonempty and not value:
            raise self.error(key, "must not be empty")
        return value

    def get_number(self, key: str, default: float) -> float:
        """A finite number >= 0 (booleans are refused)."""
        value = self._raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.error(key, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise self.error(key, f"must be a finite number >= 0, got {value!r}")
        return number

    def get_raw(self, key: str) -> Any:
        """The option as written, or ``None`` if absent."""
        return self._raw.get(key)

    def has(self, key: str) -> bool:
        return key in self._raw
