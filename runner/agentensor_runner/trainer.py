"""The agentensor training loop, with validation, checkpoints, a holdout guard and resume.

Flow of :meth:`Trainer.run`, one method per step (compare kopf's ``_core/reactor/processing.py``):

1. :meth:`Trainer._open`: split the dataset (seeded), size ``casesTotal``, set ``Running=True``
   (reason ``Training``) and let the workflow ``prepare`` on every input.
2. :meth:`Trainer._resume_or_baseline` -> :class:`LoopState`. A run id that already has
   checkpoints resumes after the latest one (:meth:`Trainer._resume`: its config, its validation
   score re-computed, and its stop state); otherwise the baseline is scored on validation and
   checkpointed as epoch 0 (:meth:`Trainer._baseline`; every validation case erroring fails the
   run with ``AllCasesFailed``).
3. For each epoch (1-based) from ``LoopState.next_epoch``, unless :meth:`Trainer._stop_reason`
   already holds, :meth:`Trainer._epoch`: the train split is shuffled with a seed derived from
   ``(dataset.seed, epoch)`` and cut into minibatches of ``optimizer.batchSize``; per minibatch

   a. forward the current config over the batch and score it;
   b. turn every failed case (objective evaluator not passed, or an error) into textual feedback
      for the trainable prompts that took part (the workflow's credit assignment);
   c. :meth:`Trainer._select`: the optimizer proposes candidates; each is scored on the
      validation split and the best is accepted only if it beats the current validation score
      by more than ``optimizer.minDelta``.

4. :meth:`Trainer._end_epoch`, the stop rule: count epochs without an accepted candidate
   (``LoopState.stale``); stop when ``objective.goal`` is reached or ``stale`` reaches
   ``optimizer.patience``. Every ``checkpoint.every`` epochs, at the last epoch and when
   stopping, the current config is registered as a version and checkpointed *with its own
   validation score*.
5. :meth:`Trainer._finish`: the baseline and the best config are scored on the holdout split; a
   best config that regresses by more than ``holdoutGuard.maxRegression`` is not promotable.
   ``Running=False``, ``Succeeded=True``. A :class:`RunFailed` raised on the way becomes
   :meth:`Trainer.fail` (``Running=False``, ``Succeeded=False``, ``Failed=True``).

The stop state survives a resume: every checkpoint stores ``stale`` in its ``extra``
(:data:`STALE_KEY`), so a resumed run with ``patience`` trains exactly the epochs an
uninterrupted one does. A checkpoint written before ``stale`` was stored has it derived from
the checkpoints (trailing epochs with ``accepted == 0``; exact when ``checkpoint.every`` is 1),
see :func:`stale_after`.

Compared with upstream agentensor: a validation split (upstream has none) decides acceptance,
and the best config is saved. Compared with Orcheo: a checkpoint never pairs a config with
another config's score, every case has its own ``thread_id``, and there is a holdout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentensor_api import (
    CheckpointSummary,
    ConditionType,
    EvaluationCacheStatus,
    HoldoutScores,
    Reason,
    RunStatus,
    TrainingRun,
    UsageSummary,
    mark_failed,
    mark_running,
    mark_succeeded,
    now_rfc3339,
    set_condition,
)
from agentensor_store import CheckpointRecord

from ._budget import BUDGET_KEY, BudgetMeter, StopPoller
from ._context import RunContext
from ._errors import RunFailed
from ._evalcache import EvalCache, scoring_checksum
from ._overfit import MAX_REPORTED, describe_leaks, find_leaks
from ._projection import project
from ._report_results import status_results
from .datasets import Case, Splits, split_cases
from .executor import CaseResult, Evaluation, run_cases, summarize
from .llm import Usage
from .optimizers import Step, build_optimizer
from .prompts import PromptSet
from .selection import gate, merge, pareto_front, sample_parent
from .significance import PairedComparison, compare_paired, describe, paired_case_scores, status_fields
from .workflows import Feedback, default_attribution

log = logging.getLogger(__name__)

CACHE_PART_CASES = 64
"""With the evaluation cache, scored results are stored every this many finished cases (with a
worker pool: parts of this many x parallelism): a SIGKILLed runner loses at most that many
entries, whose model replies are in the LLM response cache anyway; SIGTERM stores them all."""

STALE_KEY = "stale"
"""Checkpoint ``extra`` key: epochs in a row, up to and including this one, that accepted no candidate."""


@dataclass
class LoopState:
    """What the loop carries from epoch to epoch (and what a resume must restore).

    Attributes:
        baseline: the config of checkpoint epoch 0.
        current: the config being trained (the latest accepted candidate).
        cur_val: ``current``'s validation evaluation (its objective is the score to beat).
        checkpoints: this run's checkpoints so far, by epoch.
        next_epoch: the first epoch still to train (1-based).
        stale: epochs in a row that accepted no candidate (compared with ``optimizer.patience``).
    """

    baseline: PromptSet
    current: PromptSet
    cur_val: Evaluation
    checkpoints: list[CheckpointRecord]
    next_epoch: int
    stale: int = 0
    pool: list[tuple[PromptSet, Evaluation]] = field(default_factory=list)
    """``selection: pareto``: the candidates kept so far with their validation evaluations."""
    parents: list[int | None] = field(default_factory=list)
    """``pool[i]``'s parent as an index into ``pool`` (None for the root), for merges."""
    merges: int = 0
    """Merges proposed so far in this run (``optimizer.maxMerges`` bounds it; kept over resume)."""

    @property
    def last_epoch(self) -> int:
        """The last epoch trained (or resumed after); 0 before the first."""
        return self.next_epoch - 1


@dataclass(frozen=True)
class EpochResult:
    """One epoch's figures for its checkpoint: candidates accepted, mean train score, calls, usage."""

    accepted: int
    train_score: float | None
    calls: dict[str, int]
    usage: Usage | None


def stale_after(checkpoints: Sequence[CheckpointRecord]) -> int:
    """The patience counter after the latest checkpoint (epochs in a row that accepted nothing).

    Read from the latest checkpoint's ``extra[STALE_KEY]``. A checkpoint without it (written
    before the key existed) gets the number of trailing checkpoints of epoch >= 1 with
    ``accepted == 0``, which is exact when every epoch is checkpointed (``checkpoint.every: 1``).

    Raises:
        ValueError: ``checkpoints`` is empty.
    """
    if not checkpoints:
        raise ValueError("stale_after needs at least one checkpoint")
    ordered = sorted(checkpoints, key=lambda c: c.epoch, reverse=True)
    stored = ordered[0].extra.get(STALE_KEY) if isinstance(ordered[0].extra, Mapping) else None
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    stale = 0
    for cp in ordered:
        if cp.epoch == 0 or cp.accepted:
            break
        stale += 1
    return stale


def _summary(cp: CheckpointRecord) -> CheckpointSummary:
    usage = cp.extra.get("usage") if isinstance(cp.extra, dict) else None
    return CheckpointSummary(
        epoch=cp.epoch,
        version=cp.version,
        score=cp.score,
        checksum=cp.checksum,
        accepted=cp.accepted,
        usage=UsageSummary.model_validate(usage) if usage else None,
    )


def promotion_decision(
    *,
    baseline: float,
    best: float,
    direction: str,
    max_regression: float,
    unchanged: bool,
    best_version: int,
    significance: PairedComparison | None = None,
) -> tuple[bool, str, str]:
    """The holdout guard: may the best config be promoted?

    Args:
        baseline, best: objective scores on the holdout split.
        direction: ``maximize`` or ``minimize``.
        max_regression: largest allowed drop from baseline, in objective units (>= 0).
        unchanged: the best config is the baseline itself.
        significance: the paired test of best vs baseline on the holdout cases
            (:func:`agentensor_runner.significance.compare_paired`); when given and not
            significant, the result is ``NotSignificant``.

    Returns:
        ``(promotable, reason, message)`` for the ``Promotable`` condition.
    """
    regression = (baseline - best) if direction == "maximize" else (best - baseline)
    if unchanged:
        return False, Reason.NO_IMPROVEMENT, "no candidate beat the baseline on validation; nothing to promote"
    if regression > max_regression + 1e-12:
        return (
            False,
            Reason.HOLDOUT_REGRESSION,
            (
                f"best version {best_version} scores {best:.4f} on holdout vs baseline {baseline:.4f}: "
                f"a regression of {regression:.4f} > maxRegression {max_regression:g}"
            ),
        )
    tested = f"; {describe(significance)}" if significance is not None else ""
    if significance is not None and not significance.significant:
        return (
            False,
            Reason.NOT_SIGNIFICANT,
            f"version {best_version}: holdout {best:.4f} vs baseline {baseline:.4f}; the gain could be noise{tested}",
        )
    return (
        True,
        Reason.HOLDOUT_GUARD_PASSED,
        (
            f"version {best_version}: holdout {best:.4f} vs baseline {baseline:.4f} "
            f"(maxRegression {max_regression:g}){tested}"
        ),
    )


def _extra(calls: dict[str, int], usage: Usage | None, stale: int) -> dict[str, Any]:
    """Checkpoint ``extra``: ``calls`` (optimizer counters plus LLM calls by purpose), ``usage``, ``stale``."""
    if usage is None:
        return {"calls": calls, STALE_KEY: stale}
    merged = dict(calls)
    for purpose, n in usage.calls.items():
        merged[purpose] = merged.get(purpose, 0) + n
    return {"calls": merged, "usage": usage.to_json(), STALE_KEY: stale}


def _calls(checkpoint: CheckpointRecord) -> dict[str, int]:
    """A checkpoint's ``extra.calls`` counters ({} when absent or malformed)."""
    calls = checkpoint.extra.get("calls") if isinstance(checkpoint.extra, Mapping) else None
    return {k: v for k, v in calls.items() if isinstance(v, int)} if isinstance(calls, Mapping) else {}


def _merge_pair(
    front: Mapping[str, int], parents: Sequence[int | None], rng: random.Random
) -> tuple[int, int, int] | None:
    """Two front members (pool indices, drawn in proportion to the cases they win) and their
    nearest common ancestor, or None when the front has no pair where neither descends from the other.

    ``parents[i]`` is pool entry ``i``'s parent index (None for the root).
    """

    def chain(i: int) -> list[int]:
        out = [i]
        while (p := parents[out[-1]]) is not None:
            out.append(p)
        return out

    chains = {int(k): chain(int(k)) for k in front}
    pairs = [(x, y) for x, y in itertools.combinations(sorted(chains), 2) if x not in chains[y] and y not in chains[x]]
    if not pairs:
        return None
    x, y = rng.choices(pairs, weights=[front[str(x)] + front[str(y)] for x, y in pairs], k=1)[0]
    on_y = set(chains[y])
    return x, y, next(i for i in chains[x] if i in on_y)


class Trainer:
    """Runs one TrainingRun; see the module docstring. Use :meth:`run`."""

    def __init__(self, ctx: RunContext) -> None:
        if not isinstance(ctx.resource, TrainingRun):
            raise TypeError("Trainer needs a TrainingRun")
        self.ctx = ctx
        self.spec = ctx.resource.spec
        self.optimizer = build_optimizer(self.spec.optimizer, **ctx.optimizer_deps())
        self.status = RunStatus(
            run_id=ctx.run_id,
            phase="Running",
            epochs=self.spec.optimizer.epochs,
            epoch=0,
            cases_completed=0,
            start_time=now_rfc3339(),
        )
        self._memo: dict[tuple[str, str], Evaluation] = {}
        self._cache: EvalCache | None = None
        self._meter = BudgetMeter(self.spec.budget)
        self._stop = StopPoller(ctx.store, ctx.run_id)
        self._halted: tuple[str, str, str | None] | None = None
        """(reason, message, exhausted budget) once a budget ran out or a stop was requested."""

    # -- status -----------------------------------------------------------------------------
    def _emit(self) -> None:
        if self.ctx.llm is not None:
            self.status.usage = self.ctx.llm.ledger.total.to_summary()
        self.status.budget = self._meter.to_status(self._ledger_total(), self._halted[2] if self._halted else None)
        self.ctx.store.update_run(self.ctx.run_id, phase=self.status.phase, status=self.status.to_wire())
        if self.ctx.on_status is not None:
            self.ctx.on_status(self.status)

    def _ledger_total(self) -> Usage | None:
        return self.ctx.llm.ledger.total if self.ctx.llm is not None else None

    def _halt(self, *, force_poll: bool = False) -> bool:
        """Must the loop stop at this candidate boundary? A budget ran out or a stop was requested.

        Sticky: once true it stays true (``self._halted`` holds the reason, ``BudgetExhausted`` or
        ``StopRequested``, and a message naming the budget). The store's stop request is read at
        most every few seconds (:class:`agentensor_runner._budget.StopPoller`) unless forced.
        """
        if self._halted is None:
            hit = self._meter.exhausted(self._ledger_total())
            if hit is not None:
                self._halted = (Reason.BUDGET_EXHAUSTED, hit[1], hit[0])
            elif self._stop.poll(force=force_poll):
                self._halted = (Reason.STOP_REQUESTED, "stop requested (agentensor.dev/stop=true)", None)
            if self._halted is not None:
                log.info("run %s stops at a candidate boundary: %s", self.ctx.run_id, self._halted[1])
        return self._halted is not None

    def _usage_snapshot(self) -> Usage | None:
        return self.ctx.llm.ledger.snapshot() if self.ctx.llm is not None else None

    def _usage_since(self, snapshot: Usage | None) -> Usage | None:
        if self.ctx.llm is None or snapshot is None:
            return None
        return self.ctx.llm.ledger.since(snapshot)

    @property
    def _obj(self) -> str:
        return self.ctx.objective.evaluator

    # -- evaluation -------------------------------------------------------------------------
    def _eval_cache(self) -> EvalCache | None:
        """The run's evaluation cache (``spec.evaluationCache``), made on first use after ``_open``."""
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

    async def _evaluate(
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

        Answered from the in-process memo (``memo_key``), else each case from the evaluation cache
        (:mod:`agentensor_runner._evalcache`); only the misses run, in parts of
        :data:`CACHE_PART_CASES` whose scored results are stored as each part ends. Interrupted
        (SIGTERM cancels the run), the cases finished so far are still recorded as rows.
        """
        key = (memo_key, prompts.checksum()) if memo_key else None
        if key is not None and key in self._memo:
            return self._memo[key]
        total = len(cases)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.status.cases_completed = (self.status.cases_completed or 0) + n
            if self.ctx.on_progress is not None:
                self.ctx.on_progress(stage, done, total)

        cache = self._eval_cache()
        checksum = prompts.checksum()
        keys, results = cache.lookup(checksum, cases, stage) if cache is not None else ([], {})
        if results:
            tick(len(results))
        try:
            await self._run_misses(prompts, cases, stage, results, keys, tick)
        except BaseException:
            if results:  # what was scored before the interruption stays (the cache has it too)
                partial = summarize([results[i] for i in sorted(results)], self.ctx.evaluators)
                self.ctx.record(partial, epoch=epoch, version=version)
            raise
        ev = summarize([results[i] for i in range(total)], self.ctx.evaluators)
        self.status.cases_failed = (self.status.cases_failed or 0) + ev.errors
        if cache is not None:
            self.status.evaluation_cache = EvaluationCacheStatus(
                hits=cache.hits, misses=cache.misses, stored=cache.stored
            )
        self.ctx.record(ev, epoch=epoch, version=version)
        if key is not None:
            self._memo[key] = ev
        return ev

    async def _run_misses(
        self,
        prompts: PromptSet,
        cases: Sequence[Case],
        stage: str,
        results: dict[int, CaseResult],
        keys: Sequence[str],
        tick: Callable[[int], None],
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
            self._meter.metric_calls += len(idx)  # spec.budget.maxMetricCalls: case evaluations actually run
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
        tick: Callable[[int], None],
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
                self._meter.metric_calls += 1  # spec.budget.maxMetricCalls: case evaluations actually run
                unstored.append(i)
                if len(unstored) >= CACHE_PART_CASES:
                    flush()

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.spec.parallelism, len(misses)))))
        finally:
            flush()

    async def _run(
        self, prompts: PromptSet, cases: Sequence[Case], stage: str, tick: Callable[[int], None], parallelism: int
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

    def _feedback(self, ev: Evaluation, prompts: PromptSet) -> dict[str, list[Feedback]]:
        obj = self._obj
        attribute = self.ctx.workflow.attribute or default_attribution
        out: dict[str, list[Feedback]] = defaultdict(list)
        for r in ev.cases:
            if r.error is None and r.passed(obj):
                continue
            if r.case.error is not None:
                continue  # a bad dataset row says nothing about the prompts
            result = r.results.get(obj)
            message = r.error or (result.reason if result else "failed")
            for fb in attribute(
                case_id=r.case.case_id,
                input=r.case.input,
                output=r.output,
                expected=r.case.expected,
                used=r.used_prompts,
                trainable=prompts.trainable,
                message=message,
            ):
                out[fb.prompt].append(fb)
        return dict(out)

    def _checkpoint(
        self,
        epoch: int,
        state: LoopState,
        splits: Splits,
        *,
        train_score: float | None,
        accepted: int,
        calls: dict[str, int],
        usage: Usage | None = None,
    ) -> None:
        """Register ``state.current`` as a version and checkpoint it with its own validation score."""
        store, ctx = self.ctx.store, self.ctx
        version = store.register_version(
            ctx.workflow_key,
            dict(state.current.texts),
            dict(state.current.parameters),
            namespace=ctx.namespace,
            source="checkpoint",
            source_run_id=ctx.run_id,
            seed=self.spec.dataset.seed,
            dataset_hash=splits.dataset_hash,
        )
        cp = store.add_checkpoint(
            ctx.run_id,
            epoch=epoch,
            version=version,
            score=state.cur_val.objective(self._obj),
            scores=state.cur_val.means,
            train_score=train_score,
            accepted=accepted,
            seed=self.spec.dataset.seed,
            dataset_hash=splits.dataset_hash,
            extra={**_extra(calls, usage, state.stale), BUDGET_KEY: self._meter.to_extra(self._ledger_total())},
        )
        state.checkpoints.append(cp)
        self.status.checkpoints = [_summary(c) for c in state.checkpoints]

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> RunStatus:
        """Train, checkpoint and guard; returns the final status (also written to the store).

        Raises:
            RunFailed: when the baseline cannot be scored at all (every validation case errored).
        """
        splits = self._open()
        state = await self._resume_or_baseline(splits)
        for epoch in range(state.next_epoch, self.spec.optimizer.epochs + 1):
            if self._halt(force_poll=True) or self._stop_reason(state) is not None:
                break  # stopped already: the baseline meets the goal, or a resumed run had stopped
            result = await self._epoch(state, epoch, splits)
            if self._end_epoch(state, epoch, result, splits) is not None:
                break
        if state.checkpoints[-1].checksum != state.current.checksum():  # e.g. every>1 and early exit
            epoch = max(state.last_epoch, state.checkpoints[-1].epoch + 1)
            self._checkpoint(epoch, state, splits, train_score=None, accepted=0, calls={})
        return await self._finish(state, splits)

    def _open(self) -> Splits:
        """Split the dataset, size ``casesTotal``, set ``Running=True`` and prepare the workflow."""
        ctx, spec = self.ctx, self.spec
        assert spec.dataset.split is not None
        splits = split_cases(ctx.cases, spec.dataset.split, spec.dataset.seed)
        self.status.dataset_hash = splits.dataset_hash
        ctx.store.update_run(ctx.run_id, dataset_hash=splits.dataset_hash, started_at=datetime.now(UTC))
        n_batches = max(1, -(-len(splits.train) // spec.optimizer.batch_size))
        self.status.cases_total = (
            len(splits.validation)
            + spec.optimizer.epochs
            * (len(splits.train) + n_batches * spec.optimizer.candidates * len(splits.validation))
            + 2 * len(splits.holdout)
        )
        mark_running(self.status, Reason.TRAINING, f"{len(ctx.cases)} cases, dataset {splits.dataset_hash[:12]}")
        self.status.projected = project(spec, splits, len(ctx.start.trainable))
        p = self.status.projected
        log.info(
            "run %s projects %d metric calls (baseline %d, %d per epoch x %d epochs, holdout %d) and about %d "
            "model calls (%d per epoch)",
            ctx.run_id,
            p.metric_calls_total,
            p.metric_calls_baseline,
            p.metric_calls_per_epoch,
            p.epochs,
            p.metric_calls_holdout,
            p.model_calls_total,
            p.model_calls_per_epoch,
        )
        self._emit()
        if ctx.workflow.prepare is not None:
            ctx.workflow.prepare([c.input for c in ctx.cases if c.error is None])
        return splits

    async def _resume_or_baseline(self, splits: Splits) -> LoopState:
        """Resume after this run id's latest checkpoint if it has any, else start from the baseline."""
        checkpoints = self.ctx.store.list_checkpoints(run_id=self.ctx.run_id)
        state = await (self._resume(checkpoints, splits) if checkpoints else self._baseline(splits))
        self.status.best_score = state.cur_val.objective(self._obj)
        self.status.checkpoints = [_summary(c) for c in state.checkpoints]
        self._emit()
        return state

    async def _baseline(self, splits: Splits) -> LoopState:
        """Score the start config on validation and checkpoint it as epoch 0.

        Raises:
            RunFailed: ``AllCasesFailed`` when every validation case errored (names the first).
        """
        snap = self._usage_snapshot()
        start = self.ctx.start
        base_val = await self._evaluate(
            start,
            splits.validation,
            "epoch-0/validation",
            epoch=0,
            version=self.ctx.start_version.version,
            memo_key="validation",
        )
        if base_val.errors == len(base_val.cases):
            first_err = next((r for r in base_val.cases if r.error), None)
            raise RunFailed(
                Reason.ALL_CASES_FAILED,
                f"every validation case failed; case "
                f"{first_err.case.case_id if first_err else '?'}: "
                f"{first_err.error if first_err else ''}",
            )
        self.status.baseline_score = base_val.objective(self._obj)
        state = LoopState(baseline=start, current=start, cur_val=base_val, checkpoints=[], next_epoch=1)
        self._checkpoint(0, state, splits, train_score=None, accepted=0, calls={}, usage=self._usage_since(snap))
        return state

    async def _resume(self, checkpoints: list[CheckpointRecord], splits: Splits) -> LoopState:
        """Restart after the latest checkpoint: its config, validation score and stop state."""
        latest = max(checkpoints, key=lambda c: c.epoch)
        first = min(checkpoints, key=lambda c: c.epoch)
        self._meter.restore(latest.extra.get(BUDGET_KEY) if isinstance(latest.extra, Mapping) else None)
        trainable = self.ctx.start.trainable
        baseline = PromptSet(dict(first.prompts), trainable, dict(first.parameters))
        current = PromptSet(dict(latest.prompts), trainable, dict(latest.parameters))
        base_val = await self._evaluate(
            baseline, splits.validation, "epoch-0/validation", epoch=0, version=first.version, memo_key="validation"
        )
        cur_val = await self._evaluate(
            current,
            splits.validation,
            f"epoch-{latest.epoch}/validation",
            epoch=latest.epoch,
            version=latest.version,
            memo_key="validation",
        )
        self.status.baseline_score = base_val.objective(self._obj)
        mark_running(self.status, Reason.RESUMED, f"resumed after checkpoint epoch {latest.epoch}")
        return LoopState(
            baseline=baseline,
            current=current,
            cur_val=cur_val,
            checkpoints=checkpoints,
            next_epoch=latest.epoch + 1,
            stale=stale_after(checkpoints),
            merges=sum(_calls(c).get("mergeProposals", 0) for c in checkpoints),
        )

    def _stop_reason(self, state: LoopState) -> str | None:
        """The stop rule: ``BudgetExhausted`` or ``StopRequested`` (:meth:`_halt` said so),
        ``GoalReached`` (goal met), ``PatienceExhausted`` (stale >= patience), or None."""
        if self._halted is not None:
            return self._halted[0]
        goal = self.ctx.objective.goal
        if goal is not None and not self.ctx.better(goal, state.cur_val.objective(self._obj)):
            return Reason.GOAL_REACHED
        patience = self.spec.optimizer.patience
        if patience is not None and state.stale >= patience:
            return Reason.PATIENCE_EXHAUSTED
        return None

    async def _epoch(self, state: LoopState, epoch: int, splits: Splits) -> EpochResult:
        """Train one epoch: per minibatch forward, feedback and candidate selection."""
        size = self.spec.optimizer.batch_size
        self.status.epoch = epoch
        order = list(splits.train)
        random.Random(f"{self.spec.dataset.seed}:{epoch}").shuffle(order)
        snap = self._usage_snapshot()
        calls: dict[str, int] = defaultdict(int)
        accepted = 0
        train_scores: list[float] = []
        for batch_no, b in enumerate(range(0, len(order), size)):
            if self._halt():
                break
            batch = order[b : b + size]
            parent = self._parent(state, epoch, batch_no)
            tr = await self._evaluate(parent[0], batch, f"epoch-{epoch}/train/batch-{batch_no}", epoch=epoch)
            train_scores.append(tr.objective(self._obj) * len(batch))
            feedback = self._feedback(tr, parent[0])
            if not feedback:
                continue
            step = Step(
                epoch=epoch,
                batch=batch_no,
                candidates=self.spec.optimizer.candidates,
                rng=random.Random(f"{self.spec.dataset.seed}:{epoch}:{batch_no}"),
                calls=calls,
            )
            if await self._select(state, feedback, step, splits, parent, (batch, tr)):
                accepted += 1
                if state.merges < self.spec.optimizer.max_merges and not self._halt():
                    await self._merge(state, step, splits)
            self._emit()
        train_score = sum(train_scores) / len(order) if order else None
        return EpochResult(accepted, train_score, dict(calls), self._usage_since(snap))

    def _parent(self, state: LoopState, epoch: int, batch_no: int) -> tuple[PromptSet, Evaluation]:
        """The config this step edits: ``state.current`` (greedy), else sampled from the Pareto front.

        Pareto: each kept candidate's per-case validation scores (sign-adjusted so higher is
        better, cases by id) form the table of :func:`agentensor_runner.selection.pareto_front`;
        the parent is drawn in proportion to the cases it wins, with its own seeded RNG.
        """
        if not state.pool:  # a fresh or resumed run: the pool starts from the current config
            state.pool.append((state.current, state.cur_val))
            state.parents.append(None)
        if self.spec.optimizer.selection != "pareto" or len(state.pool) < 2:
            return state.current, state.cur_val
        rng = random.Random(f"{self.spec.dataset.seed}:{epoch}:{batch_no}:parent")
        return state.pool[int(sample_parent(self._front(state), rng))]

    def _front(self, state: LoopState) -> dict[str, int]:
        """The Pareto front of ``state.pool`` (pool index as a string -> validation cases it wins)."""
        sign = 1.0 if self.ctx.objective.direction == "maximize" else -1.0
        table = {
            str(i): [sign * r.score(self._obj) for r in sorted(ev.cases, key=lambda r: r.case.case_id)]
            for i, (_, ev) in enumerate(state.pool)
        }
        return pareto_front(table)

    async def _merge(self, state: LoopState, step: Step, splits: Splits) -> bool:
        """``optimizer.maxMerges``: cross two front members per prompt; keep the result if it beats both.

        GEPA's merge (Agrawal et al. 2025, arXiv:2507.19457, section 3 "Merge"): two front members
        that share an ancestor and differ from each other, each prompt taken from the member that
        changed it (:func:`agentensor_runner.selection.merge`). A pair where one descends from the
        other, or a merge that repeats a pooled config, is not proposed. Returns whether it was kept.
        """
        front = self._front(state)
        pair = _merge_pair(
            front, state.parents, random.Random(f"{self.spec.dataset.seed}:{step.epoch}:{step.batch}:merge")
        )
        if pair is None:
            return False
        (a, a_ev), (b, b_ev) = state.pool[pair[0]], state.pool[pair[1]]
        ancestor = state.pool[pair[2]][0]
        rng = random.Random(f"{self.spec.dataset.seed}:{step.epoch}:{step.batch}:merge-texts")
        merged = a.with_texts(
            {k: v for k, v in merge(a.texts, b.texts, ancestor.texts, rng).items() if k in a.trainable}
        )
        if merged.checksum() in {p.checksum() for p, _ in state.pool}:
            return False
        state.merges += 1
        step.calls["mergeProposals"] = step.calls.get("mergeProposals", 0) + 1
        ev = await self._evaluate(
            merged,
            splits.validation,
            f"epoch-{step.epoch}/batch-{step.batch}/merge-0",
            epoch=step.epoch,
            memo_key="validation",
        )
        obj, delta = self._obj, self.spec.optimizer.min_delta
        if not all(self.ctx.better(ev.objective(obj), p.objective(obj), delta) for p in (a_ev, b_ev)):
            return False
        step.calls["mergesAccepted"] = step.calls.get("mergesAccepted", 0) + 1
        state.pool.append((merged, ev))
        state.parents.append(pair[0])
        if self.ctx.better(ev.objective(obj), state.cur_val.objective(obj)):
            state.current, state.cur_val = merged, ev
            self.status.best_score = ev.objective(obj)
        return True

    async def _gate(self, cand: PromptSet, batch: tuple[list[Case], Evaluation], step: Step, i: int) -> bool:
        """``optimizer.minibatchGate``: does ``cand`` beat its parent on the parent's minibatch?"""
        cases, parent_ev = batch
        ev = await self._evaluate(cand, cases, f"epoch-{step.epoch}/batch-{step.batch}/gate-{i}", epoch=step.epoch)
        sign = 1.0 if self.ctx.objective.direction == "maximize" else -1.0
        return gate([sign * r.score(self._obj) for r in ev.cases], [sign * r.score(self._obj) for r in parent_ev.cases])

    async def _select(
        self,
        state: LoopState,
        feedback: dict[str, list[Feedback]],
        step: Step,
        splits: Splits,
        parent: tuple[PromptSet, Evaluation],
        batch: tuple[list[Case], Evaluation],
    ) -> bool:
        """Score each proposed candidate on validation; accept the best that beats its parent.

        Greedy (the parent is ``state.current``): the first candidate must beat the current score
        by more than ``optimizer.minDelta``, a later one the best so far; the accepted one becomes
        ``state.current``. Pareto: every candidate that beats its parent joins ``state.pool``, and
        ``state.current`` is the pool's best. With ``optimizer.minibatchGate`` a candidate that
        does not beat its parent on the minibatch is never scored on validation
        (``calls.gateSavedCases`` counts the validation cases saved). Returns whether one was kept.
        """
        obj, pareto = self._obj, self.spec.optimizer.selection == "pareto"
        best: tuple[PromptSet, Evaluation] | None = None
        for i, cand in enumerate(await self.optimizer.propose(parent[0], feedback, step)):
            if self._halt():
                break
            if self.spec.optimizer.minibatch_gate and not await self._gate(cand.prompts, batch, step, i):
                step.calls["gateSavedCases"] = step.calls.get("gateSavedCases", 0) + len(splits.validation)
                self.optimizer.observe(cand, batch[1].objective(obj), False)
                continue
            if self._halt():
                break
            ev = await self._evaluate(
                cand.prompts,
                splits.validation,
                f"epoch-{step.epoch}/batch-{step.batch}/candidate-{i}",
                epoch=step.epoch,
                memo_key="validation",
            )
            target = best[1] if best and not pareto else parent[1]
            min_delta = self.spec.optimizer.min_delta if best is None or pareto else 0.0
            ok = self.ctx.better(ev.objective(obj), target.objective(obj), min_delta)
            self.optimizer.observe(cand, ev.objective(obj), ok)
            if ok and pareto:
                state.pool.append((cand.prompts, ev))
                state.parents.append(next((j for j, (p, _) in enumerate(state.pool) if p is parent[0]), None))
            if ok and (not pareto or best is None or self.ctx.better(ev.objective(obj), best[1].objective(obj))):
                best = (cand.prompts, ev)
        if best is None:
            return False
        if not pareto or self.ctx.better(best[1].objective(obj), state.cur_val.objective(obj)):
            state.current, state.cur_val = best
        self.status.best_score = state.cur_val.objective(obj)
        return True

    def _end_epoch(self, state: LoopState, epoch: int, result: EpochResult, splits: Splits) -> str | None:
        """Update the stop state, checkpoint when due; returns the stop reason if the loop ends here."""
        state.stale = 0 if result.accepted else state.stale + 1
        state.next_epoch = epoch + 1
        stop = self._stop_reason(state)
        if epoch % self.spec.checkpoint.every == 0 or epoch == self.spec.optimizer.epochs or stop is not None:
            self._checkpoint(
                epoch,
                state,
                splits,
                train_score=result.train_score,
                accepted=result.accepted,
                calls=result.calls,
                usage=result.usage,
            )
        self._emit()
        if stop is not None:
            why = f"{self._halted[1]}; stopped in epoch {epoch}" if self._halted else f"stopped after epoch {epoch}"
            mark_running(self.status, stop, why)
        return stop

    async def _finish(self, state: LoopState, splits: Splits) -> RunStatus:
        """Score baseline and best on holdout, decide ``Promotable``, mark the run Succeeded."""
        ctx, obj, best, checkpoints = self.ctx, self._obj, state.current, state.checkpoints
        best_cp = next(c for c in reversed(checkpoints) if c.checksum == best.checksum())
        base_h = await self._evaluate(
            state.baseline, splits.holdout, "holdout/baseline", epoch=None, version=checkpoints[0].version
        )
        best_h = await self._evaluate(best, splits.holdout, "holdout/best", epoch=None, version=best_cp.version)
        bh, eh = base_h.objective(obj), best_h.objective(obj)
        significance = self._significance(base_h, best_h)
        fields = status_fields(significance) if significance is not None else {}
        self.status.holdout = HoldoutScores.model_validate({"baseline": bh, "best": eh, **fields})
        self.status.scores = best_h.means
        self.status.results = status_results(best_h.aggregates)
        self.status.best_version = best_cp.version
        self.status.best_checksum = best_cp.checksum
        self.status.best_score = best_cp.score
        promotable, reason, message = promotion_decision(
            baseline=bh,
            best=eh,
            direction=ctx.objective.direction,
            max_regression=self.spec.holdout_guard.max_regression,
            unchanged=best.checksum() == state.baseline.checksum(),
            best_version=best_cp.version,
            significance=significance,
        )
        self.status.conditions = set_condition(
            self.status.conditions, ConditionType.PROMOTABLE, "True" if promotable else "False", reason, message
        )
        self._guard_overfitting(best, splits)
        self.status.cases_total = self.status.cases_completed
        done = f"best version {best_cp.version}: validation {best_cp.score:.4f}, holdout {eh:.4f}"
        if self._halted is not None:
            mark_succeeded(self.status, f"{self._halted[1]}; {done}", reason=self._halted[0])
        else:
            mark_succeeded(self.status, done)
        ctx.store.update_run(ctx.run_id, completed_at=datetime.now(UTC))
        self._emit()
        return self.status

    def _guard_overfitting(self, best: PromptSet, splits: Splits) -> None:
        """The overfitting guard: ``Overfitting=True`` and ``status.leakedInputs`` when the best config
        quotes validation or holdout inputs verbatim (:func:`agentensor_runner._overfit.find_leaks`)."""
        leaks = find_leaks(best.texts, {"validation": splits.validation, "holdout": splits.holdout}, splits.train)
        message = describe_leaks(leaks)
        self.status.leaked_inputs = leaks[:MAX_REPORTED] or None
        if leaks:
            log.warning("run %s: %s", self.ctx.run_id, message)
        self.status.conditions = set_condition(
            self.status.conditions,
            ConditionType.OVERFITTING,
            "True" if leaks else "False",
            Reason.EVALUATION_INPUTS_IN_PROMPT if leaks else Reason.NO_EVALUATION_INPUTS_IN_PROMPT,
            message,
        )

    def _significance(self, base_h: Evaluation, best_h: Evaluation) -> PairedComparison | None:
        """The paired test of the holdout guard (``holdoutGuard.confidence``/``minImprovement``)."""
        base, best = paired_case_scores(base_h, best_h, self._obj)
        if not base:
            return None
        guard = self.spec.holdout_guard
        return compare_paired(
            base,
            best,
            direction=self.ctx.objective.direction,
            confidence=guard.confidence,
            min_improvement=guard.min_improvement,
            seed=self.spec.dataset.seed,
        )

    def fail(self, reason: str, message: str) -> RunStatus:
        """Mark the run Failed (checkpoints already written stay) and return the status."""
        mark_failed(self.status, reason, message)
        self._emit()
        return self.status
