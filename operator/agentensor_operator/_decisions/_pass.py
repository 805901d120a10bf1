"""One reconcile pass of a run's daemon: whether it runs, what it sees, when it runs again.

The daemon (``handlers/_daemon.py``) applies these; nothing here reads the cluster or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentensor_api import TERMINAL_PHASES, ConditionType, Reason, condition_of

from ._status import parse_run_status

Sent = tuple[str, dict[str, Any]]
"""``(resourceVersion the status was patched at, the status after that patch)``."""

RETRY_SOON = frozenset(
    {
        (ConditionType.DATABASE_AVAILABLE, Reason.DATABASE_UNAVAILABLE),
        (ConditionType.ACCEPTED, Reason.PROMPT_CONFIG_NOT_FOUND),
    }
)
"""``(condition, reason)`` with status False that nothing would wake the run from: the database
coming back (the listener is down with it) or its PromptConfig appearing. Such runs are looked
at again after the daemon's short retry delay instead of at the resync."""


def needs_reconcile(body: Mapping[str, Any], **_: Any) -> bool:
    """Daemon filter: unfinished runs, and finished ones whose spec changed since last looked at
    (kopf stops a run's daemon once this turns False)."""
    status = parse_run_status(body.get("status"))
    if status.phase not in TERMINAL_PHASES:
        return True
    accepted = condition_of(status, ConditionType.ACCEPTED)
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    return accepted is None or accepted.observed_generation != generation


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` after a JSON merge patch (RFC 7386): what the API server stores.

    A ``None`` value removes its key; a mapping merges key by key; anything else replaces.
    Neither argument is modified.
    """
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def retry_soon(status: Mapping[str, Any]) -> bool:
    """True when a raw ``.status`` has a False condition listed in :data:`RETRY_SOON`."""
    return any(
        isinstance(c, Mapping) and c.get("status") == "False" and (c.get("type"), c.get("reason")) in RETRY_SOON
        for c in status.get("conditions") or []
    )


def pass_view(body: Mapping[str, Any], sent: Sent | None) -> Mapping[str, Any]:
    """The run as the pass should see it: the live body, with the status we last patched while
    the watch has not delivered that patch yet (same resourceVersion as before it)."""
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    if sent is None or sent[0] != version:
        return body
    return {**dict(body), "status": sent[1]}


def resync_seconds(uid: str, base_seconds: float) -> float:
    """The run's safety resync interval: ``base_seconds`` times 0.75-1.25, fixed per uid.

    The factor comes from the uid's first 8 hex digits, so runs created together do not all
    resync in the same second, and one run's interval stays the same across passes.
    """
    return base_seconds * (0.75 + 0.5 * (int(uid.replace("-", "")[:8] or "0", 16) / 0xFFFFFFFF))
