"""Retrieval options and corpora: what is read, the checksum, and errors that name the field.

No model here: reading a corpus and checksumming it embed nothing (tests/runner/test_retrieval_backends.py
builds indexes with the real model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ManifestError
from agentensor_runner import DataRoots
from agentensor_runner.retrieval import CorpusSpec, load_corpus, parse_options
from tests.runner.retrieval_faq import FAQ, FIELDS, write_csv, write_jsonl

F = "spec.workflow.options.retrieval"


def corpus_options(path: str = "faq.jsonl", **extra: Any) -> dict[str, Any]:
    return {"corpus": {"path": path, "textField": "text", "idField": "id", "metadataFields": FIELDS, **extra}}


def load(tmp_path: Path, raw: dict[str, Any], roots: DataRoots | None = None) -> Any:
    return load_corpus(parse_options(raw).corpus, base_dir=tmp_path, roots=roots)


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param("faq.jsonl", F, id="not-a-mapping"),
        pytest.param({}, f"{F}.corpus", id="no-corpus"),
        pytest.param({"corpus": {"path": "x.csv"}, "top": 3}, f"{F}.top", id="unknown-option"),
        pytest.param({"corpus": {"path": "x.csv", "textfield": "t"}}, f"{F}.corpus.textfield", id="misspelt-key"),
        pytest.param({"corpus": {"path": ""}}, f"{F}.corpus.path", id="empty-path"),
        pytest.param({"corpus": {"path": "x.csv"}, "k": 0}, f"{F}.k", id="k-zero"),
        pytest.param({"corpus": {"path": "x.csv"}, "k": "4"}, f"{F}.k", id="k-string"),
        pytest.param({"corpus": {"path": "x.csv"}, "backend": "faiss"}, f"{F}.backend", id="unknown-backend"),
        pytest.param(
            {"corpus": {"path": "x.csv", "metadataFields": ["a", "a"]}}, f"{F}.corpus.metadataFields", id="dup"
        ),
        pytest.param({"corpus": {"path": "x.csv", "metadataFields": [3]}}, f"{F}.corpus.metadataFields[0]", id="int"),
        pytest.param({"corpus": {"path": "d", "chunkSize": 50}}, f"{F}.corpus.chunkSize", id="tiny-chunks"),
        pytest.param(
            {"corpus": {"path": "d", "chunkSize": 200, "chunkOverlap": 150}}, f"{F}.corpus.chunkOverlap", id="ov"
        ),
    ],
)
def test_bad_options_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_options(raw)
    assert e.value.field == field


def test_defaults() -> None:
    opts = parse_options({"corpus": {"path": "faq.csv", "textField": "text"}})
    assert (opts.k, opts.backend, opts.corpus.chunk_size, opts.corpus.chunk_overlap) == (4, "auto", 800, 100)


# -- rows -----------------------------------------------------------------------------------------


def test_jsonl_rows_keep_their_types(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    corpus = load(tmp_path, corpus_options())
    assert len(corpus.chunks) == len(FAQ)
    assert dict(corpus.fields) == {"topic": "text", "tier": "bigint", "online": "boolean"}
    first = corpus.chunks[0]
    assert (first.chunk_id, dict(first.metadata)) == ("card-lost", {"topic": "cards", "tier": 1, "online": True})
    assert first.text == FAQ[0]["text"]


def test_csv_rows_are_text(tmp_path: Path) -> None:
    write_csv(tmp_path / "faq.csv")
    corpus = load(tmp_path, corpus_options("faq.csv"))
    assert dict(corpus.fields) == {"topic": "text", "tier": "text", "online": "text"}
    assert dict(corpus.chunks[0].metadata) == {"topic": "cards", "tier": "1", "online": "True"}


def test_row_number_is_the_id_without_an_id_field(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    corpus = load(tmp_path, {"corpus": {"path": "faq.jsonl", "textField": "text"}})
    assert [c.chunk_id for c in corpus.chunks[:3]] == ["1", "2", "3"]
    assert dict(corpus.fields) == {}


def test_ints_among_floats_make_a_float_field(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"text": "a", "fee": 1}, {"text": "b", "fee": 2.5}, {"text": "c"}]
    write_jsonl(tmp_path / "fees.jsonl", rows)
    corpus = load(tmp_path, {"corpus": {"path": "fees.jsonl", "textField": "text", "metadataFields": ["fee"]}})
    assert corpus.fields["fee"] == "double precision"
    assert [c.metadata["fee"] for c in corpus.chunks] == [1.0, 2.5, None]
    assert isinstance(corpus.chunks[0].metadata["fee"], float)


# -- checksum -------------------------------------------------------------------------------------


def test_checksum_follows_content_not_the_file_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    write_jsonl(tmp_path / "copy.jsonl")
    a = load(tmp_path, corpus_options())
    assert load(tmp_path, corpus_options()).checksum == a.checksum
    assert load(tmp_path, corpus_options("copy.jsonl")).checksum == a.checksum
    crlf = [{**r, "text": r["text"] + "\r\n"} for r in FAQ]  # normalised away
    write_jsonl(tmp_path / "crlf.jsonl", crlf)
    assert load(tmp_path, corpus_options("crlf.jsonl")).checksum == a.checksum


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda rows: rows[3].update(text=rows[3]["text"] + " Call us."), id="text"),
        pytest.param(lambda rows: rows[3].update(topic="loans"), id="metadata"),
        pytest.param(lambda rows: rows.pop(3), id="row-removed"),
        pytest.param(lambda rows: rows.reverse(), id="order"),
    ],
)
def test_a_changed_row_changes_the_checksum(tmp_path: Path, change: Any) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    before = load(tmp_path, corpus_options()).checksum
    rows = json.loads(json.dumps(FAQ))
    change(rows)
    write_jsonl(tmp_path / "faq.jsonl", rows)
    assert load(tmp_path, corpus_options()).checksum != before


def test_field_choice_changes_the_checksum(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq.jsonl")
    a = load(tmp_path, corpus_options())
    b = load(tmp_path, {"corpus": {**corpus_options()["corpus"], "metadataFields": ["topic"]}})
    assert a.checksum != b.checksum


# -- documents ------------------------------------------------------------------------------------


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    (docs / "cards").mkdir(parents=True)
    section = "Our cards work in 150 countries. " * 12
    (docs / "cards" / "abroad.md").write_text(f"# Cards abroad\n\n{section}\n\n## Fees\n\nNo fees for Premium.\n")
    (docs / "transfers.txt").write_text("Transfers arrive within two hours.\n\nInternational ones take days.\n")
    (docs / "notes.pdf").write_bytes(b"%PDF-1.4 not read")
    (docs / ".hidden.md").write_text("never indexed")
    return docs


def test_documents_are_split_with_their_source(tmp_path: Path) -> None:
    write_docs(tmp_path)
    corpus = load(tmp_path, {"corpus": {"path": "docs", "chunkSize": 200, "chunkOverlap": 20}})
    sources = [c.metadata["source"] for c in corpus.chunks]
    assert set(sources) == {"cards/abroad.md", "transfers.txt"}
    assert dict(corpus.fields) == {"source": "text"}
    assert all(len(c.text) <= 200 for c in corpus.chunks)
    md = [c for c in corpus.chunks if c.metadata["source"] == "cards/abroad.md"]
    assert len(md) >= 3 and md[-1].text.startswith("## Fees"), "markdown is split at headings first"
    assert [c.chunk_id for c in md] == [f"cards/abroad.md#{i}" for i in range(len(md))]
    assert not any("never indexed" in c.text for c in corpus.chunks)


def test_chunk_size_changes_the_checksum(tmp_path: Path) -> None:
    write_docs(tmp_path)
    a = load(tmp_path, {"corpus": {"path": "docs", "chunkSize": 200, "chunkOverlap": 20}})
    b = load(tmp_path, {"corpus": {"path": "docs", "chunkSize": 300, "chunkOverlap": 20}})
    assert a.checksum != b.checksum


# -- errors ---------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, body: str) -> str:
    (tmp_path / name).write_text(body, encoding="utf-8")
    return name


@pytest.mark.parametrize(
    ("files", "corpus", "field", "says"),
    [
        pytest.param({}, {"path": "missing.jsonl", "textField": "t"}, "corpus.path", "", id="missing-file"),
        pytest.param({"e.jsonl": "\n\n"}, {"path": "e.jsonl", "textField": "t"}, "corpus.path", "no text", id="empty"),
        pytest.param(
            {"a.jsonl": '{"t": "x"}\n'}, {"path": "a.jsonl"}, "corpus.textField", "required", id="no-text-field"
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x"}\n'},
            {"path": "a.jsonl", "textField": "text"},
            "corpus.textField",
            "columns are",
            id="text-column-missing",
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x"}\n{"t": ""}\n'},
            {"path": "a.jsonl", "textField": "t"},
            "corpus.textField",
            "line 2",
            id="empty-text",
        ),
        pytest.param(
            {"a.csv": "t,topic\nx,a\n"},
            {"path": "a.csv", "textField": "t", "metadataFields": ["topc"]},
            "corpus.metadataFields",
            "'topic'",
            id="metadata-column-missing",
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x", "m": [1]}\n'},
            {"path": "a.jsonl", "textField": "t", "metadataFields": ["m"]},
            "corpus.metadataFields",
            "list",
            id="nested-metadata",
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x", "m": 1}\n{"t": "y", "m": "one"}\n'},
            {"path": "a.jsonl", "textField": "t", "metadataFields": ["m"]},
            "corpus.metadataFields",
            "mixes",
            id="mixed-types",
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x", "id": 1}\n{"t": "y", "id": 1}\n'},
            {"path": "a.jsonl", "textField": "t", "idField": "id"},
            "corpus.idField",
            "repeats line 1",
            id="dup-id",
        ),
        pytest.param(
            {"a.jsonl": '{"t": "x"}\nnot json\n'},
            {"path": "a.jsonl", "textField": "t"},
            "corpus.path",
            "line 2",
            id="bad-json",
        ),
        pytest.param(
            {"a.csv": "t,m\nx,1,2\n"},
            {"path": "a.csv", "textField": "t"},
            "corpus.path",
            "line 2",
            id="csv-cells",
        ),
        pytest.param({"a.txt": "x"}, {"path": "a.txt", "textField": "t"}, "corpus.format", "suffix", id="suffix"),
        pytest.param(
            {"d/a.md": "# x"},
            {"path": "d", "textField": "t"},
            "corpus.textField",
            "folder",
            id="folder-text-field",
        ),
        pytest.param(
            {"d/a.md": "# x"},
            {"path": "d", "metadataFields": ["m"]},
            "corpus.metadataFields",
            "folder",
            id="folder-metadata",
        ),
        pytest.param({"d/a.pdf": "x"}, {"path": "d"}, "corpus.path", "no text", id="folder-without-documents"),
    ],
)
def test_bad_corpus_names_the_field(
    tmp_path: Path, files: dict[str, str], corpus: dict[str, Any], field: str, says: str
) -> None:
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write(tmp_path, name, body)
    with pytest.raises(ManifestError) as e:
        load(tmp_path, {"corpus": corpus})
    assert e.value.field == f"{F}.{field}"
    assert says in e.value.reason


def test_binary_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b'{"t": "x"}\n\x00\x01')
    with pytest.raises(ManifestError) as e:
        load(tmp_path, {"corpus": {"path": "a.jsonl", "textField": "t"}})
    assert e.value.field == f"{F}.corpus.path" and "binary" in e.value.reason


def test_path_outside_the_data_roots_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_jsonl(outside / "faq.jsonl")
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(ManifestError) as e:
        load(base, corpus_options("../outside/faq.jsonl"))
    assert e.value.field == f"{F}.corpus.path" and "--data-root" in e.value.reason
    granted = load(base, corpus_options("../outside/faq.jsonl"), roots=DataRoots.of([outside]))
    assert len(granted.chunks) == len(FAQ)


def test_document_symlinked_out_of_the_roots_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the model")
    docs = tmp_path / "base" / "docs"
    docs.mkdir(parents=True)
    (docs / "ok.md").write_text("# fine")
    (docs / "leak.txt").symlink_to(secret)
    with pytest.raises(ManifestError) as e:
        load(tmp_path / "base", {"corpus": {"path": "docs"}})
    assert e.value.field == f"{F}.corpus.path" and "outside" in e.value.reason


def test_corpus_spec_is_the_parsed_form() -> None:
    spec = parse_options(corpus_options()).corpus
    assert isinstance(spec, CorpusSpec)
    assert (spec.text_field, spec.id_field, spec.metadata_fields) == ("text", "id", FIELDS)


def test_public_surface_is_pinned() -> None:
    """What the agent template (and other callers) may import; everything else is private."""
    import agentensor_runner.retrieval as retrieval

    pinned = """
        CACHE_ENV MAX_CORPUS_BYTES MAX_K MINILM_ID OPTIONS_FIELD
        Backend Chunk Corpus CorpusSpec EmbeddingModel Hit LocalBackend MetaType PgBackend RetrievalError
        RetrievalOptions RetrievalQueryError Retriever Scalar VectorIndex
        build_index default_cache_dir default_model hashing_model index_checksum load_corpus open_backend
        parse_options retriever_from_options
    """
    assert sorted(retrieval.__all__) == sorted(pinned.split())
