"""``agentensor report``: summary.json and report.html of any stored run, and diffs of two versions."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from agentensor_api import RunStatus

from ._common import VERSION_MAX, DbOption, data_text, err, fail, open_store

if TYPE_CHECKING:
    from agentensor_store import RunRecord, Store

_SHARD = re.compile(r"^(?P<uid>.+)-s\d+$")
RUN_MAX_CHARS = 63 + 1 + 253
"""Longest RUN: a NAMESPACE/NAME (a 63-character label, ``/``, a 253-character name); a run id
is at most 64 characters."""


def report(
    run: Annotated[
        str,
        typer.Argument(
            help="Run id, or NAMESPACE/NAME (the newest run of that name).",
            callback=data_text("RUN", max_chars=RUN_MAX_CHARS),
        ),
    ],
    db: DbOption = None,
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Where summary.json and report.html go.")] = Path("out"),
    diff: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--diff", min=1, max=VERSION_MAX, help="Print the diff of versions A B of the run's workflow instead."
        ),
    ] = None,
) -> None:
    """Render summary.json and report.html of RUN from the database (a local or in-cluster run).

    Only reads the database: a --db that names no existing database is refused, nothing is created.
    Exit codes: 0 written, 1 no such run or version, 2 invalid input (a bad --db, --out or --diff).
    """
    store = open_store(db, read_only=True)
    try:
        rec = _resolve(store, run)
        if diff is not None:
            _print_diff(store, rec.namespace, rec.workflow, *diff)
            return
        _write_report(store, rec, out_dir)
    finally:
        store.close()


def _write_report(store: Store, rec: RunRecord, out_dir: Path) -> None:
    """summary.json and report.html of ``rec`` under ``out_dir``; exits 2 naming ``--out`` when they
    cannot be written, or when the stored status does not parse."""
    from agentensor_runner import write_outputs

    status = _stored_status(rec)
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir}: is an existing file, not a directory")
    try:
        paths = write_outputs(out_dir, f"{rec.kind}/{rec.name}", status, store, training=rec.kind == "TrainingRun")
    except OSError as e:
        fail(f"--out {out_dir}: cannot write the results ({e.strerror or e})")
    err.print(f"{rec.kind} {rec.namespace}/{rec.name} (run {rec.id}, phase {rec.phase})", highlight=False)
    err.print(f"wrote {paths['summary']} and {paths['report']}", highlight=False)


def _resolve(store: Store, run: str) -> RunRecord:
    """The run with id ``run``, else the newest run named ``namespace/name`` (or ``name``).

    A sharded EvaluationRun has one row per shard (``<uid>-s<i>``) and, once finished, the
    operator's aggregate row under ``<uid>``, which is the one reported (its cases are read from
    the shards); while it has none, the shard ids are listed and the user names one.
    """
    rec = store.get_run(run)
    if rec is not None:
        return rec
    namespace, _, name = run.rpartition("/")
    runs = store.find_runs(namespace=namespace or None, name=name)
    if not runs:
        fail(f"RUN {run!r}: no run with that id or NAMESPACE/NAME in {store.url}", code=1)
    if not namespace and len({r.namespace for r in runs}) > 1:
        spaces = ", ".join(sorted({f"{r.namespace}/{name}" for r in runs}))
        fail(f"RUN {run!r}: runs of that name exist in several namespaces ({spaces}); name one as NAMESPACE/NAME")
    uid = m.group("uid") if (m := _SHARD.match(runs[-1].id)) else runs[-1].id
    newest = next((r for r in runs if r.id == uid), None)
    if newest is None:
        shards = ", ".join(r.id for r in runs if r.id.startswith(f"{uid}-s"))
        fail(f"RUN {run!r} runs as shards and has no aggregate row yet; give one shard's run id: {shards}", code=1)
    older = [r.id for r in runs if r.id != uid and not r.id.startswith(f"{uid}-s")]
    if older:
        err.print(f"{len(older) + 1} runs are named {run}; reporting the newest ({uid}); older: {', '.join(older)}")
    return newest


def _stored_status(rec: RunRecord) -> RunStatus:
    try:
        status = RunStatus.model_validate(rec.status)
    except ValidationError as e:
        fail(f"run {rec.id}: its stored status does not parse ({e.error_count()} error(s): {e.errors()[0]['msg']})")
    if status.run_id is None:
        status.run_id = rec.id
    return status


def _print_diff(store: Store, namespace: str, workflow: str, a: int, b: int) -> None:
    """Diff two versions of the run's own workflow key, ``(namespace, workflow)``."""
    from agentensor_runner.report import version_diff

    versions = []
    for number in (a, b):
        v = store.get_version(workflow, number, namespace=namespace)
        if v is None:
            known = ", ".join(str(x.version) for x in store.list_versions(workflow, namespace=namespace)) or "none"
            fail(f"--diff: workflow {workflow!r} has no version {number} (versions: {known})", code=1)
        versions.append(v)
    text = version_diff(versions[0], versions[1])
    if not text:
        err.print(f"versions {a} and {b} of {workflow} are identical", highlight=False)
    sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``agentensor`` application."""
    app.command("report")(report)
