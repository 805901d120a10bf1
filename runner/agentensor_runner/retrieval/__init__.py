"""Retrieval over a corpus: embed it once per checksum, then top-k search with metadata filters.

A template that offers a ``retrieve`` tool takes ``spec.workflow.options.retrieval`` (see
:mod:`._options` for the manifest form) and calls::

    retriever = retriever_from_options(options["retrieval"], base_dir=base_dir, roots=roots, db_url=db_url)
    hits = retriever.search("how do I block my card?", k=3, filter={"topic": "cards"})
    # [Hit(chunk_id="12", text="...", metadata={"topic": "cards"}, score=0.71), ...]
    retriever.close()

or the steps apart: :func:`parse_options`, :func:`load_corpus`, :func:`open_backend`,
:func:`build_index`. Backends: :class:`LocalBackend` (FAISS, a folder per index under
``~/.cache/agentensor/retrieval``) and :class:`PgBackend` (pgvector tables in the run's
PostgreSQL, through langchain-postgres). Both search exactly and return the same hits.

Errors: :class:`~agentensor_api.ManifestError` for the options and the corpus (naming the field,
e.g. ``spec.workflow.options.retrieval.corpus.textField``), :class:`RetrievalQueryError` (also a
``ValueError``) for a bad search, :class:`RetrievalError` when a backend cannot work.
"""

from ._base import MAX_K, Backend, Chunk, Hit, MetaType, RetrievalError, RetrievalQueryError, Scalar, VectorIndex
from ._corpus import MAX_CORPUS_BYTES, Corpus, load_corpus
from ._local import CACHE_ENV, LocalBackend, default_cache_dir
from ._model import MINILM_ID, EmbeddingModel, default_model, hashing_model, index_checksum
from ._options import OPTIONS_FIELD, CorpusSpec, RetrievalOptions, parse_options
from ._postgres import PgBackend
from ._retriever import Retriever, build_index, open_backend, retriever_from_options

__all__ = [
    "CACHE_ENV",
    "MAX_CORPUS_BYTES",
    "MAX_K",
    "MINILM_ID",
    "OPTIONS_FIELD",
    "Backend",
    "Chunk",
    "Corpus",
    "CorpusSpec",
    "EmbeddingModel",
    "Hit",
    "LocalBackend",
    "MetaType",
    "PgBackend",
    "RetrievalError",
    "RetrievalOptions",
    "RetrievalQueryError",
    "Retriever",
    "Scalar",
    "VectorIndex",
    "build_index",
    "default_cache_dir",
    "default_model",
    "hashing_model",
    "index_checksum",
    "load_corpus",
    "open_backend",
    "parse_options",
    "retriever_from_options",
]
