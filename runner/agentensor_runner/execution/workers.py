"""Spread one evaluation's cases over worker processes when ``parallelism`` asks for more than a core.

A single Python process spends about 2-3 ms of CPU per LLM case (LangGraph's invoke plus the
chat client; see docs/benchmarks.md), so past roughly 16 cases in flight one core is the limit,
not the model's latency. :func:`workers_for` spreads a run over workers once ``parallelism``
reaches :data:`WORKERS_FROM` and the machine has more than one CPU: one worker per 8 in-flight cases, at
most two per CPU (measured: 32 in flight on 2 CPUs finish 15-20 % sooner over 4 workers than
over 2, because each worker's event loop then queues fewer ready cases). Each worker rebuilds
the workflow and evaluators once from the run spec
(workflows hold live clients and compiled graphs, which do not pickle) and runs its part of the cases with
:func:`~agentensor_runner.execution.executor.run_cases`; the parent merges the results in case order and
adds each case's LLM usage to its own ledger.

Workers start from a ``forkserver`` that has already imported the runner's dependencies, so a
new worker costs tens of milliseconds, not the seconds an import of LangChain takes. Each worker
keeps one event loop for its life, so its model clients' connection pools (which belong to a
loop) stay warm from one part to the next; they are closed when the worker exits.

These in-process workers are not the *shards* of an EvaluationRun: a shard is one of the N runner
Jobs (Pods) of ``agentensor runner --shard I/N``, and each shard Job may use workers too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.util
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentensor_api import EvaluationRunSpec, TrainingRunSpec

from ..data import Case, DataRoots
from ..evaluators import Evaluator, build_evaluators
from ..llm import UsageLedger, build_runtime
from ..prompts import PromptSet
from ..workflows import Workflow, load_workflow
from .executor import run_cases
from .gc_tuning import tune_gc
from .results import CaseResult

WORKERS_FROM = 32
"""``parallelism`` from which cases are spread over worker processes (below it, one process
keeps up with the model's latency: 16 cases x 3 ms of CPU per 50 ms round trip)."""

CASES_PER_WORKER = 8
"""In-flight cases per worker process once spread over workers."""

WORKERS_PER_CPU = 2
"""Workers per CPU at most (a worker waits on the model most of the time)."""

_PRELOAD = ["agentensor_runner", "langgraph.graph", "langchain_core.runnables", "langchain_openai"]


def workers_for(parallelism: int, cpu_count: int | None = None) -> int:
    """Worker processes for ``parallelism`` in-flight cases: 1 (this process) below :data:`WORKERS_FROM`
    or on one CPU, else ``min(2 x CPUs, parallelism // 8)``."""
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if parallelism < WORKERS_FROM or cpus < 2:
        return 1
    return min(WORKERS_PER_CPU * cpus, parallelism // CASES_PER_WORKER)  # >= 4: WORKERS_FROM // 8


@dataclass(frozen=True)
class WorkerRecipe:
    """What a worker needs to rebuild the workflow and evaluators (picklable).

    ``env`` is only for API-key variables given explicitly to the parent's runtime; it travels
    over the pool's pipe and is never written anywhere.
    """

    spec: TrainingRunSpec | EvaluationRunSpec
    base_dir: str
    env: Mapping[str, str] | None = field(default=None, repr=False)
    roots: DataRoots | None = None


_worker: tuple[Workflow, list[Evaluator]] | None = None
_loop: asyncio.Runner | None = None


def _init_worker(recipe: WorkerRecipe) -> None:
    global _worker, _loop
    llm = build_runtime(recipe.spec, base_dir=Path(recipe.base_dir), env=recipe.env, roots=recipe.roots)
    workflow = load_workflow(recipe.spec.workflow, llm=llm)
    _worker = (workflow, build_evaluators(recipe.spec.evaluators, llm=llm))
    _loop = asyncio.Runner()
    tune_gc()  # after the workflow is built, so its objects are frozen too

    def shutdown() -> None:  # multiprocessing runs its finalizers, not atexit, when a worker exits
        assert _loop is not None
        if llm is not None:
            _loop.run(llm.aclose())
            llm.close()
        _loop.close()

    multiprocessing.util.Finalize(None, shutdown, exitpriority=10)


def _ping(hold_seconds: float) -> int:
    time.sleep(hold_seconds)  # keep this worker busy so the other pings start the other workers
    return os.getpid()


def _run_part(
    prompts: PromptSet,
    cases: list[Case],
    base_config: dict[str, Any],
    run_id: str,
    stage: str,
    parallelism: int,
    case_timeout_seconds: float,
    evaluator_fields: dict[str, str | None],
) -> list[CaseResult]:
    assert _worker is not None and _loop is not None, "worker not initialised"
    workflow, evaluators = _worker
    evaluation = _loop.run(
        run_cases(
            workflow,
            prompts,
            cases,
            evaluators,
            base_config=base_config,
            run_id=run_id,
            stage=stage,
            parallelism=parallelism,
            case_timeout_seconds=case_timeout_seconds,
            evaluator_fields=evaluator_fields,
        )
    )
    return evaluation.cases


def _interleave(parts: Sequence[list[CaseResult]], total: int) -> list[CaseResult]:
    """The results of round-robin parts (part ``i`` holds cases ``i, i + n, ...``) back in case order."""
    n = len(parts)
    merged: list[CaseResult | None] = [None] * total
    for i, results_of_part in enumerate(parts):
        for j, result in enumerate(results_of_part):
            merged[i + j * n] = result
    return [r for r in merged if r is not None]


class WorkerPool:
    """A pool of worker processes that run parts of an evaluation's cases. Use as a context manager.

    Args:
        recipe: how workers rebuild the workflow and evaluators.
        processes: worker processes (>= 2 to be useful).
        ledger: the parent's usage ledger; each case's usage is added to it.
    """

    def __init__(self, recipe: WorkerRecipe, processes: int, *, ledger: UsageLedger | None = None) -> None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        self.processes = processes
        self._ledger = ledger
        self._pool = ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker, initargs=(recipe,))

    def warm(self) -> set[int]:
        """Start every worker now (workflow built) instead of at the first evaluation; returns their pids."""
        return set(self._pool.map(_ping, [0.2] * self.processes))

    async def run(
        self,
        prompts: PromptSet,
        cases: Sequence[Case],
        *,
        base_config: Mapping[str, Any],
        run_id: str,
        stage: str,
        parallelism: int,
        case_timeout_seconds: float,
        evaluator_fields: Mapping[str, str | None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[CaseResult]:
        """Run ``cases`` split round-robin over the workers; results come back in case order.

        ``parallelism`` is divided among the parts (each gets at least 1); ``progress`` is called
        with each part's size as it finishes, and each case's usage is added to the ledger.
        """
        n = max(1, min(self.processes, len(cases)))
        shared = (dict(base_config), run_id, stage, max(1, parallelism // n), case_timeout_seconds)
        fields = dict(evaluator_fields or {})
        parts = [self._part(prompts, list(cases[i::n]), shared, fields, progress) for i in range(n)]
        results = _interleave(await asyncio.gather(*parts), len(cases))
        if self._ledger is not None:
            for r in results:
                if r.usage is not None:
                    self._ledger.total.add(r.usage)
        return results

    async def _part(
        self,
        prompts: PromptSet,
        part: list[Case],
        shared: tuple[dict[str, Any], str, str, int, float],
        fields: dict[str, str | None],
        progress: Callable[[int], None] | None,
    ) -> list[CaseResult]:
        """One part's results from a worker (:func:`_run_part`); ``shared``: base config, run id,
        stage, parallelism per part and case timeout."""
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._pool, _run_part, prompts, part, *shared, fields)
        if progress is not None:
            progress(len(out))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
