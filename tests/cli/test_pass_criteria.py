"""EvaluationRun ``spec.passCriteria``: the runner sets ``Passed=True|False`` from the per-evaluator
aggregates, and ``agentensor run`` exits 1 when a criterion fails (a CI gate). Real runs of the
synthetic router (hashing embedder) on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import (
    EvaluationRun,
    ManifestError,
    PassCriterion,
    RunStatus,
    mark_pass_criteria,
    parse_resource,
)
from agentensor_api._status import EvaluatorResults
from tests.cli.test_cli import _write, agentensor
from tests.runner._synthetic import make_rows, manifests


def _evaluation(criteria: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pc, tr = manifests(make_rows(n_per_intent=4))
    spec = {k: v for k, v in tr["spec"].items() if k not in ("optimizer", "holdoutGuard", "checkpoint")}
    spec["dataset"] = {k: v for k, v in spec["dataset"].items() if k != "split"}
    spec["passCriteria"] = criteria
    return pc, {"apiVersion": tr["apiVersion"], "kind": "EvaluationRun", "metadata": {"name": "gate"}, "spec": spec}


def _passed(summary: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in summary["conditions"] if c["type"] == "Passed")


def test_met_and_unmet_criteria_gate_the_exit_code(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    pc, ev = _evaluation([{"evaluator": "accuracy", "minMean": 0.0, "minPassRate": 0.0}])
    res = agentensor("run", "-f", str(_write(tmp_path, "met.yaml", pc, ev)), "--db", db, "--out", str(tmp_path / "a"))
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    accuracy = summary["results"]["accuracy"]
    assert summary["phase"] == "Succeeded"
    passed = _passed(summary)
    assert (passed["status"], passed["reason"]) == ("True", "CriteriaMet")
    assert f"accuracy: mean {accuracy['mean']:.4f} >= 0.0000" in passed["message"]

    # a bound just above what the run scores: Succeeded (the verdict stands), Passed=False, exit 1
    above = min(1.0, round(accuracy["mean"] + 0.01, 4))
    assert above > accuracy["mean"], "the synthetic router is not perfect on its baseline prompts"
    pc, ev = _evaluation([{"evaluator": "accuracy", "minMean": above}])
    ev["metadata"]["name"] = "gate-2"
    res = agentensor("run", "-f", str(_write(tmp_path, "unmet.yaml", pc, ev)), "--db", db, "--out", str(tmp_path / "b"))
    assert res.returncode == 1, res.stderr
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["phase"] == "Succeeded"
    passed = _passed(summary)
    assert (passed["status"], passed["reason"]) == ("False", "CriteriaNotMet")
    assert f"accuracy: mean {accuracy['mean']:.4f} < minMean {above:.4f}" in passed["message"]
    assert "EvaluationRun/gate-2: Passed=False CriteriaNotMet" in res.stderr


@pytest.mark.parametrize(
    ("criteria", "field", "message"),
    [
        pytest.param([{"evaluator": "accuracy"}], "spec.passCriteria[0]", "set minMean, minPassRate", id="no-bound"),
        pytest.param(
            [{"evaluator": "nosuch", "minMean": 0.5}],
            "spec",
            "passCriteria[0].evaluator: 'nosuch' is not in spec.evaluators ['accuracy']",
            id="unknown-evaluator",
        ),
        pytest.param(
            [{"evaluator": "accuracy", "minMean": 1.5}],
            "spec.passCriteria[0].minMean",
            "less than or equal to 1",
            id="out-of-range",
        ),
    ],
)
def test_invalid_criteria_name_the_field(criteria: list[dict[str, Any]], field: str, message: str) -> None:
    _, ev = _evaluation(criteria)
    with pytest.raises(ManifestError) as caught:
        parse_resource(ev)
    assert caught.value.field == field and message in caught.value.reason


def _status(**results: tuple[float, float, int, int]) -> RunStatus:
    return RunStatus(
        results={
            name: EvaluatorResults(mean=m, pass_rate=p, n=n, parse_failures=f) for name, (m, p, n, f) in results.items()
        }
    )


@pytest.mark.parametrize(
    ("criteria", "results", "expected"),
    [
        pytest.param([], {"a": (0.1, 0.1, 5, 0)}, None, id="no-criteria-no-condition"),
        pytest.param(
            [PassCriterion(evaluator="a", min_mean=0.8)],
            {"a": (0.8, 0.0, 5, 0)},
            ("True", "CriteriaMet"),
            id="inclusive",
        ),
        pytest.param(
            [PassCriterion(evaluator="a", min_mean=0.8, min_pass_rate=0.9)],
            {"a": (0.7, 0.5, 5, 0)},
            ("False", "2 pass criterion bound(s) not met: a: mean 0.7000 < minMean 0.8000; a: passRate 0.5000"),
            id="both-bounds-named",
        ),
        pytest.param(
            [PassCriterion(evaluator="judge", min_pass_rate=0.5)],
            {"judge": (0.0, 0.0, 0, 3)},
            ("False", "judge: no scored case (3 parse failure(s))"),
            id="nothing-scored-fails",
        ),
        pytest.param(
            [PassCriterion(evaluator="a", min_mean=0.5), PassCriterion(evaluator="b", min_pass_rate=0.5)],
            {"a": (0.9, 0.9, 5, 0), "b": (0.9, 0.4, 5, 0)},
            ("False", "1 pass criterion bound(s) not met: b: passRate 0.4000 < minPassRate 0.5000"),
            id="one-of-two",
        ),
    ],
)
def test_passed_condition(
    criteria: list[PassCriterion], results: dict[str, tuple[float, float, int, int]], expected: tuple[str, str] | None
) -> None:
    status = mark_pass_criteria(_status(**results), criteria, now="2026-01-01T00:00:00Z")
    passed = next((c for c in status.conditions if c.type == "Passed"), None)
    if expected is None:
        assert passed is None
        return
    assert passed is not None and passed.status == expected[0]
    assert expected[1] in (passed.reason if expected[1] == "CriteriaMet" else passed.message)


def test_a_typed_evaluation_run_keeps_its_criteria() -> None:
    _, ev = _evaluation([{"evaluator": "accuracy", "minPassRate": 0.75}])
    run = parse_resource(ev)
    assert isinstance(run, EvaluationRun)
    assert run.spec.pass_criteria == [PassCriterion(evaluator="accuracy", min_pass_rate=0.75)]
    assert run.spec.to_wire()["passCriteria"] == [{"evaluator": "accuracy", "minPassRate": 0.75}]
