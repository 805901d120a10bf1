"""Milestones of a run: one Kubernetes Event and one structured log line each.

Events go through kopf's event queue (batched, retried) and are reported by the component
``agentensor-operator`` (set in ``agentensor_operator._runtime``). The log line carries the
fields ``run``, ``namespace``, ``kind``, ``reason`` and ``eventType`` as ``extra`` attributes,
so the JSON log format (``agentensor operator --log-format json``) emits them as keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, cast

import kopf

log = logging.getLogger("agentensor_operator.runs")

MAX_MESSAGE_CHARS = 1024
"""Event messages are cut here: the API server refuses a note over 1 kB in events.k8s.io/v1."""


def post(obj: Mapping[str, Any], type_: Literal["Normal", "Warning"] | str, reason: str, message: str) -> None:
    """Post an Event about ``obj`` (a raw body or kopf Body) and log the same milestone once.

    Never includes secrets by design: callers pass messages built from status fields and
    names only.
    """
    message = message[:MAX_MESSAGE_CHARS]
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message)
    meta = obj.get("metadata") or {}
    fields = {
        "run": meta.get("name"),
        "namespace": meta.get("namespace"),
        "kind": obj.get("kind"),
        "reason": reason,
        "eventType": type_,
    }
    level = logging.WARNING if type_ == "Warning" else logging.INFO
    log.log(level, "%s %s/%s %s: %s", fields["kind"], fields["namespace"], fields["run"], reason, message, extra=fields)
