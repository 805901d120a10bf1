"""Response caches behind LangChain's ``BaseCache`` interface: one SQLite file, and the run's store.

:class:`SqliteResponseCache` keeps replies in a local file (``spec.responseCache.path``);
:class:`StoreResponseCache` keeps them in the run's database (``agentensor_llm_responses``), so a
runner Pod started again (SIGKILL, eviction, preemption) replays the replies its predecessor got
instead of asking the model again.

LangChain calls :meth:`lookup`/:meth:`update` with ``prompt`` (the serialised messages) and
``llm_string`` (the model class, model name, base URL and every sampling parameter; API keys
appear only as secret ids). The key is the sha256 of both, so a cached answer is reused only for
the same model, prompt and parameters.

``langchain_community.cache.SQLiteCache`` does the same, but langchain-community is sunset
(it warns on import) and would pull in a large dependency tree for these 80 lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from ._usage import CACHE_HIT_KEY

if TYPE_CHECKING:
    from agentensor_store import LlmResponseStore

CACHE_ENV = "AGENTENSOR_LLM_CACHE"


def _to_json(return_val: Sequence[Generation]) -> list[dict[str, Any]]:
    """Generations as JSON: ``{"message": message_to_dict(...)}`` for chat, else ``{"text": ...}``."""
    return [
        {"message": message_to_dict(g.message)} if isinstance(g, ChatGeneration) else {"text": g.text}
        for g in return_val
    ]


def _generations(items: Sequence[dict[str, Any]]) -> list[Generation]:
    """The inverse of :func:`_to_json`; chat messages are marked as cache hits (``CACHE_HIT_KEY``)."""
    gens: list[Generation] = []
    for item in items:
        if "message" in item:
            message = messages_from_dict([item["message"]])[0]
            message.response_metadata = {**message.response_metadata, CACHE_HIT_KEY: True}
            gens.append(ChatGeneration(message=message))
        else:
            gens.append(Generation(text=item["text"]))
    return gens


def default_cache_path() -> Path:
    """``$AGENTENSOR_LLM_CACHE``, else ``~/.cache/agentensor/llm-cache.sqlite``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "agentensor" / "llm-cache.sqlite"


class _InlineAsyncCache(BaseCache):
    """``BaseCache`` whose async methods run the sync ones inline (both backends answer quickly)."""

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self.lookup(prompt, llm_string)

    async def aupdate(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        self.update(prompt, llm_string, return_val)

    async def aclear(self, **kwargs: Any) -> None:
        self.clear()


class SqliteResponseCache(_InlineAsyncCache):
    """See the module docstring. Thread-safe; async methods run inline (local SQLite is fast).

    Raises:
        sqlite3.Error: if the file cannot be created or opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS llm_cache (key TEXT PRIMARY KEY, generations TEXT NOT NULL)")

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT generations FROM llm_cache WHERE key = ?", (self._key(prompt, llm_string),)
            ).fetchone()
        if row is None:
            return None
        return _generations(json.loads(row[0]))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        body = json.dumps(_to_json(return_val), default=str)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO llm_cache (key, generations) VALUES (?, ?)",
                (self._key(prompt, llm_string), body),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM llm_cache")

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class StoreResponseCache(_InlineAsyncCache):
    """Replies kept in the run's store (``Store.llm_response`` / ``Store.put_llm_response``).

    Args:
        store: the run's store (:class:`agentensor_store.LlmResponseStore`: SQLite or PostgreSQL).
        scope: part of every key. ``""`` shares replies across runs, like the SQLite file (task
            and judge calls); a run's own scope (``run:<run id>``) keeps optimizer replies
            (textgrad gradients and rewrites) to that run, so that its restarts replay them
            while another run still explores.
        local: a faster cache consulted first and written too (the SQLite file), or None.

    The key is the sha256 of ``scope``, ``llm_string`` and ``prompt``; the value is the
    generations as JSON (the SQLite cache's format). Calls run inline: one indexed read or upsert
    per model call, small beside the call itself. A store error propagates (the store already
    rides out an outage for ``outage_retry_seconds``).
    """

    def __init__(self, store: LlmResponseStore, *, scope: str = "", local: BaseCache | None = None) -> None:
        self.store = store
        self.scope = scope
        self.local = local

    def _key(self, prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{self.scope}\x00{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if self.local is not None:
            hit = self.local.lookup(prompt, llm_string)
            if hit is not None:
                return hit
        value = self.store.llm_response(self._key(prompt, llm_string))
        if not isinstance(value, list):
            return None
        gens = _generations(value)
        if self.local is not None:
            self.local.update(prompt, llm_string, gens)
        return gens

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self.store.put_llm_response(
            self._key(prompt, llm_string), json.loads(json.dumps(_to_json(return_val), default=str))
        )
        if self.local is not None:
            self.local.update(prompt, llm_string, return_val)

    def clear(self, **kwargs: Any) -> None:
        """Delete every reply in the store (all scopes) and in ``local``."""
        self.store.clear_llm_responses()
        if self.local is not None:
            self.local.clear()

    def close(self) -> None:
        """Close ``local`` (the store belongs to the run)."""
        close = getattr(self.local, "close", None)
        if callable(close):
            close()
