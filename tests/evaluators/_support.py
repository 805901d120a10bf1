"""Builders shared by the evaluator tests."""

from __future__ import annotations

from typing import Any

from agentensor_api import EvaluatorSpec
from agentensor_runner.evaluators import Evaluator, build_evaluator
from agentensor_runner.llm import Embedder, HashingEmbedder

ALLOWED = ("tests.evaluators",)
SCORERS = "tests.evaluators.sample_scorers"


def make_spec(
    type: str,
    options: dict[str, Any] | None = None,
    *,
    threshold: float | None = None,
    output_field: str | None = None,
    name: str = "score",
) -> EvaluatorSpec:
    """An EvaluatorSpec parsed from its manifest (camelCase) form."""
    wire: dict[str, Any] = {"name": name, "type": type, "options": options or {}}
    if threshold is not None:
        wire["threshold"] = threshold
    if output_field is not None:
        wire["outputField"] = output_field
    return EvaluatorSpec.model_validate(wire)


def make(
    type: str,
    options: dict[str, Any] | None = None,
    *,
    threshold: float | None = None,
    output_field: str | None = None,
    index: int = 0,
    embedder: Embedder | None = None,
    allowed: tuple[str, ...] = ALLOWED,
) -> Evaluator:
    """Build an evaluator with a HashingEmbedder (never MiniLM) and the test allow-list.

    ``llm_judge`` gets ``tests.llm.fakes.judge_runtime()`` (an exact-match judge model).
    """
    spec = make_spec(type, options, threshold=threshold, output_field=output_field)
    llm = None
    if type == "llm_judge":
        from tests.llm.fakes import judge_runtime

        llm = judge_runtime()
    return build_evaluator(
        spec, index=index, embedder=embedder or HashingEmbedder(), allowed_entrypoints=allowed, llm=llm
    )
