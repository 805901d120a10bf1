"""``agentensor run``: run TrainingRun/EvaluationRun manifests locally, with live progress."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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
)

from ._common import DbOption, err, fail, open_store, out, run_id_option

if TYPE_CHECKING:
    from agentensor_store import Store


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


RunIdOption = Annotated[str | None, run_id_option("Resume (or name) a run by id (1-64 characters).")]
DataRootOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data-root",
        help="A folder the manifests may read files under, besides their own (repeatable; also "
        "$AGENTENSOR_DATA_ROOTS).",
    ),
]


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
    configs, runs = _load_runs(file)
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
            _write_results(res, status, store, target)
            if status.phase != Phase.SUCCEEDED or _gate_failed(res, status):
                failed += 1
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


def _load_runs(files: list[Path]) -> tuple[list[PromptConfig], list[TrainingRun | EvaluationRun]]:
    """The PromptConfigs and the runs in ``files``; exits 2 on an invalid manifest or when there is no run."""
    try:
        resources = load_manifests(files)
    except ManifestError as e:
        fail(str(e))
    configs = [r for r in resources if isinstance(r, PromptConfig)]
    runs = [r for r in resources if isinstance(r, (TrainingRun, EvaluationRun))]
    if not runs:
        fail("no TrainingRun or EvaluationRun in the files given")
    return configs, runs


def _write_results(res: TrainingRun | EvaluationRun, status: RunStatus, store: Store, target: Path) -> None:
    """Write summary.json and report.html of one run under ``target`` and print its status table;
    exits 2 naming ``--out`` (and the stored run id) when they cannot be written."""
    from agentensor_runner import write_outputs

    try:
        paths = write_outputs(target, f"{res.kind}/{res.name}", status, store, training=isinstance(res, TrainingRun))
    except OSError as e:
        fail(f"--out {target}: cannot write the results ({e.strerror or e}); the run is stored as {status.run_id}")
    _print_status(res, status)
    err.print(f"wrote {paths['summary']} and {paths['report']}", highlight=False)


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


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``agentensor`` application."""
    app.command("run")(run)
