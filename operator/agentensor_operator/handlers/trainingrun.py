"""TrainingRun handlers: the shared run reconcile, plus Auto promotion when a run succeeds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from agentensor_api import RunStatus

from .. import _decisions as d
from .._deps import Deps
from . import _events, _runs

KIND = "TrainingRun"


async def promote(deps: Deps, body: Mapping[str, Any], status: RunStatus) -> None:
    """Under ``spec.promotion.policy: Auto``, make a promotable run's best version active.

    The only spec write the operator makes, and only when the PromptConfig opts in; with the
    default ``Manual`` policy promotion is a Git commit (``agentensor promote``).
    """
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    pc_name = str(((body.get("spec") or {}).get("promptConfigRef") or {}).get("name"))
    pc = await deps.kube.get_custom(namespace, "promptconfigs", pc_name)
    if pc is None:
        return
    target = d.promotion_target(status, pc.get("spec") or {})
    if target is None:
        return
    # a merge patch: null removes a spec.active snapshot of the previous version (it would not match)
    auto = {"spec": {"activeVersion": target, "active": None}}
    await deps.kube.patch_custom(namespace, "promptconfigs", pc_name, auto)
    message = f"PromptConfig {pc_name} now runs version {target} (promotion policy Auto)"
    _events.post(body, "Normal", "Promoted", message)
    _events.post(pc, "Normal", "Promoted", f"version {target} promoted by TrainingRun {meta.get('name')}")


def register(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    _runs.register(registry, deps, kind=KIND, on_succeeded=promote)
