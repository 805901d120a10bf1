"""Both retrieval backends, one conformance suite: the real all-MiniLM-L6-v2, FAISS in a folder and
pgvector in a real PostgreSQL (its tests are marked ``postgres``; the extension comes from
``make install-pgvector``, and its absence fails under ``CI=true`` and skips elsewhere).

Checked on each backend: an index is built once per checksum (a second build, from a new backend
object as a new process would make, embeds nothing) and a changed row builds another; top-1 of 15
questions over the 20-snippet bank FAQ; filters on text, integer and boolean fields return exactly
the best matching chunks; bad searches are refused with the fields listed; two builds racing for
one checksum publish one index. Then both backends give the same hits.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from agentensor_api import ManifestError
from agentensor_runner.llm import Embedder, HashingEmbedder, Vector, default_embedder
from agentensor_runner.retrieval import (
    MINILM_ID,
    Backend,
    EmbeddingModel,
    LocalBackend,
    PgBackend,
    RetrievalError,
    RetrievalQueryError,
    Retriever,
    build_index,
    load_corpus,
    open_backend,
    parse_options,
    retriever_from_options,
)
from tests.conftest import CreateDb
from tests.runner.retrieval_faq import FAQ, FIELDS, write_jsonl

pytestmark = pytest.mark.embeddings

BACKENDS = ["memory", pytest.param("postgres", marks=pytest.mark.postgres)]
OPTIONS = {"corpus": {"path": "faq.jsonl", "textField": "text", "idField": "id", "metadataFields": FIELDS}}


class CountingEmbedder:
    """The real model, recording every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vector:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def counting_model() -> tuple[EmbeddingModel, CountingEmbedder]:
    counter = CountingEmbedder(default_embedder())
    return EmbeddingModel(MINILM_ID, counter), counter


# -- backends -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pgvector_available(pg_admin_url: URL) -> None:
    """The ``vector`` extension is installed in the server (else fail in CI, skip elsewhere)."""
    engine = create_engine(pg_admin_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    finally:
        engine.dispose()
    if found is None:
        why = (
            f"pgvector is not installed in the PostgreSQL at {pg_admin_url.render_as_string(hide_password=True)}; "
            "install it with `make install-pgvector` (root; hack/pgvector.sh builds it once, about 30 s)"
        )
        if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
            pytest.fail(f"CI=true: {why}", pytrace=False)
        pytest.skip(why)


class Backends:
    """New backend objects over one store (a folder, or a fresh database), as separate processes
    would open them; :meth:`stored` lists the indexes it holds (builds in flight included)."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, folder: Path) -> None:
        self.kind, self.folder, self.opened = kind, folder, list[Backend]()
        if kind == "postgres":
            request.getfixturevalue("pgvector_available")
            self.url = request.getfixturevalue("create_pg_database")()

    def __call__(self, model: EmbeddingModel) -> Backend:
        made = LocalBackend(self.folder) if self.kind == "memory" else PgBackend(self.url, model.embedder)
        self.opened.append(made)
        return made

    def stored(self) -> list[str]:
        """Folder names (index checksums), or table names (``rag_<40 hex digits>``)."""
        if self.kind == "memory":
            return sorted(p.name for p in self.folder.iterdir())
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                query = "SELECT tablename FROM pg_tables WHERE tablename LIKE 'rag%' ORDER BY 1"
                return list(conn.execute(text(query)).scalars())
        finally:
            engine.dispose()

    def close(self) -> None:
        for b in self.opened:
            b.close()


@pytest.fixture(params=BACKENDS)
def new_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    backends = Backends(request.param, request, tmp_path / "cache")
    yield backends
    backends.close()


@pytest.fixture(scope="module", params=BACKENDS)
def faq(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    """The FAQ index on each backend, built once for the module."""
    folder = tmp_path_factory.mktemp("faq")
    write_jsonl(folder / "faq.jsonl")
    backends = Backends(request.param, request, folder / "cache")
    model, _ = counting_model()
    retriever = build_index(load_corpus(parse_options(OPTIONS).corpus, base_dir=folder), backends(model), model=model)
    yield retriever
    retriever.close()
    backends.close()


def ids(hits: Sequence[Any]) -> list[str]:
    return [h.chunk_id for h in hits]


# -- built once per checksum ----------------------------------------------------------------------


def test_index_is_built_once_per_checksum(new_backend: Backends, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    corpus = load_corpus(parse_options(OPTIONS).corpus, base_dir=tmp_path)
    model, counter = counting_model()
    first = build_index(corpus, new_backend(model), model=model)
    assert first.built and sorted(counter.texts) == sorted(c.text for c in corpus.chunks)
    counter.texts.clear()
    again = build_index(load_corpus(parse_options(OPTIONS).corpus, base_dir=tmp_path), new_backend(model), model=model)
    assert (again.built, again.checksum) == (False, first.checksum)
    assert counter.texts == [], "a stored index is opened, not embedded again"
    query = "I lost my debit card"
    assert ids(again.search(query)) == ids(first.search(query))

    rows = [dict(r) for r in FAQ]
    rows[0]["text"] = "Lost cards are replaced for free."
    write_jsonl(tmp_path / "faq.jsonl", rows)
    changed = build_index(
        load_corpus(parse_options(OPTIONS).corpus, base_dir=tmp_path), new_backend(model), model=model
    )
    assert changed.built and changed.checksum != first.checksum
    assert "Lost cards are replaced for free." in counter.texts
    assert changed.search("are lost cards replaced for free", k=1)[0].text == "Lost cards are replaced for free."


def test_racing_builds_publish_one_index(new_backend: Backends, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    corpus = load_corpus(parse_options(OPTIONS).corpus, base_dir=tmp_path)
    model, _ = counting_model()
    backends = [new_backend(model), new_backend(model)]
    found: list[Retriever] = []
    errors: list[BaseException] = []

    def build(b: Backend) -> None:
        try:
            found.append(build_index(corpus, b, model=model))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(b,)) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [ids(r.search("overdraft", k=2)) for r in found] == [["account-overdraft", "transfer-cancel"]] * 2
    key = found[0].checksum
    assert new_backend.stored() == ([key] if new_backend.kind == "memory" else [f"rag_{key[:40]}"])


# -- search ---------------------------------------------------------------------------------------

TOP1 = [
    ("I lost my debit card", "card-lost"),
    ("what is my PIN number", "card-pin"),
    ("why was my card declined", "card-declined"),
    ("how long does a domestic transfer take", "transfer-time"),
    ("raise my transfer limit", "transfer-limit"),
    ("interest rate of a personal loan", "loan-rate"),
    ("pay back my loan early", "loan-early"),
    ("buy a house mortgage", "mortgage"),
    ("open a new current account", "account-open"),
    ("close my account", "account-close"),
    ("download my bank statement", "account-statement"),
    ("overdraft", "account-overdraft"),
    ("someone emailed me asking for my password", "security-phishing"),
    ("I forgot my online banking password", "security-password"),
    ("a payment I did not make appears on my account", "security-fraud"),
]


def test_top1_on_the_faq(faq: Retriever) -> None:
    got = {query: faq.search(query, k=3) for query, _ in TOP1}
    misses = [(q, want, ids(got[q])) for q, want in TOP1 if ids(got[q])[0] != want]
    assert misses == []
    for hits in got.values():
        assert len(hits) == 3 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
    first = got["I lost my debit card"][0]
    assert (first.text, dict(first.metadata)) == (FAQ[0]["text"], {"topic": "cards", "tier": 1, "online": True})


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"topic": "transfers"}, id="text"),
        pytest.param({"tier": 3}, id="bigint"),
        pytest.param({"online": False}, id="boolean"),
        pytest.param({"topic": "security", "online": True}, id="two-fields"),
    ],
)
def test_filter_returns_the_best_matching_chunks(faq: Retriever, where: dict[str, Any]) -> None:
    query = "how do I get my money back"
    ranked = faq.search(query, k=len(FAQ))
    matching = [h.chunk_id for h in ranked if all(h.metadata[k] == v for k, v in where.items())]
    hits = faq.search(query, k=3, filter=where)
    assert ids(hits) == matching[:3]
    assert all(h.metadata[k] == v for h in hits for k, v in where.items())


def test_filter_with_fewer_matches_than_k(faq: Retriever) -> None:
    assert ids(faq.search("loans", k=10, filter={"topic": "loans", "tier": 2})) != []
    assert len(faq.search("loans", k=10, filter={"topic": "loans", "tier": 2})) == 2
    assert faq.search("loans", k=10, filter={"topic": "pets"}) == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        pytest.param({"filter": {"product": "x"}}, "topic (text), tier (bigint), online (boolean)", id="unknown-field"),
        pytest.param({"filter": {"tier": "3"}}, "bigint", id="text-for-int"),
        pytest.param({"filter": {"tier": True}}, "bigint", id="bool-for-int"),
        pytest.param({"filter": {"online": 1}}, "boolean", id="int-for-bool"),
        pytest.param({"filter": {"topic": None}}, "text", id="null"),
        pytest.param({"k": 0}, "1 to 50", id="k-zero"),
        pytest.param({"k": 51}, "1 to 50", id="k-too-big"),
        pytest.param({"query": "  "}, "non-empty", id="empty-query"),
    ],
)
def test_bad_searches_are_refused(faq: Retriever, kwargs: dict[str, Any], says: str) -> None:
    args = {"query": "cards", **kwargs}
    with pytest.raises(RetrievalQueryError) as e:
        faq.search(**args)
    assert says in str(e.value)
    assert isinstance(e.value, ValueError)


# -- both backends --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_backends_return_the_same_hits(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    corpus = load_corpus(parse_options(OPTIONS).corpus, base_dir=tmp_path)
    model, _ = counting_model()
    made = [Backends(kind, request, tmp_path / "cache") for kind in ("memory", "postgres")]
    local, pg = (build_index(corpus, backends(model), model=model) for backends in made)
    try:
        searches: list[tuple[str, dict[str, Any]]] = [
            ("card fees", {}),
            ("password", {"online": True}),
            ("loan", {"tier": 3}),
        ]
        for query, where in searches:
            a, b = local.search(query, k=5, filter=where), pg.search(query, k=5, filter=where)
            assert ids(a) == ids(b)
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
            assert [dict(h.metadata) for h in a] == [dict(h.metadata) for h in b]
    finally:
        for backends in made:
            backends.close()


def test_documents_folder_on_the_local_backend(tmp_path: Path) -> None:
    docs = tmp_path / "handbook"
    docs.mkdir()
    (docs / "cards.md").write_text("# Cards\n\nFreeze a lost card in the app, then order a new one.\n")
    (docs / "loans.md").write_text("# Loans\n\nRepay a loan early for at most one month of interest.\n")
    options = {"corpus": {"path": "handbook"}, "k": 1, "backend": "memory"}
    retriever = retriever_from_options(options, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    try:
        hit = retriever.search("I lost my card")[0]
        assert (hit.chunk_id, dict(hit.metadata)) == ("cards.md#0", {"source": "cards.md"})
        assert retriever.search("I lost my card", filter={"source": "loans.md"})[0].chunk_id == "loans.md#0"
    finally:
        retriever.close()


# -- choosing a backend ---------------------------------------------------------------------------


def test_backend_follows_the_run_database(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'run.db'}"
    assert open_backend("auto", db_url=sqlite, cache_dir=tmp_path).kind == "memory"
    assert open_backend("auto", db_url=None, cache_dir=tmp_path).kind == "memory"
    with pytest.raises(ManifestError) as e:
        open_backend("postgres", db_url=sqlite)
    assert e.value.field == "spec.workflow.options.retrieval.backend"


@pytest.mark.postgres
def test_missing_extension_names_the_fix(create_pg_database: CreateDb, pgvector_available: None) -> None:
    """A user who may not create the extension, in a database without it: the error says who can."""
    url = make_url(create_pg_database())
    role = f"agentensor_rag_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    backend = PgBackend(url.set(username=role).render_as_string(hide_password=False), default_embedder())
    try:
        with pytest.raises(RetrievalError, match="superuser runs CREATE EXTENSION vector"):
            backend.open("0" * 64, {})
    finally:
        backend.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def test_unreachable_database_is_a_retrieval_error() -> None:
    backend = PgBackend("postgresql+psycopg://nobody@127.0.0.1:1/none", HashingEmbedder())
    try:
        with pytest.raises(RetrievalError, match="PostgreSQL is unreachable"):
            backend.open("0" * 64, {})
    finally:
        backend.close()
