"""``spec.workflow.options.retrieval``: the corpus, ``k`` and the backend, validated with errors that name the field.

The options are free-form in the CRD (``spec.workflow.options`` preserves unknown fields), so a
template that offers retrieval validates them here, at build time::

    retrieval:
      corpus:
        path: data/faq.jsonl        # a .csv or .jsonl file, or a folder of .txt/.md documents
        textField: answer           # the column embedded and returned (files only)
        metadataFields: [topic]     # columns kept as metadata, filterable by equality (files only)
        idField: id                 # optional: a unique id per row (default: the row number)
        chunkSize: 800              # folders only: characters per chunk
        chunkOverlap: 100           # folders only: characters shared by neighbouring chunks
      k: 4                          # default number of hits per search
      backend: auto                 # auto, memory or postgres
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from agentensor_api import ApiModel, ManifestError

from ._base import MAX_K

OPTIONS_FIELD = "spec.workflow.options.retrieval"
"""Where templates take the retrieval options; every error names a field under it."""

MAX_FIELD_NAME = 128
"""Longest column name accepted (text, id and metadata fields)."""


class CorpusSpec(ApiModel):
    """What to index (see the module docstring for the manifest form)."""

    path: str = Field(min_length=1, description="A .csv/.jsonl file or a folder of .txt/.md files, under a data root.")
    text_field: str | None = Field(default=None, min_length=1, max_length=MAX_FIELD_NAME, description="Text column.")
    metadata_fields: list[Annotated[str, Field(min_length=1, max_length=MAX_FIELD_NAME)]] = Field(
        default_factory=list, max_length=32, description="Columns kept as metadata, filterable by equality."
    )
    id_field: str | None = Field(default=None, min_length=1, max_length=MAX_FIELD_NAME, description="Unique row id.")
    format: Literal["csv", "jsonl"] | None = Field(default=None, description="Default: from the file's suffix.")
    chunk_size: int = Field(default=800, ge=100, le=8000, description="Characters per document chunk.")
    chunk_overlap: int = Field(default=100, ge=0, le=4000, description="Characters shared by neighbouring chunks.")

    @field_validator("metadata_fields")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("lists a field twice")
        return names


class RetrievalOptions(ApiModel):
    """The whole ``retrieval`` option."""

    corpus: CorpusSpec
    k: int = Field(default=4, ge=1, le=MAX_K, description="Hits per search unless the caller asks for another k.")
    backend: Literal["auto", "memory", "postgres"] = Field(
        default="auto", description="auto: postgres when the run's database is PostgreSQL with pgvector, else memory."
    )


def _field(prefix: str, loc: Iterable[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_options(raw: Any, *, field: str = OPTIONS_FIELD) -> RetrievalOptions:
    """Validate the ``retrieval`` option (strictly: ``"4"`` is not an integer).

    Args:
        raw: the option's value, as parsed from the manifest.
        field: its manifest path, the prefix of every error's field.

    Raises:
        ManifestError: naming the first invalid field, e.g. ``spec.workflow.options.retrieval.corpus.path``
            (``errors`` lists them all).
    """
    if not isinstance(raw, dict):
        raise ManifestError(field, f"must be a mapping with a corpus, got {type(raw).__name__}")
    try:
        options = RetrievalOptions.model_validate(raw, strict=True)
    except ValidationError as e:
        found = tuple((_field(field, err["loc"]), err["msg"].removeprefix("Value error, ")) for err in e.errors())
        raise ManifestError(found[0][0], found[0][1], errors=found) from None
    corpus = options.corpus
    if corpus.chunk_overlap * 2 > corpus.chunk_size:
        why = f"{corpus.chunk_overlap} is more than half of chunkSize ({corpus.chunk_size})"
        raise ManifestError(f"{field}.corpus.chunkOverlap", why)
    return options
