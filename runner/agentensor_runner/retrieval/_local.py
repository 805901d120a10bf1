"""The in-process backend: a FAISS exact inner-product index, kept in a folder per index checksum.

Why FAISS (faiss-cpu, Meta's library) rather than langchain-core's ``InMemoryVectorStore``: the
latter turns every stored vector from a Python list into an array on every query, so one query
over 10,000 chunks took 290 ms here, against 0.26 ms for ``IndexFlatIP`` (2-core machine,
random 384-d unit vectors). langchain-community's FAISS wrapper filters metadata after the search
(fewer than ``k`` hits when matches are rare) and brings langchain-community; a FAISS
``IDSelectorBatch`` restricts the exact search itself to the chunks that match the filter.

Layout: ``<cache>/<index checksum>/`` holds ``index.faiss`` (``faiss.write_index``) and
``chunks.jsonl`` (``[id, text, metadata]`` per line, in index order). It is written in a
``.build-*`` folder beside it and renamed into place, so a reader sees a whole index or none, and
two processes building the same checksum both end up reading the one renamed first. A build that
dies leaves its ``.build-*`` folder behind (delete it at will).

Search uses one OpenMP thread: a single query is a few microseconds of work per thousand chunks,
and with FAISS's default of one thread per core the threads' hand-offs cost 15.8 ms instead of
0.03 ms per query over 1,000 chunks on a busy 2-core machine. ``faiss.omp_set_num_threads`` is
process-wide; it only affects FAISS.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import reduce
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from ._base import Chunk, Hit, Matrix, MetaType, Scalar

CACHE_ENV = "AGENTENSOR_RETRIEVAL_CACHE"
"""Folder of the in-process backend's indexes; default ``~/.cache/agentensor/retrieval``."""

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"


def default_cache_dir() -> Path:
    """``$AGENTENSOR_RETRIEVAL_CACHE``, else ``~/.cache/agentensor/retrieval``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "agentensor" / "retrieval"


class FaissIndex:
    """An open index: the FAISS index and its chunks, with postings per metadata value for filters."""

    def __init__(self, index: faiss.Index, chunks: Sequence[Chunk]) -> None:
        faiss.omp_set_num_threads(1)  # see the module docstring
        self._index = index
        self._chunks = list(chunks)
        postings: dict[str, dict[Scalar, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, chunk in enumerate(self._chunks):
            for name, value in chunk.metadata.items():
                if value is not None:
                    postings[name][value].append(i)
        self._postings = {
            name: {v: np.asarray(ids, dtype=np.int64) for v, ids in values.items()} for name, values in postings.items()
        }

    def search(self, vector: Matrix, k: int, where: Mapping[str, Scalar]) -> list[Hit]:
        params = selector = None
        if where:
            ids = self._matching(where)
            if ids.size == 0:
                return []
            selector = faiss.IDSelectorBatch(ids)  # held here until the search is done (SWIG keeps no reference)
            params = faiss.SearchParameters()
            params.sel = selector
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        scores, found = self._index.search(query, min(k, len(self._chunks)), params=params)
        return [self._hit(int(i), float(s)) for s, i in zip(scores[0], found[0], strict=True) if i >= 0]

    def close(self) -> None:
        self._index.reset()
        self._chunks.clear()

    def _matching(self, where: Mapping[str, Scalar]) -> npt.NDArray[np.int64]:
        """Positions whose metadata equals every item of ``where`` (sorted)."""
        empty = np.zeros(0, dtype=np.int64)
        lists = [self._postings.get(name, {}).get(value, empty) for name, value in where.items()]
        return reduce(np.intersect1d, lists)

    def _hit(self, i: int, score: float) -> Hit:
        c = self._chunks[i]
        return Hit(c.chunk_id, c.text, dict(c.metadata), score)


class LocalBackend:
    """Indexes in a local folder, one sub-folder per index checksum (see the module docstring).

    Args:
        cache_dir: the folder (created when needed); default :func:`default_cache_dir`.
    """

    kind = "memory"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    def open(self, key: str, fields: Mapping[str, MetaType]) -> FaissIndex | None:
        folder = self.cache_dir / key
        if not (folder / INDEX_FILE).is_file() or not (folder / CHUNKS_FILE).is_file():
            return None
        with (folder / CHUNKS_FILE).open(encoding="utf-8") as fh:
            chunks = [Chunk(cid, text, meta) for cid, text, meta in map(json.loads, fh)]
        return FaissIndex(faiss.read_index(str(folder / INDEX_FILE)), chunks)

    def create(self, key: str, chunks: Sequence[Chunk], vectors: Matrix, fields: Mapping[str, MetaType]) -> FaissIndex:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".build-{key[:12]}-", dir=self.cache_dir))
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        try:
            faiss.write_index(index, str(stage / INDEX_FILE))
            with (stage / CHUNKS_FILE).open("w", encoding="utf-8") as fh:
                for c in chunks:
                    fh.write(json.dumps([c.chunk_id, c.text, dict(c.metadata)], ensure_ascii=False) + "\n")
            os.rename(stage, self.cache_dir / key)
        except OSError:
            shutil.rmtree(stage, ignore_errors=True)
            if (found := self.open(key, fields)) is not None:  # another process published it first
                return found
            raise
        return FaissIndex(index, chunks)

    def close(self) -> None:
        """Nothing to release: each index holds its own memory."""
