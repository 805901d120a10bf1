"""A folder of ``.txt`` and ``.md`` documents, split into overlapping chunks.

Splitting is langchain-text-splitters' ``RecursiveCharacterTextSplitter``: it cuts at the coarsest
boundary that keeps a chunk within ``chunkSize`` characters (paragraphs, then lines, then words),
and for Markdown first at headings, rules and code fences. Each chunk's metadata is ``source``, the
document's path relative to the folder (``/``-separated), and its id is ``<source>#<n>``.

Hidden files and folders (a name starting with ``.``) are skipped, as are other suffixes; folders
reached through a symlink are not entered, and each document must itself resolve under a data root
(a symlink out of the folder is refused).
"""

from __future__ import annotations

from pathlib import Path

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from agentensor_api import ManifestError
from agentensor_api._limits import read_bounded

from ..data import DataRoots
from ._base import Chunk
from ._options import CorpusSpec
from ._text import normalize_text

SUFFIXES = frozenset({".txt", ".md", ".markdown"})
"""Documents read from a folder; anything else there is left alone."""

MAX_DOCUMENTS = 10_000
"""Most documents in one folder corpus: beyond this, build the corpus as a JSONL file."""


def read_documents(folder: Path, spec: CorpusSpec, *, roots: DataRoots, field: str, max_bytes: int) -> list[Chunk]:
    """The chunks of every document under ``folder`` (already resolved), in path order.

    Args:
        folder: the real path of ``corpus.path``.
        spec: the corpus option (``chunkSize``, ``chunkOverlap``).
        roots: the data roots each document must resolve under.
        field: the manifest path of the ``corpus`` option.
        max_bytes: most bytes read over all documents.

    Raises:
        ManifestError: a row-only option set (``textField``, ``metadataFields``, ``idField``,
            ``format``), more than :data:`MAX_DOCUMENTS` documents or ``max_bytes``, or a document
            that is binary, not UTF-8 or outside the data roots (naming ``corpus.path``).
    """
    _refuse_row_options(spec, field)
    files = _documents(folder, field)
    splitters = _splitters(spec)
    chunks: list[Chunk] = []
    budget = max_bytes
    for path in files:
        source = path.relative_to(folder).as_posix()
        real = roots.resolve(str(path), f"{field}.path", folder)
        raw = read_bounded(real, budget, field=f"{field}.path", binary_check=True)
        budget -= len(raw)
        text = _decode(raw, source, field)
        splitter = splitters["md" if path.suffix.lower() in {".md", ".markdown"} else "txt"]
        for n, piece in enumerate(p for p in splitter.split_text(text) if p.strip()):
            chunks.append(Chunk(f"{source}#{n}", piece.strip(), {"source": source}))
    return chunks


def _refuse_row_options(spec: CorpusSpec, field: str) -> None:
    for option, value in (
        ("textField", spec.text_field),
        ("idField", spec.id_field),
        ("format", spec.format),
        ("metadataFields", spec.metadata_fields),
    ):
        if value:
            raise ManifestError(
                f"{field}.{option}", f"is for a CSV or JSONL file; {spec.path!r} is a folder of documents"
            )


def _documents(folder: Path, field: str) -> list[Path]:
    """The documents under ``folder``: sorted, hidden entries skipped, at most :data:`MAX_DOCUMENTS`."""
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.suffix.lower() not in SUFFIXES or any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        found.append(path)
        if len(found) > MAX_DOCUMENTS:
            raise ManifestError(
                f"{field}.path", f"holds more than {MAX_DOCUMENTS} documents; index them as one JSONL file"
            )
    return found


def _splitters(spec: CorpusSpec) -> dict[str, RecursiveCharacterTextSplitter]:
    size, overlap = spec.chunk_size, spec.chunk_overlap
    return {
        "txt": RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap),
        "md": RecursiveCharacterTextSplitter.from_language(Language.MARKDOWN, chunk_size=size, chunk_overlap=overlap),
    }


def _decode(raw: bytes, source: str, field: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{field}.path", f"{source} is not UTF-8 (byte {e.start})") from None
    return normalize_text(text, field=f"{field}.path", where=source)
