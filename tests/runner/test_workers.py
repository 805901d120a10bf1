"""Spreading an evaluation over worker processes: same results, case order, several processes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentensor_api import EvaluationRunSpec
from agentensor_runner import PromptSet
from agentensor_runner.data import Case
from agentensor_runner.evaluators import build_evaluators
from agentensor_runner.execution import run_cases
from agentensor_runner.execution.workers import WorkerPool, WorkerRecipe, workers_for
from agentensor_runner.workflows import load_workflow

SPEC = EvaluationRunSpec.model_validate(
    {
        "workflow": {"entrypoint": "tests.runner.sample_workflows:build_pid_echo"},
        "promptConfigRef": {"name": "x"},
        "dataset": {"inline": [{"input": "a", "expected": "b"}]},
        "evaluators": [
            {"name": "contains", "type": "contains", "outputField": "answer", "options": {"substring": "Q:"}}
        ],
        "parallelism": 32,
    }
)


@pytest.mark.parametrize(
    ("parallelism", "cpus", "expected"),
    [
        pytest.param(8, 2, 1, id="latency-bound"),
        pytest.param(31, 8, 1, id="below-workers-threshold"),
        pytest.param(32, 2, 4, id="two-per-cpu"),
        pytest.param(64, 2, 4, id="capped-by-cpus"),
        pytest.param(64, 16, 8, id="one-per-8-in-flight"),
        pytest.param(64, 1, 1, id="one-cpu"),
        pytest.param(1, 1, 1, id="minimum"),
    ],
)
def test_workers_for(parallelism: int, cpus: int, expected: int) -> None:
    assert workers_for(parallelism, cpus) == expected


def test_worker_results_match_in_process_results() -> None:
    prompts = PromptSet({"prefix": "Q:"}, frozenset({"prefix"}))
    cases = [Case(str(i), f"case-{i}", None, {}) for i in range(40)] + [Case("bad", None, None, {}, error="row bad")]
    evaluators = build_evaluators(SPEC.evaluators)
    local = asyncio.run(
        run_cases(
            load_workflow(SPEC.workflow),
            prompts,
            cases,
            evaluators,
            base_config={},
            run_id="r",
            stage="s",
            parallelism=8,
            case_timeout_seconds=10,
        )
    )
    with WorkerPool(WorkerRecipe(SPEC, str(Path.cwd())), 2) as pool:
        pids = pool.warm()
        spread = asyncio.run(
            run_cases(
                load_workflow(SPEC.workflow),
                prompts,
                cases,
                evaluators,
                base_config={},
                run_id="r",
                stage="s",
                parallelism=32,
                case_timeout_seconds=10,
                pool=pool,
            )
        )
    assert len(pids) == 2 and os.getpid() not in pids
    assert [r.case.case_id for r in spread.cases] == [c.case_id for c in cases]
    assert spread.means == local.means and spread.errors == local.errors == 1
    worker_pids = {int(r.output["answer"].rsplit("|", 1)[1]) for r in spread.cases if r.output}
    assert worker_pids == pids, "both workers ran cases"
    for a, b in zip(local.cases, spread.cases, strict=True):
        assert (a.thread_id, a.error, a.used_prompts) == (b.thread_id, b.error, b.used_prompts)
        assert (a.output is None) == (b.output is None)
        if a.output:
            assert a.output["answer"].rsplit("|", 1)[0] == b.output["answer"].rsplit("|", 1)[0]
