"""The models a run calls: chat models shared by the chat/task templates, ``llm_judge`` and
``textgrad``, and the sentence embeddings of the embedding router, ``embedding_similarity`` and
the ``exemplar`` optimizer.

- :class:`LlmRuntime`: named models from ``spec.models`` (``init_chat_model``), API keys from
  the environment (:func:`resolve_api_key`), a :class:`Redactor` for anything that could echo
  a key, and the run's :class:`UsageLedger`.
- :class:`UsageCallback` / :func:`begin_case`: accounting from LangChain ``usage_metadata``.
- :class:`SqliteResponseCache`: LangChain ``BaseCache`` in one SQLite file;
  :class:`StoreResponseCache`: the same in the run's store (replayed after a restart).
- :func:`ainvoke_text`: one chat call returning text, with key-free errors.
- :class:`CachedEmbedder` over an :class:`Embedder` (:class:`MiniLMEmbedder`, all-MiniLM-L6-v2;
  :class:`HashingEmbedder` for tests), and :func:`default_embedder`, the process-wide one.
"""

from .._errors import LlmCallError
from ._cache import CACHE_ENV, SqliteResponseCache, StoreResponseCache, default_cache_path
from ._call import ainvoke_text
from ._embeddings import CachedEmbedder, Embedder, HashingEmbedder, MiniLMEmbedder, Vector, default_embedder
from ._keys import REDACTED, Redactor, resolve_api_key
from ._registry import CACHED_PURPOSES, PARAMETER_KWARGS, PURPOSES, LlmRuntime, sampling_kwargs
from ._runtime import build_runtime
from ._usage import CACHE_HIT_KEY, Usage, UsageCallback, UsageLedger, begin_case, end_case, record_parse_failure

__all__ = [
    "CACHED_PURPOSES",
    "CACHE_ENV",
    "CACHE_HIT_KEY",
    "PARAMETER_KWARGS",
    "PURPOSES",
    "REDACTED",
    "CachedEmbedder",
    "Embedder",
    "HashingEmbedder",
    "LlmCallError",
    "LlmRuntime",
    "MiniLMEmbedder",
    "Redactor",
    "SqliteResponseCache",
    "StoreResponseCache",
    "Usage",
    "UsageCallback",
    "UsageLedger",
    "Vector",
    "ainvoke_text",
    "begin_case",
    "build_runtime",
    "default_cache_path",
    "default_embedder",
    "end_case",
    "record_parse_failure",
    "resolve_api_key",
    "sampling_kwargs",
]
