"""The targeted edit of ``promote``: replace the bytes of ``spec.activeVersion`` and ``spec.active``
in one PromptConfig document and keep every other byte of the file.

The file is composed with PyYAML (bounded by ``compose_all_limited``), whose node marks give the
character offsets of each key and value. The edit splices new text into those spans only:
comments, quoting, kubectl-style lists, CRLF line endings, trailing whitespace, a missing final
newline and the other documents are left as they were. Inserted lines take the file's own
indentation and line ending. A ``spec`` written in flow style (``spec: {workflow: x}``) gets flow
text. The result is parsed again and must equal the old file except for the two keys, else the
edit is refused (never written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentensor_api import GROUP, ActiveSnapshot, config_checksum
from agentensor_api._limits import compose_all_limited

from ._promote_yaml import read_both, render_block, render_flow

_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""What PyYAML counts as a line break (its marks' columns restart after one)."""


class EditError(Exception):
    """The file cannot be edited as asked; the message names the file and the reason."""


@dataclass(frozen=True)
class Target:
    """The PromptConfig document to edit.

    Attributes:
        index: position of the document in the file (0-based).
        namespace: its ``metadata.namespace`` (None: not written).
        spec: its ``spec`` as read; ``spec_node`` the same as a PyYAML node (with marks).
        spec_key: the node of the ``spec`` key.
        entries: ``workflow``, ``activeVersion`` and ``active`` of ``spec_node``: (position, key, value).
    """

    index: int
    namespace: str | None
    spec: dict[str, Any]
    spec_node: yaml.MappingNode
    spec_key: yaml.Node
    entries: dict[str, tuple[int, yaml.Node, yaml.Node]]

    @property
    def workflow(self) -> str:
        return str(self.spec["workflow"])

    @property
    def previous(self) -> int | None:
        value = self.spec.get("activeVersion")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse(path: Path, raw: bytes) -> tuple[str, list[tuple[yaml.Node, Any]]]:
    """The text of the manifest and its documents (node, value).

    Raises:
        EditError: not UTF-8, or not YAML (or beyond the alias, depth and size limits).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EditError(f"{path}: not UTF-8 text (byte {e.start})") from e
    try:
        return text, compose_all_limited(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise EditError(f"{path}: cannot parse YAML: {' '.join(str(e).split())}") from e


def find_target(path: Path, docs: list[tuple[yaml.Node, Any]], name: str, namespace: str | None) -> Target:
    """The one PromptConfig ``name`` of ``docs`` (in ``namespace`` when given).

    With ``namespace``, a document in that namespace matches, else one without
    ``metadata.namespace`` (it is created in the namespace it is applied to); without it, the
    name must be in one document only.

    Raises:
        EditError: no such PromptConfig, several (listed), or no ``spec`` mapping with a ``workflow``.
    """
    found = [(i, _namespace_of(value)) for i, (_, value) in enumerate(docs) if _is_promptconfig(value, name)]
    matches = found
    if namespace is not None:
        matches = [m for m in found if m[1] == namespace] or [m for m in found if m[1] is None]
    if not matches:
        where = f" in namespace {namespace!r}" if namespace is not None and found else ""
        others = f" (it has one in {_list_namespaces(found)})" if found else ""
        raise EditError(f"{path}: no PromptConfig named {name!r}{where} (metadata.name){others}")
    if len(matches) > 1:
        listed = "; ".join(f"document {i + 1} at line {docs[i][0].start_mark.line + 1}, {_ns(ns)}" for i, ns in matches)
        raise EditError(
            f"{path}: PromptConfig {name!r} is in {len(matches)} documents ({listed}); choose one with -n/--namespace"
        )
    index, doc_namespace = matches[0]
    return _target(path, index, docs[index], name, doc_namespace)


def edit(path: Path, text: str, target: Target, version: int, snapshot: ActiveSnapshot | None) -> str:
    """``text`` with ``spec.activeVersion: version`` and ``spec.active`` (removed when None).

    Raises:
        EditError: a key is written twice or through an alias, or the result does not read
            back as exactly this change.
    """
    plan = _flow_splices if target.spec_node.flow_style else _block_splices
    splices = plan(text, target, target.entries, version, snapshot)
    new = text
    for start, end, replacement in sorted(splices, reverse=True):
        new = new[:start] + replacement + new[end:]
    return new


def check(path: Path, old: list[tuple[yaml.Node, Any]], new_text: str, target: Target, version: int,
          snapshot: ActiveSnapshot | None) -> None:  # fmt: skip
    """Refuse ``new_text`` unless it reads as ``old`` with only the two keys of ``target`` changed.

    Raises:
        EditError: it does not.
    """
    try:
        new = [value for _, value in compose_all_limited(new_text)]
    except (yaml.YAMLError, RecursionError) as e:
        raise EditError(f"{path}: the edit does not parse ({' '.join(str(e).split())}); file left unchanged") from e
    if len(new) != len(old):
        raise EditError(f"{path}: the edit changed the number of documents; file left unchanged")
    doc = new[target.index]
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise EditError(f"{path}: the edit lost the document's spec; file left unchanged")
    spec = dict(doc["spec"])
    written = (spec.pop("activeVersion", None), spec.pop("active", None))
    if written != (version, wire(snapshot) if snapshot else None):
        raise EditError(f"{path}: spec.activeVersion/spec.active do not read back as written; file left unchanged")
    before = dict(target.spec)
    before.pop("activeVersion", None)
    before.pop("active", None)
    others = [repr(v) for i, (_, v) in enumerate(old) if i != target.index]
    if repr(spec) != repr(before) or others != [repr(v) for i, v in enumerate(new) if i != target.index]:
        raise EditError(f"{path}: the edit would change more than spec.activeVersion/spec.active; file left unchanged")


def wire(snapshot: ActiveSnapshot) -> dict[str, Any]:
    """``spec.active`` as written: checksum, prompts sorted by name, parameters."""
    prompts = dict(sorted(snapshot.prompts.items()))
    return {"checksum": snapshot.checksum, "prompts": prompts, "parameters": dict(snapshot.parameters)}


def _is_promptconfig(doc: Any, name: str) -> bool:
    if not isinstance(doc, dict) or doc.get("kind") != "PromptConfig":
        return False
    api_version = doc.get("apiVersion")
    metadata = doc.get("metadata")
    return (
        isinstance(api_version, str)
        and api_version.split("/")[0] == GROUP
        and isinstance(metadata, dict)
        and metadata.get("name") == name
    )


def _namespace_of(doc: dict[str, Any]) -> str | None:
    namespace = doc["metadata"].get("namespace")
    return None if namespace is None else str(namespace)


def _ns(namespace: str | None) -> str:
    return "no metadata.namespace" if namespace is None else f"namespace {namespace!r}"


def _list_namespaces(found: list[tuple[int, str | None]]) -> str:
    return ", ".join(_ns(ns) for _, ns in found)


def _target(path: Path, index: int, doc: tuple[yaml.Node, Any], name: str, namespace: str | None) -> Target:
    node, value = doc
    spec = value.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("workflow"), str):
        raise EditError(f"{path}: PromptConfig {name!r} has no spec.workflow")
    pairs = [(k, v) for k, v in getattr(node, "value", ()) if isinstance(k, yaml.ScalarNode) and k.value == "spec"]
    if len(pairs) != 1 or not isinstance(pairs[0][1], yaml.MappingNode):
        raise EditError(f"{path}: PromptConfig {name!r}: spec must be written once, as a mapping")
    key, spec_node = pairs[0]
    if spec_node.start_mark.index < key.end_mark.index:
        raise EditError(f"{path}: PromptConfig {name!r}: spec is an alias (*name); write it out to promote")
    return Target(index, namespace, spec, spec_node, key, _spec_entries(path, spec_node))


_KEYS = ("workflow", "activeVersion", "active")


def _spec_entries(path: Path, spec_node: yaml.MappingNode) -> dict[str, tuple[int, yaml.Node, yaml.Node]]:
    """``workflow``, ``activeVersion`` and ``active`` of the spec node: (position, key, value).

    Raises:
        EditError: one is written twice, or a key or value is an alias (its marks are elsewhere).
    """
    entries: dict[str, tuple[int, yaml.Node, yaml.Node]] = {}
    previous_end = spec_node.start_mark.index
    for position, (key, value) in enumerate(spec_node.value):
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in _KEYS:
            if name in entries:
                raise EditError(f"{path}: spec.{name} is written twice")
            if key.start_mark.index < previous_end or value.start_mark.index < key.end_mark.index:
                raise EditError(f"{path}: spec.{name} is written through an alias (*name); write it out to promote")
            entries[name] = (position, key, value)
        previous_end = key.end_mark.index
    if "workflow" not in entries:
        raise EditError(f"{path}: spec.workflow comes from a merge key (<<); write it out to promote")
    return entries


def _eol(text: str, pos: int) -> str:
    """The line ending of the line at ``pos`` (else the file's first; ``\\n`` for a one-line file)."""
    found = _BREAK.search(text, pos) or _BREAK.search(text)
    return found.group() if found and found.group() in ("\r\n", "\r") else "\n"


def _last_leaf(node: yaml.Node) -> yaml.Node:
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_leaf(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_leaf(node.value[-1])
    return node


def _entry_end(text: str, value: yaml.Node) -> int:
    """Offset just past the line break ending ``value``'s last line (``len(text)`` at the end).

    A block scalar's end mark already lies past its line breaks (and partway into the next
    line's indentation): then the entry ends at that line's start.
    """
    leaf = _last_leaf(value)
    end = leaf.end_mark.index
    line_start = end - leaf.end_mark.column
    if text[line_start:end].strip(" ") == "" and end > value.start_mark.index:
        return line_start
    found = _BREAK.search(text, end)
    return found.end() if found else len(text)


def _line_start(key: yaml.Node) -> int:
    return int(key.start_mark.index - key.start_mark.column)


def _lines(text: str, pos: int, lines: list[str], eol: str) -> str:
    """``lines`` to insert at ``pos``: ended by ``eol``, or led by it at an unterminated last line."""
    if pos == len(text) and text and not _BREAK.match(text[-1]):
        return eol + eol.join(lines)
    return eol.join(lines) + eol


def _block_splices(text: str, target: Target, entries: dict[str, tuple[int, yaml.Node, yaml.Node]], version: int,
                   snapshot: ActiveSnapshot | None) -> list[tuple[int, int, str]]:  # fmt: skip
    _, workflow_key, workflow_value = entries["workflow"]
    column = workflow_key.start_mark.column
    pad = " " * column
    eol = _eol(text, workflow_value.end_mark.index)
    block = []
    if snapshot is not None:
        rendered = render_block({"active": wire(snapshot)}, column - target.spec_key.start_mark.column)
        block = [pad + line if line else line for line in rendered]
    splices: list[tuple[int, int, str]] = []
    pending: list[str] = []
    if "activeVersion" in entries:
        _, _, value = entries["activeVersion"]
        splices.append(_replace_scalar(value, str(version)))
        anchor = _entry_end(text, value)
    else:
        pending.append(f"{pad}activeVersion: {version}")
        anchor = _entry_end(text, workflow_value)
    if "active" in entries:
        _, key, value = entries["active"]
        start, end = _line_start(key), _entry_end(text, value)
        splices.append((start, end, _lines(text, end, block, eol) if block else ""))
    else:
        pending += block
    if pending:
        splices.append((anchor, anchor, _lines(text, anchor, pending, eol)))
    return splices


def _replace_scalar(value: yaml.Node, replacement: str) -> tuple[int, int, str]:
    start, end = value.start_mark.index, value.end_mark.index
    return start, end, replacement if end > start else f" {replacement}"


def _flow_splices(text: str, target: Target, entries: dict[str, tuple[int, yaml.Node, yaml.Node]], version: int,
                  snapshot: ActiveSnapshot | None) -> list[tuple[int, int, str]]:  # fmt: skip
    splices: list[tuple[int, int, str]] = []
    added = ""
    if "activeVersion" in entries:
        splices.append(_replace_scalar(entries["activeVersion"][2], str(version)))
        anchor = entries["activeVersion"][2].end_mark.index
    else:
        added = f", activeVersion: {version}"
        anchor = entries["workflow"][2].end_mark.index
    flow = render_flow(wire(snapshot)) if snapshot is not None else None
    if "active" in entries:
        position, key, value = entries["active"]
        if flow is not None:
            splices.append(_replace_scalar(value, flow))
        else:
            splices.append(_flow_removal(target.spec_node, position, key, value))
    elif flow is not None:
        added += f", active: {flow}"
    if added:
        splices.append((anchor, anchor, added))
    return splices


def _flow_removal(spec: yaml.MappingNode, position: int, key: yaml.Node, value: yaml.Node) -> tuple[int, int, str]:
    """The span of ``key: value`` in a flow mapping, with one of the commas around it."""
    if position + 1 < len(spec.value):
        return key.start_mark.index, spec.value[position + 1][0].start_mark.index, ""
    if position > 0:
        return spec.value[position - 1][1].end_mark.index, value.end_mark.index, ""
    return key.start_mark.index, value.end_mark.index, ""


def check_snapshot_readers(path: Path, snapshot: ActiveSnapshot) -> None:
    """The ``spec.active`` text reads back as ``snapshot`` in YAML 1.1 (PyYAML) and 1.2 (ruamel.yaml).

    Raises:
        EditError: it does not (a string YAML cannot hold the same way for both).
    """
    written = wire(snapshot)
    for rendered in ("\n".join(render_block(written, 2)) + "\n", render_flow(written)):
        try:
            readers = read_both(rendered)
        except Exception as e:  # a reader's own error class: ruamel.yaml's or PyYAML's
            raise EditError(f"{path}: spec.active would not parse back ({type(e).__name__}); file unchanged") from e
        if any(read != written for read in readers):
            raise EditError(
                f"{path}: spec.active would not read back the same in YAML 1.1 and 1.2; file left unchanged"
            )
    if config_checksum(written["prompts"], written["parameters"]) != snapshot.checksum:
        raise EditError(f"{path}: the stored version's checksum does not match its text; file left unchanged")
