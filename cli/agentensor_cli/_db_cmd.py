"""``agentensor db``: database schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import DbOption, data_text, err, open_store

db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")


@db_app.command("upgrade")
def db_upgrade(
    db: DbOption = None,
    revision: Annotated[
        str, typer.Option("--revision", help="Alembic revision.", callback=data_text("--revision", max_chars=64))
    ] = "head",
) -> None:
    """Apply migrations up to REVISION (default head). Exit 2 for a bad --db or --revision."""
    store = open_store(db, revision=revision)
    try:
        err.print(f"database at {store.url} is at revision {store.current_revision()}")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the ``db`` group to the ``agentensor`` application."""
    app.add_typer(db_app, name="db")
