"""Limits on untrusted input: bounded reads, YAML without alias bombs, depth, int64 and NUL checks.

Everything a manifest or a dataset brings in passes through here before anything is built from
it, so that hostile input ends as a :class:`ManifestError` naming the file or field instead of a
hang, an exhausted memory or a database error later.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ._errors import ManifestError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Integers are stored in PostgreSQL ``BIGINT`` and Kubernetes ``int64``: nothing wider."""

MAX_MANIFEST_BYTES = 8 * 1024 * 1024
"""Largest manifest file read (8 MiB). The API server refuses request bodies over 3 MiB, so a
manifest the cluster accepts always fits; the margin is for local multi-document files."""

MAX_YAML_ALIASES = 1_000
"""Most ``*alias`` references in one YAML file. A real manifest uses a few; a billion-laughs
document needs thousands to expand exponentially, and is refused at the first one too many."""

MAX_EXPANDED_NODES = 1_000_000
"""Most values one YAML document may hold once its aliases are expanded. PyYAML shares an aliased
node instead of copying it, but everything after parsing (validation, hashing, JSON) walks the
expanded tree: a billion-laughs document is 9 aliases of 9 aliases ... of a string, a few hundred
bytes that expand to 9**9 values. The largest valid run (10,000 inline rows) has about 200,000."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists in one document (the root is depth 0). The deepest
field of the schema is at depth 7 (``spec.evaluators[0].options.schema...``); 32 leaves room
for JSON schemas and nested ``configurable`` values while keeping validation and hashing linear."""

READ_CHUNK = 1024 * 1024


def _file_kind(path: Path) -> str | None:
    """``None`` for a regular file or a pipe (or a path that does not exist: ``open`` says so);
    else what it is."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_bounded(path: Path, limit: int, *, field: str, binary_check: bool = False) -> bytes:
    """Read at most ``limit`` bytes of ``path``, counting what is read (never ``st_size``).

    Directories and devices (``/dev/zero``) are refused before reading; pipes and files that
    grow while read are bounded by what is read.

    Args:
        path: the file.
        limit: bytes allowed; one more byte read is an error.
        field: the manifest field (or ``<file>``) named in errors.
        binary_check: refuse a file whose first 8 KiB hold a NUL byte (a binary file; text
            datasets never contain a raw NUL).

    Raises:
        ManifestError: the path is missing, a directory or a device, unreadable, larger than
            ``limit``, or binary.
    """
    kind = _file_kind(path)
    if kind is not None:
        raise ManifestError(field, f"{path} is {kind}, expected a regular file")
    chunks: list[bytes] = []
    total = 0
    try:
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(min(READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                if binary_check and total == 0 and b"\x00" in chunk[:8192]:
                    raise ManifestError(field, f"{path} is a binary file (it holds NUL bytes), expected text")
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise ManifestError(field, f"{path} is larger than the limit of {limit} bytes")
    except OSError as e:
        raise ManifestError(field, f"cannot read {path}: {e.strerror or e}") from e
    return b"".join(chunks)


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts aliases and nesting while composing the node graph."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (line {mark.line + 1}); refused")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels (line {mark.line + 1}); refused")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load_all_limited(text: str) -> list[Any]:
    """``yaml.safe_load_all`` with at most :data:`MAX_YAML_ALIASES` aliases, :data:`MAX_DEPTH` levels
    and :data:`MAX_EXPANDED_NODES` values per document once aliases are expanded.

    Raises:
        yaml.YAMLError: invalid YAML, too many aliases, too deep, or expanding too far.
    """
    return [value for _, value in compose_all_limited(text)]


def compose_all_limited(text: str) -> list[tuple[yaml.Node, Any]]:
    """Each document of ``text`` as its node graph and its value, under the limits of
    :func:`safe_load_all_limited`.

    The nodes' ``start_mark.index`` / ``end_mark.index`` are character offsets into ``text``, so
    a caller can edit one value in place and keep every other byte (``agentensor promote``).

    Raises:
        yaml.YAMLError: invalid YAML, too many aliases, too deep, or expanding too far.
    """
    loader = _LimitedLoader(text)
    try:
        docs: list[tuple[yaml.Node, Any]] = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
                raise yaml.YAMLError(
                    f"document {len(docs)} expands to more than {MAX_EXPANDED_NODES} values through aliases; refused"
                )
            docs.append((node, loader.construct_document(node)))
        return docs
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded; linear in the node graph (memoised by id)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once (the constructor refuses it anyway)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[key]


def _walk(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if depth > MAX_DEPTH:
        yield path, f"nesting is deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        yield path, f"integer of {value.bit_length()} bits is out of range (64-bit: -2^63 to 2^63-1)"
    elif isinstance(value, str) and "\x00" in value:
        yield path, "contains a NUL character (U+0000), which neither PostgreSQL nor Kubernetes stores"
    elif isinstance(value, dict):
        for k, v in value.items():
            key = str(k)
            if "\x00" in key:
                yield path, "a key contains a NUL character (U+0000)"
            yield from _walk(v, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]", depth + 1)


def check_document(doc: Any, *, skip: tuple[str, ...] = (), source: str | None = None) -> None:
    """Refuse a document that nests too deep, holds an integer beyond int64, or a NUL in text.

    Args:
        doc: a parsed manifest.
        skip: dotted paths whose NUL characters are allowed (the runner turns those into error
            rows, e.g. ``spec.dataset.inline``); depth and int64 are checked there too.
        source: label for the error.

    Raises:
        ManifestError: naming the first offending field.
    """
    for path, reason in _walk(doc, "", 0):
        if "NUL" in reason and any(path == s or path.startswith((s + ".", s + "[")) for s in skip):
            continue
        raise ManifestError(path or "<document>", reason, source=source)


def bounded_value_schema(levels: int, width: int) -> dict[str, Any]:
    """Structural OpenAPI schema of a free-form JSON value nested at most ``levels`` containers deep.

    Each level keeps unknown fields (any scalar, mapping or list) but holds at most ``width``
    keys or items, and its keys and items follow the next level; below the last level only
    scalars (and empty containers) remain. The API server of Kubernetes 1.20 has no CEL, so this
    is how its schema bounds depth: the schema has ``2 ** (levels + 1) - 1`` nodes.
    """
    if levels == 0:
        return {"x-kubernetes-preserve-unknown-fields": True, "maxProperties": 0, "maxItems": 0}
    inner = bounded_value_schema(levels - 1, width)
    return {
        "x-kubernetes-preserve-unknown-fields": True,
        "maxProperties": width,
        "maxItems": width,
        "additionalProperties": inner,
        "items": inner,
    }


def check_bounded(value: Any, levels: int, width: int, path: str) -> tuple[str, str] | None:
    """The first place where ``value`` breaks :func:`bounded_value_schema`: ``(path, why)``, else ``None``."""
    if not isinstance(value, dict | list) or not value:
        return None
    if levels == 0:
        return path, "nested too deep"
    if len(value) > width:
        return path, f"has {len(value)} {'keys' if isinstance(value, dict) else 'items'}, at most {width} allowed"
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for k, v in children:
        found = check_bounded(v, levels - 1, width, f"{path}.{k}" if isinstance(value, dict) else f"{path}[{k}]")
        if found:
            return found
    return None
