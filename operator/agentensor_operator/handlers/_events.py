"""Kubernetes Events for milestones, posted through kopf's event queue (batched, retried)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import kopf


def post(obj: Mapping[str, Any], type_: Literal["Normal", "Warning"] | str, reason: str, message: str) -> None:
    """Post an Event about ``obj`` (a raw body or kopf Body); never includes secrets by design:
    callers pass messages built from status fields and names only."""
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message[:1024])
