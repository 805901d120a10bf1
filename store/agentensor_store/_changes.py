"""Run-change notifications: PostgreSQL ``LISTEN``/``NOTIFY`` on one channel.

Writers of a run's status or checkpoints (``Store.update_run``, ``add_checkpoint``,
``record_verdict``) call ``pg_notify(RUN_CHANGES_CHANNEL, run_id)`` in their transaction, so the
notification goes out exactly when the change is visible. A reader opens a
:class:`RunChangeListener` (``Store.listen_run_changes()``) and polls it for run ids.

NOTIFY is not a queue: a listener that is disconnected misses what was sent meanwhile, so a
reader must treat a reconnect as "everything may have changed" (the operator resyncs every run).
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy.engine import URL

from ._errors import DatabaseUnavailableError

RUN_CHANGES_CHANNEL = "agentensor_run_changes"
"""The NOTIFY channel; the payload is the run id (a shard's id is ``<uid>-s<i>``)."""

DRAIN_SECONDS = 0.02
"""After the first notification, how long :meth:`RunChangeListener.poll` keeps collecting: one
batch per burst (a runner writes its status and a checkpoint back to back), at a cost of 20 ms."""


def _connect_kwargs(url: URL) -> dict[str, Any]:
    """libpq keyword arguments from a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return kwargs


class RunChangeListener:
    """One autocommit psycopg connection that LISTENs on :data:`RUN_CHANGES_CHANNEL`.

    Not thread-safe: one thread polls it. Close it when done.

    Raises:
        DatabaseUnavailableError: (from the constructor and :meth:`poll`) the connection cannot
            be opened or was lost; open a new listener, and assume notifications were missed.
    """

    def __init__(self, url: URL) -> None:
        try:
            self._conn = psycopg.connect(**_connect_kwargs(url), autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise DatabaseUnavailableError(f"listening for run changes: {type(e).__name__}") from e
        try:
            self._conn.execute(f"LISTEN {RUN_CHANGES_CHANNEL}")
        except psycopg.Error as e:
            self._conn.close()  # not left for the garbage collector
            raise DatabaseUnavailableError(f"listening for run changes: {type(e).__name__}") from e

    def poll(self, timeout_seconds: float) -> set[str]:
        """Run ids notified since the last poll, waiting up to ``timeout_seconds`` for the first.

        Returns an empty set on timeout. Duplicates are folded.
        """
        ids: set[str] = set()
        try:
            for n in self._conn.notifies(timeout=timeout_seconds, stop_after=1):
                ids.add(n.payload)
            if ids:
                for n in self._conn.notifies(timeout=DRAIN_SECONDS):
                    ids.add(n.payload)
        except psycopg.Error as e:
            raise DatabaseUnavailableError(f"listening for run changes: {type(e).__name__}") from e
        return ids

    def close(self) -> None:
        self._conn.close()
