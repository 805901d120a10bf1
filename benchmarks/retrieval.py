"""Retrieval: index build and query latency of both backends, side by side, over a sweep of corpus sizes.

    .venv/bin/python benchmarks/retrieval.py [--sizes 20,1000,5000,9800] [--queries 200] [--k 5]
        [--shared ../shared/data/banking77]

Issue 22 item 3. Corpora: size 20 is the bank FAQ written for the tests
(tests/runner/retrieval_faq.py, metadata topic/tier/online); larger sizes are N utterances of
Banking77 (../shared/data/banking77/train.csv, CC-BY-4.0, PolyAI; the file is sorted by category,
so it is shuffled first with seed 0) with their ``category`` as metadata, written as JSONL. Queries
are the last ``--queries`` utterances after the shuffle (never in a corpus up to 9,800 rows); a
filtered query asks for its own category (FAQ: ``online: true``), about 1/77 of the corpus.

For each size, in one process, with all-MiniLM-L6-v2 loaded once beforehand:

- ``embedSeconds``: embedding every chunk (the shared part of a first build; a fresh text cache);
- per backend (``memory`` = FAISS in a temporary folder, ``postgres`` = pgvector in a fresh
  database of the local PostgreSQL), the same vectors:
  ``storeSeconds`` (``Backend.create``: write and publish the index), ``reuseSeconds``
  (``build_index`` from a new backend object that finds the index stored: what every later run
  pays), and query latency p50/p95 in ms without and with a filter, through ``Retriever.search``
  with the query's vector already cached (so: the index's search, plus the text-cache lookup);
- ``queryEmbedMs``: p50 of embedding one new query text (what a search adds when its text is new;
  the same for both backends);
- ``sameHits``: the fraction of queries (filtered and not) on which both backends return the same
  ids in the same order.

Prints one JSON object per size and a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG_URL = os.environ.get("AGENTENSOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def banking77(shared: Path) -> list[dict[str, str]]:
    """Every utterance, shuffled with seed 0 (the file is sorted by category)."""
    with (shared / "train.csv").open(newline="") as f:
        rows = [{"id": str(i), "text": r["text"], "category": r["category"]} for i, r in enumerate(csv.DictReader(f))]
    random.Random(0).shuffle(rows)
    return rows


def write_corpus(folder: Path, size: int, rows: list[dict[str, str]]) -> dict[str, Any]:
    """The corpus file of ``size`` and its ``retrieval`` options."""
    from tests.runner.retrieval_faq import FAQ, FIELDS, write_jsonl

    path = folder / f"corpus-{size}.jsonl"
    if size == len(FAQ):
        write_jsonl(path)
        return {"corpus": {"path": path.name, "textField": "text", "idField": "id", "metadataFields": FIELDS}}
    write_jsonl(path, list(rows[:size]))
    return {"corpus": {"path": path.name, "textField": "text", "idField": "id", "metadataFields": ["category"]}}


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.pool import NullPool

    admin = make_url(PG_URL).set(database="postgres")
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"agentensor_bench_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def timed_searches(retriever: Any, queries: list[tuple[str, dict[str, Any]]], k: int) -> tuple[list[float], list[Any]]:
    walls, found = [], []
    for text, where in queries:
        t0 = time.perf_counter()
        hits = retriever.search(text, k=k, filter=where or None)
        walls.append(time.perf_counter() - t0)
        found.append([h.chunk_id for h in hits])
    return walls, found


def one_backend(kind: str, ctx: dict[str, Any], queries: list[tuple[str, dict[str, Any]]], k: int) -> dict[str, Any]:
    from agentensor_runner.retrieval import LocalBackend, PgBackend, build_index

    def make() -> Any:
        if kind == "memory":
            return LocalBackend(ctx["cache"])
        return PgBackend(ctx["pg"], ctx["model"].embedder)

    corpus, model = ctx["corpus"], ctx["model"]
    first = make()
    t0 = time.perf_counter()
    first.create(ctx["key"], corpus.chunks, ctx["vectors"], corpus.fields)
    store = time.perf_counter() - t0
    first.close()
    retriever = build_index(corpus, make(), model=model, k=k, own_backend=True)
    assert not retriever.built, "the stored index must be found"
    plain, found_plain = timed_searches(retriever, [(q, {}) for q, _ in queries], k)
    filtered, found_filtered = timed_searches(retriever, queries, k)
    retriever.close()
    return {
        "storeSeconds": round(store, 3),
        "reuseSeconds": round(retriever.build_seconds, 3),
        "queryMs": {"p50": pct(plain, 0.5), "p95": pct(plain, 0.95)},
        "filteredQueryMs": {"p50": pct(filtered, 0.5), "p95": pct(filtered, 0.95)},
        "_hits": found_plain + found_filtered,
    }


def one_size(size: int, rows: list[dict[str, str]], queries: list[dict[str, str]], args: argparse.Namespace) -> Any:
    from agentensor_runner.llm import CachedEmbedder
    from agentensor_runner.retrieval import MINILM_ID, EmbeddingModel, index_checksum, load_corpus, parse_options

    with tempfile.TemporaryDirectory() as d, pg_database() as pg:
        folder = Path(d)
        options = parse_options(write_corpus(folder, size, rows))
        corpus = load_corpus(options.corpus, base_dir=folder)
        model = EmbeddingModel(MINILM_ID, CachedEmbedder(args.inner))
        t0 = time.perf_counter()
        vectors = model.embedder.embed([c.text for c in corpus.chunks])
        embed = time.perf_counter() - t0
        faq = "category" not in corpus.fields
        asked = [(q["text"], {"online": True} if faq else {"category": q["category"]}) for q in queries]
        model.embedder.embed([q for q, _ in asked])  # cached: the timings below are the index's
        ctx = {"corpus": corpus, "model": model, "vectors": vectors, "key": index_checksum(corpus, model)}
        ctx |= {"cache": folder / "cache", "pg": pg}
        result = {kind: one_backend(kind, ctx, asked, args.k) for kind in ("memory", "postgres")}
    same = [a == b for a, b in zip(result["memory"].pop("_hits"), result["postgres"].pop("_hits"), strict=True)]
    return {
        "chunks": len(corpus.chunks),
        "embedSeconds": round(embed, 2),
        "embedTextsPerSecond": round(len(corpus.chunks) / embed, 1),
        **result,
        "sameHits": round(sum(same) / len(same), 3),
    }


def query_embed_ms(inner: Any, texts: list[str]) -> float:
    walls = []
    for text in texts:
        t0 = time.perf_counter()
        inner.embed([text])
        walls.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(walls), 2)


def table(results: dict[int, Any]) -> str:
    lines = [
        "| chunks | embed s | store s (memory / pg) | reuse s (memory / pg) | query p50 ms (memory / pg) "
        "| filtered p50 ms (memory / pg) | same hits |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results.values():
        m, p = r["memory"], r["postgres"]
        lines.append(
            f"| {r['chunks']} | {r['embedSeconds']} | {m['storeSeconds']} / {p['storeSeconds']} "
            f"| {m['reuseSeconds']} / {p['reuseSeconds']} | {m['queryMs']['p50']} / {p['queryMs']['p50']} "
            f"| {m['filteredQueryMs']['p50']} / {p['filteredQueryMs']['p50']} | {r['sameHits']} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from agentensor_runner.llm import MiniLMEmbedder

    rows = banking77(args.shared)
    queries, rows = rows[-args.queries :], rows[: -args.queries]
    args.inner = MiniLMEmbedder()
    args.inner.embed([r["text"] for r in rows[:64]])  # load and warm the model outside every timing
    results: dict[int, Any] = {}
    for size in args.sizes:
        results[size] = one_size(size, rows, queries, args)
        print(json.dumps({"size": size, **results[size]}), flush=True)
    fresh = [r["text"] + " please" for r in queries[:50]]
    print(json.dumps({"queryEmbedMs": query_embed_ms(args.inner, fresh), "loadAverage": os.getloadavg()[0]}))
    print(table(results))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[20, 1000, 5000, 9800])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "banking77")
    main(p.parse_args())
