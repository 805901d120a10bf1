"""The shapes every retrieval backend shares: hits, metadata types, errors and the two protocols.

A backend (:class:`Backend`) keeps built indexes under a key, the index checksum; an index
(:class:`VectorIndex`) answers top-k queries by cosine similarity with metadata equality filters.
Both backends return the same hits for the same corpus and query (both search exactly), which
``tests/runner/test_retrieval_backends.py`` checks as one conformance suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from .._errors import RunnerError

Scalar = str | int | float | bool
"""A metadata value (``None`` where a row has no value for the field)."""

MetaType = Literal["text", "bigint", "double precision", "boolean"]
"""The type of a metadata field, inferred from its values (also its PostgreSQL column type)."""

Matrix = npt.NDArray[np.float32]
"""``(n, dim)`` L2-normalised float32 rows."""

MAX_K = 50
"""Most hits one search returns (a tool's answer goes into a prompt)."""


class RetrievalError(RunnerError):
    """An index cannot be built or opened (the backend is missing a part; the message says which)."""


class RetrievalQueryError(RetrievalError, ValueError):
    """A search asked for something the index cannot answer: ``k`` out of range, a filter on a field
    the corpus does not have, or a filter value of the wrong type. The message names the fix, so a
    tool can hand it back to the model as is."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of retrieval: a row of a CSV/JSONL corpus, or a piece of a document.

    Attributes:
        chunk_id: unique in the corpus: the row's ``idField`` value or its 1-based row number, or
            ``<relative path>#<piece>`` for documents.
        text: what is embedded and returned (whitespace-trimmed, ``\\r\\n`` as ``\\n``).
        metadata: the declared metadata fields (documents: ``source``, the relative path).
    """

    chunk_id: str
    text: str
    metadata: Mapping[str, Scalar | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    Attributes:
        chunk_id: the chunk's id (see :class:`Chunk`).
        text: the chunk's text.
        metadata: its metadata fields.
        score: cosine similarity to the query, in ``[-1, 1]``; higher is closer.
    """

    chunk_id: str
    text: str
    metadata: Mapping[str, Scalar | None]
    score: float


class VectorIndex(Protocol):
    """A built index, open for queries. Safe to call from several threads."""

    def search(self, vector: Matrix, k: int, where: Mapping[str, Scalar]) -> list[Hit]:
        """The ``k`` chunks closest to ``vector`` (shape ``(dim,)``, unit norm), best first, among
        those whose metadata equals every ``where`` item (already validated); fewer if fewer match."""
        ...

    def close(self) -> None:
        """Release connections or memory; the index stays stored."""
        ...


class Backend(Protocol):
    """Where indexes are kept, one per index checksum."""

    kind: str
    """``memory`` or ``postgres`` (as in ``spec.workflow.options.retrieval.backend``)."""

    def open(self, key: str, fields: Mapping[str, MetaType]) -> VectorIndex | None:
        """The index stored under ``key`` (64 hex digits), or ``None`` if none is complete yet.

        Raises:
            RetrievalError: the store is unusable (e.g. pgvector is missing).
        """
        ...

    def create(self, key: str, chunks: Sequence[Chunk], vectors: Matrix, fields: Mapping[str, MetaType]) -> VectorIndex:
        """Store ``chunks`` with their ``vectors`` (``(len(chunks), dim)``) under ``key`` and open it.

        Publication is atomic: a reader sees the whole index or none. When another process
        published ``key`` first, its index is opened and this one discarded.

        Raises:
            RetrievalError: the store is unusable.
        """
        ...

    def close(self) -> None:
        """Release connections (indexes already opened stop working); stored indexes stay."""
        ...
