"""TrainingRun handlers: the shared run reconcile, plus Auto promotion when a run succeeds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from agentensor_api import TERMINAL_PHASES, EventReason, EventType, Reason, RunStatus
from agentensor_store import RunNotFoundError

from .. import _decisions as d
from .._deps import Deps
from . import _events, _runs

KIND = "TrainingRun"

STOP_ANNOTATION = "agentensor.dev/stop"
"""``kubectl annotate trainingrun NAME agentensor.dev/stop=true``: stop gracefully (StopRequested)."""


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
    _events.post(body, EventType.NORMAL, EventReason.PROMOTED, message)
    _events.post(
        pc, EventType.NORMAL, EventReason.PROMOTED, f"version {target} promoted by TrainingRun {meta.get('name')}"
    )


async def request_stop(deps: Deps, body: Mapping[str, Any], requested: set[str]) -> None:
    """``agentensor.dev/stop=true`` on an unfinished run: record the stop request in the store.

    The runner polls :meth:`agentensor_store.Store.request_stop`'s flag at candidate boundaries and
    ends like an exhausted budget (reason ``StopRequested``; holdout still compared). Before the
    runner has created the run's row there is nothing to flag; a later watch event of the run (its
    status moves once the runner starts) tries again. ``requested`` keeps this process from writing
    twice for one run.
    """
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    phase = (body.get("status") or {}).get("phase")
    if not uid or uid in requested or phase in TERMINAL_PHASES:
        return
    try:
        new = await deps.db(deps.store.request_stop, uid)
    except RunNotFoundError:
        return
    requested.add(uid)
    if new:
        _events.post(
            body,
            EventType.NORMAL,
            Reason.STOP_REQUESTED,
            f"{STOP_ANNOTATION}=true: the run stops at its next candidate",
        )


def register(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    _runs.register(registry, deps, kind=KIND, on_succeeded=promote)
    requested: set[str] = set()

    async def stop(body: kopf.Body, **_: Any) -> None:
        await request_stop(deps, body, requested)

    kopf.on.event(
        d.GROUP_NAME,
        d.API_VERSION_NAME,
        d.PLURALS[KIND],
        id="trainingruns_stop",
        annotations={STOP_ANNOTATION: "true"},
        registry=registry,
    )(stop)
