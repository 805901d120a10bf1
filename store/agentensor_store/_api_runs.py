"""The run half of the :class:`~agentensor_store.Store` facade: runs, leases, stop requests, case results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from agentensor_api import TERMINAL_PHASES, RunStatus

from ._checks import check_aware, check_json, check_run_id, without_nul
from ._errors import InvalidValueError
from ._lease import DEFAULT_LEASE_SECONDS
from ._models import utcnow
from ._records import INITIAL_PHASE, RUN_KINDS, CaseRow, RunRecord
from ._repos.cases import CaseRepository, case_values
from ._repos.runs import RunRepository


class RunsApi:
    """Store methods over :class:`RunRepository` and :class:`CaseRepository` (a mixin of ``Store``)."""

    _runs: RunRepository
    _cases: CaseRepository

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        kind: str,
        namespace: str,
        name: str,
        workflow: str,
        spec: dict[str, Any],
        seed: int | None = None,
        dataset_hash: str | None = None,
    ) -> RunRecord:
        """Insert a run in phase ``Pending``; if ``run_id`` exists, return that row unchanged.

        Raises:
            InvalidValueError: ``kind`` is not ``TrainingRun``/``EvaluationRun``, an empty or
                over-long ``run_id``, or a ``spec`` that is not JSON.
        """
        check_run_id(run_id)
        if kind not in RUN_KINDS:
            raise InvalidValueError(f"kind must be one of {sorted(RUN_KINDS)}, got {kind!r}")
        check_json("spec", spec)
        now = utcnow()
        values = {
            "id": run_id,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "workflow": workflow,
            "phase": INITIAL_PHASE,
            "spec": without_nul(spec),  # an inline dataset row may hold NUL (it becomes an error row)
            "status": {},
            "seed": seed,
            "dataset_hash": dataset_hash,
            "created_at": now,
            "updated_at": now,
        }
        return self._runs.insert(values)

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def find_runs(
        self, *, namespace: str | None = None, name: str | None = None, kind: str | None = None
    ) -> list[RunRecord]:
        """Runs matching every given filter, oldest first."""
        return self._runs.find(namespace, name, kind)

    def update_run(
        self,
        run_id: str,
        *,
        phase: str | None = None,
        status: dict[str, Any] | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        dataset_hash: str | None = None,
    ) -> None:
        """Set the given fields (``None`` = leave as is; ``status`` replaces the whole dict).

        ``updated_at`` is always bumped.

        Raises:
            RunNotFoundError: no such run.
            InvalidValueError: a naive datetime, or a ``status`` that is not JSON.
        """
        check_aware(started_at, "started_at")
        check_aware(completed_at, "completed_at")
        if status is not None:
            check_json("status", status)
        fields = {
            "phase": phase,
            "status": status,
            "started_at": started_at,
            "completed_at": completed_at,
            "dataset_hash": dataset_hash,
        }
        self._runs.update(run_id, fields)

    def record_verdict(
        self,
        *,
        run_id: str,
        kind: str,
        namespace: str,
        name: str,
        workflow: str,
        spec: dict[str, Any],
        status: RunStatus,
        seed: int | None = None,
        completed_at: datetime | None = None,
    ) -> RunRecord:
        """Write a finished run's row: insert it if missing, then set its phase, status and completion.

        For a verdict the writer computed itself (e.g. the operator's aggregate of a sharded
        EvaluationRun, whose shards keep their own rows). The row is created as by
        :meth:`create_run` (an existing row keeps its kind, names, spec and seed), then gets
        ``phase = status.phase``, ``status = status.to_wire()`` and ``completed_at`` (default:
        now, UTC). Both steps are idempotent, so calling again after a fault is safe.

        Raises:
            InvalidValueError: ``status.phase`` is not ``Succeeded``/``Failed``, or the
                arguments :meth:`create_run` rejects.
        """
        if status.phase not in TERMINAL_PHASES:
            raise InvalidValueError(f"status.phase must be one of {sorted(TERMINAL_PHASES)}, got {status.phase!r}")
        check_aware(completed_at, "completed_at")
        wire = status.to_wire()
        check_json("status", wire)
        self.create_run(
            run_id=run_id, kind=kind, namespace=namespace, name=name, workflow=workflow, spec=spec, seed=seed
        )
        return self._runs.finish(run_id, status, wire, completed_at)

    # -- run identity and leases (see _lease.py) ----------------------------------------------

    def claim_run(
        self, run_id: str, *, kind: str, spec_checksum: str, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        """Check a run's identity and take its lease for ``owner``, in one conditional ``UPDATE``.

        The first claim records ``spec_checksum``. A claim succeeds when the row's kind and
        checksum match and the lease is free, expired, already ``owner``'s, or held by a dead
        process of this host. Both backends serialise the ``UPDATE`` on the row, so of two
        concurrent claimants exactly one succeeds.

        Raises:
            RunNotFoundError: no such run (call :meth:`create_run` first).
            RunIdentityError: the run is of another kind or was created with another spec;
                the message names both kinds and both checksums.
            RunLeasedError: another live process holds the lease (its owner and expiry named).
        """
        self._runs.claim(run_id, kind, spec_checksum, owner, lease_seconds)

    def renew_run_lease(self, run_id: str, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend ``owner``'s lease by ``lease_seconds`` from now; ``False`` if ``owner`` no longer holds it."""
        return self._runs.renew_lease(run_id, owner, lease_seconds)

    def release_run_lease(self, run_id: str, owner: str) -> None:
        """Drop ``owner``'s lease (no-op if another owner holds it, or none does)."""
        self._runs.release_lease(run_id, owner)

    # -- stop requests ------------------------------------------------------------------------

    def request_stop(self, run_id: str) -> bool:
        """Ask a run to stop gracefully (``agentensor.dev/stop=true``); True if the request is new.

        The runner polls :meth:`stop_requested` at candidate boundaries. Idempotent: the first
        request's time is kept.

        Raises:
            RunNotFoundError: no such run.
        """
        return self._runs.request_stop(run_id)

    def stop_requested(self, run_id: str) -> datetime | None:
        """When a stop was requested for the run (aware UTC), or None (also for an unknown run)."""
        return self._runs.stop_requested(run_id)

    # -- case results -------------------------------------------------------------------------

    def record_cases(self, run_id: str, rows: Sequence[CaseRow]) -> None:
        """Upsert case results on ``(run_id, stage, case_id)`` in one transaction.

        Recording a stage again (e.g. after a crash and resume) replaces the earlier rows; if
        ``rows`` holds the same key twice, the last one wins. ``created_at`` keeps the time of
        the first recording.

        Raises:
            RunNotFoundError: no such run.
            InvalidValueError: a non-finite latency, or a value that is not JSON (NaN too).
        """
        if rows:
            self._cases.upsert(run_id, case_values(run_id, rows, utcnow()))

    def list_cases(self, run_id: str, *, stage: str | None = None, errors_only: bool = False) -> list[CaseRow]:
        """A run's case results in recording order, optionally of one stage or errors only."""
        return self._cases.list_rows(run_id, stage, errors_only)

    def iter_cases(self, run_id: str, *, stage: str | None = None, batch_size: int = 1000) -> Iterator[CaseRow]:
        """A run's case results in recording order, read ``batch_size`` rows per query.

        Keyset pagination on the row id (``id > last ORDER BY id LIMIT n``), one short
        transaction per batch, so memory stays bounded however many rows the run has and no
        connection is held while the caller works. Rows recorded while iterating may or may not
        appear (those with a higher id do).

        Raises:
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        last = 0
        while True:
            rows = self._cases.batch(run_id, stage, last, batch_size)
            yield from rows
            if len(rows) < batch_size:
                return
            last = int(rows[-1].id or 0)
