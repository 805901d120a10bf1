"""Registration of the run kinds (TrainingRun, EvaluationRun) and of the runner Job watch.

Wiring only: each run kind gets a census index (feeding the sorted queue) and a reconcile
daemon; the Job watch feeds the Job cache. The work is done elsewhere:

    _daemon      the daemon loop: a pass, at most one status patch, sleep until the run changes
    _reconcile   one pass: validate, then queue/admit or reflect, and the status patch
    _admission   a run without Jobs: suspended, waiting, refused, or admitted with its Job(s)
    _started     a run with Jobs: suspend, adopt, reflect, stop retries, aggregate shards
"""

from __future__ import annotations

from typing import Any

import kopf

from .. import _decisions as d
from .._deps import Deps
from .._errors import kopf_errors
from ._daemon import RETRY_SECONDS, OnSucceeded, run_daemon
from ._reconcile import reconcile_run


def register(registry: kopf.OperatorRegistry, deps: Deps, *, kind: str, on_succeeded: OnSucceeded | None) -> None:
    """Register the census index and the reconcile daemon for one run kind.

    No change handlers: kopf would then keep a copy of every spec (inline datasets included)
    in an annotation. Deleted runs leave the census, which prunes their metrics and caches.
    The census index also feeds the sorted queue and wakes a run on a new generation.
    """
    plural = d.PLURALS[kind]
    jobs = deps.settings.jobs
    changes = deps.changes

    # Index and event handlers are coroutines so that kopf runs them on the event loop, where every
    # pass also reads and writes ``deps.changes``: kopf runs a sync handler in a thread of its
    # executor, and one that popped a reservation while a pass iterated the reservations raised
    # "dictionary changed size during iteration" (2 of 2,000 runs admitted at once never got a Job).
    async def census(body: kopf.Body, **_: Any) -> dict[str, d.RunCensus]:
        entry = d.census(body, per_pod=jobs.shard_concurrency, cap=jobs.max_concurrent_jobs)
        meta = body.get("metadata") or {}
        generation = int(meta.get("generation") or 1)
        if changes.run_seen(entry.uid, generation, bool(meta.get("deletionTimestamp")), entry.entry):
            changes.wake_queue_head(jobs.max_concurrent_jobs)
        return {"all": entry}

    kopf.index(d.GROUP_NAME, d.API_VERSION_NAME, plural, id=f"{plural}_census", registry=registry)(census)

    reconcile = deps.metrics.timed(kind, kopf_errors(reconcile_run))

    async def daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        deps.capture_indexes(kwargs)
        await run_daemon(deps, body, stopped, plural=plural, reconcile=reconcile, on_succeeded=on_succeeded)

    kopf.daemon(
        d.GROUP_NAME,
        d.API_VERSION_NAME,
        plural,
        id=f"{plural}_reconcile",
        when=d.needs_reconcile,
        cancellation_timeout=RETRY_SECONDS,
        registry=registry,
    )(daemon)


def register_job_watch(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    """Feed the Job cache from kopf's Job watch: an index (filled before any run is reconciled,
    so the cap is counted right after a restart) and a handler for deletions (which an index
    drops silently). Each event wakes the Job's run; a freed slot wakes the queue's head."""
    changes = deps.changes
    cap = deps.settings.jobs.max_concurrent_jobs
    selector = {d.LABEL_MANAGED_BY: d.MANAGED_BY, d.LABEL_COMPONENT: "runner"}

    async def runner_jobs(body: kopf.Body, **_: Any) -> dict[str, str]:
        uid, freed = changes.jobs.seen(body)
        changes.reserved.pop(uid, None)  # its Jobs are seen: they count themselves now
        changes.wake(uid)
        if freed:
            changes.wake_queue_head(cap)
        return {uid: str((body.get("metadata") or {}).get("name") or "")}

    kopf.index("batch", "v1", "jobs", labels=selector, id="runner_jobs", registry=registry)(runner_jobs)

    def deleted(type: str, **_: Any) -> bool:
        return type == "DELETED"

    async def job_deleted(body: kopf.Body, **_: Any) -> None:
        uid, held = changes.jobs.gone(body)
        changes.wake(uid)
        if held:
            changes.wake_queue_head(cap)

    kopf.on.event("batch", "v1", "jobs", labels=selector, when=deleted, registry=registry)(job_deleted)
