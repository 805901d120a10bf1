"""Execute TrainingRun / EvaluationRun resources against a store (the runner's entry point)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentensor_api import (
    AgentensorError,
    EvaluationRun,
    ManifestError,
    PromptConfig,
    Reason,
    RunStatus,
    TrainingRun,
    mark_failed,
    mark_pass_criteria,
    mark_running,
    mark_succeeded,
    now_rfc3339,
)
from agentensor_api._resources import run_spec_checksum
from agentensor_store import RunLease, RunLeaseLostError, Store, StoreError, lease_seconds_from_env, new_owner_id

from ._errors import LlmCallError, RunFailed
from .data import DataRoots
from .execution import (
    Aggregator,
    CaseResult,
    CaseStream,
    Evaluation,
    RunContext,
    StatusSink,
    WorkerPool,
    WorkerRecipe,
    build_context,
    run_cases,
    status_results,
    workers_for,
)
from .training import Trainer
from .workflows import Workflow


def find_prompt_config(run: TrainingRun | EvaluationRun, configs: list[PromptConfig]) -> PromptConfig:
    """The PromptConfig a run references, from the same manifests and namespace.

    Raises:
        ManifestError: ``spec.promptConfigRef.name`` names no PromptConfig given.
    """
    name = run.spec.prompt_config_ref.name
    for pc in configs:
        if pc.name == name and pc.namespace == run.namespace:
            return pc
    raise ManifestError(
        "spec.promptConfigRef.name",
        f"no PromptConfig {name!r} in namespace {run.namespace!r} among the files given",
        source=run.source,
    )


def _evaluation_status(ctx: RunContext) -> RunStatus:
    """An EvaluationRun's status at the start: Running (Evaluating), its version, no case done."""
    status = RunStatus(
        run_id=ctx.run_id,
        cases_total=len(ctx.cases),
        cases_completed=0,
        start_time=now_rfc3339(),
        best_version=ctx.start_version.version,
        best_checksum=ctx.start_version.checksum,
    )
    return mark_running(status, Reason.EVALUATING)


def _publish(
    ctx: RunContext, status: RunStatus, *, started_at: datetime | None = None, completed_at: datetime | None = None
) -> None:
    """Write ``status`` to the run's row (and ``started_at``/``completed_at`` if given) and the sink."""
    ctx.store.update_run(
        ctx.run_id, phase=status.phase, status=status.to_wire(), started_at=started_at, completed_at=completed_at
    )
    if ctx.on_status:
        ctx.on_status(status)


STAGE = "eval"
"""The stage of an EvaluationRun's case rows."""
BATCH_CASES = 500
"""Case rows written per transaction while an EvaluationRun goes (a crash loses at most these)."""
BATCH_SECONDS = 5.0
"""...or after this many seconds, whichever comes first, so slow (LLM) cases show up promptly."""


def _resumed(ctx: RunContext, totals: Aggregator) -> set[str]:
    """The case ids already recorded by an earlier attempt of this run (same version), counted in ``totals``.

    The run id's identity check (same kind and spec checksum) makes those rows this run's. The
    rows are read a page at a time (``Store.iter_cases``), so a resume's memory stays bounded too.
    """
    done: set[str] = set()
    for row in ctx.store.iter_cases(ctx.run_id, stage=STAGE):
        if row.version == ctx.start_version.version and row.case_id not in done:
            done.add(row.case_id)
            totals.add_row(row.case_id, row.scores, row.reasons, row.error)
    return done


def _prepare(ctx: RunContext, inputs: list[Any]) -> None:
    """Let the workflow prepare the inputs of the cases to run: in the background, in case order,
    where it can (``Workflow.prefetch``; cases run in this order here) and the cases run in this
    process; else all at once (``Workflow.prepare``)."""
    wf = ctx.workflow
    if wf.prefetch is not None and ctx.pool is None:
        wf.prefetch(inputs)
    elif wf.prepare is not None:
        wf.prepare(inputs)


async def _score_all(ctx: RunContext, status: RunStatus) -> tuple[Evaluation, tuple[str, str] | None]:
    """Run every case of an EvaluationRun not yet recorded, streaming rows to the store in batches.

    Rows go out every :data:`BATCH_CASES` cases or :data:`BATCH_SECONDS` seconds (one
    transaction each, upserted on ``(run, stage, case)``) and the status's ``casesCompleted``
    with them; aggregates are counted as cases finish, so memory does not grow with the
    dataset. A resumed run (same run id) reuses the rows already written and runs only the rest.
    """
    spec = ctx.resource.spec
    totals = Aggregator([ev.name for ev in ctx.evaluators])
    done = _resumed(ctx, totals)
    status.cases_completed = len(done)
    todo = [c for c in ctx.cases if c.case_id not in done] if done else ctx.cases
    _prepare(ctx, [c.input for c in todo if c.error is None])

    def tick(n: int) -> None:
        status.cases_completed = (status.cases_completed or 0) + n
        if ctx.on_progress:
            ctx.on_progress(STAGE, status.cases_completed, len(ctx.cases))

    ev = await run_cases(
        ctx.workflow,
        ctx.start,
        todo,
        ctx.evaluators,
        base_config=ctx.base_config,
        run_id=ctx.run_id,
        stage=STAGE,
        parallelism=spec.parallelism,
        case_timeout_seconds=spec.case_timeout_seconds,
        evaluator_fields=ctx.evaluator_fields,
        progress=tick,
        pool=ctx.pool,
        stream=CaseStream(_row_writer(ctx, status), totals, BATCH_CASES, BATCH_SECONDS),
    )
    return ev, totals.first_error


def _row_writer(ctx: RunContext, status: RunStatus) -> Callable[[Sequence[CaseResult]], None]:
    """Writes a batch of results as the start version's case rows, then ``status`` (so its
    ``casesCompleted`` moves with the rows), each in its own transaction."""

    def write(batch: Sequence[CaseResult]) -> None:
        version = ctx.start_version.version
        ctx.store.record_cases(ctx.run_id, [ctx.case_row(r, epoch=None, version=version) for r in batch])
        ctx.store.update_run(ctx.run_id, status=status.to_wire())

    return write


async def _evaluate(ctx: RunContext, status: RunStatus) -> RunStatus:
    """Score the start version over every case; ``status`` is updated in place and returned.

    Raises:
        RunFailed: ``AllCasesFailed`` when every case errored (names the first and its error).
    """
    _publish(ctx, status, started_at=datetime.now(UTC))
    ev, first_error = await _score_all(ctx, status)
    status.cases_failed = ev.errors
    status.scores = ev.means
    status.results = status_results(ev.aggregates)
    status.best_score = status.baseline_score = ev.objective(ctx.objective.evaluator)
    if ctx.llm is not None:
        status.usage = ctx.llm.ledger.total.to_summary()
    if ev.errors == ev.size and first_error is not None:
        case_id, error = first_error
        raise RunFailed(Reason.ALL_CASES_FAILED, f"every case failed; case {case_id}: {error}")
    unscored = "".join(f", {n} {k} parse failure(s)" for k, n in sorted(ev.parse_failures.items()))
    mark_succeeded(
        status,
        f"{ctx.objective.evaluator}={status.best_score:.4f} over {ev.size} cases, {ev.errors} error(s){unscored}",
    )
    if isinstance(ctx.resource, EvaluationRun):  # the gate: Passed=True|False from status.results
        mark_pass_criteria(status, ctx.resource.spec.pass_criteria)
    _publish(ctx, status, completed_at=datetime.now(UTC))
    return status


async def execute(
    run: TrainingRun | EvaluationRun,
    pc: PromptConfig,
    store: Store,
    *,
    base_dir: Path,
    run_id: str | None = None,
    on_status: StatusSink | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    workflow: Workflow | None = None,
    data_roots: DataRoots | None = None,
) -> RunStatus:
    """Run one TrainingRun or EvaluationRun to completion and return its final status.

    Files the manifest names resolve against ``base_dir`` and must lie under it or under
    ``data_roots`` (:class:`DataRoots`: granted folders, denied paths).

    When ``spec.parallelism`` is 32 or more and the machine has several CPUs, cases are spread
    over worker processes (see :mod:`agentensor_runner.execution.workers`). Invalid manifests raise
    before anything is written. Once the run row exists, a failure is recorded as phase ``Failed``
    with the reason (checkpoints already written are kept) and the status is returned, not raised.

    Raises:
        ManifestError: a field of the run or its PromptConfig is invalid (named in the message).
        RunLeaseLostError: another process took the run's lease while this one ran it (it expired:
            this process was frozen or cut off from the database for longer than the lease); the
            run was cancelled at once and this process wrote nothing more.
    """
    run_id = run_id or run.metadata.uid or uuid.uuid4().hex
    ctx = build_context(run, pc, store, run_id=run_id, base_dir=base_dir, workflow=workflow, roots=data_roots)
    ctx.on_status, ctx.on_progress = on_status, on_progress
    lease = await _open(ctx, run)
    if workflow is None:  # a workflow given as an object cannot be rebuilt in worker processes
        ctx.pool = _start_workers(ctx, run, base_dir, data_roots)
    try:
        return await _run_holding(ctx, run, lease)
    finally:
        await _close(ctx, lease)


async def _close(ctx: RunContext, lease: RunLease) -> None:
    """Release the run's lease, stop its worker processes and close its models."""
    lease.close()
    if isinstance(ctx.pool, WorkerPool):
        ctx.pool.close()
    await _close_llm(ctx)


async def _open(ctx: RunContext, run: TrainingRun | EvaluationRun) -> RunLease:
    """Create the run's row and take its lease; the run's models are closed if the lease is refused.

    Raises:
        RunIdentityError, RunLeasedError: as :func:`_claim`.
    """
    ctx.store.create_run(
        run_id=ctx.run_id,
        kind=run.kind,
        namespace=run.namespace,
        name=run.name,
        workflow=ctx.prompt_config.spec.workflow,
        spec=run.spec.to_wire(),
        seed=run.spec.dataset.seed,
    )
    try:
        return _claim(ctx.store, run, ctx.run_id, on_lost=_canceller())
    except StoreError:
        await _close_llm(ctx)
        raise


def _start_workers(
    ctx: RunContext, run: TrainingRun | EvaluationRun, base_dir: Path, roots: DataRoots | None
) -> WorkerPool | None:
    """A started pool of :func:`workers_for` worker processes, or None when one process is enough."""
    processes = workers_for(run.spec.parallelism)
    if processes <= 1:
        return None
    recipe = WorkerRecipe(run.spec, str(base_dir), roots=roots)
    pool = WorkerPool(recipe, processes, ledger=ctx.llm.ledger if ctx.llm else None)
    pool.warm()
    return pool


async def _run_holding(ctx: RunContext, run: TrainingRun | EvaluationRun, lease: RunLease) -> RunStatus:
    """:func:`_run` while ``lease`` is held; a cancellation caused by losing it becomes :class:`RunLeaseLostError`."""
    try:
        return await _run(ctx, run)
    except asyncio.CancelledError:
        if not lease.lost:
            raise
        _uncancel()
        raise RunLeaseLostError(
            f"run {lease.run_id!r}: its lease was taken by another process while this one ran it; "
            "stopped without writing further (the other process owns the run now)"
        ) from None


async def _close_llm(ctx: RunContext) -> None:
    """Close the run's model clients (async transports first), if it has any."""
    if ctx.llm is not None:
        await ctx.llm.aclose()
        ctx.llm.close()


def _canceller() -> Callable[[], None]:
    """A thread-safe callable that cancels the calling task (the run) on its event loop."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is None:  # pragma: no cover - execute() always runs in a task
        return lambda: None

    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    return cancel


def _uncancel() -> None:
    """Clear the current task's cancellation request once it has been turned into an error."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _claim(
    store: Store, run: TrainingRun | EvaluationRun, run_id: str, *, on_lost: Callable[[], None] | None = None
) -> RunLease:
    """Check the run id's identity (kind and spec checksum) and hold its lease while the run executes.

    Raises:
        RunIdentityError: the run id belongs to another kind or spec.
        RunLeasedError: another live process is executing this run id.

    ``on_lost`` is called (from the lease's renewal thread) if another process takes the lease.
    """
    owner, seconds = new_owner_id(), lease_seconds_from_env()
    store.claim_run(run_id, kind=run.kind, spec_checksum=run_spec_checksum(run), owner=owner, lease_seconds=seconds)
    return RunLease(store, run_id, owner, seconds, on_lost=on_lost).start()


async def _run(ctx: RunContext, run: TrainingRun | EvaluationRun) -> RunStatus:
    """Run ``run``; a :class:`RunFailed` or a bad input marks it Failed, keeping its progress."""
    if isinstance(run, TrainingRun):
        trainer = Trainer(ctx)
        try:
            return await trainer.run()
        except RunFailed as e:
            return trainer.fail(e.reason, e.message)
        except LlmCallError:
            raise  # an optimizer's model call: not an input error (a retried Pod may get through)
        except AgentensorError as e:
            return trainer.fail(Reason.INVALID_INPUT, str(e))
    status = _evaluation_status(ctx)
    try:
        return await _evaluate(ctx, status)
    except RunFailed as e:
        mark_failed(status, e.reason, e.message)
        _publish(ctx, status, completed_at=datetime.now(UTC))
        return status
