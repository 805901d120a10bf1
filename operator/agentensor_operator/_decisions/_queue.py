"""The queue: which runs wait for a runner slot, in which order, and who is admitted."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentensor_api import WAITING_PHASES, ConditionType, Phase

from ._names import shard_count


@dataclass(frozen=True, slots=True, order=True)
class QueueEntry:
    """A run waiting for a runner slot; ordering is creation time, then uid."""

    created: str
    uid: str
    kind: str = ""
    namespace: str = ""
    name: str = ""
    slots: int = 1
    """Runner Jobs the run needs at once (its shards)."""


@dataclass(frozen=True, slots=True)
class RunCensus:
    """One run as the census sees it (for metrics and the queue index)."""

    kind: str
    namespace: str
    name: str
    phase: str
    entry: QueueEntry | None
    uid: str = ""


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def census(body: Mapping[str, Any], *, per_pod: int = 1_000_000, cap: int = 1) -> RunCensus:
    """Index a run: its phase, and its queue entry if it waits for a runner slot.

    A run waits when it is Pending or Queued, is not suspended, and is not refused
    (``Accepted=False``: invalid spec or missing PromptConfig). ``per_pod``/``cap`` size its
    shards (:func:`shard_count`), i.e. the slots it needs.
    """
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    phase = str(status.get("phase") or Phase.PENDING)
    accepted = _condition(status, ConditionType.ACCEPTED)
    waiting = (
        phase in WAITING_PHASES
        and not spec.get("suspend")
        and not (accepted is not None and accepted.get("status") == "False")
        and not meta.get("deletionTimestamp")
    )
    entry = (
        QueueEntry(
            created=str(meta.get("creationTimestamp") or ""),
            uid=str(meta.get("uid") or ""),
            kind=str(body.get("kind") or ""),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            slots=shard_count(str(body.get("kind")), _int(spec.get("parallelism"), 4), per_pod=per_pod, cap=cap),
        )
        if waiting
        else None
    )
    return RunCensus(
        kind=str(body.get("kind") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        phase=phase,
        entry=entry,
        uid=str(meta.get("uid") or ""),
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a waiting run may get a Job now, and its place in the queue (0 = head)."""

    admit: bool
    position: int
    free: int


def queue_position(queue: Iterable[QueueEntry], uid: str) -> int:
    """0-based position of ``uid`` in creation order; a run missing from the index goes last.

    Linear (no sort): every timer tick of every waiting run asks, so this stays O(n).
    """
    entries = {(e.created, e.uid) for e in queue}
    mine = next((key for key in entries if key[1] == uid), None)
    if mine is None:
        return len(entries)
    return sum(1 for key in entries if key < mine)


def admission(queue: Iterable[QueueEntry], uid: str, *, active: int, cap: int, slots: int = 1) -> Admission:
    """Admit ``uid`` iff the slots of the waiting runs created before it, plus its own
    ``slots``, fit in ``cap - active`` (gang admission: a sharded run starts all shards at once).

    ``queue`` may be stale (a run already given a Job may still be listed while its status
    patch is in flight); that only delays admission, it never exceeds the cap, because
    ``active`` is counted from the API.
    """
    free = max(0, cap - active)
    entries = {(e.created, e.uid): e.slots for e in queue}
    mine = next((key for key in entries if key[1] == uid), None)
    if mine is None:
        ahead = [n for n in entries.values()]
        needed = slots
    else:
        ahead = [n for key, n in entries.items() if key < mine]
        needed = entries[mine]
    return Admission(admit=sum(ahead) + needed <= free, position=len(ahead), free=free)


class QueueIndex:
    """The waiting runs, kept sorted by ``(created, uid)`` as they come and go.

    Fed by the run watch (:meth:`put` with the run's census entry, ``None`` when it no longer
    waits; :meth:`discard` when it is gone), so a timer pass never rebuilds or scans the queue:
    :meth:`position` is a bisection (O(log n)), :meth:`put`/:meth:`discard` an insertion into a
    sorted list (O(n) memmove, about a microsecond at 10,000 entries).
    """

    def __init__(self) -> None:
        self._keys: list[tuple[str, str]] = []
        self._entries: dict[str, QueueEntry] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def put(self, uid: str, entry: QueueEntry | None) -> bool:
        """Insert, move or (``entry`` None) remove ``uid``; ``True`` if it left the queue."""
        old = self._entries.get(uid)
        if old == entry:
            return False
        if old is not None:
            self._remove(old)
        if entry is None:
            return old is not None
        self._entries[uid] = entry
        bisect.insort(self._keys, (entry.created, uid))
        return False

    def discard(self, uid: str) -> bool:
        """Remove ``uid``; ``True`` if it was queued."""
        return self.put(uid, None)

    def _remove(self, entry: QueueEntry) -> None:
        key = (entry.created, entry.uid)
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            del self._keys[i]
        self._entries.pop(entry.uid, None)

    def position(self, uid: str) -> int:
        """0-based place of ``uid`` in creation order; a run not in the queue goes last."""
        entry = self._entries.get(uid)
        if entry is None:
            return len(self._keys)
        return bisect.bisect_left(self._keys, (entry.created, uid))

    def beyond_cap(self, uid: str, *, cap: int, reserved: int) -> bool:
        """True when ``uid`` waits so far back that this pass cannot admit it: its position, less
        the ``reserved`` admissions still listed ahead of Jobs, is at least ``cap``. A run not in
        the queue (admitted, suspended, refused or unknown) is never beyond the cap."""
        return uid in self and self.position(uid) - reserved >= cap

    def head(self, n: int, *, skip: Collection[str] = ()) -> list[str]:
        """The uids of the first ``n`` waiting runs, leaving out those in ``skip``."""
        out: list[str] = []
        for _, uid in self._keys:
            if len(out) >= n:
                break
            if uid not in skip:
                out.append(uid)
        return out

    def admission(self, uid: str, *, in_use: int, cap: int, slots: int, skip: Collection[str] = ()) -> Admission:
        """:func:`admission` against this index, in O(position) only when the run may fit.

        ``in_use`` counts the runner slots held (active Jobs plus admissions whose Jobs are not
        seen yet); ``skip`` holds uids already admitted but still listed (their slots are in
        ``in_use``).
        """
        free = max(0, cap - in_use)
        entry = self._entries.get(uid)
        needed = entry.slots if entry is not None else slots
        position = self.position(uid)
        if position >= free + len(skip):  # every run ahead needs a slot: no need to add them up
            return Admission(admit=False, position=position, free=free)
        ahead = 0
        for _, other in self._keys[:position]:
            if other not in skip:
                ahead += self._entries[other].slots
        return Admission(admit=ahead + needed <= free, position=position, free=free)
