"""Execute TrainingRun / EvaluationRun resources against a store (the runner's entry point)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agentensor_api import (
    AgentensorError,
    EvaluationRun,
    ManifestError,
    PromptConfig,
    RunStatus,
    TrainingRun,
    now_rfc3339,
    set_condition,
)
from agentensor_store import Store

from ._context import RunContext, StatusSink, build_context
from ._shards import CasePool, WorkerRecipe, processes_for
from .executor import run_cases
from .trainer import RunFailed, Trainer
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


async def _evaluate(ctx: RunContext) -> RunStatus:
    spec = ctx.resource.spec
    status = RunStatus(
        run_id=ctx.run_id,
        phase="Running",
        cases_total=len(ctx.cases),
        cases_completed=0,
        start_time=now_rfc3339(),
        best_version=ctx.start_version.version,
        best_checksum=ctx.start_version.checksum,
    )
    status.conditions = set_condition(status.conditions, "Running", "True", "Evaluating")
    ctx.store.update_run(ctx.run_id, phase="Running", status=status.to_wire(), started_at=datetime.now(UTC))
    if ctx.on_status:
        ctx.on_status(status)
    if ctx.workflow.prepare is not None:
        ctx.workflow.prepare([c.input for c in ctx.cases if c.error is None])
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        status.cases_completed = done
        if ctx.on_progress:
            ctx.on_progress("eval", done, len(ctx.cases))

    ev = await run_cases(
        ctx.workflow,
        ctx.start,
        ctx.cases,
        ctx.evaluators,
        base_config=ctx.base_config,
        run_id=ctx.run_id,
        stage="eval",
        parallelism=spec.parallelism,
        case_timeout_seconds=spec.case_timeout_seconds,
        evaluator_fields=ctx.evaluator_fields,
        progress=tick,
        pool=ctx.pool,
    )
    ctx.record(ev, epoch=None, version=ctx.start_version.version)
    status.cases_failed = ev.errors
    status.scores = ev.means
    status.best_score = status.baseline_score = ev.objective(ctx.objective.evaluator)
    status.completion_time = now_rfc3339()
    if ctx.llm is not None:
        status.usage = ctx.llm.ledger.total.to_summary()
    if ev.errors == len(ev.cases):
        first = next(r for r in ev.cases if r.error)
        raise RunFailed("AllCasesFailed", f"every case failed; case {first.case.case_id}: {first.error}")
    status.phase = "Succeeded"
    status.conditions = set_condition(status.conditions, "Running", "False", "Completed")
    status.conditions = set_condition(
        status.conditions,
        "Succeeded",
        "True",
        "Completed",
        f"{ctx.objective.evaluator}={status.best_score:.4f} over {len(ev.cases)} cases, {ev.errors} error(s)",
    )
    ctx.store.update_run(ctx.run_id, phase="Succeeded", status=status.to_wire(), completed_at=datetime.now(UTC))
    if ctx.on_status:
        ctx.on_status(status)
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
) -> RunStatus:
    """Run one TrainingRun or EvaluationRun to completion and return its final status.

    When ``spec.parallelism`` is 32 or more and the machine has several CPUs, cases are sharded
    over worker processes (see ``_shards``). Invalid manifests raise before anything is written.
    Once the run row exists, a failure is recorded as phase ``Failed`` with the reason
    (checkpoints already written are kept) and the status is returned rather than raised.

    Raises:
        ManifestError: a field of the run or its PromptConfig is invalid (named in the message).
    """
    run_id = run_id or run.metadata.uid or uuid.uuid4().hex
    ctx = build_context(run, pc, store, run_id=run_id, base_dir=base_dir, workflow=workflow)
    ctx.on_status, ctx.on_progress = on_status, on_progress
    store.create_run(
        run_id=run_id,
        kind=run.kind,
        namespace=run.namespace,
        name=run.name,
        workflow=pc.spec.workflow,
        spec=run.spec.to_wire(),
        seed=run.spec.dataset.seed,
    )
    processes = processes_for(run.spec.parallelism) if workflow is None else 1
    if processes > 1:
        pool = CasePool(WorkerRecipe(run.spec, str(base_dir)), processes, ledger=ctx.llm.ledger if ctx.llm else None)
        pool.warm()
        ctx.pool = pool
    try:
        return await _run(ctx, run, store, run_id)
    finally:
        if isinstance(ctx.pool, CasePool):
            ctx.pool.close()
        if ctx.llm is not None:
            await ctx.llm.aclose()
            ctx.llm.close()


async def _run(ctx: RunContext, run: TrainingRun | EvaluationRun, store: Store, run_id: str) -> RunStatus:
    if isinstance(run, TrainingRun):
        trainer = Trainer(ctx)
        try:
            return await trainer.run()
        except RunFailed as e:
            return trainer.fail(e.reason, e.message)
        except AgentensorError as e:
            return trainer.fail("InvalidInput", str(e))
    try:
        return await _evaluate(ctx)
    except RunFailed as e:
        status = RunStatus(run_id=run_id, phase="Failed", message=e.message, completion_time=now_rfc3339())
        status.conditions = set_condition(status.conditions, "Failed", "True", e.reason, e.message)
        store.update_run(run_id, phase="Failed", status=status.to_wire(), completed_at=datetime.now(UTC))
        return status
