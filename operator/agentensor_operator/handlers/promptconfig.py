"""PromptConfig handlers: register the inline spec as a version, materialize the active one.

On create/update (at once) and on a timer (for best scores arriving from TrainingRuns):

Versions, best scores and checkpoints are those of the PromptConfig's own namespace: the
workflow key is ``(metadata.namespace, spec.workflow)``, so a PromptConfig never reads, counts
or materializes another namespace's versions, whatever ``spec.workflow`` it names.

1. the inline ``spec.prompts``/``parameters`` become a checksummed version (deduplicated);
2. ``spec.activeVersion`` (or the inline version) is written to ConfigMap ``<name>-active``,
   owned by the PromptConfig; an unknown version, or a ``spec.active`` snapshot whose text and
   checksum disagree (with each other or with the stored version), keeps the last good
   ConfigMap and says so (``Ready=False``, VersionNotFound / ChecksumMismatch);
3. status: activeVersion/activeChecksum, latestVersion, versions, bestVersion/bestScore.

Deleting a PromptConfig deletes the ConfigMap (owner reference) and keeps every version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from agentensor_api import EventReason, EventType, ManifestError, PromptConfig, Reason
from agentensor_store import VersionRecord

from .. import _decisions as d
from .._decisions._promptconfig import active_snapshot_error, version_not_found_message
from .._deps import Deps
from .._errors import kopf_errors
from . import _events

KIND = "PromptConfig"


async def reconcile_promptconfig(deps: Deps, body: Mapping[str, Any], patch: dict[str, Any]) -> None:
    """One pass over a PromptConfig: register its inline version, materialize the active one, set status."""
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 1)
    raw = dict(body.get("status") or {})
    now = deps.now()
    try:
        pc = d.validate_promptconfig(body)
    except ManifestError as e:
        invalid = (Reason.INVALID_SPEC, f"{e.field}: {e.reason}")
        status = d.promptconfig_status(
            raw, generation=generation, active_version=None, active_checksum=None, latest_version=None,
            versions=0, best_version=None, best_score=None, error=invalid, now=now,
        )  # fmt: skip
        _commit(patch, raw, status)
        return
    active, error = await _active_version(deps, pc)
    if error is None:
        await _materialize(deps, body, raw, active)
    workflow, namespace = pc.spec.workflow, pc.namespace
    versions = await deps.db(deps.store.list_versions, workflow, namespace=namespace)
    best = await deps.db(deps.store.best_checkpoint, workflow=workflow, namespace=namespace)
    status = d.promptconfig_status(
        raw,
        generation=generation,
        active_version=active.version,
        active_checksum=active.checksum,
        latest_version=versions[-1].version if versions else None,
        versions=len(versions),
        best_version=best.version if best else None,
        best_score=best.score if best else None,
        error=error,
        now=now,
    )
    _commit(patch, raw, status)
    if error is not None:
        _events.post(body, EventType.WARNING, error[0], error[1])


async def _active_version(deps: Deps, pc: PromptConfig) -> tuple[VersionRecord, tuple[str, str] | None]:
    """The version to make live (``spec.activeVersion``, else the inline spec, registered here).

    Both are looked up in the PromptConfig's namespace only. Returns ``(version, error)``;
    ``error`` is ``(reason, message)`` when ``spec.activeVersion`` names no stored version of
    the namespace (VersionNotFound, also when another namespace has one under the same workflow
    key) or ``spec.active`` disagrees with its text or with the stored version (ChecksumMismatch);
    the version is then the inline one (for the status only).
    """
    inline = await deps.db(deps.store.register_inline_version, pc)
    wanted = pc.spec.active_version
    if wanted is None:
        return inline, None
    stored = await deps.db(deps.store.get_version, pc.spec.workflow, wanted, namespace=pc.namespace)
    if stored is None:
        return inline, (Reason.VERSION_NOT_FOUND, version_not_found_message(pc.spec.workflow, pc.namespace, wanted))
    mismatch = active_snapshot_error(pc.spec.active, version=wanted, stored_checksum=stored.checksum)
    if mismatch is not None:
        return inline, mismatch
    return stored, None


async def _materialize(deps: Deps, body: Mapping[str, Any], raw: Mapping[str, Any], active: VersionRecord) -> None:
    """Write ``active`` to the ``<name>-active`` ConfigMap if it differs; an Event when the version changes."""
    namespace = str((body.get("metadata") or {}).get("namespace") or "default")
    desired = d.active_config_map(
        body, version=active.version, checksum=active.checksum, prompts=active.prompts, parameters=active.parameters
    )
    existing = await deps.kube.get_config_map(namespace, desired["metadata"]["name"])
    if existing is not None and (existing.get("data") or {}) == desired["data"]:
        return
    await deps.kube.apply_config_map(namespace, desired)
    previous = raw.get("activeVersion")
    if previous != active.version:
        was = f", was {previous}" if previous is not None else ""
        _events.post(
            body,
            EventType.NORMAL,
            EventReason.ACTIVATED,
            f"version {active.version} ({active.checksum[:12]}) is live{was}",
        )


def _commit(patch: dict[str, Any], raw: Mapping[str, Any], status: Any) -> None:
    change = d.status_patch(raw, status)
    if change:
        patch.setdefault("status", {}).update(change)


def register(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    async def reconcile(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
        deps.capture_indexes(kwargs)
        await reconcile_promptconfig(deps, body, patch)

    handler = deps.metrics.timed(KIND, kopf_errors(reconcile))
    resource = (d.GROUP_NAME, d.API_VERSION_NAME, d.PLURALS[KIND])
    kopf.on.create(*resource, id="promptconfig_create", registry=registry)(handler)
    kopf.on.update(*resource, id="promptconfig_update", field="spec", registry=registry)(handler)
    kopf.on.resume(*resource, id="promptconfig_resume", registry=registry)(handler)
    kopf.timer(
        *resource,
        id="promptconfig_reflect",
        interval=deps.settings.status.promptconfig_interval_seconds,
        registry=registry,
    )(handler)
