"""What every ``agentensor`` subcommand shares: the consoles, the --db option and the store opener.

Data is never markup. Names, paths, run ids and case text come from manifests, datasets and
arguments, and a ``[/x]`` or ``[link=...]`` in them must print as written, not raise Rich's
``MarkupError``: both consoles have markup, emoji codes and highlighting off, so any string given
to ``err.print``/``out.print`` or put in a ``rich.table.Table`` is shown verbatim. Styling is
added with :class:`rich.text.Text` spans, never with markup (see :func:`fail`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from agentensor_store import Store

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Characters a terminal acts on (ESC sequences that retitle a window, move the cursor or forge
a hyperlink; carriage returns that overwrite a line; bidirectional overrides that reorder it)."""


def visible(text: str) -> str:
    """``text`` with each terminal control character written as a ``\\xNN``/``\\uNNNN`` escape.

    Newlines and tabs are kept. Used on every string the consoles render, so a case id or a path
    from a downloaded dataset cannot drive the user's terminal.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class DataConsole(Console):
    """A Rich console for which every string is data: no markup, no emoji codes, no highlighting,
    control characters escaped (:func:`visible`).

    ``render_str`` is where Rich turns every ``str`` (a printed message, a table cell, a title)
    into text, so a caller cannot turn markup back on by mistake (``markup=True`` is ignored).
    Style is added with :class:`rich.text.Text` spans instead.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(visible(text), **kwargs)


# soft_wrap: messages are never broken at the console width (80 columns when stderr is a pipe,
# as in a Pod's log), so a line of log is one line, whatever reads it.
err = DataConsole(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)
out = DataConsole(markup=False, emoji=False, highlight=False)

DbOption = Annotated[
    str | None, typer.Option("--db", help="SQLAlchemy URL (default: $AGENTENSOR_DATABASE_URL, else ./agentensor.db).")
]

VERSION_MAX = 2**31 - 1
"""Largest prompt version number: ``agentensor_prompt_versions.version`` is an ``INTEGER``
column (32-bit on PostgreSQL), so a larger number can name no version and is refused as an
option value (exit 2) before it reaches the driver (SQLite raised ``OverflowError``)."""

RUN_ID_MAX_CHARS = 64
"""Longest run id: ``agentensor_runs.id`` is ``VARCHAR(64)``."""


def run_id_option(help: str) -> Any:
    """The ``--run-id`` option: data text of 1-:data:`RUN_ID_MAX_CHARS` characters, described by ``help``."""
    return typer.Option("--run-id", help=help, callback=data_text("--run-id", max_chars=RUN_ID_MAX_CHARS))


OUTAGE_RETRY_ENV = "AGENTENSOR_DB_OUTAGE_RETRY_SECONDS"
DEFAULT_OUTAGE_RETRY_SECONDS = 300.0
"""Once a run has started, ride out a database outage this long (a PostgreSQL restart or
failover takes seconds to a minute); before that, fail fast so a wrong --db is reported at once."""


def open_store(
    db: str | None, *, ride_out_outages: bool = False, read_only: bool = False, revision: str = "head"
) -> Store:
    """Open the store at ``db`` (else the default URL) and migrate it to ``revision`` (head).

    With ``ride_out_outages`` the store retries through a database outage for
    ``$AGENTENSOR_DB_OUTAGE_RETRY_SECONDS`` (default 300 s). With ``read_only`` (commands that
    only read) a SQLite file that does not exist is refused instead of created, and so is a
    database without the agentensor schema (a mistyped ``--db`` creates nothing).

    Exits 2 (via :func:`fail`, naming ``--db``) when the URL cannot be parsed, names another
    backend, cannot be reached, or cannot be migrated; the password is never printed.
    """
    store = connect(db, read_only=read_only)
    try:
        if read_only and store.current_revision() is None:
            fail(
                f"--db {store.url}: holds no agentensor tables (a mistyped URL?); this command only reads. "
                "Create the schema with `agentensor db upgrade --db URL` if this is the right database"
            )
        store.upgrade(revision)
    except Exception as e:
        store.close()
        _fail_on_store_error(e)
        raise
    if ride_out_outages:
        store.outage_retry_seconds = outage_retry_seconds()
    return store


def connect(db: str | None, *, read_only: bool = False) -> Store:
    """A :class:`Store` for ``db`` (else the default URL), without migrating; exits 2 naming ``--db``.

    With ``read_only``, a SQLite database file that does not exist is refused (and not created).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from agentensor_store import Store, default_database_url

    url = db or default_database_url()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        fail("--db: cannot parse the database URL; expected sqlite:///PATH or postgresql+psycopg://HOST/DB")
    shown = parsed.render_as_string(hide_password=True)
    path = _sqlite_path(parsed.database, uri=str(parsed.query.get("uri", "")).lower() == "true")
    if parsed.get_backend_name() == "sqlite" and path is not None:
        if read_only and not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            fail(f"--db {shown}: the SQLite database {path} {what}; this command only reads and creates nothing")
        if path.exists() and not path.is_file():
            fail(f"--db {shown}: {path} is not a file")
        if not path.parent.is_dir():
            fail(f"--db {shown}: the directory {path.parent} of the SQLite database does not exist")
    try:
        return Store(url)
    except Exception as e:
        _fail_on_store_error(e)
        raise


def _sqlite_path(database: str | None, *, uri: bool) -> Path | None:
    """The file of a SQLite URL's database part, or None for an in-memory database."""
    if not database or database == ":memory:":
        return None
    if uri:
        database = database.removeprefix("file:").split("?", 1)[0]
        if not database or database == ":memory:":
            return None
    return Path(database)


def _fail_on_store_error(e: Exception) -> None:
    """Exit 2 naming ``--db`` for a store or driver error; anything else returns (the caller re-raises)."""
    from sqlalchemy.exc import SQLAlchemyError

    from agentensor_api import AgentensorError

    if isinstance(e, AgentensorError):
        fail(f"--db: {e}")
    if isinstance(e, SQLAlchemyError):
        fail(f"--db: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'database error'}")


def outage_retry_seconds() -> float:
    """Seconds a started run rides out a database outage (``$AGENTENSOR_DB_OUTAGE_RETRY_SECONDS``)."""
    return float(os.environ.get(OUTAGE_RETRY_ENV, DEFAULT_OUTAGE_RETRY_SECONDS))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: invalid input).

    ``message`` is shown verbatim (it usually holds names and paths from the user's data).
    """
    err.print(Text.assemble(("error:", "bold red"), " ", visible(message)))
    raise typer.Exit(code)


def data_text(option: str, *, max_chars: int) -> Callable[[str | None], str | None]:
    """A typer ``callback`` refusing a text value that cannot be stored: see :func:`check_text`."""

    def callback(value: str | None) -> str | None:
        return None if value is None else check_text(option, value, max_chars=max_chars)

    return callback


def check_text(option: str, value: str, *, max_chars: int) -> str:
    """``value`` if a database column of ``max_chars`` characters can hold and match it.

    Raises:
        typer.BadParameter: (exit 2, naming ``option``) for a value longer than ``max_chars``,
            holding a NUL character, or bytes that are not UTF-8 (Python passes those on as lone
            surrogates, which neither SQLite nor PostgreSQL can encode).
    """
    if len(value) > max_chars:
        raise typer.BadParameter(f"{len(value)} characters, at most {max_chars}", param_hint=option)
    if "\x00" in value:
        raise typer.BadParameter("holds a NUL character", param_hint=option)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        raise typer.BadParameter("is not valid UTF-8", param_hint=option)
    return value
