"""Typer application behind the ``agentensor`` command."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.table import Table

from agentensor_api import (
    AgentensorError,
    EvaluationRun,
    ManifestError,
    Phase,
    PromptConfig,
    RunStatus,
    TrainingRun,
    load_manifests,
    render_crds,
)

from ._common import (
    RUN_ID_MAX_CHARS,
    VERSION_MAX,
    DbOption,
    data_text,
    err,
    fail,
    open_store,
    out,
)
from ._operator_cmds import register as _register_operator_cmds
from ._report_cmd import register as _register_report_cmd

if TYPE_CHECKING:
    from agentensor_store import Store, VersionRecord

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
checkpoints_app = typer.Typer(no_args_is_help=True, help="List and export checkpointed versions.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
app.add_typer(checkpoints_app, name="checkpoints")
app.add_typer(db_app, name="db")


class _Progress:
    """Live progress: a rich bar on a terminal, one line per milestone otherwise."""

    def __init__(self, name: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.name = name
        self.tty = err.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not self.tty,
        )
        self.task = self.bar.add_task(name, total=None)
        self.last: tuple[Any, ...] = ()

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def on_progress(self, stage: str, done: int, total: int) -> None:
        self.bar.update(self.task, advance=1, description=f"{self.name} {stage}")

    def on_status(self, status: RunStatus) -> None:
        self.bar.update(self.task, total=status.cases_total, completed=status.cases_completed or 0)
        key = (status.phase, status.epoch, status.best_score, len(status.checkpoints or []))
        if key != self.last:
            self.last = key
            best = f"{status.best_score:.4f}" if status.best_score is not None else "-"
            base = f"{status.baseline_score:.4f}" if status.baseline_score is not None else "-"
            err.print(
                f"[{self.name}] phase={status.phase} epoch={status.epoch}/{status.epochs} "
                f"baseline={base} best={best} checkpoints={len(status.checkpoints or [])}",
                highlight=False,
            )


RunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="Resume (or name) a run by id (1-64 characters).",
        callback=data_text("--run-id", max_chars=RUN_ID_MAX_CHARS),
    ),
]
DataRootOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data-root",
        help="A folder the manifests may read files under, besides their own (repeatable; also "
        "$AGENTENSOR_DATA_ROOTS).",
    ),
]


@app.command()
def run(
    file: Annotated[list[Path], typer.Option("-f", "--file", help="Manifest file(s); multi-document YAML allowed.")],
    db: DbOption = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where summary.json and report.html go.")] = Path("out"),
    run_id: RunIdOption = None,
    data_root: DataRootOption = None,
) -> None:
    """Run the TrainingRun/EvaluationRun documents in FILE(s) with the PromptConfigs they reference.

    A file a manifest names (``spec.dataset.path``) is read only when it resolves, symlinks and
    ``..`` included, under the manifest's folder, a ``--data-root`` or ``$AGENTENSOR_DATA_ROOTS``.
    """
    from agentensor_runner import write_outputs

    try:
        resources = load_manifests(file)
    except ManifestError as e:
        fail(str(e))
    configs = [r for r in resources if isinstance(r, PromptConfig)]
    runs = [r for r in resources if isinstance(r, (TrainingRun, EvaluationRun))]
    if not runs:
        fail("no TrainingRun or EvaluationRun in the files given")
    if run_id is not None and len(runs) > 1:
        fail(f"--run-id names one run, but the files hold {len(runs)} runs; run them one at a time")
    _check_out_dir(out_dir)
    if run_id == "":
        fail("--run-id: must not be empty")
    store = open_store(db, ride_out_outages=True)
    failed = 0
    try:
        for res in runs:
            target = out_dir if len(runs) == 1 else out_dir / f"{res.kind.lower()}-{res.name}"
            status = _execute_one(res, configs, store, run_id, data_root or [])
            try:
                paths = write_outputs(
                    target, f"{res.kind}/{res.name}", status, store, training=isinstance(res, TrainingRun)
                )
            except OSError as e:
                fail(
                    f"--out {target}: cannot write the results ({e.strerror or e}); "
                    f"the run is stored as {status.run_id}"
                )
            _print_status(res, status)
            err.print(f"wrote {paths['summary']} and {paths['report']}", highlight=False)
            if status.phase != Phase.SUCCEEDED or _gate_failed(res, status):
                failed += 1
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


def _gate_failed(res: TrainingRun | EvaluationRun, status: RunStatus) -> bool:
    """True (and says so) when an EvaluationRun's ``spec.passCriteria`` did not hold: ``Passed=False``."""
    from agentensor_api import ConditionType, condition_of

    passed = condition_of(status, ConditionType.PASSED)
    if passed is None or passed.status != "False":
        return False
    err.print(f"{res.kind}/{res.name}: Passed=False {passed.reason}: {passed.message}", highlight=False)
    return True


def _execute_one(
    res: TrainingRun | EvaluationRun,
    configs: list[PromptConfig],
    store: Store,
    run_id: str | None,
    data_roots: list[Path],
) -> RunStatus:
    """Execute one run with live progress; every known failure exits 2 with a message naming it."""
    from agentensor_runner import DataRoots, execute, find_prompt_config, tuned_gc

    assert res.source is not None
    base_dir = Path(res.source.rsplit("#", 1)[0]).parent
    try:
        pc = find_prompt_config(res, configs)
        with _Progress(f"{res.kind}/{res.name}") as progress, tuned_gc():
            return asyncio.run(
                execute(
                    res,
                    pc,
                    store,
                    base_dir=base_dir,
                    run_id=run_id,
                    on_status=progress.on_status,
                    on_progress=progress.on_progress,
                    data_roots=DataRoots.of(data_roots),
                )
            )
    except ManifestError as e:
        fail(f"{e.source or res.source}: {e.field}: {e.reason}")
    except AgentensorError as e:
        fail(f"{res.source}: {e}")
    except OSError as e:  # e.g. a full disk under a local cache
        fail(f"{res.source}: {e.filename or 'I/O'}: {e.strerror or e}")


def _check_out_dir(out_dir: Path) -> None:
    """Fail (exit 2) before anything runs if ``--out`` cannot hold the results."""
    if out_dir.exists() and not out_dir.is_dir():
        fail(
            f"--out {out_dir}: is an existing file, not a directory; name a directory for summary.json and report.html"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"--out {out_dir}: cannot create the directory ({e.strerror or e})")
    if not os.access(out_dir, os.W_OK):
        fail(f"--out {out_dir}: the directory is not writable")


def _print_status(res: TrainingRun | EvaluationRun, status: RunStatus) -> None:
    t = Table(title=f"{res.kind}/{res.name}: {status.phase}")
    t.add_column("field")
    t.add_column("value")
    h = status.holdout
    for k, v in (
        ("baseline (validation)", status.baseline_score),
        ("best (validation)", status.best_score),
        ("holdout baseline", h.baseline if h else None),
        ("holdout best", h.best if h else None),
        ("best version", status.best_version),
        ("cases", status.cases_completed),
        ("error rows", status.cases_failed),
    ):
        if v is not None:
            t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    for c in status.conditions:
        t.add_row(f"condition {c.type}", f"{c.status} {c.reason}: {c.message}")
    out.print(t)


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


@app.command()
def crds(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Directory to write CRD YAML into.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the files in -o differ.")] = False,
) -> None:
    """Generate the CustomResourceDefinitions from the API models."""
    files = render_crds()
    if output is None:
        sys.stdout.write("---\n".join(files.values()))
        return
    if output.exists() and not output.is_dir():
        fail(f"-o {output}: is not a directory; name the directory to write the CRD files into")
    drift = []
    for fname, text in files.items():
        path = output / fname
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                drift.append(str(path))
        else:
            _write_text(path, text)
    if drift:
        fail(f"CRDs drifted from the models: {drift}; run `agentensor crds -o {output}`", code=1)


@app.command()
def docs(
    output: Annotated[Path, typer.Option("-o", "--output", help="Markdown file to write.")] = Path("docs/api.md"),
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the file differs.")] = False,
) -> None:
    """Generate the API reference from the models."""
    from agentensor_api import render_api_docs

    text = render_api_docs()
    if output.is_dir():
        fail(f"-o {output}: is a directory; name the Markdown file to write")
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8", errors="replace") != text:
            fail(f"{output} drifted from the models; run `agentensor docs -o {output}`", code=1)
        return
    _write_text(output, text)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (creating its folder); exits 2 naming the path when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(f"-o {path}: cannot write ({e.strerror or e})")


_register_operator_cmds(app)
_register_report_cmd(app)


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
