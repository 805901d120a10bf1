"""The agentensor training loop, with validation, checkpoints and a holdout guard.

Per epoch (1-based) the train split is shuffled with a seed derived from ``(dataset.seed,
epoch)`` and cut into minibatches of ``optimizer.batchSize``. For each minibatch:

1. forward the current config over the batch and score it;
2. turn every failed case (objective evaluator not passed, or an error) into textual feedback
   for the trainable prompts that took part (the workflow's credit assignment);
3. the optimizer proposes candidates; each is scored on the validation split and accepted only
   if it beats the current validation score by more than ``optimizer.minDelta``.

Every ``checkpoint.every`` epochs (and at the last epoch) the current config is registered as a
version and checkpointed *with its own validation score*. At the end the baseline and the best
config are scored on the holdout split; a best config that regresses by more than
``holdoutGuard.maxRegression`` is not promotable.

Compared with upstream agentensor: a validation split (upstream has none) decides acceptance,
and the best config is saved. Compared with Orcheo: a checkpoint never pairs a config with
another config's score, every case has its own ``thread_id``, and there is a holdout.
Resume: a run that finds checkpoints for its id continues after the latest one.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agentensor_api import (
    CheckpointSummary,
    HoldoutScores,
    RunStatus,
    TrainingRun,
    UsageSummary,
    now_rfc3339,
    set_condition,
)
from agentensor_store import CheckpointRecord

from ._context import RunContext
from .datasets import Case, Splits, split_cases
from .executor import Evaluation, run_cases
from .llm import Usage
from .optimizers import Step, build_optimizer
from .prompts import PromptSet
from .workflows import Feedback, default_attribution


class RunFailed(Exception):
    """The run cannot go on; ``reason`` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


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
) -> tuple[bool, str, str]:
    """The holdout guard: may the best config be promoted?

    Args:
        baseline, best: objective scores on the holdout split.
        direction: ``maximize`` or ``minimize``.
        max_regression: largest allowed drop from baseline, in objective units (>= 0).
        unchanged: the best config is the baseline itself.

    Returns:
        ``(promotable, reason, message)`` for the ``Promotable`` condition.
    """
    regression = (baseline - best) if direction == "maximize" else (best - baseline)
    if unchanged:
        return False, "NoImprovement", "no candidate beat the baseline on validation; nothing to promote"
    if regression > max_regression + 1e-12:
        return (
            False,
            "HoldoutRegression",
            (
                f"best version {best_version} scores {best:.4f} on holdout vs baseline {baseline:.4f}: "
                f"a regression of {regression:.4f} > maxRegression {max_regression:g}"
            ),
        )
    return (
        True,
        "HoldoutGuardPassed",
        (f"version {best_version}: holdout {best:.4f} vs baseline {baseline:.4f} (maxRegression {max_regression:g})"),
    )


def _extra(calls: dict[str, int], usage: Usage | None) -> dict[str, Any]:
    """Checkpoint ``extra``: ``calls`` (optimizer counters plus LLM calls by purpose) and ``usage``."""
    if usage is None:
        return {"calls": calls}
    merged = dict(calls)
    for purpose, n in usage.calls.items():
        merged[purpose] = merged.get(purpose, 0) + n
    return {"calls": merged, "usage": usage.to_json()}


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

    # -- status -----------------------------------------------------------------------------
    def _emit(self) -> None:
        if self.ctx.llm is not None:
            self.status.usage = self.ctx.llm.ledger.total.to_summary()
        self.ctx.store.update_run(self.ctx.run_id, phase=self.status.phase, status=self.status.to_wire())
        if self.ctx.on_status is not None:
            self.ctx.on_status(self.status)

    def _cond(self, type_: str, status: str, reason: str, message: str = "") -> None:
        self.status.conditions = set_condition(self.status.conditions, type_, status, reason, message)  # type: ignore[arg-type]

    def _usage_snapshot(self) -> Usage | None:
        return self.ctx.llm.ledger.snapshot() if self.ctx.llm is not None else None

    def _usage_since(self, snapshot: Usage | None) -> Usage | None:
        if self.ctx.llm is None or snapshot is None:
            return None
        return self.ctx.llm.ledger.since(snapshot)

    # -- evaluation -------------------------------------------------------------------------
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

        ev = await run_cases(
            self.ctx.workflow,
            prompts,
            cases,
            self.ctx.evaluators,
            base_config=self.ctx.base_config,
            run_id=self.ctx.run_id,
            stage=stage,
            parallelism=self.spec.parallelism,
            case_timeout_seconds=self.spec.case_timeout_seconds,
            evaluator_fields=self.ctx.evaluator_fields,
            progress=tick,
            pool=self.ctx.pool,
        )
        self.status.cases_failed = (self.status.cases_failed or 0) + ev.errors
        self.ctx.record(ev, epoch=epoch, version=version)
        if key is not None:
            self._memo[key] = ev
        return ev

    def _feedback(self, ev: Evaluation, prompts: PromptSet) -> dict[str, list[Feedback]]:
        obj = self.ctx.objective.evaluator
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
        prompts: PromptSet,
        val: Evaluation,
        splits: Splits,
        *,
        train_score: float | None,
        accepted: int,
        calls: dict[str, int],
        usage: Usage | None = None,
    ) -> CheckpointRecord:
        store, ctx = self.ctx.store, self.ctx
        version = store.register_version(
            ctx.workflow_key,
            dict(prompts.texts),
            dict(prompts.parameters),
            source="checkpoint",
            source_run_id=ctx.run_id,
            seed=self.spec.dataset.seed,
            dataset_hash=splits.dataset_hash,
        )
        return store.add_checkpoint(
            ctx.run_id,
            epoch=epoch,
            version=version,
            score=val.objective(ctx.objective.evaluator),
            scores=val.means,
            train_score=train_score,
            accepted=accepted,
            seed=self.spec.dataset.seed,
            dataset_hash=splits.dataset_hash,
            extra=_extra(calls, usage),
        )

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> RunStatus:
        """Train, checkpoint and guard; returns the final status (also written to the store).

        Raises:
            RunFailed: when the baseline cannot be scored at all (every validation case errored).
        """
        ctx, spec = self.ctx, self.spec
        obj = ctx.objective.evaluator
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
        self._cond("Running", "True", "Training", f"{len(ctx.cases)} cases, dataset {splits.dataset_hash[:12]}")
        self._emit()
        if ctx.workflow.prepare is not None:
            ctx.workflow.prepare([c.input for c in ctx.cases if c.error is None])

        baseline = ctx.start
        checkpoints = ctx.store.list_checkpoints(run_id=ctx.run_id)
        if checkpoints:  # resume after the latest checkpoint
            latest = max(checkpoints, key=lambda c: c.epoch)
            first = min(checkpoints, key=lambda c: c.epoch)
            baseline = PromptSet(dict(first.prompts), ctx.start.trainable, dict(first.parameters))
            current = PromptSet(dict(latest.prompts), ctx.start.trainable, dict(latest.parameters))
            start_epoch = latest.epoch + 1
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
            self._cond("Running", "True", "Resumed", f"resumed after checkpoint epoch {latest.epoch}")
        else:
            start_epoch = 1
            current = baseline
            snap = self._usage_snapshot()
            base_val = await self._evaluate(
                baseline,
                splits.validation,
                "epoch-0/validation",
                epoch=0,
                version=ctx.start_version.version,
                memo_key="validation",
            )
            if base_val.errors == len(base_val.cases):
                first_err = next((r for r in base_val.cases if r.error), None)
                raise RunFailed(
                    "AllCasesFailed",
                    f"every validation case failed; case "
                    f"{first_err.case.case_id if first_err else '?'}: "
                    f"{first_err.error if first_err else ''}",
                )
            cp = self._checkpoint(
                0, baseline, base_val, splits, train_score=None, accepted=0, calls={}, usage=self._usage_since(snap)
            )
            checkpoints = [cp]
            cur_val = base_val
        self.status.baseline_score = base_val.objective(obj)
        self.status.best_score = cur_val.objective(obj)
        self.status.checkpoints = [_summary(c) for c in checkpoints]
        self._emit()

        goal = ctx.objective.goal
        stale = 0
        last_epoch = start_epoch - 1
        for epoch in range(start_epoch, spec.optimizer.epochs + 1):
            if goal is not None and not ctx.better(goal, cur_val.objective(obj)):
                break  # goal reached already
            last_epoch = epoch
            self.status.epoch = epoch
            rng = random.Random(f"{spec.dataset.seed}:{epoch}")
            order = list(splits.train)
            rng.shuffle(order)
            accepted = 0
            snap = self._usage_snapshot()
            calls: dict[str, int] = defaultdict(int)
            train_scores: list[float] = []
            for b in range(0, len(order), spec.optimizer.batch_size):
                batch_no = b // spec.optimizer.batch_size
                batch = order[b : b + spec.optimizer.batch_size]
                tr = await self._evaluate(current, batch, f"epoch-{epoch}/train/batch-{batch_no}", epoch=epoch)
                train_scores.append(tr.objective(obj) * len(batch))
                feedback = self._feedback(tr, current)
                if not feedback:
                    continue
                step = Step(
                    epoch=epoch,
                    batch=batch_no,
                    candidates=spec.optimizer.candidates,
                    rng=random.Random(f"{spec.dataset.seed}:{epoch}:{batch_no}"),
                    calls=calls,
                )
                candidates = await self.optimizer.propose(current, feedback, step)
                best_cand: tuple[PromptSet, Evaluation] | None = None
                for i, cand in enumerate(candidates):
                    ev = await self._evaluate(
                        cand.prompts,
                        splits.validation,
                        f"epoch-{epoch}/batch-{batch_no}/candidate-{i}",
                        epoch=epoch,
                        memo_key="validation",
                    )
                    target = best_cand[1] if best_cand else cur_val
                    ok = ctx.better(
                        ev.objective(obj), target.objective(obj), spec.optimizer.min_delta if best_cand is None else 0.0
                    )
                    self.optimizer.observe(cand, ev.objective(obj), ok)
                    if ok:
                        best_cand = (cand.prompts, ev)
                if best_cand is not None:
                    current, cur_val = best_cand
                    accepted += 1
                    self.status.best_score = cur_val.objective(obj)
                self._emit()
            train_score = sum(train_scores) / len(order) if order else None
            stale = 0 if accepted else stale + 1
            is_last = epoch == spec.optimizer.epochs
            reached = goal is not None and not ctx.better(goal, cur_val.objective(obj))
            patience_out = spec.optimizer.patience is not None and stale >= spec.optimizer.patience
            if epoch % spec.checkpoint.every == 0 or is_last or reached or patience_out:
                cp = self._checkpoint(
                    epoch,
                    current,
                    cur_val,
                    splits,
                    train_score=train_score,
                    accepted=accepted,
                    calls=dict(calls),
                    usage=self._usage_since(snap),
                )
                checkpoints.append(cp)
                self.status.checkpoints = [_summary(c) for c in checkpoints]
            self._emit()
            if reached or patience_out:
                self._cond(
                    "Running", "True", "GoalReached" if reached else "PatienceExhausted", f"stopped after epoch {epoch}"
                )
                break
        if checkpoints[-1].checksum != current.checksum():  # e.g. every>1 and early exit
            cp = self._checkpoint(
                max(last_epoch, checkpoints[-1].epoch + 1),
                current,
                cur_val,
                splits,
                train_score=None,
                accepted=0,
                calls={},
            )
            checkpoints.append(cp)
            self.status.checkpoints = [_summary(c) for c in checkpoints]

        return await self._finish(baseline, current, splits, checkpoints)

    async def _finish(
        self, baseline: PromptSet, best: PromptSet, splits: Splits, checkpoints: list[CheckpointRecord]
    ) -> RunStatus:
        ctx, spec = self.ctx, self.spec
        obj = ctx.objective.evaluator
        best_cp = next(c for c in reversed(checkpoints) if c.checksum == best.checksum())
        base_h = await self._evaluate(
            baseline, splits.holdout, "holdout/baseline", epoch=None, version=checkpoints[0].version
        )
        best_h = await self._evaluate(best, splits.holdout, "holdout/best", epoch=None, version=best_cp.version)
        bh, eh = base_h.objective(obj), best_h.objective(obj)
        self.status.holdout = HoldoutScores(baseline=bh, best=eh)
        self.status.scores = best_h.means
        self.status.best_version = best_cp.version
        self.status.best_checksum = best_cp.checksum
        self.status.best_score = best_cp.score
        promotable, reason, message = promotion_decision(
            baseline=bh,
            best=eh,
            direction=ctx.objective.direction,
            max_regression=spec.holdout_guard.max_regression,
            unchanged=best.checksum() == baseline.checksum(),
            best_version=best_cp.version,
        )
        self._cond("Promotable", "True" if promotable else "False", reason, message)
        self.status.phase = "Succeeded"
        self.status.cases_total = self.status.cases_completed
        self.status.completion_time = now_rfc3339()
        self._cond("Running", "False", "Completed")
        self._cond(
            "Succeeded",
            "True",
            "Completed",
            f"best version {best_cp.version}: validation {best_cp.score:.4f}, holdout {eh:.4f}",
        )
        self.ctx.store.update_run(ctx.run_id, completed_at=datetime.now(UTC))
        self._emit()
        return self.status

    def fail(self, reason: str, message: str) -> RunStatus:
        """Mark the run Failed (checkpoints already written stay) and return the status."""
        self.status.phase = "Failed"
        self.status.completion_time = now_rfc3339()
        self._cond("Running", "False", reason, message)
        self._cond("Succeeded", "False", reason, message)
        self._cond("Failed", "True", reason, message)
        self.status.message = message
        self._emit()
        return self.status
