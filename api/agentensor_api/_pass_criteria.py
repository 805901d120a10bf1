"""EvaluationRun pass criteria -> the ``Passed`` condition (a pipeline gate).

``spec.passCriteria: [{evaluator: exact, minMean: 0.8}, {evaluator: judge, minPassRate: 0.9}]``
is checked against ``status.results`` (each evaluator's mean and pass rate over every case) when
the run has scored its cases; the runner then sets ``Passed=True`` (reason ``CriteriaMet``) or
``Passed=False`` (``CriteriaNotMet``, the message naming each criterion that failed and by how
much). The bounds are inclusive, as promptfoo's ``threshold`` and Katib's ``objective.goal``
are. An evaluator with no scored case (every judge reply unparsable) fails its criteria.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._conditions import ConditionType, Reason, set_condition
from ._runs import PassCriterion
from ._status import EvaluatorResults, RunStatus


def unmet_criteria(criteria: Sequence[PassCriterion], results: Mapping[str, EvaluatorResults]) -> list[str]:
    """One line per criterion bound that does not hold, e.g. ``exact: mean 0.7500 < minMean 0.8000``.

    Empty when every criterion holds (or there are none).
    """
    unmet: list[str] = []
    for c in criteria:
        r = results.get(c.evaluator)
        if r is None or r.n == 0:
            failures = f" ({r.parse_failures} parse failure(s))" if r is not None and r.parse_failures else ""
            unmet.append(f"{c.evaluator}: no scored case{failures}")
            continue
        if c.min_mean is not None and r.mean < c.min_mean:
            unmet.append(f"{c.evaluator}: mean {r.mean:.4f} < minMean {c.min_mean:.4f}")
        if c.min_pass_rate is not None and r.pass_rate < c.min_pass_rate:
            unmet.append(f"{c.evaluator}: passRate {r.pass_rate:.4f} < minPassRate {c.min_pass_rate:.4f}")
    return unmet


def _met(c: PassCriterion, r: EvaluatorResults) -> str:
    parts = []
    if c.min_mean is not None:
        parts.append(f"mean {r.mean:.4f} >= {c.min_mean:.4f}")
    if c.min_pass_rate is not None:
        parts.append(f"passRate {r.pass_rate:.4f} >= {c.min_pass_rate:.4f}")
    return f"{c.evaluator}: {', '.join(parts)}"


def mark_pass_criteria(status: RunStatus, criteria: Sequence[PassCriterion], *, now: str | None = None) -> RunStatus:
    """Set ``Passed`` on ``status`` from ``status.results``; no criteria: leave it unset.

    Returns ``status`` (modified in place). ``status.results`` must hold the final aggregates.
    """
    if not criteria:
        return status
    results = status.results or {}
    unmet = unmet_criteria(criteria, results)
    if unmet:
        message = f"{len(unmet)} pass criterion bound(s) not met: " + "; ".join(unmet)
        status.conditions = set_condition(
            status.conditions, ConditionType.PASSED, "False", Reason.CRITERIA_NOT_MET, message, now=now
        )
    else:
        message = f"{len(criteria)} pass criteria met: " + "; ".join(_met(c, results[c.evaluator]) for c in criteria)
        status.conditions = set_condition(
            status.conditions, ConditionType.PASSED, "True", Reason.CRITERIA_MET, message, now=now
        )
    return status
