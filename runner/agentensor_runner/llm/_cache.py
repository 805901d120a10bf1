"""A response cache behind LangChain's ``BaseCache`` interface, stored in one SQLite file.

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
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from ._usage import CACHE_HIT_KEY

CACHE_ENV = "AGENTENSOR_LLM_CACHE"


def default_cache_path() -> Path:
    """``$AGENTENSOR_LLM_CACHE``, else ``~/.cache/agentensor/llm-cache.sqlite``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "agentensor" / "llm-cache.sqlite"


class SqliteResponseCache(BaseCache):
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
        gens: list[Generation] = []
        for item in json.loads(row[0]):
            if "message" in item:
                message = messages_from_dict([item["message"]])[0]
                message.response_metadata = {**message.response_metadata, CACHE_HIT_KEY: True}
                gens.append(ChatGeneration(message=message))
            else:
                gens.append(Generation(text=item["text"]))
        return gens

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        body = json.dumps(
            [
                {"message": message_to_dict(g.message)} if isinstance(g, ChatGeneration) else {"text": g.text}
                for g in return_val
            ],
            default=str,
        )
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO llm_cache (key, generations) VALUES (?, ?)",
                (self._key(prompt, llm_string), body),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM llm_cache")

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self.lookup(prompt, llm_string)

    async def aupdate(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        self.update(prompt, llm_string, return_val)

    async def aclear(self, **kwargs: Any) -> None:
        self.clear()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
