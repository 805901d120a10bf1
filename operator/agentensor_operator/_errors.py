"""Exception tree of the operator, and its one translation into kopf's error vocabulary.

    AgentensorError                    (agentensor_api)
    ├── ManifestError                  a spec field is invalid            -> kopf.PermanentError
    ├── StoreError                     (agentensor_store) database fault  -> kopf.TemporaryError
    └── OperatorError                  root of this package's errors
        ├── DependencyNotReadyError    a referenced object is missing     -> kopf.TemporaryError
        └── KubernetesApiError         the API server refused or failed   -> kopf.TemporaryError
                                       (PermanentError for 4xx that a retry cannot fix)

Handlers raise these (or let them through) and wrap themselves in :func:`kopf_errors`; nothing
else in the package imports kopf's errors. Messages never contain the database URL.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import kopf

from agentensor_api import AgentensorError, ManifestError
from agentensor_store import DatabaseUnavailableError, StoreError

P = ParamSpec("P")
R = TypeVar("R")

RETRY_DELAY_SECONDS = 5.0
"""Delay before retrying after a transient fault: long enough for an API server or database
fail-over, short enough that a recovered cluster is served again within seconds."""

DEPENDENCY_DELAY_SECONDS = 2.0
"""Delay before looking again for a missing PromptConfig or Secret, which usually arrives in
the same ``kubectl apply``."""


class OperatorError(AgentensorError):
    """Root of the errors raised by :mod:`agentensor_operator`."""


class DependencyNotReadyError(OperatorError):
    """A referenced object (PromptConfig, stored version) does not exist yet.

    Attributes:
        field: the spec field holding the reference, e.g. ``spec.promptConfigRef.name``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class KubernetesApiError(OperatorError):
    """An API request failed.

    Attributes:
        status: HTTP status (0 when no response arrived).
        operation: what was attempted, e.g. ``create Job default/x``.
    """

    def __init__(self, operation: str, status: int, reason: str) -> None:
        self.operation = operation
        self.status = status
        super().__init__(f"{operation}: HTTP {status} {reason}".strip())

    @property
    def retryable(self) -> bool:
        """5xx, 429, 409 and transport failures may succeed later; other 4xx will not."""
        return self.status == 0 or self.status >= 500 or self.status in (409, 429)


def to_kopf(error: BaseException) -> kopf.TemporaryError | kopf.PermanentError | None:
    """The kopf error for one of ours, or ``None`` for anything unexpected (kopf retries those)."""
    if isinstance(error, ManifestError):
        return kopf.PermanentError(str(error))
    if isinstance(error, DependencyNotReadyError):
        return kopf.TemporaryError(str(error), delay=DEPENDENCY_DELAY_SECONDS)
    if isinstance(error, KubernetesApiError):
        if error.retryable:
            return kopf.TemporaryError(str(error), delay=RETRY_DELAY_SECONDS)
        return kopf.PermanentError(str(error))
    if isinstance(error, DatabaseUnavailableError | StoreError):
        return kopf.TemporaryError(f"database: {error}", delay=RETRY_DELAY_SECONDS)
    return None


def kopf_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a handler so our errors reach kopf as TemporaryError/PermanentError (chained)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (kopf.TemporaryError, kopf.PermanentError):
            raise
        except AgentensorError as e:
            translated = to_kopf(e)
            if translated is None:
                raise
            raise translated from e

    return wrapper
