"""Scoring a config on cases for the loop: the in-run memo, the evaluation cache, the metric-call count.

:meth:`Scorer.evaluate` answers from the in-process memo (``memo_key``), else each case from the
evaluation cache (:mod:`agentensor_runner.execution.evalcache`); only the misses run, in parts of
:data:`CACHE_PART_CASES` whose scored results are stored as each part ends. Every case actually
run adds one to ``BudgetMeter.metric_calls`` (``spec.budget.maxMetricCalls``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

from agentensor_api import EvaluationCacheStatus, RunStatus, TrainingRunSpec

from ..data import Case
from ..execution import CaseResult, EvalCache, Evaluation, RunContext, run_cases, scoring_checksum, summarize
from ..prompts import PromptSet
from .budget import BudgetMeter

CACHE_PART_CASES: Final = 64
"""With the evaluation cache, scored results are stored every this many finished cases (with a
worker pool: parts of this many x parallelism): a SIGKILLed runner loses at most that many
entries, whose model replies are in the LLM response cache anyway; SIGTERM stores them all."""

Tick = Callable[[int], None]


class Scorer:
    """Scores configs for one run; see the module docstring.

    Args:
        ctx: the run context (workflow, evaluators, store, progress callback).
        spec: the TrainingRun's spec (``parallelism``, ``caseTimeoutSeconds``, ``evaluationCache``).
        status: the run's status (``casesCompleted``, ``casesFailed``, ``evaluationCache`` are updated).
        meter: counts the case evaluations run.
    """

    def __init__(self, ctx: RunContext, spec: TrainingRunSpec, status: RunStatus, meter: BudgetMeter) -> None:
        self.ctx, self.spec, self.status, self.meter = ctx, spec, status, meter
        self._memo: dict[tuple[str, str], Evaluation] = {}
        self._cache: EvalCache | None = None

    def _eval_cache(self) -> EvalCache | None:
        """The run's evaluation cache (``spec.evaluationCache``), made on first use once the dataset hash is known."""
        if not self.spec.evaluation_cache.enabled or self.status.dataset_hash is None:
            return None
        if self._cache is None:
            self._cache = EvalCache(
                self.ctx.store,
                scoring=scoring_checksum(self.spec, self.ctx.base_config),
                dataset_hash=self.status.dataset_hash,
                run_id=self.ctx.run_id,
            )
        return self._cache

    async def evaluate(
        self,
        prompts: PromptSet,
        cases: Sequence[Case],
        stage: str,
        *,
        epoch: int | None,
        version: int | None = None,
        memo_key: str | None = None,
    ) -> Evaluation:
        """Score ``prompts`` on ``cases`` and record one row per case; results in case order.

        Interrupted (SIGTERM cancels the run), the cases finished so far are still recorded as rows.
        """
        key = (memo_key, prompts.checksum()) if memo_key else None
        if key is not None and key in self._memo:
            return self._memo[key]
        tick = self._ticker(stage, len(cases))
        cache = self._eval_cache()
        keys, results = cache.lookup(prompts.checksum(), cases, stage) if cache is not None else ([], {})
        if results:
            tick(len(results))
        try:
            await self._run_misses(prompts, cases, stage, results, keys, tick)
        except BaseException:
            if results:  # what was scored before the interruption stays (the cache has it too)
                partial = summarize([results[i] for i in sorted(results)], self.ctx.evaluators)
                self.ctx.record(partial, epoch=epoch, version=version)
            raise
        ev = summarize([results[i] for i in range(len(cases))], self.ctx.evaluators)
        self._account(ev, cache)
        self.ctx.record(ev, epoch=epoch, version=version)
        if key is not None:
            self._memo[key] = ev
        return ev

    def _ticker(self, stage: str, total: int) -> Tick:
        """A progress callback: adds to ``casesCompleted`` and reports ``(stage, done, total)``."""
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.status.cases_completed = (self.status.cases_completed or 0) + n
            if self.ctx.on_progress is not None:
                self.ctx.on_progress(stage, done, total)

        return tick

    def _account(self, ev: Evaluation, cache: EvalCache | None) -> None:
        self.status.cases_failed = (self.status.cases_failed or 0) + ev.errors
        if cache is not None:
            self.status.evaluation_cache = EvaluationCacheStatus(
                hits=cache.hits, misses=cache.misses, stored=cache.stored
            )

    async def _run_misses(
        self,
        prompts: PromptSet,
        cases: Sequence[Case],
        stage: str,
        results: dict[int, CaseResult],
        keys: Sequence[str],
        tick: Tick,
    ) -> None:
        """Run the cases not in ``results`` (indexes into ``cases``), filling ``results``.

        Without the evaluation cache (``keys`` empty) they run as one :func:`run_cases` call.
        With it, a run with models in this process runs each case as its own call under
        ``parallelism`` workers, so that every finished case is in ``results`` the moment it
        finishes: the scored ones are stored every :data:`CACHE_PART_CASES` cases and, when the
        evaluation is interrupted (SIGTERM cancels it), at once, so no case finished before the
        signal calls a model again. A run without models (no call to save, and per-case calls
        cost an LLM-free router about 25% more CPU) or with a worker pool runs in parts of
        :data:`CACHE_PART_CASES` x ``parallelism``, each part's results stored as it ends.
        """
        misses = [i for i in range(len(cases)) if i not in results]
        if not misses:
            return
        if keys and self.ctx.pool is None and self.ctx.llm is not None:
            await self._run_each(prompts, cases, stage, misses, results, keys, tick)
            return
        part = CACHE_PART_CASES * self.spec.parallelism if keys else len(misses)
        for b in range(0, len(misses), part):
            idx = misses[b : b + part]
            ev = await self._run(prompts, [cases[i] for i in idx], stage, tick, self.spec.parallelism)
            results.update(zip(idx, ev.cases, strict=True))
            self.meter.metric_calls += len(idx)  # spec.budget.maxMetricCalls: case evaluations actually run
            if keys and self._cache is not None:
                self._cache.put(prompts.checksum(), ev.cases, [keys[i] for i in idx])

    async def _run_each(
        self,
        prompts: PromptSet,
        cases: Sequence[Case],
        stage: str,
        misses: list[int],
        results: dict[int, CaseResult],
        keys: Sequence[str],
        tick: Tick,
    ) -> None:
        """``misses`` one case per call under ``parallelism`` workers; see :meth:`_run_misses`."""
        cache, checksum = self._cache, prompts.checksum()
        unstored: list[int] = []

        def flush() -> None:
            if cache is not None and unstored:
                cache.put(checksum, [results[i] for i in unstored], [keys[i] for i in unstored])
            unstored.clear()

        queue = iter(misses)

        async def worker() -> None:
            for i in queue:
                ev = await self._run(prompts, [cases[i]], stage, tick, 1)
                results[i] = ev.cases[0]
                self.meter.metric_calls += 1  # spec.budget.maxMetricCalls: case evaluations actually run
                unstored.append(i)
                if len(unstored) >= CACHE_PART_CASES:
                    flush()

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.spec.parallelism, len(misses)))))
        finally:
            flush()

    async def _run(
        self, prompts: PromptSet, cases: Sequence[Case], stage: str, tick: Tick, parallelism: int
    ) -> Evaluation:
        return await run_cases(
            self.ctx.workflow,
            prompts,
            cases,
            self.ctx.evaluators,
            base_config=self.ctx.base_config,
            run_id=self.ctx.run_id,
            stage=stage,
            parallelism=parallelism,
            case_timeout_seconds=self.spec.case_timeout_seconds,
            evaluator_fields=self.ctx.evaluator_fields,
            progress=tick,
            pool=self.ctx.pool,
        )
