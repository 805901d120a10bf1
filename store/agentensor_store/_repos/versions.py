"""Prompt versions (``agentensor_prompt_versions``), numbered per ``(namespace, workflow)``."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from .._checks import is_unique_violation
from .._db import Repository, transaction
from .._errors import StoreError, VersionConflictError
from .._models import PromptVersionModel, utcnow
from .._records import VersionRecord
from .._rows import lock_key, next_version, version_record, versions_of

log = logging.getLogger("agentensor_store")

REGISTER_VERSION_ATTEMPTS = 20
"""Bound on ``register_version`` retries after losing a race for a version number."""


class VersionRepository(Repository):
    """Versions deduplicated by config checksum within ``(namespace, workflow)``."""

    def register(self, values: dict[str, Any]) -> VersionRecord:
        """The stored twin of ``values`` (same checksum), or the row inserted now under the next number.

        Raises:
            VersionConflictError: every one of :data:`REGISTER_VERSION_ATTEMPTS` attempts lost the race.
        """
        namespace, workflow = values["namespace"], values["workflow"]
        last_error: BaseException | None = None
        for attempt in range(REGISTER_VERSION_ATTEMPTS):
            try:
                rec = self._insert(values)
                log.debug("registered %s/%s version %d (%s)", namespace, workflow, rec.version, rec.checksum[:12])
                return rec
            except StoreError as e:
                if not is_unique_violation(e.__cause__):
                    raise
                last_error = e.__cause__
                log.debug("register_version(%r, %r): lost a race (attempt %d)", namespace, workflow, attempt + 1)
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
        raise VersionConflictError(
            f"register_version({workflow!r}, namespace={namespace!r}) lost the race {REGISTER_VERSION_ATTEMPTS} times"
        ) from last_error

    @transaction("register_version", write=True)
    def _insert(self, s: Session, values: dict[str, Any]) -> VersionRecord:
        """One attempt of :meth:`register`.

        Raises StoreError chaining an IntegrityError when a concurrent caller took the number.
        """
        namespace, workflow = values["namespace"], values["workflow"]
        by_checksum = versions_of(namespace, workflow).where(PromptVersionModel.checksum == values["checksum"])
        if self.db.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(namespace, workflow)})
        found = s.scalars(by_checksum).one_or_none()
        if found is not None:
            return version_record(found)
        s.execute(insert(PromptVersionModel).values({**values, "created_at": utcnow()}))
        return version_record(s.scalars(by_checksum).one())

    @transaction("get_version")
    def get(self, s: Session, namespace: str, workflow: str, version: int) -> VersionRecord | None:
        """Version number ``version`` of ``(namespace, workflow)``, or None."""
        stmt = versions_of(namespace, workflow).where(PromptVersionModel.version == version)
        row = s.scalars(stmt).one_or_none()
        return None if row is None else version_record(row)

    @transaction("list_versions")
    def list_all(self, s: Session, namespace: str, workflow: str) -> list[VersionRecord]:
        """Every version of ``(namespace, workflow)``, by number."""
        stmt = versions_of(namespace, workflow).order_by(PromptVersionModel.version)
        return [version_record(r) for r in s.scalars(stmt)]


def version_values(
    namespace: str, workflow: str, checksum: str, prompts: dict[str, str], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Insert values of a new version, numbered ``max(version) + 1`` by the database on insert."""
    return {
        "namespace": namespace,
        "workflow": workflow,
        "version": next_version(namespace, workflow),
        "checksum": checksum,
        "prompts": dict(prompts),
        "parameters": dict(parameters),
    }
