"""YAML that every reader reads back the same: the ``spec.active`` block that ``promote`` writes.

A stored prompt text such as ``yes``, ``on``, ``12:30``, ``0o17``, ``1_000``, ``~`` or
``2026-01-01`` is a plain string to one YAML version and a boolean, a number, a null or a date to
another: YAML 1.1 readers (PyYAML, the go-yaml v2 behind kubectl) resolve ``yes``/``on``/``12:30``/
``1_000``, YAML 1.2 readers (ruamel.yaml) ``0o17`` and ``1e3``, and the YAML 1.1 specification
also lists ``y``/``n`` as booleans. A scalar is written plain only when the YAML 1.1 resolver,
the YAML 1.2 resolver and that list all make it a string, and as a literal block (``|-``) only
when it reads back exactly; otherwise it is double-quoted, which every reader reads as written.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

STR_TAG = "tag:yaml.org,2002:str"
WIDTH = 1 << 30
"""Never fold a line: a prompt is reviewed as written."""

YAML11_SPEC_BOOLEANS = frozenset({"y", "Y", "n", "N"})
"""Booleans of the YAML 1.1 type repository that PyYAML leaves out (go-yaml v2 reads them)."""

_SPECIAL = re.compile("[\r\x85\u2028\u2029\ufeff]")
"""Line breaks to YAML 1.1 but not to 1.2 (and a BOM): never written raw."""


def _ruamel_resolver() -> Any:
    from ruamel.yaml.resolver import VersionedResolver

    return VersionedResolver(version=(1, 2))


_RESOLVER_11 = yaml.resolver.Resolver()
_RESOLVER_12 = _ruamel_resolver()


def plain_reads_as_string(value: str) -> bool:
    """True when ``value`` written plain is the string ``value`` to YAML 1.1 and 1.2 readers alike."""
    from ruamel.yaml.nodes import ScalarNode as RuamelScalar

    if value in YAML11_SPEC_BOOLEANS or _SPECIAL.search(value):
        return False
    yaml11 = _RESOLVER_11.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    yaml12 = _RESOLVER_12.resolve(RuamelScalar, value, (True, False))
    return bool(yaml11 == STR_TAG and str(yaml12) == STR_TAG)


def read_both(text: str) -> tuple[Any, Any]:
    """``text`` as read by PyYAML (YAML 1.1) and by ruamel.yaml's pure YAML 1.2 loader."""
    from ruamel.yaml import YAML

    return yaml.safe_load(text), YAML(typ="safe", pure=True).load(text)


def _reads_back(value: str, style: str | None) -> bool:
    try:
        text = yaml.dump(value, Dumper=yaml.SafeDumper, default_style=style, allow_unicode=True, width=WIDTH)
        return all(read == value for read in read_both(text))
    except Exception:  # any reader failure means "not this style"
        return False


def scalar_style(value: str) -> str:
    """The style ``value`` is written in: ``|`` (literal block), ``""`` (plain when PyYAML's
    emitter allows it, else single-quoted) or ``"`` (double-quoted, always exact)."""
    if "\n" in value and not _SPECIAL.search(value) and _reads_back(value, "|"):
        return "|"
    if "\n" not in value and plain_reads_as_string(value) and _reads_back(value, None):
        return ""
    return '"'


class _Dumper(yaml.SafeDumper):
    """PyYAML's emitter with :func:`scalar_style` for every string, and no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(STR_TAG, value, style=scalar_style(value) or None)


_Dumper.add_representer(str, _represent_str)


def render_block(value: dict[str, Any], indent: int) -> list[str]:
    """``value`` as block-style YAML lines (no line endings), nested by ``indent`` spaces (2-9)."""
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=WIDTH,
        indent=indent if 2 <= indent <= 9 else 2,
    )
    return text.split("\n")[:-1]


def render_flow(value: dict[str, Any]) -> str:
    """``value`` as one flow mapping ``{k: v, ...}`` (for a ``spec: {...}`` written in flow style)."""
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, allow_unicode=True, width=WIDTH)
    return text.rstrip("\n")
