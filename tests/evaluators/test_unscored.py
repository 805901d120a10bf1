"""Unscored results (judge parse failures) through the executor's aggregates and the paired test."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agentensor_runner.data import Case
from agentensor_runner.evaluators import EvalResult
from agentensor_runner.execution import CaseResult, summarize
from agentensor_runner.stats.significance import paired_case_scores

UNPARSED = EvalResult(0.0, False, "judge reply did not parse (no JSON object); raw reply: 'hmm'", "parseFailure")


def _row(case_id: str, results: dict[str, EvalResult], error: str | None = None) -> CaseResult:
    case = Case(case_id, f"in-{case_id}", None, {})
    return CaseResult(case, "eval", f"t-{case_id}", "out", results, error, 0.01, frozenset())


def _evaluators(*names: str) -> list[Any]:
    return [SimpleNamespace(name=n) for n in names]


def test_summarize_leaves_parse_failures_out_of_the_mean_and_counts_them() -> None:
    rows = [
        _row("a", {"judge": EvalResult(1.0, True, ""), "exact": EvalResult(1.0, True, "")}),
        _row("b", {"judge": UNPARSED, "exact": EvalResult(0.0, False, "no")}),
        _row("c", {"judge": EvalResult(0.5, False, "meh"), "exact": EvalResult(1.0, True, "")}),
        _row("d", {}, error="TimeoutError: case exceeded caseTimeoutSeconds=1"),
    ]
    ev = summarize(rows, _evaluators("judge", "exact"))
    # judge: a=1.0, c=0.5, d (error row) 0.0 over 3 scored cases; b is a parse failure.
    assert ev.means["judge"] == pytest.approx(0.5)
    assert ev.aggregates["judge"] == {
        "mean": pytest.approx(0.5),
        "passRate": pytest.approx(1 / 3),
        "n": 3,
        "parseFailures": 1,
    }
    assert ev.aggregates["exact"] == {"mean": 0.5, "passRate": 0.5, "n": 4, "parseFailures": 0}
    assert ev.parse_failures == {"judge": 1}
    assert ev.errors == 1 and ev.size == 4
    assert ev.objective("judge") == pytest.approx(0.5)


def test_an_evaluator_with_only_parse_failures_has_mean_zero_over_no_cases() -> None:
    ev = summarize([_row("a", {"judge": UNPARSED}), _row("b", {"judge": UNPARSED})], _evaluators("judge"))
    assert ev.aggregates["judge"] == {"mean": 0.0, "passRate": 0.0, "n": 0, "parseFailures": 2}


def test_paired_test_excludes_a_case_unscored_on_either_side() -> None:
    base = summarize(
        [
            _row("a", {"j": EvalResult(0.2, False, "x")}),
            _row("b", {"j": UNPARSED}),
            _row("c", {"j": EvalResult(0.4, False, "x")}),
        ],
        _evaluators("j"),
    )
    best = summarize(
        [
            _row("a", {"j": EvalResult(0.9, True, "")}),
            _row("b", {"j": EvalResult(1.0, True, "")}),
            _row("c", {"j": UNPARSED}),
        ],
        _evaluators("j"),
    )
    assert paired_case_scores(base, best, "j") == ([0.2], [0.9])
