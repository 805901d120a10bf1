"""Runs: their rows, verdicts, identity leases and stop requests (``agentensor_runs``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from agentensor_api import RunStatus

from .._checks import check_identity, require_run, without_nul
from .._db import Repository, transaction
from .._lease import RunLeasedError, owner_is_dead
from .._models import RunModel, utcnow
from .._records import RunRecord
from .._rows import run_record


class RunRepository(Repository):
    """The run rows; arguments are validated by the :class:`~agentensor_store.Store` facade."""

    @transaction("create_run", write=True)
    def insert(self, s: Session, values: dict[str, Any]) -> RunRecord:
        """Insert ``values`` unless the id exists; the stored row either way."""
        stmt = self.db.upsert(RunModel).values(values)
        s.execute(stmt.on_conflict_do_nothing(index_elements=[RunModel.id]))
        return run_record(s.get_one(RunModel, values["id"]))

    @transaction("get_run")
    def get(self, s: Session, run_id: str) -> RunRecord | None:
        """The run, or None."""
        row = s.get(RunModel, run_id)
        return None if row is None else run_record(row)

    @transaction("find_runs")
    def find(self, s: Session, namespace: str | None, name: str | None, kind: str | None) -> list[RunRecord]:
        """Runs matching every given filter, oldest first."""
        stmt = select(RunModel).order_by(RunModel.created_at, RunModel.id)
        if namespace is not None:
            stmt = stmt.where(RunModel.namespace == namespace)
        if name is not None:
            stmt = stmt.where(RunModel.name == name)
        if kind is not None:
            stmt = stmt.where(RunModel.kind == kind)
        return [run_record(r) for r in s.scalars(stmt)]

    @transaction("update_run", write=True)
    def update(self, s: Session, run_id: str, fields: dict[str, Any]) -> None:
        """Set the non-None ``fields`` (``status`` escaped), bump ``updated_at`` and notify."""
        row = require_run(s, run_id)
        for column, value in fields.items():
            if value is not None:
                setattr(row, column, without_nul(value) if column == "status" else value)
        row.updated_at = utcnow()
        self.db.notify_run_changed(s, run_id)

    @transaction("record_verdict", write=True)
    def finish(
        self, s: Session, run_id: str, status: RunStatus, wire: dict[str, Any], completed_at: datetime | None
    ) -> RunRecord:
        """Set an existing run's phase, status and completion; notify."""
        row = s.get_one(RunModel, run_id)
        row.phase = status.phase
        row.status = wire
        row.completed_at = completed_at or utcnow()
        row.updated_at = utcnow()
        self.db.notify_run_changed(s, run_id)
        return run_record(row)

    @transaction("claim_run", write=True)
    def claim(self, s: Session, run_id: str, kind: str, spec_checksum: str, owner: str, lease_seconds: float) -> None:
        """See :meth:`~agentensor_store.Store.claim_run`."""
        row = require_run(s, run_id)
        check_identity(row, run_id, kind, spec_checksum)
        now = utcnow()
        free = [RunModel.lease_owner.is_(None), RunModel.lease_owner == owner, RunModel.lease_expires_at < now]
        if owner_is_dead(row.lease_owner):
            free.append(RunModel.lease_owner == row.lease_owner)
        stmt = (
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.kind == kind, or_(*free))
            .where(or_(RunModel.spec_checksum.is_(None), RunModel.spec_checksum == spec_checksum))
            .values(
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                spec_checksum=spec_checksum,
            )
            .execution_options(synchronize_session=False)
        )
        if s.execute(stmt).rowcount == 1:  # type: ignore[attr-defined]
            return
        s.expire_all()
        row = s.get_one(RunModel, run_id)
        check_identity(row, run_id, kind, spec_checksum)
        until = row.lease_expires_at.isoformat(timespec="seconds") if row.lease_expires_at else "?"
        raise RunLeasedError(
            f"run {run_id!r} is being executed by another process ({row.lease_owner}, lease until {until}); "
            "wait for it to finish, or use another run id"
        )

    @transaction("renew_run_lease", write=True)
    def renew_lease(self, s: Session, run_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend ``owner``'s lease; False if ``owner`` no longer holds it."""
        stmt = (
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]

    @transaction("release_run_lease", write=True)
    def release_lease(self, s: Session, run_id: str, owner: str) -> None:
        """Drop ``owner``'s lease (no-op if another owner holds it, or none does)."""
        stmt = (
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        s.execute(stmt)

    @transaction("request_stop", write=True)
    def request_stop(self, s: Session, run_id: str) -> bool:
        """Set ``stop_requested_at`` once; True if the request is new."""
        require_run(s, run_id)
        result = s.execute(
            update(RunModel)
            .where(RunModel.id == run_id, RunModel.stop_requested_at.is_(None))
            .values(stop_requested_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @transaction("stop_requested")
    def stop_requested(self, s: Session, run_id: str) -> datetime | None:
        """When a stop was requested, or None."""
        return s.scalar(select(RunModel.stop_requested_at).where(RunModel.id == run_id))
