"""What wakes a run's reconcile: change notices from the watches and the database, in memory.

Each unfinished run has one kopf daemon that reconciles it, then sleeps until something about
it changes (or a slow safety resync is due). Three sources wake it:

- **the run's own watch events** (kopf's census index, :meth:`Changes.run_seen`): a new spec
  generation or a deletion;
- **its Jobs' watch events** (:class:`JobCache`, fed by kopf's Job index and a DELETED handler):
  the Job appeared, progressed, finished or vanished;
- **the database** (PostgreSQL ``LISTEN``, :meth:`Changes.notified`): the runner wrote its
  status or a checkpoint.

A waiting run is also woken when a runner slot frees (:meth:`Changes.wake_queue_head`). Nothing
here polls: the cost follows changes, not live runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._decisions import LABEL_RUN_UID, JobPhase, JobState, QueueIndex, job_state

_SHARD_SUFFIX = re.compile(r"^(?P<uid>.+)-s\d+$")


def run_uid_of(run_id: str) -> str:
    """The run's uid from a database run id (a shard's ``<uid>-s<i>`` maps to ``<uid>``)."""
    m = _SHARD_SUFFIX.match(run_id)
    return m.group("uid") if m else run_id


def trimmed_job(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a runner Job the operator reads (name, labels, annotations, parallelism,
    deletion, status): what the cache keeps instead of the whole object."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("agentensor.dev/")
            },
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "spec": {"parallelism": (body.get("spec") or {}).get("parallelism")},
        "status": dict(body.get("status") or {}),
    }


class JobCache:
    """Runner Jobs by run uid, as the Job watch last showed them, with the count of active ones.

    ``active`` is kept as Jobs come, change and go, so the cap is checked without listing Jobs.
    """

    def __init__(self) -> None:
        self._by_run: dict[str, dict[str, dict[str, Any]]] = {}
        self._active: dict[tuple[str, str], bool] = {}
        self._count = 0

    def seen(self, body: Mapping[str, Any]) -> tuple[str, bool]:
        """Record a Job's latest state; ``(run uid, whether it stopped holding a slot)``."""
        job = trimmed_job(body)
        meta = job["metadata"]
        uid = str(meta["labels"].get(LABEL_RUN_UID) or "")
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self._by_run.setdefault(uid, {})[key[1]] = job
        was = self._active.get(key, False)
        now = job_state(job).phase == JobPhase.ACTIVE
        self._active[key] = now
        self._count += int(now) - int(was)
        return uid, was and not now

    def gone(self, body: Mapping[str, Any]) -> tuple[str, bool]:
        """Forget a deleted Job; ``(run uid, whether it held a slot)``."""
        meta = body.get("metadata") or {}
        uid = str((meta.get("labels") or {}).get(LABEL_RUN_UID) or "")
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        jobs = self._by_run.get(uid)
        if jobs is not None:
            jobs.pop(key[1], None)
            if not jobs:
                self._by_run.pop(uid, None)
        held = self._active.pop(key, False)
        self._count -= int(held)
        return uid, held

    def resync(self, bodies: Iterable[Mapping[str, Any]]) -> set[str]:
        """Replace the cache with a full list of the runner Jobs; the run uids whose Jobs changed
        (a Job whose deletion the watch missed, say)."""
        before = {uid: {n: j.get("status") for n, j in jobs.items()} for uid, jobs in self._by_run.items()}
        self._by_run, self._active, self._count = {}, {}, 0
        for body in bodies:
            self.seen(body)
        after = {uid: {n: j.get("status") for n, j in jobs.items()} for uid, jobs in self._by_run.items()}
        return {uid for uid in before.keys() | after.keys() if before.get(uid) != after.get(uid)}

    def of(self, uid: str) -> list[dict[str, Any]]:
        """The run's Jobs (trimmed), by name."""
        return [job for _, job in sorted((self._by_run.get(uid) or {}).items())]

    def has(self, uid: str) -> bool:
        return bool(self._by_run.get(uid))

    def active(self) -> int:
        """Runner Jobs holding a slot of the cap (neither finished, stopped nor being deleted)."""
        return self._count

    def states(self, uid: str) -> list[JobState]:
        return [job_state(j) for j in self.of(uid)]


class Changes:
    """Per-run wake-up flags, the queue index, admissions in flight, and the Job cache.

    Attributes:
        queue: the waiting runs, sorted (:class:`~agentensor_operator._decisions.QueueIndex`).
        jobs: runner Jobs by run uid (:class:`JobCache`).
        reserved: runs admitted whose status does not say so yet, with the slots they took; they
            count as in use until their Jobs show up (and are skipped in the queue meanwhile).
    """

    def __init__(self) -> None:
        self.queue = QueueIndex()
        self.jobs = JobCache()
        self.reserved: dict[str, int] = {}
        self._flags: dict[str, asyncio.Event] = {}
        self._generations: dict[str, tuple[int, bool]] = {}

    # -- flags ----------------------------------------------------------------------------------

    def register(self, uid: str) -> asyncio.Event:
        flag = self._flags.get(uid)
        if flag is None:
            flag = self._flags[uid] = asyncio.Event()
        return flag

    def unregister(self, uid: str) -> None:
        """The run's daemon exited (finished or deleted): forget it everywhere."""
        self._flags.pop(uid, None)
        self._generations.pop(uid, None)
        self.reserved.pop(uid, None)
        if self.queue.discard(uid):
            self.wake_queue_head()

    def wake(self, uid: str) -> None:
        flag = self._flags.get(uid)
        if flag is not None:
            flag.set()

    def wake_all(self) -> None:
        for flag in self._flags.values():
            flag.set()

    def notified(self, run_ids: Iterable[str]) -> None:
        """Database notifications (run ids, shards included): wake those runs."""
        for run_id in run_ids:
            self.wake(run_uid_of(run_id))

    # -- slots ----------------------------------------------------------------------------------

    def in_use(self) -> int:
        """Slots held: active Jobs, plus admitted runs whose Jobs the watch has not shown yet."""
        pending = sum(n for uid, n in self.reserved.items() if not self.jobs.has(uid))
        return self.jobs.active() + pending

    def wake_queue_head(self, cap: int | None = None) -> None:
        """A slot may have freed (or a run ahead left): wake the runs that may now fit.

        With ``cap`` known, only the first ``cap - in_use`` waiting runs (each needs a slot);
        otherwise the first one, which wakes the next as it is admitted.
        """
        n = max(0, cap - self.in_use()) if cap is not None else 1
        for uid in self.queue.head(n, skip=self.reserved):
            self.wake(uid)

    # -- watch events ---------------------------------------------------------------------------

    def run_seen(self, uid: str, generation: int, deleting: bool, entry: Any) -> bool:
        """A run's watch event: update the queue; wake it on a new generation or deletion.

        Returns ``True`` if it left the queue (a slot's worth of room for the runs behind it).
        """
        if uid in self.reserved:
            entry = None  # admitted: a "Queued" event now is one from before the admission
        left = self.queue.put(uid, entry)
        marker = (generation, deleting)
        if self._generations.get(uid) != marker:
            self._generations[uid] = marker
            self.wake(uid)
        return left

    async def wait(self, uid: str, stopped: Any, timeout_seconds: float) -> None:
        """Sleep until ``uid`` is woken, kopf stops its daemon, or ``timeout_seconds`` pass."""
        flag = self.register(uid)
        if flag.is_set():
            return
        waits = {asyncio.ensure_future(flag.wait()), asyncio.ensure_future(stopped.wait())}
        try:
            await asyncio.wait(waits, timeout=timeout_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
