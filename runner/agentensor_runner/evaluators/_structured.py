"""Structured evaluators: ``json_schema`` and ``numeric``. Both score exactly 0 or 1."""

from __future__ import annotations

import decimal
import json
import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from agentensor_api import EvaluatorSpec

from ._base import BaseEvaluator, Score, jsonish, preview
from ._options import Options

_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)
_MESSAGE_CHARS = 300


def _json_path(path: Sequence[Any]) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


class JsonSchemaEvaluator(BaseEvaluator):
    """``json_schema``: 1 if the output is valid against a JSON Schema (Draft 2020-12).

    A ``str``/``bytes`` output is parsed as JSON first (a surrounding Markdown code fence is
    removed unless ``stripCodeFence: false``); pydantic models and dataclasses are dumped to
    dicts; any other value is validated as is. The expected value is not used. On failure the
    reason gives the JSON path and message of the most relevant error.

    Options:
        schema (object or bool, required): checked with ``Draft202012Validator.check_schema``
            when the evaluator is built.
        checkFormats (bool, default false): also enforce ``format`` (email, date-time, ...).
        stripCodeFence (bool, default true): accept text wrapped in `````json ... `````.
    """

    type = "json_schema"

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"schema", "checkFormats", "stripCodeFence"})
        schema = opts.get_raw("schema")
        if schema is None:
            raise opts.error("schema", "is required for json_schema evaluators")
        if not isinstance(schema, dict | bool):
            raise opts.error("schema", f"must be a JSON Schema object, got {type(schema).__name__}")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as e:
            raise opts.error(
                "schema",
                f"not a valid JSON Schema (Draft 2020-12) at {_json_path(list(e.path))}: {e.message}",
            ) from e
        check_formats = opts.get_bool("checkFormats", False)
        checker = Draft202012Validator.FORMAT_CHECKER if check_formats else None
        self.strip_fence = opts.get_bool("stripCodeFence", True)
        self.validator = Draft202012Validator(schema, format_checker=checker)

    def needs_expected(self) -> bool:
        return False

    def _parse(self, output: Any) -> tuple[Any, str | None]:
        if isinstance(output, bytes | bytearray):
            output = bytes(output).decode("utf-8", errors="replace")
        if not isinstance(output, str):
            return jsonish(output), None
        text = output
        if self.strip_fence and (m := _FENCE.match(text)):
            text = m.group("body")
        try:
            return json.loads(text), None
        except (json.JSONDecodeError, RecursionError) as e:
            return None, f"output is not valid JSON ({e}): {preview(output)}"

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        instance, problem = self._parse(output)
        if problem is not None:
            return Score(0.0, problem)
        errors: list[ValidationError] = list(self.validator.iter_errors(instance))
        if not errors:
            return Score(1.0)
        best = best_match(errors)
        assert best is not None
        message = best.message
        if len(message) > _MESSAGE_CHARS:
            message = message[:_MESSAGE_CHARS] + "..."
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        return Score(0.0, f"output does not match the schema at {_json_path(list(best.path))}: {message}{more}")


_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])"
    r"|(?<![\w.])[-+]?\.\d+(?:[eE][-+]?\d+)?(?![\w])"
)


def parse_number(value: Any) -> float:
    """Read a number from an output or expected value.

    Accepts ints, floats, ``Decimal``/``Fraction``/numpy numbers, and strings: first the whole
    stripped string (``float()`` syntax, e.g. ``"3.5"``, ``"1e-3"``, ``"nan"``), otherwise the
    single number written inside it (``"$1,234.50"`` -> 1234.5, ``"about 42 cases"`` -> 42).

    Raises:
        ValueError: booleans, containers, text with no number or with several numbers.
        OverflowError: an integer too large for a float.
    """
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, numbers.Real | decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} is not a number: {preview(value)}")
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    found = _NUMBER.findall(text)
    if len(found) == 1:
        return float(found[0].replace(",", ""))
    if not found:
        raise ValueError(f"no number in {preview(value)}")
    raise ValueError(f"{len(found)} numbers in {preview(value)}; expected exactly one")


def _fmt(x: float) -> str:
    return format(x, ".12g")


class NumericEvaluator(BaseEvaluator):
    """``numeric``: 1 if ``|output - expected| <= max(tolerance, relativeTolerance * |expected|)``.

    Both sides go through :func:`parse_number`; an unparsable side scores 0 with the reason.
    NaN never matches; infinities match only the same infinity.

    Options:
        tolerance (number >= 0, default 0): absolute tolerance, in the output's units.
        relativeTolerance (number >= 0, default 0): tolerance as a fraction of ``|expected|``
            (0.01 = 1 %).
    """

    type = "numeric"

    def __init__(self, spec: EvaluatorSpec, *, index: int) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, {"tolerance", "relativeTolerance"})
        self.tolerance = opts.get_number("tolerance", 0.0)
        self.relative_tolerance = opts.get_number("relativeTolerance", 0.0)

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        try:
            want = parse_number(expected)
        except (ValueError, OverflowError) as e:
            return Score(0.0, f"expected value is not a number: {e}")
        try:
            got = parse_number(output)
        except (ValueError, OverflowError) as e:
            return Score(0.0, f"expected {_fmt(want)}, but the output is not a number: {e}")
        if math.isnan(got) or math.isnan(want):
            return Score(0.0, f"expected {_fmt(want)}, got {_fmt(got)} (NaN never matches)")
        if math.isinf(got) or math.isinf(want):
            ok = got == want
            return Score(1.0) if ok else Score(0.0, f"expected {_fmt(want)}, got {_fmt(got)}")
        allowed = max(self.tolerance, self.relative_tolerance * abs(want))
        diff = abs(got - want)
        if diff <= allowed:
            return Score(1.0)
        within = f" ± {_fmt(allowed)}" if allowed > 0 else ""
        return Score(0.0, f"expected {_fmt(want)}{within}, got {_fmt(got)} (off by {_fmt(diff)})")
