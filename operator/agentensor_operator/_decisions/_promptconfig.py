"""PromptConfig: the ``<name>-active`` ConfigMap and the status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agentensor_api import (
    API_VERSION,
    ActiveSnapshot,
    ConditionType,
    PromptConfigStatus,
    Reason,
    config_checksum,
    set_condition,
)

from ._names import LABEL_MANAGED_BY, LABEL_PROMPTCONFIG, MANAGED_BY, JsonDict, owner_reference


def active_config_map_name(pc_name: str) -> str:
    return f"{pc_name}-active"


def active_config_map(
    pc_body: Mapping[str, Any],
    *,
    version: int,
    checksum: str,
    prompts: Mapping[str, str],
    parameters: Mapping[str, Any],
) -> JsonDict:
    """ConfigMap ``<name>-active`` with the live version, owned by the PromptConfig.

    Keys: ``prompts.json`` (name -> text; prompt names such as ``intent.x?`` are not valid
    ConfigMap keys, so they live inside the JSON), ``parameters.json``, ``version``, ``checksum``.
    """
    meta = pc_body.get("metadata") or {}
    name = str(meta.get("name"))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": active_config_map_name(name),
            "namespace": meta.get("namespace") or "default",
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PROMPTCONFIG: name},
            "ownerReferences": [
                owner_reference(api_version=API_VERSION, kind="PromptConfig", name=name, uid=str(meta.get("uid")))
            ],
        },
        "data": {
            "prompts.json": json.dumps(dict(prompts), indent=2, sort_keys=True, ensure_ascii=False),
            "parameters.json": json.dumps(dict(parameters), indent=2, sort_keys=True, ensure_ascii=False),
            "version": str(version),
            "checksum": checksum,
        },
    }


def version_not_found_message(workflow: str, namespace: str, version: int) -> str:
    """The ``Ready=False VersionNotFound`` message of a ``spec.activeVersion`` the namespace does not have.

    Versions are numbered per ``(namespace, workflow)``: the same number of the same workflow
    key in another namespace is another team's text and is never served here.
    """
    return (
        f"spec.activeVersion: workflow {workflow!r} has no stored version {version} in namespace {namespace!r} "
        "(versions are per namespace; a version trained or stored in another namespace is not visible here); "
        "the ConfigMap keeps the last active version"
    )


def active_snapshot_error(
    snapshot: ActiveSnapshot | None, *, version: int, stored_checksum: str
) -> tuple[str, str] | None:
    """Why ``spec.active`` (the promoted text in the manifest) cannot go live, or None when it may.

    Two checks, both ``(Reason.CHECKSUM_MISMATCH, message naming the field)``:

    1. the snapshot's ``prompts`` and ``parameters`` hash (:func:`agentensor_api.config_checksum`)
       to its ``checksum``: a hand edit of the text after ``agentensor promote`` fails this;
    2. its ``checksum`` is the stored version's: an ``activeVersion`` changed without the text
       (or text copied from another version) fails this.

    No snapshot (a manifest written before promotions carried text, or by hand) is no error.
    """
    if snapshot is None:
        return None
    computed = config_checksum(dict(snapshot.prompts), dict(snapshot.parameters))
    if computed != snapshot.checksum:
        return Reason.CHECKSUM_MISMATCH, (
            f"spec.active.checksum: spec.active.prompts and parameters hash to {computed[:12]}, not to "
            f"{snapshot.checksum[:12]}: the promoted text was edited; run `agentensor promote` again. "
            "The ConfigMap keeps the last active version"
        )
    if snapshot.checksum != stored_checksum:
        return Reason.CHECKSUM_MISMATCH, (
            f"spec.active.checksum: {snapshot.checksum[:12]} is not the checksum of stored version {version} "
            f"({stored_checksum[:12]}): spec.active holds another version's text than spec.activeVersion; "
            "run `agentensor promote` again. The ConfigMap keeps the last active version"
        )
    return None


def promptconfig_status(
    prev: Mapping[str, Any] | None,
    *,
    generation: int,
    active_version: int | None,
    active_checksum: str | None,
    latest_version: int | None,
    versions: int,
    best_version: int | None,
    best_score: float | None,
    error: tuple[str, str] | None,
    now: str,
) -> PromptConfigStatus:
    """PromptConfig status; ``error`` = ``(reason, message)`` keeps the last good active version."""
    try:
        s = PromptConfigStatus.model_validate(dict(prev or {}))
    except ValidationError:
        s = PromptConfigStatus()
    s.latest_version = latest_version
    s.versions = versions
    s.best_version = best_version
    s.best_score = best_score
    if error is not None:
        s.conditions = set_condition(s.conditions, ConditionType.READY, "False", error[0], error[1], now=now)
        return s
    s.observed_generation = generation
    s.active_version = active_version
    s.active_checksum = active_checksum
    msg = f"version {active_version} ({(active_checksum or '')[:12]}) is live in its -active ConfigMap"
    s.conditions = set_condition(s.conditions, ConditionType.READY, "True", Reason.MATERIALIZED, msg, now=now)
    return s
