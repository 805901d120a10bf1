"""Read a corpus into chunks, infer its metadata types, and checksum it.

A CSV or JSONL file gives one chunk per row: its ``textField`` is embedded, its ``metadataFields``
are kept (and filterable), its ``idField`` (else the 1-based row number) names it. A folder gives
chunks of its ``.txt``/``.md`` documents (:mod:`._documents`). Rows are not split: a row longer
than the model reads (all-MiniLM-L6-v2 reads 256 word pieces, about 1,000 characters) is embedded
by its beginning and still returned whole.

Every problem is a :class:`~agentensor_api.ManifestError` naming the option (``...corpus.textField``)
and, for a row, its line: an index built from a corpus with a bad row would silently miss it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from agentensor_api import ManifestError, canonical_json
from agentensor_api._limits import INT64_MAX, INT64_MIN, read_bounded

from ..data import DataRoots
from ._base import Chunk, MetaType, Scalar
from ._documents import read_documents
from ._options import OPTIONS_FIELD, CorpusSpec
from ._text import normalize_text

MAX_CORPUS_BYTES = 256 * 1024 * 1024
"""Most bytes read for one corpus (files and folders alike): its chunks and vectors are held in memory."""

CHECKSUM_VERSION = "agentensor-corpus/1"
"""Changes whenever what the checksum covers changes, so that no old index is reused by mistake."""

Record = tuple[int, dict[str, Any]]
"""``(line number, row)``."""


@dataclass(frozen=True)
class Corpus:
    """A corpus read into chunks.

    Attributes:
        chunks: in file order (documents: sorted by path, then by position).
        fields: each metadata field's type (documents: ``{"source": "text"}``).
        params: what shaped the chunks (kind, field names, chunking), part of the checksum.
        checksum: sha256 hex of the normalised chunks (id, text, metadata) and ``params``; the
            same content read from another path or file name has the same checksum.
    """

    chunks: tuple[Chunk, ...]
    fields: Mapping[str, MetaType]
    params: Mapping[str, Any]
    checksum: str


def load_corpus(
    spec: CorpusSpec, *, base_dir: Path = Path("."), roots: DataRoots | None = None, field: str = OPTIONS_FIELD
) -> Corpus:
    """Read the corpus ``spec`` names.

    Args:
        spec: the validated ``corpus`` option (:func:`parse_options`).
        base_dir: where a relative ``path`` resolves (the manifest's folder, a Pod's data dir).
        roots: the data roots (:class:`~agentensor_runner.DataRoots`); the path, and every
            document of a folder, must resolve under ``base_dir`` or one of them.
        field: the manifest path of the ``retrieval`` option (errors name fields under it).

    Raises:
        ManifestError: ``corpus.path`` outside the data roots, missing, binary, not UTF-8, over
            :data:`MAX_CORPUS_BYTES` or with no text; ``corpus.format`` not given for an unknown
            suffix; ``corpus.textField`` missing for a file, absent from every row or empty in one;
            ``corpus.metadataFields`` absent from every row, nested, or mixing types;
            ``corpus.idField`` repeated; and these three or ``format`` given for a folder.
    """
    roots = roots or DataRoots()
    f = f"{field}.corpus"
    path = roots.resolve(spec.path, f"{f}.path", base_dir)
    if path.is_dir():
        chunks = read_documents(path, spec, roots=roots, field=f, max_bytes=MAX_CORPUS_BYTES)
        fields: dict[str, MetaType] = {"source": "text"}
    else:
        chunks, fields = _read_rows(path, spec, f)
    if not chunks:
        raise ManifestError(f"{f}.path", f"{spec.path!r} holds no text to index")
    params = _params(spec, kind="documents" if path.is_dir() else "rows")
    return Corpus(tuple(chunks), fields, params, _checksum(params, chunks))


def _params(spec: CorpusSpec, *, kind: str) -> dict[str, Any]:
    if kind == "documents":
        return {"kind": kind, "chunkSize": spec.chunk_size, "chunkOverlap": spec.chunk_overlap, "splitter": "rcts/1"}
    return {"kind": kind, "textField": spec.text_field, "metadataFields": spec.metadata_fields, "id": spec.id_field}


def _checksum(params: Mapping[str, Any], chunks: Sequence[Chunk]) -> str:
    h = hashlib.sha256(canonical_json({"version": CHECKSUM_VERSION, "params": params}).encode())
    for c in chunks:
        h.update(canonical_json([c.chunk_id, c.text, dict(c.metadata)]).encode() + b"\n")
    return h.hexdigest()


# -- rows ------------------------------------------------------------------------------------------


def _read_rows(path: Path, spec: CorpusSpec, f: str) -> tuple[list[Chunk], dict[str, MetaType]]:
    """Chunks of a CSV/JSONL file, one per row, and the metadata fields' types."""
    if spec.text_field is None:
        raise ManifestError(f"{f}.textField", "is required for a CSV or JSONL corpus: the column to embed")
    fmt = spec.format or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    if fmt is None:
        raise ManifestError(f"{f}.format", f"cannot tell the format of {path.name} from its suffix; set csv or jsonl")
    raw = read_bounded(path, MAX_CORPUS_BYTES, field=f"{f}.path", binary_check=True)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{f}.path", f"{path.name} is not UTF-8 (byte {e.start})") from None
    records = list(_csv_records(text, f) if fmt == "csv" else _jsonl_records(text, f))
    _check_columns(records, spec, f)
    fields = {name: _field_type(records, name, f"{f}.metadataFields") for name in spec.metadata_fields}
    return _row_chunks(records, spec, fields, f), fields


def _csv_records(text: str, f: str) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for n, rec in enumerate(reader, start=2):
        if None in rec or None in rec.values():
            raise ManifestError(f"{f}.path", f"line {n} has another number of cells than the header")
        yield n, dict(rec)


def _jsonl_records(text: str, f: str) -> Iterator[Record]:
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{f}.path", f"line {n} is not valid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise ManifestError(f"{f}.path", f"line {n} is a JSON {type(obj).__name__}, expected an object")
        yield n, obj


def _check_columns(records: Sequence[Record], spec: CorpusSpec, f: str) -> None:
    """Each named column must be in some row (a typo in a name is the usual cause)."""
    columns = sorted({k for _, r in records for k in r})
    named = [("textField", spec.text_field), ("idField", spec.id_field)]
    named += [("metadataFields", m) for m in spec.metadata_fields]
    for option, name in named:
        if name is not None and records and not any(name in r for _, r in records):
            raise ManifestError(f"{f}.{option}", f"no row has a field {name!r}; columns are {columns}")


def _field_type(records: Sequence[Record], name: str, field: str) -> MetaType:
    """The one type of a metadata field's values (``None`` aside); ints among floats make it float."""
    kinds: set[str] = set()
    for n, row in records:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ManifestError(field, f"line {n}: {name} is {value}, which cannot be compared")
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise ManifestError(field, f"line {n}: {name} = {value} does not fit 64 bits")
        if not isinstance(value, str | int | float | bool):
            what = type(value).__name__
            raise ManifestError(field, f"line {n}: {name} is a {what}; expected text, a number or a boolean")
        kinds.add("bool" if isinstance(value, bool) else type(value).__name__)
    if kinds <= {"str"}:
        return "text"
    if kinds == {"int"}:
        return "bigint"
    if kinds == {"bool"}:
        return "boolean"
    if kinds <= {"int", "float"}:
        return "double precision"
    raise ManifestError(field, f"{name} mixes {' and '.join(sorted(kinds))} values; use one type")


def _row_chunks(records: Sequence[Record], spec: CorpusSpec, fields: Mapping[str, MetaType], f: str) -> list[Chunk]:
    assert spec.text_field is not None
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for i, (n, row) in enumerate(records, start=1):
        text = row.get(spec.text_field)
        if not isinstance(text, str) or not text.strip():
            raise ManifestError(f"{f}.textField", f"line {n}: {spec.text_field} is {text!r}, expected non-empty text")
        chunk_id = _row_id(row, spec, n, i, f)
        if chunk_id in seen:
            raise ManifestError(f"{f}.idField", f"line {n}: id {chunk_id!r} repeats line {seen[chunk_id]}")
        seen[chunk_id] = n
        meta = {name: _meta_value(row.get(name), fields[name], n, f) for name in spec.metadata_fields}
        chunks.append(Chunk(chunk_id, normalize_text(text, field=f"{f}.textField", where=f"line {n}"), meta))
    return chunks


def _row_id(row: Mapping[str, Any], spec: CorpusSpec, n: int, i: int, f: str) -> str:
    if spec.id_field is None:
        return str(i)
    value = row.get(spec.id_field)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ManifestError(f"{f}.idField", f"line {n}: {spec.id_field} is {value!r}, expected text or an integer")
    return str(value).strip()


def _meta_value(value: Any, kind: MetaType, n: int, f: str) -> Scalar | None:
    if isinstance(value, str):
        return normalize_text(value, field=f"{f}.metadataFields", where=f"line {n}")
    if kind == "double precision" and isinstance(value, int):
        return float(value)  # one type per field, as PostgreSQL returns it
    return cast(Scalar | None, value)
