"""``agentensor checkpoints``: list a workflow's checkpointed versions and export one as a PromptConfig."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.table import Table

from agentensor_api import ManifestError

from ._common import VERSION_MAX, DbOption, data_text, err, fail, open_store, out

if TYPE_CHECKING:
    from agentensor_store import VersionRecord

checkpoints_app = typer.Typer(no_args_is_help=True, help="List and export checkpointed versions.")

WorkflowArg = Annotated[
    str,
    typer.Argument(
        help="Workflow key (spec.workflow of a PromptConfig).", callback=data_text("WORKFLOW", max_chars=253)
    ),
]
DEFAULT_NAMESPACE = "default"
"""``-n/--namespace`` when not given, as kubectl's (``agentensor_store.DEFAULT_NAMESPACE``; not imported
here so that the CLI starts without SQLAlchemy)."""
NamespaceOption = Annotated[
    str,
    typer.Option(
        "-n",
        "--namespace",
        help="Namespace of the workflow (versions are numbered per namespace and workflow).",
        callback=lambda value: _namespace(value),
    ),
]


def _namespace(value: str) -> str:
    """``-n/--namespace`` checked as the API server checks ``metadata.namespace`` (a DNS-1123 label),
    before any database lookup; exit 2 naming the option."""
    from pydantic import ValidationError

    from agentensor_api import ObjectMeta

    try:
        ObjectMeta.model_validate({"name": "x", "namespace": value})
    except ValidationError as e:
        fail(f"--namespace: {e.errors()[0]['msg']}")
    return value


@checkpoints_app.command("list")
def checkpoints_list(
    workflow: WorkflowArg, namespace: NamespaceOption = DEFAULT_NAMESPACE, db: DbOption = None
) -> None:
    """List the checkpoints of WORKFLOW in a namespace (version, epoch, validation score, run, checksum).

    Only reads: a --db that names no existing database is refused (exit 2), nothing is created.
    """
    store = open_store(db, read_only=True)
    try:
        rows = store.list_checkpoints(workflow=workflow, namespace=namespace)
        if not rows:
            fail(f"no checkpoints for workflow {workflow!r} in namespace {namespace!r}", code=1)
        t = Table(title=f"checkpoints of {workflow} in namespace {namespace}")
        for col in ("version", "epoch", "score", "run", "checksum", "created"):
            t.add_column(col)
        for c in rows:
            t.add_row(
                str(c.version),
                str(c.epoch),
                "-" if c.score is None else f"{c.score:.4f}",
                c.run_id[:12],
                c.checksum[:12],
                c.created_at.isoformat(timespec="seconds"),
            )
        out.print(t)
    finally:
        store.close()


@checkpoints_app.command("export")
def checkpoints_export(
    workflow: WorkflowArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="PromptConfig manifest file to write.")],
    version: Annotated[int | None, typer.Option("--version", min=1, max=VERSION_MAX, help="Version number.")] = None,
    best: Annotated[bool, typer.Option("--best", help="The best-scoring checkpoint.")] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", help="metadata.name (default: WORKFLOW with each '_' written '-').", show_default=False),
    ] = None,
    namespace: NamespaceOption = DEFAULT_NAMESPACE,
    db: DbOption = None,
) -> None:
    """Write a PromptConfig manifest holding one stored version of WORKFLOW in a namespace.

    The version is read from ``-n/--namespace`` (default ``default``), which is also the
    manifest's ``metadata.namespace``: a version of another namespace is never exported. The
    manifest is validated as ``agentensor run`` and the API server read it before it is
    written. Only reads the database: a --db that names no existing database is refused.
    Exit codes: 0 written, 1 no such checkpoint or version, 2 invalid input.
    """
    if (version is None) == (not best):
        fail("give exactly one of --version N or --best")
    if output.is_dir():
        fail(f"-o {output}: is a directory; name the manifest file to write, e.g. {output / 'promptconfig.yaml'}")
    store = open_store(db, read_only=True)
    try:
        if best:
            cp = store.best_checkpoint(workflow=workflow, namespace=namespace)
            if cp is None:
                fail(f"no checkpoints for workflow {workflow!r} in namespace {namespace!r}", code=1)
            version = cp.version
        assert version is not None
        rec = store.get_version(workflow, version, namespace=namespace)
        if rec is None:
            fail(f"workflow {workflow!r} has no version {version} in namespace {namespace!r}", code=1)
    finally:
        store.close()
    text = _exported_manifest(rec, workflow, name or exported_name(workflow), namespace)
    _write_output(output, text)
    err.print(f"wrote version {rec.version} ({rec.checksum[:12]}) to {output}")


def exported_name(workflow: str) -> str:
    """The default ``metadata.name`` of an exported PromptConfig: ``workflow`` with ``_`` as ``-``.

    A workflow key may hold ``_`` and a Kubernetes object name may not; every other character a
    key may hold (``a-z``, ``0-9``, ``-``, ``.``, alphanumeric at both ends) a name may too.
    """
    return workflow.replace("_", "-")


_OPTION_OF_FIELD = {"metadata.name": "--name", "metadata.namespace": "--namespace"}


def _exported_manifest(rec: VersionRecord, workflow: str, name: str, namespace: str) -> str:
    """The YAML of the PromptConfig holding ``rec``, checked with the loader ``agentensor run`` uses."""
    from agentensor_api import parse_resource

    doc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"agentensor.dev/version": str(rec.version), "agentensor.dev/checksum": rec.checksum},
        },
        "spec": {
            "workflow": workflow,
            "prompts": {k: {"text": v} for k, v in sorted(rec.prompts.items())},
            "parameters": rec.parameters,
        },
    }
    try:
        parse_resource(doc, source="the exported manifest")
    except ManifestError as e:
        option = _OPTION_OF_FIELD.get(e.field)
        fail(f"{option}: {e.reason}" if option else f"cannot export: {e.field}: {e.reason}")
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; exits 2 naming ``-o`` when it cannot be written.

    A FIFO is opened without blocking, so one that no process reads is refused instead of hanging.
    """
    import stat

    data = text.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        is_fifo = path.exists() and stat.S_ISFIFO(path.stat().st_mode)
        flags = os.O_WRONLY | (os.O_NONBLOCK if is_fifo else os.O_CREAT | os.O_TRUNC)
        fd = os.open(path, flags, 0o666)
        try:
            if is_fifo:
                os.set_blocking(fd, True)
            with os.fdopen(fd, "wb", closefd=False) as fh:
                fh.write(data)
        finally:
            os.close(fd)
    except OSError as e:
        why = "no process reads the FIFO" if e.errno == errno.ENXIO else (e.strerror or str(e))
        fail(f"-o {path}: cannot write the manifest ({why})")


def register(app: typer.Typer) -> None:
    """Add the ``checkpoints`` group to the ``agentensor`` application."""
    app.add_typer(checkpoints_app, name="checkpoints")
