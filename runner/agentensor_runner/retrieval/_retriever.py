"""Build an index once per checksum, and query it: :func:`build_index`, :class:`Retriever`, :func:`open_backend`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import make_url

from agentensor_api import ManifestError

from ..data import DataRoots
from ._base import MAX_K, Backend, Hit, MetaType, RetrievalQueryError, Scalar, VectorIndex
from ._corpus import Corpus, load_corpus
from ._local import LocalBackend
from ._model import EmbeddingModel, default_model, index_checksum
from ._options import OPTIONS_FIELD, RetrievalOptions, parse_options
from ._postgres import PgBackend

log = logging.getLogger(__name__)

_ACCEPTS: dict[MetaType, tuple[type, ...]] = {
    "text": (str,),
    "bigint": (int,),
    "double precision": (int, float),
    "boolean": (bool,),
}


class Retriever:
    """Top-k search over one built index. Safe to share between threads.

    Attributes:
        checksum: the index checksum (:func:`index_checksum`) the index is stored under.
        fields: the metadata fields a filter may name, with their types.
        k: hits per search unless a search asks for another number.
        built: ``True`` if this process built the index, ``False`` if it found it stored.
        build_seconds: wall time of :func:`build_index` (embedding and storing, or opening).
    """

    def __init__(
        self,
        index: VectorIndex,
        model: EmbeddingModel,
        *,
        checksum: str,
        fields: Mapping[str, MetaType],
        k: int = 4,
        owned: Backend | None = None,
    ) -> None:
        self._index = index
        self._model = model
        self._owned = owned
        self.checksum = checksum
        self.fields = dict(fields)
        self.k = k
        self.built = False
        self.build_seconds = 0.0

    def search(self, query: str, k: int | None = None, filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` whose metadata equals every ``filter`` item.

        Args:
            query: the text searched for (embedded by the index's model).
            k: 1 to :data:`MAX_K` (default :attr:`k`).
            filter: ``{field: value}`` equality on metadata fields (:attr:`fields`); a text field
                takes a string, an integer field an integer, a float field a number, a boolean
                field ``true``/``false``.

        Returns:
            Up to ``k`` hits, highest cosine similarity first (fewer when fewer chunks match).

        Raises:
            RetrievalQueryError: empty query, ``k`` out of range, a filter on an unknown field or
                with a value of the wrong type (the message lists the fields and their types).
        """
        k = self.k if k is None else k
        if not isinstance(query, str) or not query.strip():
            raise RetrievalQueryError("query must be non-empty text")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise RetrievalQueryError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
        where = self._where(filter or {})
        vector = np.asarray(self._model.embedder.embed([query])[0], dtype=np.float32)
        return self._index.search(vector, k, where)

    def close(self) -> None:
        """Release the index (and the backend, when :func:`retriever_from_options` opened it)."""
        self._index.close()
        if self._owned is not None:
            self._owned.close()

    def _where(self, filter: Mapping[str, Any]) -> dict[str, Scalar]:
        known = ", ".join(f"{n} ({t})" for n, t in self.fields.items()) or "none"
        where: dict[str, Scalar] = {}
        for name, value in filter.items():
            kind = self.fields.get(name)
            if kind is None:
                raise RetrievalQueryError(f"cannot filter on {name!r}: the corpus's metadata fields are {known}")
            if isinstance(value, bool) != (kind == "boolean") or not isinstance(value, _ACCEPTS[kind]):
                raise RetrievalQueryError(f"filter {name!r} takes a {kind} value, got {value!r}; fields: {known}")
            scalar = cast(Scalar, value)
            where[name] = float(scalar) if kind == "double precision" else scalar
        return where


def build_index(
    corpus: Corpus, backend: Backend, *, model: EmbeddingModel | None = None, k: int = 4, own_backend: bool = False
) -> Retriever:
    """The index of ``corpus`` in ``backend``: opened if one is stored under its checksum, else built.

    Building embeds every chunk and stores them; opening embeds nothing. all-MiniLM-L6-v2 embedded
    60-78 short chunks a second on 2 busy cores (9,800 in 126 s); storing added 0.1 % (FAISS) or
    5 % (pgvector); reuse took under 0.1 s at every size (docs/benchmarks.md, "Retrieval").

    Args:
        corpus: from :func:`load_corpus`.
        backend: :class:`LocalBackend` or :class:`PgBackend` (:func:`open_backend`).
        model: the embedding model (default all-MiniLM-L6-v2).
        k: the retriever's default hits per search.
        own_backend: close ``backend`` with the retriever (:meth:`Retriever.close`).

    Raises:
        RetrievalError: the backend cannot store or open indexes (pgvector missing, say).
    """
    model = model or default_model()
    key = index_checksum(corpus, model)
    started = time.perf_counter()
    index = backend.open(key, corpus.fields)
    built = index is None
    if index is None:
        vectors = model.embedder.embed([c.text for c in corpus.chunks])
        index = backend.create(key, corpus.chunks, vectors, corpus.fields)
    retriever = Retriever(index, model, checksum=key, fields=corpus.fields, k=k, owned=backend if own_backend else None)
    retriever.built, retriever.build_seconds = built, time.perf_counter() - started
    log.info(
        "retrieval index %s (%s, %d chunks): %s in %.2f s",
        key[:12],
        backend.kind,
        len(corpus.chunks),
        "built" if built else "reused",
        retriever.build_seconds,
    )
    return retriever


def open_backend(
    kind: str,
    *,
    db_url: str | None,
    model: EmbeddingModel | None = None,
    cache_dir: Path | None = None,
    field: str = OPTIONS_FIELD,
) -> Backend:
    """The backend ``kind`` names: ``memory``, ``postgres``, or ``auto`` (``postgres`` when ``db_url`` is PostgreSQL).

    Args:
        kind: the ``backend`` option.
        db_url: the run's database URL (``agentensor runner --db``); ``None`` locally without one.
        model: the embedding model (``PGVectorStore`` is handed it; default all-MiniLM-L6-v2).
        cache_dir: the in-process backend's folder (default ``$AGENTENSOR_RETRIEVAL_CACHE`` or
            ``~/.cache/agentensor/retrieval``).
        field: the manifest path of the ``retrieval`` option.

    Raises:
        ManifestError: ``backend: postgres`` while the run's database is not PostgreSQL (naming
            ``<field>.backend``).
    """
    is_pg = db_url is not None and make_url(db_url).drivername.startswith("postgresql")
    if kind == "postgres" and not is_pg:
        raise ManifestError(f"{field}.backend", "postgres needs the run's database to be PostgreSQL; use memory")
    if kind == "memory" or not is_pg:
        return LocalBackend(cache_dir)
    assert db_url is not None
    return PgBackend(db_url, (model or default_model()).embedder)


def retriever_from_options(
    raw: Any,
    *,
    base_dir: Path = Path("."),
    roots: DataRoots | None = None,
    db_url: str | None = None,
    model: EmbeddingModel | None = None,
    cache_dir: Path | None = None,
    field: str = OPTIONS_FIELD,
) -> Retriever:
    """Parse the ``retrieval`` option, read the corpus and build (or open) its index: what a template does.

    The returned retriever owns the backend it opened: :meth:`Retriever.close` closes both.

    Raises:
        ManifestError: an invalid option or corpus (:func:`parse_options`, :func:`load_corpus`,
            :func:`open_backend`), naming the field under ``field``.
        RetrievalError: the backend cannot store or open indexes.
    """
    options: RetrievalOptions = parse_options(raw, field=field)
    corpus = load_corpus(options.corpus, base_dir=base_dir, roots=roots, field=field)
    backend = open_backend(options.backend, db_url=db_url, model=model, cache_dir=cache_dir, field=field)
    try:
        return build_index(corpus, backend, model=model, k=options.k, own_backend=True)
    except BaseException:
        backend.close()
        raise
