"""Riding out database outages: retry a whole store operation while the database is unreachable.

Every public :class:`~agentensor_store.Store` operation is one short transaction, and every write
is an upsert or deduplicated by checksum, so repeating an operation after a connection failure is
safe. The retry policy is tenacity's (exponential backoff with jitter, capped), applied only to
:class:`DatabaseUnavailableError`; any other error is raised at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from ._errors import DatabaseUnavailableError

log = logging.getLogger("agentensor_store")

P = ParamSpec("P")
R = TypeVar("R")

MAX_BACKOFF_SECONDS = 10.0
"""Longest wait between two attempts: short enough to notice a database that is back quickly."""


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("database unavailable (attempt %d, retrying in %.1f s): %s", state.attempt_number, wait, exc)


def call_retrying(seconds: float, fn: Callable[[], R]) -> R:
    """Call ``fn`` again for up to ``seconds`` while it raises :class:`DatabaseUnavailableError`.

    With ``seconds <= 0`` ``fn`` runs once.

    Raises:
        DatabaseUnavailableError: the last failure once the time is up.
    """
    if seconds <= 0:
        return fn()
    retrying = Retrying(
        retry=retry_if_exception_type(DatabaseUnavailableError),
        stop=stop_after_delay(seconds),
        wait=wait_exponential_jitter(multiplier=0.5, max=MAX_BACKOFF_SECONDS),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(fn)


def retry_unavailable(method: Callable[P, R]) -> Callable[P, R]:
    """Retry ``method`` for up to ``self.outage_retry_seconds`` while the database is unavailable.

    With ``outage_retry_seconds == 0`` (the default) the method runs once, as if undecorated.

    Raises:
        DatabaseUnavailableError: the last failure once the time is up.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store: Any = args[0]
        seconds = float(getattr(store, "outage_retry_seconds", 0.0))
        return call_retrying(seconds, lambda: method(*args, **kwargs))

    return wrapper
