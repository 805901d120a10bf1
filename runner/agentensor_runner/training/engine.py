"""The training loop as named steps; the strategies it composes live in the sibling modules.

Flow of :meth:`Trainer.run` (compare kopf's ``_core/reactor/processing.py``):

1. :meth:`Trainer._open`: split the dataset (seeded), size ``casesTotal``, set ``Running=True``
   (reason ``Training``) and let the workflow ``prepare`` on every input (:mod:`.opening`).
2. :meth:`Trainer._resume_or_baseline` -> :class:`~.state.LoopState`. A run id that already has
   checkpoints resumes after the latest one (:meth:`Trainer._resume`: its config and the
   baseline re-scored on validation, the rest of the state loaded whole from the checkpoint,
   :func:`.state.restore`); otherwise the baseline is scored on validation and checkpointed as
   epoch 0 (:meth:`Trainer._baseline`; every validation case erroring fails the run with
   ``AllCasesFailed``).
3. Until :class:`~.stoppers.MaxEpochs` says the last epoch is trained, unless a stop rule
   already holds, :meth:`Trainer._epoch`: the train split is shuffled with a seed derived from
   ``(dataset.seed, epoch)`` and cut into minibatches of ``optimizer.batchSize``; per minibatch
   (:meth:`Trainer._step`)

   a. the selector (:mod:`.selectors`) picks the parent, which is forwarded over the batch and scored;
   b. every failed case becomes textual feedback for the prompts that took part (:mod:`.feedback`);
   c. :meth:`Trainer._select`: the optimizer proposes candidates; each passes the minibatch gate
      (:mod:`.gate`, if on), is scored on validation and judged (:mod:`.acceptance`);
   d. after a kept candidate, a merge of two front members may be proposed (:mod:`.merge`).

4. :meth:`Trainer._end_epoch`: update the patience counter, ask the stop rules (:mod:`.stoppers`:
   goal, patience, budgets and stop requests), and every ``checkpoint.every`` epochs, at the last
   epoch and when stopping, register the current config as a version and checkpoint it *with its
   own validation score* and the whole loop state (:mod:`.persistence`).
5. :meth:`Trainer._finish`: baseline and best on holdout, the guards (:mod:`.holdout`), ``Succeeded=True``.
   A :class:`~.errors.RunFailed` raised on the way becomes :meth:`Trainer.fail`.

Compared with upstream agentensor: a validation split (upstream has none) decides acceptance,
and the best config is saved. Compared with Orcheo: a checkpoint never pairs a config with
another config's score, every case has its own ``thread_id``, and there is a holdout.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping

from agentensor_api import Phase, Reason, RunStatus, TrainingRun, mark_failed, mark_running, mark_succeeded, now_rfc3339
from agentensor_store import CheckpointRecord

from .._errors import RunFailed
from ..data import Case, Splits
from ..execution import Evaluation, RunContext
from ..llm import Usage
from ..optimizers import Step, build_optimizer
from ..prompts import PromptSet
from ..workflows import Feedback
from . import holdout, merge
from .acceptance import StepAcceptance
from .budget import BudgetMeter, StopPoller
from .evaluation import Scorer
from .feedback import feedback
from .gate import passes
from .opening import open_splits
from .persistence import EpochResult, RunRecords, summary
from .selectors import selector_for
from .state import LoopState, Scored, restore
from .stoppers import AnyOf, BudgetOrStop, GoalReached, MaxEpochs, NoImprovement


class Trainer:
    """Runs one TrainingRun; see the module docstring. Use :meth:`run`.

    Raises:
        TypeError: ``ctx.resource`` is not a TrainingRun.
    """

    def __init__(self, ctx: RunContext) -> None:
        if not isinstance(ctx.resource, TrainingRun):
            raise TypeError("Trainer needs a TrainingRun")
        self.ctx = ctx
        self.spec = spec = ctx.resource.spec
        self.optimizer = build_optimizer(spec.optimizer, **ctx.optimizer_deps())
        self.status = RunStatus(
            run_id=ctx.run_id,
            phase=Phase.RUNNING,
            epochs=spec.optimizer.epochs,
            epoch=0,
            cases_completed=0,
            start_time=now_rfc3339(),
        )
        self._meter = BudgetMeter(spec.budget)
        self._scorer = Scorer(ctx, spec, self.status, self._meter)
        self._records = RunRecords(ctx, spec.dataset.seed)
        self._selector = selector_for(spec.optimizer.selection, ctx.objective.direction)
        self._halt = BudgetOrStop(self._meter, StopPoller(ctx.store, ctx.run_id), self._ledger_total, ctx.run_id)
        self._stop = AnyOf(
            self._halt, GoalReached(ctx.objective.goal, ctx.better), NoImprovement(spec.optimizer.patience)
        )
        self._epochs = MaxEpochs(spec.optimizer.epochs)
        self._baseline_config = ctx.start
        self._checkpoints: list[CheckpointRecord] = []

    # -- status and usage -------------------------------------------------------------------
    def _emit(self) -> None:
        if self.ctx.llm is not None:
            self.status.usage = self.ctx.llm.ledger.total.to_summary()
        self.status.budget = self._meter.to_status(self._ledger_total(), self._halt.exhausted)
        self._records.publish(self.status)

    def _ledger_total(self) -> Usage | None:
        return self.ctx.llm.ledger.total if self.ctx.llm is not None else None

    def _usage_snapshot(self) -> Usage | None:
        return self.ctx.llm.ledger.snapshot() if self.ctx.llm is not None else None

    def _usage_since(self, snapshot: Usage | None) -> Usage | None:
        if self.ctx.llm is None or snapshot is None:
            return None
        return self.ctx.llm.ledger.since(snapshot)

    @property
    def _obj(self) -> str:
        return self.ctx.objective.evaluator

    async def _validate(
        self, prompts: PromptSet, splits: Splits, stage: str, *, epoch: int, version: int | None = None
    ) -> Scored:
        """``prompts`` scored on the validation split (memoised per config) under ``stage``."""
        ev = await self._scorer.evaluate(
            prompts, splits.validation, stage, epoch=epoch, version=version, memo_key="validation"
        )
        return Scored.of(prompts, ev, self._obj)

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> RunStatus:
        """Train, checkpoint and guard; returns the final status (also written to the store).

        Raises:
            RunFailed: when the baseline cannot be scored at all (every validation case errored).
        """
        splits = self._open()
        state = await self._resume_or_baseline(splits)
        while self._epochs.check(state) is None:
            if self._halt.poll(force=True) or self._stop.check(state) is not None:
                break  # stopped already: the baseline meets the goal, or a resumed run had stopped
            epoch = state.epoch + 1
            result = await self._epoch(state, epoch, splits)
            if self._end_epoch(state, epoch, result, splits) is not None:
                break
        last = self._checkpoints[-1]
        if last.checksum != state.current.prompts.checksum():  # e.g. every>1 and early exit
            self._checkpoint(max(state.epoch, last.epoch + 1), state, splits, EpochResult(0, None, {}, None))
        return await self._finish(state, splits)

    def _open(self) -> Splits:
        """Split the dataset, size ``casesTotal``, set ``Running=True`` and prepare the workflow."""
        splits = open_splits(self.ctx, self.spec, self.status)
        self._records.opened(splits.dataset_hash)
        self._emit()
        if self.ctx.workflow.prepare is not None:
            self.ctx.workflow.prepare([c.input for c in self.ctx.cases if c.error is None])
        return splits

    async def _resume_or_baseline(self, splits: Splits) -> LoopState:
        """Resume after this run id's latest checkpoint if it has any, else start from the baseline."""
        checkpoints = self._records.checkpoints()
        state = await (self._resume(checkpoints, splits) if checkpoints else self._baseline(splits))
        self.status.best_score = state.current.objective
        self.status.checkpoints = [summary(c) for c in self._checkpoints]
        self._emit()
        return state

    async def _baseline(self, splits: Splits) -> LoopState:
        """Score the start config on validation and checkpoint it as epoch 0.

        Raises:
            RunFailed: ``AllCasesFailed`` when every validation case errored (names the first).
        """
        snap = self._usage_snapshot()
        start = self.ctx.start
        base_val = await self._scorer.evaluate(
            start,
            splits.validation,
            "epoch-0/validation",
            epoch=0,
            version=self.ctx.start_version.version,
            memo_key="validation",
        )
        if base_val.errors == len(base_val.cases):
            first = next((r for r in base_val.cases if r.error), None)
            where = f"{first.case.case_id}: {first.error}" if first else "?: "
            raise RunFailed(Reason.ALL_CASES_FAILED, f"every validation case failed; case {where}")
        self.status.baseline_score = base_val.objective(self._obj)
        state = LoopState(current=Scored.of(start, base_val, self._obj))
        self._checkpoint(0, state, splits, EpochResult(0, None, {}, self._usage_since(snap)))
        return state

    async def _resume(self, checkpoints: list[CheckpointRecord], splits: Splits) -> LoopState:
        """Restart after the latest checkpoint: its config and the baseline re-scored, the loop state loaded.

        Raises:
            RunFailed: ``InvalidInput`` when the checkpoint's saved loop state cannot be read.
        """
        latest = max(checkpoints, key=lambda c: c.epoch)
        first = min(checkpoints, key=lambda c: c.epoch)
        trainable = self.ctx.start.trainable
        self._baseline_config = PromptSet(dict(first.prompts), trainable, dict(first.parameters))
        current = PromptSet(dict(latest.prompts), trainable, dict(latest.parameters))
        baseline = self._baseline_config
        base_val = await self._validate(baseline, splits, "epoch-0/validation", epoch=0, version=first.version)
        cur_val = await self._validate(
            current, splits, f"epoch-{latest.epoch}/validation", epoch=latest.epoch, version=latest.version
        )
        try:
            state = restore(checkpoints, cur_val)
        except ValueError as e:
            raise RunFailed(Reason.INVALID_INPUT, str(e)) from e
        self._meter.restore(state.budget)
        self._checkpoints = list(checkpoints)
        self.status.baseline_score = base_val.objective
        mark_running(self.status, Reason.RESUMED, f"resumed after checkpoint epoch {latest.epoch}")
        return state

    async def _epoch(self, state: LoopState, epoch: int, splits: Splits) -> EpochResult:
        """Train one epoch: shuffle the train split (seeded per epoch) and take one step per minibatch."""
        size = self.spec.optimizer.batch_size
        self.status.epoch = epoch
        order = list(splits.train)
        random.Random(f"{self.spec.dataset.seed}:{epoch}").shuffle(order)
        snap = self._usage_snapshot()
        calls: dict[str, int] = defaultdict(int)
        accepted = 0
        train_scores: list[float] = []
        for batch_no, b in enumerate(range(0, len(order), size)):
            if self._halt.poll():
                break
            step = Step(
                epoch=epoch,
                batch=batch_no,
                candidates=self.spec.optimizer.candidates,
                rng=random.Random(f"{self.spec.dataset.seed}:{epoch}:{batch_no}"),
                calls=calls,
            )
            batch = order[b : b + size]
            score, kept = await self._step(state, step, batch, splits)
            train_scores.append(score * len(batch))
            accepted += kept
        train_score = sum(train_scores) / len(order) if order else None
        return EpochResult(accepted, train_score, dict(calls), self._usage_since(snap))

    async def _step(self, state: LoopState, step: Step, batch: list[Case], splits: Splits) -> tuple[float, bool]:
        """One minibatch: parent forward, feedback, candidates, maybe a merge; returns (train score, kept?)."""
        state.seed_pool()
        state.step += 1
        rng = random.Random(f"{self.spec.dataset.seed}:{step.epoch}:{step.batch}:parent")
        parent, index = self._selector.parent(state, rng)
        stage = f"epoch-{step.epoch}/train/batch-{step.batch}"
        tr = await self._scorer.evaluate(parent.prompts, batch, stage, epoch=step.epoch)
        notes = feedback(self.ctx, tr, parent.prompts)
        if not notes:
            return tr.objective(self._obj), False
        kept = await self._select(
            state,
            notes,
            step,
            splits,
            StepAcceptance(
                state, parent, index, self.ctx.better, self.spec.optimizer.min_delta, self._selector.keeps_pool
            ),
            (batch, tr),
        )
        if kept and state.merges < self.spec.optimizer.max_merges and not self._halt.poll():
            await self._merge(state, step, splits)
        self._emit()
        return tr.objective(self._obj), kept

    async def _select(
        self,
        state: LoopState,
        notes: Mapping[str, list[Feedback]],
        step: Step,
        splits: Splits,
        judge: StepAcceptance,
        batch: tuple[list[Case], Evaluation],
    ) -> bool:
        """Score each proposed candidate on validation and judge it; returns whether one was kept.

        With ``optimizer.minibatchGate`` a candidate that does not beat its parent on the
        minibatch is never scored on validation (``calls.gateSavedCases`` counts the validation
        cases saved). The budgets and the stop request are checked before each gate and validation.
        """
        for i, cand in enumerate(await self.optimizer.propose(judge.parent.prompts, notes, step)):
            if self._halt.poll():
                break
            if self.spec.optimizer.minibatch_gate and not await self._gate(cand.prompts, batch, step, i):
                step.calls["gateSavedCases"] = step.calls.get("gateSavedCases", 0) + len(splits.validation)
                self.optimizer.observe(cand, batch[1].objective(self._obj), False)
                continue
            if self._halt.poll():
                break
            stage = f"epoch-{step.epoch}/batch-{step.batch}/candidate-{i}"
            scored = await self._validate(cand.prompts, splits, stage, epoch=step.epoch)
            self.optimizer.observe(cand, scored.objective, judge.judge(scored))
        if not judge.settle():
            return False
        self.status.best_score = state.current.objective
        return True

    async def _gate(self, cand: PromptSet, batch: tuple[list[Case], Evaluation], step: Step, i: int) -> bool:
        """``optimizer.minibatchGate``: does ``cand`` beat its parent on the parent's minibatch?"""
        cases, parent_ev = batch
        stage = f"epoch-{step.epoch}/batch-{step.batch}/gate-{i}"
        ev = await self._scorer.evaluate(cand, cases, stage, epoch=step.epoch)
        return passes(ev, parent_ev, self._obj, self.ctx.objective.direction)

    async def _merge(self, state: LoopState, step: Step, splits: Splits) -> bool:
        """``optimizer.maxMerges``: propose, score and maybe keep a merge of two front members (:mod:`.merge`)."""
        seed = f"{self.spec.dataset.seed}:{step.epoch}:{step.batch}"
        proposal = merge.propose(state, self.ctx.objective.direction, seed)
        if proposal is None:
            return False
        state.merges += 1
        step.calls["mergeProposals"] = step.calls.get("mergeProposals", 0) + 1
        stage = f"epoch-{step.epoch}/batch-{step.batch}/merge-0"
        merged = await self._validate(proposal.prompts, splits, stage, epoch=step.epoch)
        if not merge.kept(merged, proposal, state, self.ctx.better, self.spec.optimizer.min_delta):
            return False
        step.calls["mergesAccepted"] = step.calls.get("mergesAccepted", 0) + 1
        merge.admit(merged, proposal, state, self.ctx.better)
        if state.current is merged:
            self.status.best_score = merged.objective
        return True

    def _end_epoch(self, state: LoopState, epoch: int, result: EpochResult, splits: Splits) -> str | None:
        """Update the patience counter, checkpoint when due; returns the stop reason if the loop ends here."""
        state.stale = 0 if result.accepted else state.stale + 1
        state.epoch = epoch
        stop = self._stop.check(state)
        if epoch % self.spec.checkpoint.every == 0 or self._epochs.check(state) is not None or stop is not None:
            self._checkpoint(epoch, state, splits, result)
        self._emit()
        if stop is not None:
            halted = self._halt.halted
            why = f"{halted[1]}; stopped in epoch {epoch}" if halted else f"stopped after epoch {epoch}"
            mark_running(self.status, stop, why)
        return stop

    def _checkpoint(self, epoch: int, state: LoopState, splits: Splits, result: EpochResult) -> None:
        """Checkpoint ``state.current`` (a version with its own validation score) and the whole loop state."""
        state.budget = self._meter.to_extra(self._ledger_total())
        self._checkpoints.append(self._records.checkpoint(epoch, state, splits.dataset_hash, result))
        self.status.checkpoints = [summary(c) for c in self._checkpoints]

    async def _finish(self, state: LoopState, splits: Splits) -> RunStatus:
        """Score baseline and best on holdout, decide ``Promotable``, mark the run Succeeded."""
        best = state.current.prompts
        best_cp, eh = await holdout.judge(
            self._scorer, self.status, self._baseline_config, best, self._checkpoints, splits
        )
        self.status.cases_total = self.status.cases_completed
        done = f"best version {best_cp.version}: validation {best_cp.score:.4f}, holdout {eh:.4f}"
        if self._halt.halted is not None:
            mark_succeeded(self.status, f"{self._halt.halted[1]}; {done}", reason=self._halt.halted[0])
        else:
            mark_succeeded(self.status, done)
        self._records.completed()
        self._emit()
        return self.status

    def fail(self, reason: str, message: str) -> RunStatus:
        """Mark the run Failed (checkpoints already written stay) and return the status."""
        mark_failed(self.status, reason, message)
        self._emit()
        return self.status
