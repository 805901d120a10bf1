"""Merge and per-case specialisation of LangChain ``RunnableConfig`` dicts.

Merge rules (LangChain's ``merge_configs`` semantics, extended to nested dicts): ``configurable``
and ``metadata`` merge deep (the override wins on leaves), ``tags`` are unioned keeping first
occurrence order, every other key is replaced by the override.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from agentensor_api import RunnableConfigSpec

_DEEP = ("configurable", "metadata")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge two mappings; values of ``override`` win, dicts merge."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_configs(*configs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge RunnableConfig dicts left to right (later wins) with the rules above."""
    out: dict[str, Any] = {}
    for cfg in configs:
        if not cfg:
            continue
        for key, value in cfg.items():
            if key in _DEEP:
                out[key] = deep_merge(out.get(key, {}), value or {})
            elif key == "tags":
                out["tags"] = list(dict.fromkeys([*out.get("tags", []), *(value or [])]))
            else:
                out[key] = value
    return out


def resolve_run_config(
    spec_config: RunnableConfigSpec,
    workflow_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Workflow defaults merged with the manifest's validated ``spec.config``."""
    return merge_configs(workflow_defaults, spec_config.to_runnable_config())


def case_thread_id(run_id: str, stage: str, case_id: str) -> str:
    """A ``thread_id`` unique to (run, stage, case): uuid5 so a resumed run reuses it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentensor:{run_id}:{stage}:{case_id}"))


def case_config(
    base: Mapping[str, Any],
    *,
    run_id: str,
    stage: str,
    case_id: str,
    extra_configurable: Mapping[str, Any] | None = None,
) -> RunnableConfig:
    """The per-case RunnableConfig: ``base`` plus a fresh ``thread_id``, ``run_id`` and metadata.

    ``thread_id`` is unique per case (Orcheo shared one across all cases); LangChain's ``run_id``
    is a fresh UUID4 per invocation so traces never collide. LangChain applies ``run_name`` to
    the root run only (child runs are named after their nodes), so it is also copied into
    ``metadata["run_name"]``, which every node receives.
    """
    thread_id = case_thread_id(run_id, stage, case_id)
    run_name = base.get("run_name")
    cfg = merge_configs(
        base,
        {
            "configurable": {"thread_id": thread_id, **(extra_configurable or {})},
            "metadata": {
                "agentensor_run_id": run_id,
                "agentensor_stage": stage,
                "agentensor_case_id": case_id,
                **({"run_name": run_name} if run_name else {}),
            },
        },
    )
    cfg["run_id"] = uuid.uuid4()
    return cast(RunnableConfig, cfg)
