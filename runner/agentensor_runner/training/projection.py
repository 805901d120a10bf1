"""Projected calls of a TrainingRun, computed from its spec and split sizes before the first call.

A budget is easier to set when the run says what it will spend (gepa-ai/gepa#375). Metric calls
(case evaluations) follow from the loop's structure (see :mod:`agentensor_runner.training.engine`):

- baseline: ``|validation|`` (epoch 0);
- per epoch, an upper bound: ``|train|`` forward, plus per minibatch ``candidates x |validation|``
  (and, with ``minibatchGate``, ``candidates x batch`` for the gate); a minibatch with no failed
  case proposes nothing, and the gate stops most candidates before validation, so the real count
  is lower;
- holdout: ``2 x |holdout|`` (baseline and best).

Model calls are an estimate: per case evaluation, 1 call for the ``chat`` template, 1 per step for
``task`` (retries not counted), 0 for ``embedding-router`` and entrypoints (unknown), plus 1 per
``llm_judge`` evaluator; per minibatch, ``textgrad`` makes 1 gradient and 1 rewrite call per
trainable prompt (an upper bound: only prompts with feedback are rewritten).
"""

from __future__ import annotations

from agentensor_api import ProjectedCalls, TrainingRunSpec

from ..data import Splits


def model_calls_per_case(spec: TrainingRunSpec) -> int:
    """Estimated LLM calls to evaluate one case: task template calls plus llm_judge evaluators."""
    template = spec.workflow.template
    if template == "chat":
        task = 1
    elif template == "task":
        steps = spec.workflow.options.get("steps")
        task = len(steps) if isinstance(steps, list) else 1
    else:
        task = 0
    return task + sum(1 for e in spec.evaluators if e.type == "llm_judge")


def project(spec: TrainingRunSpec, splits: Splits, trainable_prompts: int) -> ProjectedCalls:
    """The planned calls; see the module docstring for each term."""
    opt = spec.optimizer
    n_train, n_val, n_hold = len(splits.train), len(splits.validation), len(splits.holdout)
    batches = -(-n_train // opt.batch_size) if n_train else 0
    gate_cases = sum(min(opt.batch_size, n_train - b * opt.batch_size) for b in range(batches))
    per_epoch = n_train + batches * opt.candidates * n_val + (opt.candidates * gate_cases if opt.minibatch_gate else 0)
    per_case = model_calls_per_case(spec)
    optimizer_calls = 2 * trainable_prompts * batches if opt.type == "textgrad" else 0
    model_per_epoch = per_epoch * per_case + optimizer_calls
    total = n_val + opt.epochs * per_epoch + 2 * n_hold
    return ProjectedCalls(
        epochs=opt.epochs,
        minibatches_per_epoch=batches,
        metric_calls_baseline=n_val,
        metric_calls_per_epoch=per_epoch,
        metric_calls_holdout=2 * n_hold,
        metric_calls_total=total,
        model_calls_per_case=per_case,
        model_calls_per_epoch=model_per_epoch,
        model_calls_total=total * per_case + opt.epochs * optimizer_calls,
    )
