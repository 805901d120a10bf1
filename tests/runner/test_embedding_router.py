"""The embedding-router template: routing, output shape, caching of inputs and descriptions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from agentensor_api import EvaluatorSpec, ManifestError, WorkflowSpec
from agentensor_runner import PromptSet, load_workflow
from agentensor_runner.data import Case
from agentensor_runner.evaluators import build_evaluators
from agentensor_runner.execution import run_cases
from agentensor_runner.llm import CachedEmbedder, HashingEmbedder, Vector
from agentensor_runner.workflows.embedding_router import build, description_lines


class CountingEmbedder:
    """A real hashing embedder that records every text it is asked to embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.dim = self.inner.dim
        self.calls: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vector:
        self.calls.extend(texts)
        return self.inner.embed(texts)


PROMPTS = PromptSet(
    {"intent.refund": "refund money back", "intent.card": "lost card stolen", "intent.hello": "hello greeting"},
    frozenset({"intent.refund", "intent.card", "intent.hello"}),
)
CASES = [
    Case("0", "i want my money back please", "refund", {}),
    Case("1", "my card was stolen", "card", {}),
    Case("2", "hello there", "hello", {}),
]


def _run(wf: Any, prompts: PromptSet, cases: list[Case]) -> Any:
    evals = build_evaluators([EvaluatorSpec(name="acc", type="exact_match", output_field="intent")])
    return asyncio.run(
        run_cases(
            wf, prompts, cases, evals, base_config={}, run_id="r", stage="s", parallelism=2, case_timeout_seconds=10
        )
    )


def test_routes_and_outputs_intent_and_score() -> None:
    wf = build({}, embedder=HashingEmbedder())
    ev = _run(wf, PROMPTS, CASES)
    assert ev.means["acc"] == 1.0
    out = ev.cases[0].output
    assert set(out) == {"intent", "score"} and isinstance(out["score"], float) and 0 < out["score"] <= 1


def test_inputs_embedded_once_and_only_changed_descriptions_reembedded() -> None:
    counter = CountingEmbedder()
    wf = build({}, embedder=CachedEmbedder(counter))
    assert wf.prepare is not None
    wf.prepare([c.input for c in CASES])
    assert sorted(counter.calls) == sorted(c.input for c in CASES)
    counter.calls.clear()
    _run(wf, PROMPTS, CASES)
    assert sorted(counter.calls) == sorted(["refund money back", "lost card stolen", "hello greeting"])
    counter.calls.clear()
    _run(wf, PROMPTS, CASES)
    assert counter.calls == [], "inputs and unchanged descriptions come from the cache"
    edited = PROMPTS.with_texts({"intent.card": "lost card stolen\n- wallet gone"})
    _run(wf, edited, CASES)
    assert counter.calls == ["wallet gone"], "only the new line of the edited description is embedded"


def test_multi_line_description_is_mean_of_lines() -> None:
    emb = HashingEmbedder()
    assert description_lines(" a \n\n- b\n") == ["a", "b"]
    wf = build({}, embedder=emb)
    prompts = PromptSet({"intent.x": "alpha beta\ngamma delta", "intent.y": "zeta"}, frozenset())
    ev = _run(wf, prompts, [Case("0", "alpha beta", "x", {})])
    vecs = emb.embed(["alpha beta", "gamma delta"])
    proto = vecs.mean(axis=0)
    proto /= np.linalg.norm(proto)
    assert ev.cases[0].output["score"] == pytest.approx(float(proto @ emb.embed(["alpha beta"])[0]), rel=1e-5)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"descriptions": "intents"}, "spec.workflow.options.descriptions", id="not-a-placeholder"),
        pytest.param({"embedder": "bert"}, "spec.workflow.options.embedder", id="unknown-embedder"),
        pytest.param({"colour": "red"}, "spec.workflow.options.colour", id="unknown-option"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as exc:
        load_workflow(WorkflowSpec(template="embedding-router", options=options))
    assert exc.value.field == field


@pytest.mark.embeddings
def test_minilm_router_routes_paraphrases() -> None:
    """The real all-MiniLM-L6-v2 model, as the example uses it."""
    wf = load_workflow(WorkflowSpec(template="embedding-router"))
    cases = [
        Case("0", "please give me a refund for this purchase", "refund", {}),
        Case("1", "someone took my bank card", "card", {}),
        Case("2", "good morning!", "hello", {}),
    ]
    ev = _run(wf, PROMPTS, cases)
    assert ev.means["acc"] == 1.0


def test_entrypoint_workflow_runs_with_interpolated_prompts() -> None:
    wf = load_workflow(WorkflowSpec(entrypoint="tests.runner.sample_workflows:build_echo"))
    prompts = PromptSet({"prefix": "Answer:"}, frozenset({"prefix"}))
    evals = build_evaluators([EvaluatorSpec(name="em", type="exact_match", output_field="answer")])
    ev = asyncio.run(
        run_cases(
            wf,
            prompts,
            [Case("0", "yes", "Answer: yes", {})],
            evals,
            base_config={},
            run_id="r",
            stage="s",
            parallelism=1,
            case_timeout_seconds=10,
        )
    )
    assert ev.means["em"] == 1.0 and ev.cases[0].used_prompts == {"prefix"}


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        pytest.param("tests.runner.sample_workflows:build_broken", "factory returned int", id="not-a-graph"),
        pytest.param("tests.runner.sample_workflows:missing", "has no callable 'missing'", id="no-attr"),
        pytest.param("tests.runner.nope:build", "cannot import module 'tests.runner.nope'", id="no-module"),
    ],
)
def test_bad_entrypoints_name_the_field(entrypoint: str, message: str) -> None:
    with pytest.raises(ManifestError) as exc:
        load_workflow(WorkflowSpec(entrypoint=entrypoint))
    assert exc.value.field == "spec.workflow.entrypoint" and message in exc.value.reason
