"""String evaluators: ``exact_match``, ``contains``, ``regex``. All score exactly 0 or 1."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np
import regex

from agentensor_api import EvaluatorSpec

from ._base import BaseEvaluator, Score, as_text, preview
from ._options import Options
from ._result import EvalResult


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def json_equal(a: Any, b: Any) -> bool:
    """Structural equality of JSON-like values; booleans never equal numbers (``True != 1``)."""
    if _is_bool(a) or _is_bool(b):
        return _is_bool(a) and _is_bool(b) and bool(a) == bool(b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list | tuple) or isinstance(b, Mapping | list | tuple):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class ExactMatchEvaluator(BaseEvaluator):
    """``exact_match``: 1 if the output equals the expected value, else 0.

    Two non-string values (numbers, booleans, dicts, lists) match if they are equal as JSON.
    Otherwise both are rendered as text (:func:`as_text`) and compared after the options.

    Options:
        ignoreCase (bool, default false): compare case-insensitively (``str.casefold``).
        strip (bool, default true): ignore leading/trailing whitespace.
    """

    type = "exact_match"

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"ignoreCase", "strip"})
        self.ignore_case = opts.get_bool("ignoreCase", False)
        self.strip = opts.get_bool("strip", True)

    def _norm(self, value: Any) -> str:
        text = as_text(value)
        if self.strip:
            text = text.strip()
        return text.casefold() if self.ignore_case else text

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        both_structured = not isinstance(output, str) and not isinstance(expected, str)
        if both_structured and json_equal(output, expected):
            return Score(1.0)
        if self._norm(output) == self._norm(expected):
            return Score(1.0)
        return Score(0.0, f"expected {preview(expected)}, got {preview(output)}")


class ContainsEvaluator(BaseEvaluator):
    """``contains``: 1 if the output text contains the expected text (or ``substring``).

    Options:
        substring (str, optional): a fixed non-empty substring to look for instead of the
            expected value (the case's expected value is then not needed).
        ignoreCase (bool, default false): compare case-insensitively.
    """

    type = "contains"

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"substring", "ignoreCase"})
        self.substring = opts.get_str("substring")
        self.ignore_case = opts.get_bool("ignoreCase", False)

    def needs_expected(self) -> bool:
        return self.substring is None

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        needle = self.substring if self.substring is not None else as_text(expected)
        haystack = as_text(output)
        if self.ignore_case:
            needle, haystack = needle.casefold(), haystack.casefold()
        if needle in haystack:
            return Score(1.0)
        return Score(0.0, f"expected the output to contain {preview(needle)}, got {preview(output)}")


DEFAULT_REGEX_TIMEOUT_SECONDS = 1.0
"""How long one regex match may run: a linear-time match over a 64 KiB output takes
milliseconds, while a catastrophic pattern such as ``(a+)+$`` would take longer than the
universe on a long input; 1 s separates the two with room to spare."""

MAX_REGEX_TIMEOUT_SECONDS = 60.0


class RegexTimeoutError(TimeoutError):
    """A regex match ran past its ``timeoutSeconds``; the case becomes an error row."""


class RegexEvaluator(BaseEvaluator):
    """``regex``: 1 if the output text matches ``pattern`` (``regex`` package, ``re`` syntax).

    The expected value is not used. Matching runs in a worker thread (never on the event loop)
    with the ``regex`` package's ``timeout``: a pattern that backtracks catastrophically ends
    as an error row of that case (:class:`RegexTimeoutError`), and the other cases go on.

    Options:
        pattern (str, required): compiled when the evaluator is built.
        fullmatch (bool, default false): the whole text must match (``fullmatch``);
            otherwise a match anywhere counts (``search``).
        ignoreCase (bool, default false): ``IGNORECASE``.
        timeoutSeconds (number, default 1, at most 60): limit of one match, in seconds.
    """

    type = "regex"

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"pattern", "fullmatch", "ignoreCase", "timeoutSeconds"})
        pattern = opts.get_str("pattern", required=True)
        assert pattern is not None
        self.fullmatch = opts.get_bool("fullmatch", False)
        self.timeout = opts.get_number("timeoutSeconds", DEFAULT_REGEX_TIMEOUT_SECONDS)
        if not 0 < self.timeout <= MAX_REGEX_TIMEOUT_SECONDS:
            raise opts.error("timeoutSeconds", f"must be in (0, {MAX_REGEX_TIMEOUT_SECONDS:g}], got {self.timeout:g}")
        flags = regex.IGNORECASE if opts.get_bool("ignoreCase", False) else 0
        try:
            self.pattern = regex.compile(pattern, flags)
        except (regex.error, ValueError, OverflowError) as e:
            raise opts.error("pattern", f"invalid regular expression {pattern!r}: {e}") from e

    def needs_expected(self) -> bool:
        return False

    def _match(self, text: str) -> bool:
        try:
            if self.fullmatch:
                return self.pattern.fullmatch(text, timeout=self.timeout) is not None
            return self.pattern.search(text, timeout=self.timeout) is not None
        except TimeoutError as e:
            raise RegexTimeoutError(
                f"regex evaluator {self.name!r}: pattern {self.pattern.pattern!r} ran longer than "
                f"timeoutSeconds={self.timeout:g} on an output of {len(text)} characters"
            ) from e

    def _raised(self, exc: Exception) -> EvalResult:
        if isinstance(exc, RegexTimeoutError):
            raise exc  # an error row, not a score: the case's result is unknown
        return super()._raised(exc)

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        text = as_text(output)
        if await asyncio.to_thread(self._match, text):
            return Score(1.0)
        how = "fully match" if self.fullmatch else "match"
        return Score(0.0, f"output {preview(text)} does not {how} the pattern {self.pattern.pattern!r}")
