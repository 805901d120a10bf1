"""Dotted-path lookup into workflow outputs (``spec.evaluators[i].outputField``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_INDEX = re.compile(r"-?\d+")
_MAX_KEYS_SHOWN = 10


class FieldNotFoundError(KeyError):
    """A dotted path does not resolve.

    Attributes:
        path: the whole dotted path, e.g. ``"a.b.0.c"``.
        segment: the segment that could not be followed, e.g. ``"b"``.
        detail: why, e.g. ``"no key 'b' under 'a' (keys: 'x', 'y')"``.
    """

    def __init__(self, path: str, segment: str, detail: str) -> None:
        self.path = path
        self.segment = segment
        self.detail = detail
        super().__init__(f"path {path!r}: {detail}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def split_path(dotted: str) -> list[str]:
    """Split ``"a.b.0"`` into segments.

    Raises:
        ValueError: if the path is empty or has an empty segment (``"a..b"``, ``".a"``).
    """
    segments = dotted.split(".")
    if any(not s.strip() for s in segments):
        raise ValueError(f"malformed dotted path {dotted!r}: empty segment")
    return segments


def _where(segments: Sequence[str], i: int) -> str:
    return "at the top level" if i == 0 else f"under {'.'.join(segments[:i])!r}"


def _keys(mapping: Mapping[Any, Any]) -> str:
    keys = sorted((str(k) for k in mapping), key=str)
    shown = ", ".join(repr(k) for k in keys[:_MAX_KEYS_SHOWN])
    more = f", ... ({len(keys)} in all)" if len(keys) > _MAX_KEYS_SHOWN else ""
    return f"keys: {shown}{more}" if keys else "it is empty"


def resolve_path(value: Any, dotted: str | None) -> Any:
    """Follow a dotted path into nested dicts, lists/tuples and object attributes.

    ``None`` or ``""`` returns ``value`` unchanged. Each segment is, in order of the current
    value's kind: a mapping key (string, exact match); a list/tuple index (an integer,
    negative counts from the end); otherwise a public attribute (``getattr``; names starting
    with ``_`` are refused). Strings and bytes are never indexed.

    Examples:
        ``resolve_path({"a": [{"c": 1}]}, "a.0.c") == 1``

    Raises:
        FieldNotFoundError: (a ``KeyError``) naming the whole path and the missing segment,
            e.g. ``path 'a.b.c': no key 'b' under 'a' (keys: 'x', 'y')``.
        ValueError: if ``dotted`` is malformed (see :func:`split_path`).
    """
    if dotted is None or dotted == "":
        return value
    segments = split_path(dotted)
    current = value
    for i in range(len(segments)):
        current = _step(current, segments, i, dotted)
    return current


def _step(current: Any, segments: Sequence[str], i: int, dotted: str) -> Any:
    """Follow ``segments[i]`` from ``current`` (a mapping key, a list index, or a public attribute)."""
    seg, where = segments[i], _where(segments, i)
    if isinstance(current, Mapping):
        if seg in current:
            return current[seg]
        raise FieldNotFoundError(dotted, seg, f"no key {seg!r} {where} ({_keys(current)})")
    if isinstance(current, Sequence) and not isinstance(current, str | bytes | bytearray):
        return _index(current, seg, where, dotted)
    if current is None:
        raise FieldNotFoundError(dotted, seg, f"the value {where} is null, not an object")
    if seg.startswith("_"):
        raise FieldNotFoundError(dotted, seg, f"private attribute {seg!r} is not readable")
    try:
        return getattr(current, seg)
    except AttributeError:
        raise FieldNotFoundError(dotted, seg, f"{type(current).__name__} {where} has no field {seg!r}") from None


def _index(current: Sequence[Any], seg: str, where: str, dotted: str) -> Any:
    if not _INDEX.fullmatch(seg):
        raise FieldNotFoundError(dotted, seg, f"{seg!r} is not a list index; the value {where} is a list")
    idx = int(seg)
    if not -len(current) <= idx < len(current):
        raise FieldNotFoundError(dotted, seg, f"index {idx} is out of range {where} (a list of length {len(current)})")
    return current[idx]
