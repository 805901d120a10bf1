"""The daemon of one run: a reconcile pass, at most one status patch, then sleep until it changes.

Each unfinished run has a kopf daemon that runs a pass (``_reconcile.reconcile_run``), then
sleeps until something about the run changes (its watch events, its Jobs' events, a database
NOTIFY from its runner: see ``_changes``) or a slow safety resync is due. The pass is
idempotent, so a restart simply carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from agentensor_api import RunStatus

from .. import _decisions as d
from .._deps import Deps
from .._errors import KubernetesApiError

log = logging.getLogger("agentensor_operator")

RETRY_SECONDS = 5.0
"""Seconds before a pass that failed unexpectedly (or could not patch status) runs again."""

OnSucceeded = Callable[[Deps, Mapping[str, Any], RunStatus], Awaitable[None]]
"""Called once when a run first reflects as Succeeded (TrainingRun: Auto promotion)."""
Reconcile = Callable[..., Awaitable[None]]


async def run_daemon(
    deps: Deps,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    *,
    plural: str,
    reconcile: Reconcile,
    on_succeeded: OnSucceeded | None,
) -> None:
    """Reconcile a run, then sleep until it changes; until kopf stops the daemon (finished/deleted).

    At most one status patch per pass, and only when the status changed. ``body`` is kopf's live
    view of the run; until the watch shows our last patch, the pass reads the status it sent.
    """
    ref = d.run_ref(body)
    changes = deps.changes
    flag = changes.register(ref.uid)
    resync = d.resync_seconds(ref.uid, deps.settings.status.resync_seconds)
    sent: d.Sent | None = None
    try:
        while not stopped:
            flag.clear()
            view = d.pass_view(body, sent)
            patch: dict[str, Any] = {}
            delay = await _one_pass(deps, ref, view, patch, reconcile, on_succeeded, resync)
            status = patch.get("status")
            if d.retry_soon(d.merge_patch(dict(view.get("status") or {}), status or {})):
                delay = min(delay, RETRY_SECONDS)
            if status and not stopped:
                patched = await _patch_status(deps, ref, plural, body, view, status)
                if patched is None:
                    delay = RETRY_SECONDS
                else:
                    sent = patched
            await changes.wait(ref.uid, stopped, delay)
    finally:
        changes.unregister(ref.uid)


async def _one_pass(
    deps: Deps,
    ref: d.RunRef,
    view: Mapping[str, Any],
    patch: dict[str, Any],
    reconcile: Reconcile,
    on_succeeded: OnSucceeded | None,
    resync: float,
) -> float:
    """Run one pass into ``patch``; the seconds until the next one (kopf's delay, a retry or ``resync``)."""
    try:
        await reconcile(deps, view, patch, on_succeeded=on_succeeded)
    except kopf.TemporaryError as e:
        return float(e.delay or RETRY_SECONDS)
    except kopf.PermanentError as e:
        log.warning("%s %s/%s: %s", ref.kind, ref.namespace, ref.name, e)
    except Exception:
        log.exception("%s %s/%s: reconcile failed", ref.kind, ref.namespace, ref.name)
        return RETRY_SECONDS
    return resync


async def _patch_status(
    deps: Deps, ref: d.RunRef, plural: str, body: Mapping[str, Any], view: Mapping[str, Any], status: Any
) -> d.Sent | None:
    """Patch ``.status``; ``(resourceVersion before, status after)``, or None if the API refused."""
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    try:
        await deps.kube.patch_status(ref.namespace, plural, ref.name, status)
    except KubernetesApiError as e:
        log.warning("%s %s/%s: %s", ref.kind, ref.namespace, ref.name, e)
        return None
    return version, d.merge_patch(dict(view.get("status") or {}), status)
