"""The end of a run: baseline and best scored on the holdout split, the holdout guard, the overfitting guard.

:func:`judge` scores both configs on the holdout split (which never influences selection), runs
the paired significance test (``holdoutGuard.confidence``/``minImprovement``), sets
``status.holdout``, the best version's fields and the ``Promotable`` condition
(:func:`promotion_decision`), and the ``Overfitting`` condition (:func:`guard_overfitting`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agentensor_api import ConditionType, HoldoutScores, Reason, RunStatus, TrainingRunSpec, set_condition
from agentensor_store import CheckpointRecord

from ..data import Splits
from ..execution import Evaluation, RunContext, status_results
from ..prompts import PromptSet
from ..stats.overfit import MAX_REPORTED, describe_leaks, find_leaks
from ..stats.significance import PairedComparison, compare_paired, describe, paired_case_scores, status_fields
from .evaluation import Scorer

log = logging.getLogger(__name__)


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
            (:func:`agentensor_runner.stats.significance.compare_paired`); when given and not
            significant, the result is ``NotSignificant``.

    Returns:
        ``(promotable, reason, message)`` for the ``Promotable`` condition.
    """
    regression = (baseline - best) if direction == "maximize" else (best - baseline)
    scores = f"holdout {best:.4f} vs baseline {baseline:.4f}"
    if unchanged:
        return False, Reason.NO_IMPROVEMENT, "no candidate beat the baseline on validation; nothing to promote"
    if regression > max_regression + 1e-12:
        message = f"best version {best_version} scores {best:.4f} on holdout vs baseline {baseline:.4f}: "
        return False, Reason.HOLDOUT_REGRESSION, f"{message}a regression of {regression:.4f} > {_bound(max_regression)}"
    tested = f"; {describe(significance)}" if significance is not None else ""
    if significance is not None and not significance.significant:
        noise = f"version {best_version}: {scores}; the gain could be noise{tested}"
        return False, Reason.NOT_SIGNIFICANT, noise
    return True, Reason.HOLDOUT_GUARD_PASSED, f"version {best_version}: {scores} ({_bound(max_regression)}){tested}"


def _bound(max_regression: float) -> str:
    return f"maxRegression {max_regression:g}"


def significance(
    base_h: Evaluation, best_h: Evaluation, objective: str, direction: str, spec: TrainingRunSpec
) -> PairedComparison | None:
    """The paired test of the holdout guard (``holdoutGuard.confidence``/``minImprovement``); None without cases."""
    base, best = paired_case_scores(base_h, best_h, objective)
    if not base:
        return None
    guard = spec.holdout_guard
    return compare_paired(
        base,
        best,
        direction=direction,
        confidence=guard.confidence,
        min_improvement=guard.min_improvement,
        seed=spec.dataset.seed,
    )


async def judge(
    scorer: Scorer,
    status: RunStatus,
    baseline: PromptSet,
    best: PromptSet,
    checkpoints: Sequence[CheckpointRecord],
    splits: Splits,
) -> tuple[CheckpointRecord, float]:
    """Score baseline and best on holdout and set the guards' status; returns (best's checkpoint, its holdout score)."""
    ctx, spec = scorer.ctx, scorer.spec
    obj, direction = ctx.objective.evaluator, ctx.objective.direction
    best_cp = next(c for c in reversed(checkpoints) if c.checksum == best.checksum())
    base_h = await scorer.evaluate(
        baseline, splits.holdout, "holdout/baseline", epoch=None, version=checkpoints[0].version
    )
    best_h = await scorer.evaluate(best, splits.holdout, "holdout/best", epoch=None, version=best_cp.version)
    bh, eh = base_h.objective(obj), best_h.objective(obj)
    tested = significance(base_h, best_h, obj, direction, spec)
    fields = status_fields(tested) if tested is not None else {}
    status.holdout = HoldoutScores.model_validate({"baseline": bh, "best": eh, **fields})
    status.scores = best_h.means
    status.results = status_results(best_h.aggregates)
    status.best_version, status.best_checksum, status.best_score = best_cp.version, best_cp.checksum, best_cp.score
    promotable, reason, message = promotion_decision(
        baseline=bh,
        best=eh,
        direction=direction,
        max_regression=spec.holdout_guard.max_regression,
        unchanged=best.checksum() == baseline.checksum(),
        best_version=best_cp.version,
        significance=tested,
    )
    status.conditions = set_condition(
        status.conditions, ConditionType.PROMOTABLE, "True" if promotable else "False", reason, message
    )
    guard_overfitting(ctx, status, best, splits)
    return best_cp, eh


def guard_overfitting(ctx: RunContext, status: RunStatus, best: PromptSet, splits: Splits) -> None:
    """The overfitting guard: ``Overfitting=True`` and ``status.leakedInputs`` when the best config
    quotes validation or holdout inputs verbatim (:func:`agentensor_runner.stats.overfit.find_leaks`)."""
    leaks = find_leaks(best.texts, {"validation": splits.validation, "holdout": splits.holdout}, splits.train)
    message = describe_leaks(leaks)
    status.leaked_inputs = leaks[:MAX_REPORTED] or None
    if leaks:
        log.warning("run %s: %s", ctx.run_id, message)
    status.conditions = set_condition(
        status.conditions,
        ConditionType.OVERFITTING,
        "True" if leaks else "False",
        Reason.EVALUATION_INPUTS_IN_PROMPT if leaks else Reason.NO_EVALUATION_INPUTS_IN_PROMPT,
        message,
    )
