"""The evaluation cache (``agentensor_eval_cache``) and the LLM response cache (``agentensor_llm_responses``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .._checks import check_json, without_nul
from .._db import Repository, transaction
from .._models import EvalCacheModel, LlmResponseModel, utcnow
from .._records import EvalCacheEntry

_CHUNK = 500
"""Keys per ``IN (...)`` query."""


class EvalCacheRepository(Repository):
    """Per-case results keyed by a cache key; the first result of a key is kept."""

    @transaction("cached_results")
    def get_many(self, s: Session, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{cache_key: result}`` for the keys that have an entry (queried in chunks)."""
        out: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            stmt = select(EvalCacheModel.cache_key, EvalCacheModel.result).where(EvalCacheModel.cache_key.in_(chunk))
            out.update({k: v for k, v in s.execute(stmt)})
        return out

    @transaction("cache_results", write=True)
    def insert(self, s: Session, values: list[dict[str, Any]]) -> None:
        """Insert prepared entries; an existing key keeps its row."""
        stmt = self.db.upsert(EvalCacheModel).on_conflict_do_nothing(index_elements=[EvalCacheModel.cache_key])
        s.execute(stmt, values)


class LlmCacheRepository(Repository):
    """Cached LLM replies keyed by a request digest; the last write wins."""

    @transaction("llm_response")
    def get(self, s: Session, key: str) -> Any | None:
        """The cached reply under ``key``, or None."""
        return s.scalar(select(LlmResponseModel.value).where(LlmResponseModel.cache_key == key))

    @transaction("put_llm_response", write=True)
    def put(self, s: Session, key: str, value: Any) -> None:
        """Store an escaped reply under ``key``."""
        stmt = self.db.upsert(LlmResponseModel).values(cache_key=key, value=value, created_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[LlmResponseModel.cache_key], set_={"value": stmt.excluded.value}
        )
        s.execute(stmt)

    @transaction("clear_llm_responses", write=True)
    def clear(self, s: Session) -> int:
        """Delete every cached reply; how many there were."""
        return int(s.execute(delete(LlmResponseModel)).rowcount)  # type: ignore[attr-defined]


def cache_values(entries: Sequence[EvalCacheEntry], now: datetime) -> list[dict[str, Any]]:
    """The insert values of ``entries``, one per key (the last entry of a key).

    Raises:
        InvalidValueError: a result that is not JSON (NaN too).
    """
    values: dict[str, dict[str, Any]] = {}
    for e in entries:
        check_json(f"cache entry {e.cache_key!r} result", e.result)
        values[e.cache_key] = {
            "cache_key": e.cache_key,
            "config_checksum": e.config_checksum,
            "dataset_hash": e.dataset_hash,
            "case_id": e.case_id,
            "result": without_nul(e.result),
            "created_at": now,
        }
    return list(values.values())
