"""The queue: which runs wait for a runner slot, in which order, and who is admitted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentensor_api import ConditionType

from ._names import WAITING_PHASES, shard_count


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
    phase = str(status.get("phase") or "Pending")
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
