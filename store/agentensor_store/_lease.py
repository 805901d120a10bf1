"""Run identity and run leases: one run id, one kind, one spec, one process at a time.

A run row records its kind and the checksum of its spec. :meth:`Store.claim_run` refuses a
resume of another kind or with another spec (:class:`RunIdentityError`) and takes a lease: a
row-level ``lease_owner`` / ``lease_expires_at`` pair, set by one conditional ``UPDATE`` that
SQLite and PostgreSQL both serialise, so of two processes claiming the same run id only one
wins (:class:`RunLeasedError` for the other). :class:`RunLease` renews the lease from a daemon
thread until the run ends, then releases it. A process that dies stops renewing: its lease
expires after ``lease_seconds``, or at once for a claimant on the same host that sees the
owner's pid is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from ._errors import StoreError

log = logging.getLogger(__name__)

LEASE_SECONDS_ENV = "AGENTENSOR_RUN_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0
"""A lease lasts 30 s and is renewed every 10 s: a crashed runner Pod's retry (the Job's
backoff starts at 10 s and doubles) finds the lease expired by its second or third attempt, while
a database hiccup shorter than 20 s never loses a live run its lease."""


class RunIdentityError(StoreError):
    """A run id is resumed as another kind or with another spec than the one it was created with."""


class RunLeasedError(StoreError):
    """Another live process holds the run's lease: it is executing that run now."""


class RunLeaseLostError(StoreError):
    """This process's lease of a run was taken by another process while it executed the run.

    Raised by the runner after it stopped: the other process now owns the run's rows, so this one
    writes nothing more (no verdict, no checkpoint) and exits.
    """


def lease_seconds_from_env() -> float:
    """``$AGENTENSOR_RUN_LEASE_SECONDS`` (default 30 s); values below 1 s are raised to 1 s."""
    raw = os.environ.get(LEASE_SECONDS_ENV, "")
    try:
        return max(1.0, float(raw)) if raw.strip() else DEFAULT_LEASE_SECONDS
    except ValueError:
        return DEFAULT_LEASE_SECONDS


def new_owner_id() -> str:
    """``host/pid/nonce`` identifying this process (the nonce tells two claims of one process apart)."""
    return f"{socket.gethostname()[:200]}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True if ``owner`` is a process of this host that no longer exists (its lease is stale)."""
    if not owner:
        return False
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname()[:200] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseHolder(Protocol):
    """What :class:`RunLease` needs of a :class:`~agentensor_store.Store`."""

    def renew_run_lease(self, run_id: str, owner: str, lease_seconds: float = ...) -> bool: ...

    def release_run_lease(self, run_id: str, owner: str) -> None: ...


class RunLease:
    """Hold the lease of a claimed run, renewing it every ``lease_seconds / 3`` until closed.

    Use as a context manager after :meth:`Store.claim_run` succeeded with the same ``owner``.
    Closing releases the lease so that a resume may start at once.
    """

    def __init__(
        self,
        store: LeaseHolder,
        run_id: str,
        owner: str,
        lease_seconds: float,
        *,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.run_id, self.owner, self.lease_seconds = store, run_id, owner, lease_seconds
        self.lost = False
        """Set when a renewal found another owner (the lease had expired and was taken)."""
        self.on_lost = on_lost
        """Called once, from the renewal thread, right after :attr:`lost` is set (the runner cancels
        its run there, so a process that lost its lease stops writing)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{run_id[:16]}", daemon=True)

    def start(self) -> RunLease:
        """Start renewing; returns ``self``."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop renewing and release the lease (a failed release just lets it expire)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.store.release_run_lease(self.run_id, self.owner)
        except StoreError as e:
            log.warning("could not release the lease of run %s: %s", self.run_id, e)

    def __enter__(self) -> RunLease:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if not self.store.renew_run_lease(self.run_id, self.owner, self.lease_seconds):
                    self.lost = True
                    log.error("run %s: lease lost to another process; stopping", self.run_id)
                    if self.on_lost is not None:
                        self.on_lost()
                    return
            except StoreError as e:
                log.warning("run %s: lease renewal failed (%s); retrying", self.run_id, e)
