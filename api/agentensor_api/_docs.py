"""Render the API reference (docs/api.md) from the models, so every field is documented."""

from __future__ import annotations

import json
from typing import Any

from ._crd import schema_for
from ._prompt_config import PromptConfigSpec
from ._runs import EvaluationRunSpec, TrainingRunSpec
from ._status import PromptConfigStatus, RunStatus


def _type(node: dict[str, Any]) -> str:
    t = node.get("type", "any")
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if t == "array":
        return f"list of {_type(node.get('items', {}))}"
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return str(t)


def _bounds(node: dict[str, Any]) -> str:
    out = []
    for key, sym in (("minimum", ">="), ("maximum", "<=")):
        if key in node:
            strict = node.get("exclusive" + key[0].upper() + key[1:]) is True
            out.append(f"{sym.replace('=', '') if strict else sym} {node[key]}")
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
    ):
        if key in node:
            out.append(f"{label} `{node[key]}`" if key == "pattern" else f"{label} {node[key]}")
    return "; ".join(out)


def _rows(node: dict[str, Any], prefix: str, out: list[str]) -> None:
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}"
        default = child.get("default")
        desc = " ".join(str(child.get("description", "")).split()).replace("|", "\\|")
        cells = [
            f"`{path}`",
            _type(child),
            "yes" if name in required else "",
            "" if default is None else f"`{json.dumps(default)}`",
            _bounds(child).replace("|", "\\|"),
            desc,
        ]
        out.append("| " + " | ".join(cells) + " |")
        target = child.get("items") if child.get("type") == "array" else child
        if isinstance(child.get("additionalProperties"), dict):
            target = child["additionalProperties"]
            path += ".<key>"
        if isinstance(target, dict) and "properties" in target:
            _rows(target, path + ("[]" if child.get("type") == "array" else ""), out)


def render_api_docs() -> str:
    """Markdown tables for every spec and status field (deterministic)."""
    parts = [
        "# API reference: agentensor.dev/v1alpha1",
        "",
        "Generated from the pydantic models by `agentensor docs -o docs/api.md`; a test fails when "
        "it drifts. Field names are camelCase except inside `spec.config`, which is a LangChain "
        "`RunnableConfig` with its keys verbatim.",
    ]
    for title, model, prefix in (
        ("PromptConfig spec", PromptConfigSpec, "spec"),
        ("PromptConfig status", PromptConfigStatus, "status"),
        ("TrainingRun spec", TrainingRunSpec, "spec"),
        ("EvaluationRun spec", EvaluationRunSpec, "spec"),
        ("TrainingRun / EvaluationRun status (and summary.json)", RunStatus, "status"),
    ):
        rows: list[str] = []
        _rows(schema_for(model), prefix, rows)
        parts += [
            "",
            f"## {title}",
            "",
            "| field | type | required | default | bounds | description |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    return "\n".join(parts) + "\n"
