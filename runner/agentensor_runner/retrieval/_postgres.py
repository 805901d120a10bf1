"""The PostgreSQL backend: pgvector, through langchain-postgres' ``PGVectorStore``, a table per index.

Each index is a table ``rag_<first 40 hex digits of the index checksum>`` in the ``public`` schema
of the run's database, made by ``PGEngine.init_vectorstore_table``: ``langchain_id`` (the chunk id),
``content``, ``embedding vector(dim)``, one typed column per metadata field (what filters compare),
named ``m0``, ``m1``... in field order (langchain-postgres writes filter columns unquoted, so a
field named ``Topic`` or ``order`` could not be a column name), and ``langchain_metadata``. The
table name is outside the store's ``agentensor_`` prefix, so the store's migrations leave it alone.
Search is exact (no ANN index): it returns what the in-process backend returns, and a filter never
loses hits to an approximate scan.

A build fills a table ``rag_<40 hex>_<8 hex>`` (created by ``init_vectorstore_table``, filled by
one ``executemany`` per 1,000 rows, the vectors bound by pgvector's SQLAlchemy ``Vector`` type) and
renames it into place under an advisory lock on the name; reusing an index is finding its table
(``to_regclass``). So a reader sees a whole index or none, and two Pods building the same checksum
end up reading the one renamed first (the other drops its copy); a build that dies leaves its
``rag_*_<8 hex>`` table behind (drop it at will).

The ``vector`` extension must be installed in the server (``make install-pgvector`` for the
system PostgreSQL 15 here; see docs/install.md) and created in the database, which needs a
superuser once (``CREATE EXTENSION vector``); the backend creates it when it may.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_postgres import Column, PGEngine, PGVectorStore
from pgvector.sqlalchemy import Vector
from sqlalchemy import bindparam, create_engine, make_url, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import TextClause

from ..llm import Embedder
from ._base import Chunk, Hit, Matrix, MetaType, RetrievalError, Scalar

SCHEMA = "public"
EXTENSION_LOCK = 0x61676E745F726167
"""The advisory lock key that serialises ``CREATE EXTENSION vector`` ("agnt_rag" in ASCII)."""
INSERT_BATCH = 1000
"""Rows per ``executemany`` (psycopg 3 pipelines them). Not ``PGVectorStore.add_embeddings``: it
opens a connection and commits once per row, 10.7 ms a row here (53 s for 5,000 chunks)."""


class _Embeddings(Embeddings):
    """The backend's embedder as a LangChain ``Embeddings`` (``PGVectorStore`` wants one; vectors
    are computed before they reach it, so it only embeds if langchain-postgres asks it to)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def table_name(key: str) -> str:
    """The table of the index ``key`` (an index checksum)."""
    return f"rag_{key[:40]}"


def columns(fields: Mapping[str, MetaType]) -> dict[str, str]:
    """Each metadata field's column: ``m<position>`` (see the module docstring)."""
    return {name: f"m{i}" for i, name in enumerate(fields)}


class PgIndex:
    """An open pgvector table."""

    def __init__(self, store: PGVectorStore, fields: Mapping[str, MetaType]) -> None:
        self._store = store
        self._columns = columns(fields)
        self._fields = {col: name for name, col in self._columns.items()}

    def search(self, vector: Matrix, k: int, where: Mapping[str, Scalar]) -> list[Hit]:
        """See :class:`VectorIndex`; a database fault is a :class:`RetrievalError` naming its kind."""
        try:
            found = self._store.similarity_search_with_score_by_vector(
                [float(x) for x in vector], k=k, filter={self._columns[f]: v for f, v in where.items()} or None
            )
        except SQLAlchemyError as e:
            raise RetrievalError(f"the pgvector search failed ({type(getattr(e, 'orig', None) or e).__name__})") from e
        return [
            Hit(str(doc.id), doc.page_content, self._metadata(doc.metadata), 1.0 - float(distance))
            for doc, distance in found
        ]

    def _metadata(self, row: Mapping[str, Scalar | None]) -> dict[str, Scalar | None]:
        return {self._fields[col]: value for col, value in row.items() if col in self._fields}

    def close(self) -> None:
        """Nothing to release: the backend owns the connections."""


class PgBackend:
    """Indexes as pgvector tables in one PostgreSQL database.

    Args:
        url: a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``; a bare ``postgresql://``
            is read as psycopg 3).
        embedder: what ``PGVectorStore`` is handed as its ``Embeddings`` (see :class:`_Embeddings`).

    Raises:
        RetrievalError: when used, if the database is unreachable or has no ``vector`` extension
            and it cannot be created (the message says how to install it).
    """

    kind = "postgres"

    def __init__(self, url: str, embedder: Embedder) -> None:
        parsed = make_url(url)
        if not parsed.drivername.startswith("postgresql"):
            raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}")
        self._url = parsed.set(drivername="postgresql+psycopg")
        self._ddl = create_engine(self._url, poolclass=NullPool)
        self._engine = PGEngine.from_connection_string(self._url)
        self._embeddings = _Embeddings(embedder)
        self._checked = False

    def open(self, key: str, fields: Mapping[str, MetaType]) -> PgIndex | None:
        self._ensure_extension()
        with self._ddl.connect() as conn:
            found = conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.{table_name(key)}"}).scalar()
        return None if found is None else self._index(table_name(key), fields)

    def create(self, key: str, chunks: Sequence[Chunk], vectors: Matrix, fields: Mapping[str, MetaType]) -> PgIndex:
        self._ensure_extension()
        final, stage = table_name(key), f"{table_name(key)}_{uuid.uuid4().hex[:8]}"
        try:
            self._fill(stage, chunks, vectors, fields)
            self._publish(stage, final)
        finally:
            self._drop(stage)  # a no-op once renamed
        return self._index(final, fields)

    def close(self) -> None:
        """Close both connection pools; indexes stay in the database."""
        self._ddl.dispose()
        self._engine._run_as_sync(self._engine.close())  # PGEngine has no public synchronous close

    def _index(self, table: str, fields: Mapping[str, MetaType]) -> PgIndex:
        store = PGVectorStore.create_sync(
            self._engine, self._embeddings, table, schema_name=SCHEMA, metadata_columns=list(columns(fields).values())
        )
        return PgIndex(store, fields)

    def _fill(self, table: str, chunks: Sequence[Chunk], vectors: Matrix, fields: Mapping[str, MetaType]) -> None:
        """Create ``table`` (langchain-postgres' layout) and insert every chunk with its vector."""
        cols = columns(fields)
        self._engine.init_vectorstore_table(
            table,
            int(vectors.shape[1]),
            schema_name=SCHEMA,
            metadata_columns=[Column(col, fields[name]) for name, col in cols.items()],
            id_column=Column("langchain_id", "TEXT", nullable=False),
        )
        insert = _insert_statement(table, list(cols.values()), int(vectors.shape[1]))
        with self._ddl.begin() as conn:
            for start in range(0, len(chunks), INSERT_BATCH):
                batch = zip(chunks[start : start + INSERT_BATCH], vectors[start : start + INSERT_BATCH], strict=True)
                conn.execute(insert, [_row(c, vector, cols) for c, vector in batch])

    def _publish(self, stage: str, final: str) -> None:
        """Rename ``stage`` to ``final`` unless another build published ``final`` first.

        Under a transaction advisory lock on the name: two renames racing for one name fail with a
        unique violation on ``pg_class`` rather than wait (seen in the race test).
        """
        with self._ddl.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": final})
            if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.{final}"}).scalar() is None:
                conn.execute(text(f'ALTER TABLE "{SCHEMA}"."{stage}" RENAME TO "{final}"'))

    def _drop(self, table: str) -> None:
        with self._ddl.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{SCHEMA}"."{table}"'))

    def _ensure_extension(self) -> None:
        """Create the ``vector`` extension if it is missing (checked once per backend).

        Concurrent ``CREATE EXTENSION IF NOT EXISTS`` in one database can fail with a unique
        violation (both see it missing), so creators take a transaction advisory lock first.
        """
        if self._checked:
            return
        try:
            with self._ddl.begin() as conn:
                if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).scalar() is None:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EXTENSION_LOCK})
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except SQLAlchemyError as e:
            raise RetrievalError(_extension_fix(e)) from e
        self._checked = True


def _insert_statement(table: str, metadata_columns: list[str], dim: int) -> TextClause:
    """``INSERT`` of one chunk into ``table`` (the columns ``init_vectorstore_table`` made)."""
    names = ["langchain_id", "content", "embedding", *metadata_columns, "langchain_metadata"]
    values = [f":{n}" for n in names[:-1]] + ["CAST('{}' AS json)"]  # every field is a column
    quoted = ", ".join(f'"{n}"' for n in names)
    sql = f'INSERT INTO "{SCHEMA}"."{table}" ({quoted}) VALUES ({", ".join(values)})'
    return text(sql).bindparams(bindparam("embedding", type_=Vector(dim)))


def _row(chunk: Chunk, vector: Matrix, cols: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"langchain_id": chunk.chunk_id, "content": chunk.text, "embedding": vector}
    return row | {col: chunk.metadata.get(name) for name, col in cols.items()}


def _extension_fix(e: SQLAlchemyError) -> str:
    """What to do when ``CREATE EXTENSION vector`` (the backend's first statement) failed."""
    if isinstance(e, OperationalError):
        return f"PostgreSQL is unreachable ({type(e.orig or e).__name__}); retrieval's postgres backend needs it"
    state = getattr(getattr(e, "orig", None), "sqlstate", None)
    if state == "42501":  # insufficient_privilege
        return (
            "the database has no pgvector extension and this user may not create it: "
            "a superuser runs CREATE EXTENSION vector in it once"
        )
    return (
        f"PostgreSQL cannot create the pgvector extension ({type(getattr(e, 'orig', None) or e).__name__}): "
        "install it in the server (make install-pgvector for the system PostgreSQL 15; see docs/install.md), "
        "or use backend: memory"
    )
