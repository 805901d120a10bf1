"""``embedding_similarity``: cosine similarity of sentence embeddings."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np

from agentensor_api import EvaluatorSpec

from ..llm import Embedder
from ._base import BaseEvaluator, Score, as_text, preview
from ._options import Options

_SNAP = 1e-6
"""Cosines within this of 1 count as exactly 1 (float32 rounding of identical directions)."""


class EmbeddingSimilarityEvaluator(BaseEvaluator):
    """``embedding_similarity``: ``score = max(0, cos(embed(output), embed(expected)))``.

    Both values are rendered as text (:func:`~._base.as_text`) and embedded together in one
    ``embedder.embed([output, expected])`` call, run in a worker thread (the embedder must be
    thread-safe, as :class:`~agentensor_runner.llm.CachedEmbedder` is). Identical texts
    score 1.0 without embedding; an empty text (zero vector) scores 0.

    The score is graded, so set ``threshold`` below the default 1.0; about 0.8 is typical for
    all-MiniLM-L6-v2 ("paraphrase"), 0.6 for "same topic".

    No options.
    """

    type = "embedding_similarity"

    def __init__(self, spec: EvaluatorSpec, *, index: int, embedder: Embedder) -> None:
        super().__init__(spec, index=index)
        Options(spec, index, ())
        self.embedder = embedder

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        got, want = as_text(output), as_text(expected)
        if got == want:
            return Score(1.0)
        vectors = await asyncio.to_thread(self.embedder.embed, [got, want])
        matrix = np.asarray(vectors, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != 2:
            raise ValueError(f"embedder returned shape {matrix.shape}, expected (2, dim)")
        a, b = matrix[0], matrix[1]
        norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
        cos = float(np.dot(a, b)) / norms if norms > 0 and math.isfinite(norms) else 0.0
        if cos > 1.0 - _SNAP:
            cos = 1.0
        score = min(1.0, max(0.0, cos))
        return Score(
            score,
            f"similarity {cos:.3f} is below the threshold {self.spec.threshold:g}: "
            f"expected something like {preview(want)}, got {preview(got)}",
        )
