"""Run a workflow over cases with bounded concurrency, a per-case timeout, and scoring.

A case that raises or times out becomes an error row (``error`` set, every score 0) and the
run goes on. Concurrency is ``parallelism`` worker coroutines pulling cases from one iterator
(not one task per case waiting on a semaphore: 1,000 cases then cost 32 tasks, not 1,000); the
timeout is ``asyncio.timeout`` around the graph invocation only, which unlike ``wait_for`` on
Python 3.11 does not wrap the invocation in another task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..data import Case
from ..evaluators import EvalResult, Evaluator
from ..llm import begin_case, end_case
from ..prompts import PromptSet, start_tape, stop_tape
from ..workflows import Workflow
from .results import Aggregator, CaseResult, Evaluation, evaluation_of, summarize
from .runnable_config import case_config, case_thread_id

ProgressFn = Callable[[int], None]
"""Called with the number of cases just finished (1; a whole part's with a worker pool)."""


class CaseWorkers(Protocol):
    """Runs cases in worker processes and returns their results in case order (:class:`.workers.WorkerPool`)."""

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
        progress: ProgressFn | None = None,
    ) -> list[CaseResult]: ...


@dataclass
class CaseStream:
    """Where an evaluation that does not keep its case results sends them, in batches.

    ``write(batch)`` is called every ``batch_size`` finished cases or once ``batch_seconds``
    have passed since the last write (checked as cases finish), whichever comes first, and once
    more at the end, also when the evaluation is cancelled. ``totals`` counts every result;
    seed it with the rows of an earlier attempt to resume (:meth:`Aggregator.add_row`). Memory
    is bounded by one batch plus the cases in flight, whatever the number of cases.
    """

    write: Callable[[Sequence[CaseResult]], None]
    totals: Aggregator
    batch_size: int = 500
    batch_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _buffer: list[CaseResult] = field(default_factory=list, init=False, repr=False)
    _last: float | None = field(default=None, init=False, repr=False)

    def add(self, r: CaseResult) -> None:
        self.totals.add(r)
        self._buffer.append(r)
        now = self.clock()
        if self._last is None:
            self._last = now
        if len(self._buffer) >= self.batch_size or now - self._last >= self.batch_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered results (if any) and start a new batch."""
        batch, self._buffer = self._buffer, []
        self._last = self.clock()
        if batch:
            self.write(batch)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"TimeoutError: case exceeded caseTimeoutSeconds={timeout:g}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:2000]


async def run_cases(
    workflow: Workflow,
    prompts: PromptSet,
    cases: Sequence[Case],
    evaluators: Sequence[Evaluator],
    *,
    base_config: Mapping[str, Any],
    run_id: str,
    stage: str,
    parallelism: int,
    case_timeout_seconds: float,
    evaluator_fields: Mapping[str, str | None] | None = None,
    progress: ProgressFn | None = None,
    pool: CaseWorkers | None = None,
    stream: CaseStream | None = None,
) -> Evaluation:
    """Invoke the workflow on every case and score it; the evaluation, results in case order.

    Args:
        workflow: the compiled workflow.
        prompts: the config (prompt texts + parameters) given to every case.
        cases: cases to run; cases with ``error`` set are recorded without invoking.
        evaluators: scorers; each gets ``resolve_path(output, spec.outputField)``.
        base_config: merged RunnableConfig; each case gets its own ``thread_id``/``run_id``.
        run_id, stage: identify the rows (``thread_id`` is derived from them and the case id).
        parallelism: cases in flight at once (>= 1).
        case_timeout_seconds: per-case limit on the graph invocation.
        evaluator_fields: ``{evaluator: dataset column}`` of evaluators with their own ``expectedField``.
        progress: called once per finished case (per finished part with a ``pool``).
        pool: worker processes to spread the cases over (:class:`.workers.WorkerPool`); None: this process.
        stream: send the results to ``stream`` in batches instead of keeping them (:class:`CaseStream`): the
            evaluation then has no ``cases``, its aggregates are ``stream.totals`` (resumed rows included),
            and a ``pool`` gets ``stream.batch_size`` cases at a time.
    """
    a = _CaseArgs(base_config, run_id, stage, parallelism, case_timeout_seconds, evaluator_fields or {}, progress)
    if stream is not None:
        return await _run_streamed(workflow, prompts, cases, evaluators, stream, pool, a)
    if pool is not None and len(cases) > 1:
        return summarize(await _pooled(pool, prompts, cases, a), evaluators)
    return summarize(await _in_order(_runner(workflow, evaluators, prompts, a), cases, parallelism), evaluators)


@dataclass(frozen=True, slots=True)
class _CaseArgs:
    """The keyword arguments of :func:`run_cases` that every case shares."""

    base_config: Mapping[str, Any]
    run_id: str
    stage: str
    parallelism: int
    case_timeout_seconds: float
    fields: Mapping[str, str | None]
    progress: ProgressFn | None


async def _run_streamed(
    workflow: Workflow,
    prompts: PromptSet,
    cases: Sequence[Case],
    evaluators: Sequence[Evaluator],
    stream: CaseStream,
    pool: CaseWorkers | None,
    a: _CaseArgs,
) -> Evaluation:
    """:func:`run_cases` with a ``stream``: results go to it as they finish and are not kept."""
    try:
        if pool is not None and len(cases) > 1:
            for start in range(0, len(cases), stream.batch_size):
                for r in await _pooled(pool, prompts, cases[start : start + stream.batch_size], a):
                    stream.add(r)
        else:
            await _each(_runner(workflow, evaluators, prompts, a), cases, a.parallelism, stream.add)
    finally:
        stream.flush()
    return evaluation_of([], stream.totals)


async def _pooled(pool: CaseWorkers, prompts: PromptSet, cases: Sequence[Case], a: _CaseArgs) -> list[CaseResult]:
    return await pool.run(
        prompts, cases, base_config=a.base_config, run_id=a.run_id, stage=a.stage, parallelism=a.parallelism,
        case_timeout_seconds=a.case_timeout_seconds, evaluator_fields=a.fields, progress=a.progress,
    )  # fmt: skip


def _runner(workflow: Workflow, evaluators: Sequence[Evaluator], prompts: PromptSet, a: _CaseArgs) -> _CaseRunner:
    return _CaseRunner(
        workflow, evaluators, a.base_config, a.run_id, a.stage, a.case_timeout_seconds, prompts.configurable(),
        a.fields, a.progress,
    )  # fmt: skip


async def _each(
    one: Callable[[Case], Awaitable[CaseResult]],
    cases: Sequence[Case],
    parallelism: int,
    sink: Callable[[CaseResult], None],
) -> None:
    """``one`` over ``cases`` by ``parallelism`` worker coroutines; each result to ``sink`` as it finishes."""
    queue = iter(cases)

    async def worker() -> None:
        for case in queue:
            sink(await one(case))

    await asyncio.gather(*(worker() for _ in range(max(1, min(parallelism, len(cases))))))


@dataclass(frozen=True, slots=True)
class _CaseRunner:
    """Runs one case in this process: invoke the graph under the timeout, then score it."""

    workflow: Workflow
    evaluators: Sequence[Evaluator]
    base_config: Mapping[str, Any]
    run_id: str
    stage: str
    case_timeout_seconds: float
    configurable: Mapping[str, Any]
    fields: Mapping[str, str | None]
    progress: ProgressFn | None

    async def __call__(self, case: Case) -> CaseResult:
        thread_id = case_thread_id(self.run_id, self.stage, case.case_id)
        if case.error is not None:
            return CaseResult(case, self.stage, thread_id, None, {}, case.error, 0.0, frozenset())
        cfg = case_config(
            self.base_config,
            run_id=self.run_id,
            stage=self.stage,
            case_id=case.case_id,
            extra_configurable=self.configurable,
        )
        usage, usage_token = begin_case()
        tape, token = start_tape()
        started = time.perf_counter()
        output: Any = None
        error: str | None = None
        try:
            try:
                async with asyncio.timeout(self.case_timeout_seconds):
                    output = await self.workflow.graph.ainvoke(self.workflow.to_state(case.input), cfg)
            except Exception as e:
                error = _describe(e, self.case_timeout_seconds)
            finally:
                stop_tape(token)
            latency = time.perf_counter() - started
            results: dict[str, EvalResult] = {}
            if error is None:
                try:
                    results = await self._score(case, output)
                except TimeoutError as e:  # an evaluator out of time (regex): an error row, not a score
                    error = f"{type(e).__name__}: {e}"
        finally:
            end_case(usage_token)  # the worker runs its next case in the same context
        if self.progress is not None:
            self.progress(1)
        return CaseResult(case, self.stage, thread_id, output, results, error, latency, frozenset(tape.used), usage)

    async def _score(self, case: Case, output: Any) -> dict[str, EvalResult]:
        """Every evaluator's result; ``expected`` is the evaluator's own column if it names one."""
        results: dict[str, EvalResult] = {}
        for ev in self.evaluators:
            col = self.fields.get(ev.name)
            expected = case.row.get(col) if col else case.expected
            results[ev.name] = await ev.evaluate(input=case.input, output=output, expected=expected)
        return results


async def _in_order(
    one: Callable[[Case], Awaitable[CaseResult]], cases: Sequence[Case], parallelism: int
) -> list[CaseResult]:
    """``one`` over ``cases`` by ``parallelism`` worker coroutines pulling from one iterator; case order kept."""
    out: list[CaseResult | None] = [None] * len(cases)
    queue = iter(enumerate(cases))

    async def worker() -> None:
        for i, case in queue:
            out[i] = await one(case)

    await asyncio.gather(*(worker() for _ in range(max(1, min(parallelism, len(cases))))))
    return [r for r in out if r is not None]


__all__ = [
    "CaseStream",
    "CaseWorkers",
    "ProgressFn",
    "run_cases",
]
