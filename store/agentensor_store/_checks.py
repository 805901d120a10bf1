"""Argument checks shared by the repositories: what the store refuses before any SQL runs."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agentensor_api import canonical_json, config_checksum

from ._errors import InvalidValueError, RunNotFoundError, VersionNotFoundError
from ._lease import RunIdentityError
from ._models import PromptVersionModel, RunModel
from ._records import VERSION_SOURCES, VersionRecord


def without_nul(value: Any) -> Any:
    """``value`` with every U+0000 in its strings and keys written as the six characters ``\\u0000``.

    PostgreSQL ``text`` and ``jsonb`` refuse NUL; one such case output must not fail the whole
    batch of case rows, so it is stored escaped (on SQLite too, so both backends read the same).
    """
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def check_identity(row: RunModel, run_id: str, kind: str, spec_checksum: str) -> None:
    if row.kind != kind or (row.spec_checksum is not None and row.spec_checksum != spec_checksum):
        stored = f"{row.kind} with spec sha256 {(row.spec_checksum or 'unrecorded')[:12]}"
        raise RunIdentityError(
            f"run id {run_id!r} belongs to a {stored}; this is a {kind} with spec sha256 {spec_checksum[:12]}; "
            "a run id is resumed only by the same kind and spec: use another run id"
        )


def check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 64:
        raise InvalidValueError(f"run_id must be 1..64 characters, got {run_id!r}")


def check_aware(value: datetime | None, label: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidValueError(f"{label} must be timezone-aware (UTC), got naive {value.isoformat()}")


def check_json(label: str, value: Any) -> None:
    """Reject what the JSON columns cannot store identically on every backend (NaN, objects)."""
    try:
        canonical_json(value)
    except (TypeError, ValueError) as e:
        raise InvalidValueError(f"{label} is not JSON-serialisable: {e}") from e


def check_checkpoint_values(
    score: float | None, train_score: float | None, scores: dict[str, float], extra: dict[str, Any] | None
) -> None:
    for label, value in (("score", score), ("train_score", train_score)):
        if value is not None and not math.isfinite(value):
            raise InvalidValueError(f"{label} must be finite or None, got {value}")
    check_json("scores", scores)
    check_json("extra", extra or {})


def require_run(s: Session, run_id: str) -> RunModel:
    row = s.get(RunModel, run_id)
    if row is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    return row


def check_namespace(namespace: str) -> None:
    """The column holds 253 characters on both backends (a Kubernetes namespace has at most 63)."""
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 253:
        raise InvalidValueError(f"namespace must be 1..253 characters, got {namespace!r}")


def check_checkpoint_version(stored: PromptVersionModel | None, version: VersionRecord, run: RunModel) -> None:
    """A checkpoint points at a version stored here, of the run's own namespace."""
    if stored is None or stored.checksum != version.checksum:
        raise VersionNotFoundError(
            f"prompt version id {version.id} ({version.workflow} v{version.version}) is not stored in this database"
        )
    if stored.namespace != run.namespace:
        raise VersionNotFoundError(
            f"prompt version id {version.id} ({stored.workflow} v{stored.version}) belongs to namespace "
            f"{stored.namespace!r}, not to the run's namespace {run.namespace!r}: versions are per namespace"
        )


def is_unique_violation(exc: BaseException | None) -> bool:
    if not isinstance(exc, IntegrityError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(exc.orig)  # SQLite


def version_checksum(source: str, prompts: dict[str, str], parameters: dict[str, Any]) -> str:
    """Validate a version's fields and return its :func:`agentensor_api.config_checksum`."""
    if source not in VERSION_SOURCES:
        raise InvalidValueError(f"source must be one of {sorted(VERSION_SOURCES)}, got {source!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise InvalidValueError("prompts must map prompt names (str) to texts (str)")
    try:
        return config_checksum(dict(prompts), dict(parameters))
    except (TypeError, ValueError) as e:
        raise InvalidValueError(f"prompts/parameters are not canonical JSON: {e}") from e
