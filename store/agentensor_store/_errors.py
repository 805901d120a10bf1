"""Exception tree of the store package.

    AgentensorError                      (agentensor_api)
    └── StoreError                       any store failure; driver errors are chained (``from e``)
        ├── DatabaseUnavailableError     cannot connect, or the connection broke
        ├── SchemaNotReadyError          tables missing: call ``Store.upgrade()`` first
        ├── MigrationError               alembic could not upgrade/downgrade
        ├── UnsupportedDatabaseError     URL is not SQLite or PostgreSQL, or cannot be parsed
        ├── RunNotFoundError             no run with that id (also a ``LookupError``)
        ├── VersionNotFoundError         no prompt version with that id (also a ``LookupError``)
        ├── VersionConflictError         ``register_version`` lost every bounded retry
        └── InvalidValueError            an argument is invalid (also a ``ValueError``)

Messages never contain the database password.
"""

from __future__ import annotations

from agentensor_api import AgentensorError


class StoreError(AgentensorError):
    """Root of every error raised by :mod:`agentensor_store`."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached, or the connection was lost mid-operation."""


class SchemaNotReadyError(StoreError):
    """The agentensor tables do not exist (or are outdated): run ``Store.upgrade()``."""


class MigrationError(StoreError):
    """An alembic upgrade or downgrade failed."""


class UnsupportedDatabaseError(StoreError):
    """The database URL is malformed or names a backend other than SQLite/PostgreSQL."""


class RunNotFoundError(StoreError, LookupError):
    """No run has the given id."""


class VersionNotFoundError(StoreError, LookupError):
    """No prompt version has the given id."""


class VersionConflictError(StoreError):
    """Concurrent writers kept winning the race for the next version number."""


class InvalidValueError(StoreError, ValueError):
    """An argument is out of range (unknown run kind, naive datetime, NaN in JSON...)."""
