"""Typer application behind the ``agentensor`` command."""

from __future__ import annotations

import os
import sys

import typer

from . import _checkpoints_cmd, _db_cmd, _generate_cmds, _operator_cmds, _report_cmd, _run_cmd

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
_run_cmd.register(app)
_generate_cmds.register(app)
_operator_cmds.register(app)
_report_cmd.register(app)
_checkpoints_cmd.register(app)
_db_cmd.register(app)


def main() -> None:
    """Entry point of ``agentensor``.

    Paths that are not UTF-8 reach Python as lone surrogates; stdout and stderr write them as
    ``\\udcNN`` escapes instead of raising ``UnicodeEncodeError`` in the middle of a message.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
