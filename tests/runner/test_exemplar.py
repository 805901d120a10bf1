"""Confusion-aware ``exemplar`` and the router's nearest-line matching it relies on."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest

from agentensor_api import EvaluatorSpec, ManifestError, WorkflowSpec
from agentensor_runner import PromptSet, load_workflow
from agentensor_runner.data import Case
from agentensor_runner.evaluators import build_evaluators
from agentensor_runner.execution import run_cases
from agentensor_runner.llm import HashingEmbedder
from agentensor_runner.optimizers import ExemplarOptimizer, OptimizerConfigError, Step
from agentensor_runner.optimizers.exemplar import confusers
from agentensor_runner.workflows import Feedback
from agentensor_runner.workflows.embedding_router import build, nearest_scores

TRAINABLE = frozenset({"intent.a", "intent.b"})


def _fb(prompt: str, role: str, text: str, line: str | None = None, expected: str = "a") -> Feedback:
    out: dict[str, Any] = {"intent": "b" if role == "confused" else "?"}
    if line is not None:
        out["line"] = line
    return Feedback(prompt, f"id-{text}", text, expected, out, role, "wrong")


def _propose(opt: ExemplarOptimizer, prompts: PromptSet, fbs: list[Feedback]) -> dict[str, str]:
    by: dict[str, list[Feedback]] = {}
    for f in fbs:
        by.setdefault(f.prompt, []).append(f)
    cands = asyncio.run(opt.propose(prompts, by, Step(1, 0, 1, random.Random(0))))
    assert len(cands) == 1
    return dict(cands[0].prompts.texts)


def test_missed_case_is_added_to_the_right_intent() -> None:
    prompts = PromptSet({"intent.a": "alpha", "intent.b": "beta"}, TRAINABLE)
    texts = _propose(ExemplarOptimizer(), prompts, [_fb("intent.a", "missed", "new  alpha  case")])
    assert texts == {"intent.a": "alpha\nnew alpha case", "intent.b": "beta"}


def test_full_prompt_drops_its_confuser_before_its_oldest_line() -> None:
    opt = ExemplarOptimizer({"maxLinesPerPrompt": 3, "maxNewLinesPerStep": 4})
    prompts = PromptSet({"intent.a": "alpha", "intent.b": "beta\nold b\nmisleading b"}, TRAINABLE)
    fbs = [
        _fb("intent.b", "missed", "fresh b", expected="b"),
        _fb("intent.b", "confused", "an a case", line="misleading  b"),  # b's line attracted an a case
        _fb("intent.a", "missed", "an a case"),
    ]
    texts = _propose(opt, prompts, fbs)
    assert texts["intent.b"] == "beta\nold b\nfresh b", "the confuser goes, the older line stays"
    assert texts["intent.a"] == "alpha\nan a case"
    without = _propose(ExemplarOptimizer({"maxLinesPerPrompt": 3, "evictConfusers": False}), prompts, fbs)
    assert without["intent.b"] == "beta\nmisleading b\nfresh b", "plain policy: the oldest added line goes"


def test_drop_confusers_after_n_misroutes_even_when_not_full() -> None:
    prompts = PromptSet({"intent.a": "alpha", "intent.b": "beta\nbad b\ngood b"}, TRAINABLE)
    fbs = [_fb("intent.b", "confused", f"a case {i}", line="bad b") for i in range(2)]
    texts = _propose(ExemplarOptimizer({"dropConfusersAfter": 2}), prompts, fbs)
    assert texts["intent.b"] == "beta\ngood b"
    assert asyncio.run(ExemplarOptimizer().propose(prompts, {"intent.b": fbs}, Step(1, 0, 1, random.Random(0)))) == []
    first_line = [_fb("intent.b", "confused", f"a {i}", line="beta") for i in range(3)]
    assert _propose(ExemplarOptimizer({"dropConfusersAfter": 1}), prompts, first_line + fbs)["intent.b"] == (
        "beta\ngood b"
    ), "the first line (the description itself) is never dropped"


def test_confusers_counts_only_confused_feedback_with_a_line() -> None:
    fbs = [
        _fb("intent.b", "confused", "x", line="L1"),
        _fb("intent.b", "confused", "y", line=" l1 "),
        _fb("intent.b", "confused", "z"),
        _fb("intent.b", "missed", "w", line="L2"),
    ]
    assert dict(confusers(fbs)) == {"l1": 2}


@pytest.mark.parametrize(
    "options",
    [{"maxNewLinesPerStep": 0}, {"dropConfusersAfter": -1}, {"evictConfusers": "yes"}, {"colour": 1}],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(OptimizerConfigError):
        ExemplarOptimizer(options)


def test_nearest_scores_mean_of_top_k_lines() -> None:
    tensor = np.zeros((2, 3, 2), dtype=np.float32)
    tensor[0, :3] = np.array([[1, 0], [0.6, 0.8], [0, 1]])  # intent 0: three lines
    tensor[1, :1] = np.array([[0.8, 0.6]])  # intent 1: one line (rows 1, 2 are padding)
    q = np.array([1, 0], dtype=np.float32)
    scores, best = nearest_scores(tensor.copy(), np.array([3, 1]), q, 1)
    assert scores.tolist() == pytest.approx([1.0, 0.8]) and best.tolist() == [0, 0]
    scores, _ = nearest_scores(tensor.copy(), np.array([3, 1]), q, 2)
    assert scores.tolist() == pytest.approx([0.8, 0.8]), "intent 1 averages the one line it has"


def test_router_nearest_mode_reports_the_matching_line() -> None:
    wf = build({"match": "nearest", "topK": 1}, embedder=HashingEmbedder())
    prompts = PromptSet({"intent.x": "alpha beta\ngamma delta", "intent.y": "zeta eta"}, frozenset())
    evals = build_evaluators([EvaluatorSpec(name="acc", type="exact_match", output_field="intent")])
    ev = asyncio.run(
        run_cases(
            wf,
            prompts,
            [Case("0", "gamma delta", "x", {})],
            evals,
            base_config={},
            run_id="r",
            stage="s",
            parallelism=1,
            case_timeout_seconds=10,
        )
    )
    out = ev.cases[0].output
    assert out["intent"] == "x" and out["line"] == "gamma delta" and out["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("options", "field"),
    [({"match": "vote"}, "spec.workflow.options.match"), ({"topK": 0}, "spec.workflow.options.topK")],
)
def test_bad_matching_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as exc:
        load_workflow(WorkflowSpec(template="embedding-router", options={"embedder": "hashing", **options}))
    assert exc.value.field == field
