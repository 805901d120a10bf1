"""Textual feedback from one minibatch: every failed case, attributed to the trainable prompts that took part."""

from __future__ import annotations

from collections import defaultdict

from ..execution import Evaluation, RunContext
from ..prompts import PromptSet
from ..workflows import Feedback, default_attribution


def feedback(ctx: RunContext, ev: Evaluation, prompts: PromptSet) -> dict[str, list[Feedback]]:
    """Prompt name -> feedback, for every case of ``ev`` that failed the objective evaluator or errored.

    A case the objective passed, or a bad dataset row (``case.error``: it says nothing about the
    prompts), gives none. The workflow's ``attribute`` (else
    :func:`agentensor_runner.workflows.default_attribution`) assigns each failure to prompts.
    """
    obj = ctx.objective.evaluator
    attribute = ctx.workflow.attribute or default_attribution
    out: dict[str, list[Feedback]] = defaultdict(list)
    for r in ev.cases:
        if (r.error is None and r.passed(obj)) or r.case.error is not None:
            continue
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
