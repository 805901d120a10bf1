"""What every ``agentensor`` subcommand shares: the consoles, the --db option and the store opener."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from agentensor_store import Store

# soft_wrap: messages are never broken at the console width (80 columns when stderr is a pipe,
# as in a Pod's log), so a line of log is one line, whatever reads it.
err = Console(stderr=True, soft_wrap=True)
out = Console()

DbOption = Annotated[
    str | None, typer.Option("--db", help="SQLAlchemy URL (default: $AGENTENSOR_DATABASE_URL, else ./agentensor.db).")
]

OUTAGE_RETRY_ENV = "AGENTENSOR_DB_OUTAGE_RETRY_SECONDS"
DEFAULT_OUTAGE_RETRY_SECONDS = 300.0
"""Once a run has started, ride out a database outage this long (a PostgreSQL restart or
failover takes seconds to a minute); before that, fail fast so a wrong --db is reported at once."""


def open_store(db: str | None, *, ride_out_outages: bool = False) -> Store:
    """Open the store at ``db`` (else the default URL) and migrate it to head.

    With ``ride_out_outages`` the store retries through a database outage for
    ``$AGENTENSOR_DB_OUTAGE_RETRY_SECONDS`` (default 300 s).
    """
    from agentensor_store import Store, default_database_url

    store = Store(db or default_database_url())
    store.upgrade()
    if ride_out_outages:
        store.outage_retry_seconds = outage_retry_seconds()
    return store


def outage_retry_seconds() -> float:
    """Seconds a started run rides out a database outage (``$AGENTENSOR_DB_OUTAGE_RETRY_SECONDS``)."""
    return float(os.environ.get(OUTAGE_RETRY_ENV, DEFAULT_OUTAGE_RETRY_SECONDS))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: invalid input)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
