"""Run a workflow over cases with bounded concurrency, a per-case timeout, and scoring.

A case that raises or times out becomes an error row (``error`` set, every score 0) and the
run goes on. Concurrency is ``parallelism`` worker coroutines pulling cases from one iterator
(not one task per case waiting on a semaphore: 1,000 cases then cost 32 tasks, not 1,000); the
timeout is ``asyncio.timeout`` around the graph invocation only, which unlike ``wait_for`` on
Python 3.11 does not wrap the invocation in another task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._runnable_config import case_config, case_thread_id
from .data.datasets import Case
from .evaluators import Aggregate, EvalResult, Evaluator, Tally, resolve_path
from .llm import Usage, begin_case, end_case
from .prompts import PromptSet, start_tape, stop_tape
from .workflows import Workflow

ProgressFn = Callable[[int], None]
"""Called with the number of cases just finished (1; a whole part's with a worker pool)."""


class CaseWorkers(Protocol):
    """Runs cases in worker processes and returns their results in case order (``_workers.WorkerPool``)."""

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


def jsonable(value: Any) -> Any:
    """``value`` as a case row or cache entry stores it: unchanged if it is JSON (no NaN), else its ``repr``."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """Outcome of one case: output, per-evaluator results, error, latency in seconds."""

    case: Case
    stage: str
    thread_id: str
    output: Any
    results: Mapping[str, EvalResult]
    error: str | None
    latency_seconds: float
    used_prompts: frozenset[str]
    usage: Usage | None = None
    """LLM usage of this case (workflow and judge calls), from LangChain usage metadata."""

    def score(self, evaluator: str) -> float:
        """The evaluator's score; 0.0 for an error row, a missing result or an unscored one."""
        r = self.results.get(evaluator)
        return r.score if r is not None and self.error is None else 0.0

    def passed(self, evaluator: str) -> bool:
        r = self.results.get(evaluator)
        return bool(r is not None and self.error is None and r.passed)

    def scored(self, evaluator: str) -> bool:
        """False only when the evaluator's result is a parse failure (an error row scores 0: True)."""
        r = self.results.get(evaluator)
        return self.error is not None or r is None or r.scored


class Aggregator:
    """Per-evaluator aggregates and the error count, one case at a time (constant memory).

    An error row scores 0 and fails for every evaluator; an unscored result (parse failure)
    counts only in that evaluator's ``parseFailures``.
    """

    def __init__(self, evaluators: Sequence[str]) -> None:
        self.tallies = {name: Tally() for name in evaluators}
        self.errors = 0
        self.count = 0
        self.first_error: tuple[str, str] | None = None
        """``(case id, error)`` of the first error row counted."""

    def add(self, r: CaseResult) -> None:
        self._count_error(r.case.case_id, r.error)
        for name, tally in self.tallies.items():
            tally.add(r.score(name), r.passed(name), scored=r.scored(name))

    def add_row(
        self, case_id: str, scores: Mapping[str, float], reasons: Mapping[str, str] | None, error: str | None
    ) -> None:
        """Count a case from its stored row (a resumed evaluation), as :meth:`add` counted it.

        A row keeps the scores of the scored evaluators and the reasons of those that did not
        pass (``_context.RunContext.case_row``): an evaluator with a score passed unless it has a
        reason; one without a score (and no error) was unscored.
        """
        self._count_error(case_id, error)
        for name, tally in self.tallies.items():
            if error is not None:
                tally.add(0.0, False)
            elif name in scores:
                tally.add(float(scores[name]), name not in (reasons or {}))
            else:
                tally.add(0.0, False, scored=False)

    def _count_error(self, case_id: str, error: str | None) -> None:
        self.count += 1
        if error is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = (case_id, error)

    def aggregates(self) -> dict[str, Aggregate]:
        return {name: t.result() for name, t in self.tallies.items()}


@dataclass(frozen=True)
class Evaluation:
    """All case results of one (config, split) evaluation with per-evaluator aggregates.

    ``means`` is ``{evaluator: mean}`` over the scored cases (see :class:`Aggregator`);
    ``aggregates`` adds ``passRate``, ``n`` and ``parseFailures``. ``cases`` may be empty when
    the evaluation streamed its rows to the store instead of keeping them (``run_cases(stream=...)``).
    """

    cases: list[CaseResult]
    means: dict[str, float]
    errors: int
    aggregates: dict[str, Aggregate] = field(default_factory=dict)
    count: int | None = None
    """Cases evaluated (``len(cases)`` unless the rows were not kept)."""

    def objective(self, evaluator: str) -> float:
        return self.means.get(evaluator, 0.0)

    @property
    def size(self) -> int:
        return self.count if self.count is not None else len(self.cases)

    @property
    def parse_failures(self) -> dict[str, int]:
        """``{evaluator: unscored results}``, only evaluators with at least one."""
        return {k: a["parseFailures"] for k, a in self.aggregates.items() if a["parseFailures"]}


def summarize(results: Sequence[CaseResult], evaluators: Sequence[Evaluator]) -> Evaluation:
    """Aggregates per evaluator over all cases; an error row scores 0 for every evaluator.

    A parse failure is left out of its evaluator's mean (and counted in ``parseFailures``), so
    ``means[e]`` is the mean over the cases that ``e`` actually scored; 0.0 if it scored none.
    """
    agg = Aggregator([ev.name for ev in evaluators])
    for r in results:
        agg.add(r)
    return _evaluation(list(results), agg)


def _evaluation(cases: list[CaseResult], agg: Aggregator) -> Evaluation:
    aggregates = agg.aggregates()
    means = {k: a["mean"] for k, a in aggregates.items()}
    return Evaluation(cases, means, agg.errors, aggregates, agg.count)


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
    """Invoke the workflow on every case and score it.

    Args:
        workflow: the compiled workflow.
        prompts: the config (prompt texts + parameters) given to every case.
        cases: cases to run; cases with ``error`` set are recorded without invoking.
        evaluators: scorers; each gets ``resolve_path(output, spec.outputField)``.
        base_config: merged RunnableConfig; each case gets its own ``thread_id``/``run_id``.
        run_id, stage: identify the rows (``thread_id`` is derived from them and the case id).
        parallelism: cases in flight at once (>= 1).
        case_timeout_seconds: per-case limit on the graph invocation.
        evaluator_fields: optional ``{evaluator: dataset column}`` for evaluators whose
            ``expectedField`` differs from the dataset's.
        progress: called once per finished case (per finished part with a ``pool``).
        pool: worker processes to spread the cases over (see ``_workers.WorkerPool``); ``None`` runs
            everything in this process.
        stream: send the results to ``stream.write`` in batches instead of keeping them (an
            EvaluationRun over a big dataset); the evaluation then has no ``cases`` and its
            aggregates are ``stream.totals`` (which may hold resumed rows). With a ``pool`` the
            cases go to it ``stream.batch_size`` at a time.

    Returns:
        The evaluation, results in the order of ``cases`` (none kept with a ``stream``).
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
    return _evaluation([], stream.totals)


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
    "Aggregator",
    "CaseResult",
    "CaseStream",
    "Evaluation",
    "ProgressFn",
    "resolve_path",
    "run_cases",
    "summarize",
]
