"""Build a run's :class:`LlmRuntime` from its spec."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentensor_api import EvaluationRunSpec, TrainingRunSpec

from ..data import DataRoots
from ._cache import SqliteResponseCache, StoreResponseCache, default_cache_path
from ._registry import LlmRuntime

if TYPE_CHECKING:
    from langchain_core.caches import BaseCache

    from agentensor_store import LlmResponseStore


def build_runtime(
    spec: TrainingRunSpec | EvaluationRunSpec,
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    store: LlmResponseStore | None = None,
    run_id: str | None = None,
    roots: DataRoots | None = None,
) -> LlmRuntime | None:
    """The runtime for ``spec.models``, or ``None`` when the run declares no model.

    The response cache of task and judge calls is the SQLite file ``spec.responseCache.path``
    (relative to ``base_dir``; like a dataset it must lie under the data roots, ``roots``), else
    :func:`default_cache_path`; with a ``store`` it is backed
    by the store as well (:class:`StoreResponseCache`, the file consulted first), so a
    restarted runner replays what its predecessor was answered. With a ``store`` the optimizer's
    calls (textgrad gradients and rewrites) are cached too, in the store only, under the
    scope ``run:<run_id>``: a restart of the run replays them, another run asks afresh.
    ``responseCache.enabled: false`` turns all of it off. Client timeouts are capped at
    ``spec.caseTimeoutSeconds``.

    Raises:
        ManifestError: an API key variable not granted or unset, a key bound for a host that may
            not receive it (see :func:`resolve_api_key`), ``spec.responseCache.path`` outside the
            data roots.
    """
    if not spec.models:
        return None
    cache, optimizer_cache = _response_caches(spec, base_dir, store, run_id, roots)
    runtime = LlmRuntime(spec.models, pricing=spec.pricing, cache=cache, env=env, timeout_cap=spec.case_timeout_seconds)
    runtime.optimizer_cache = optimizer_cache
    return runtime


def _response_caches(
    spec: TrainingRunSpec | EvaluationRunSpec,
    base_dir: Path | None,
    store: LlmResponseStore | None,
    run_id: str | None,
    roots: DataRoots | None,
) -> tuple[BaseCache | None, BaseCache | None]:
    """``(task and judge cache, optimizer cache)`` as :func:`build_runtime` describes; ``(None, None)``
    when ``spec.responseCache.enabled`` is false.

    Raises:
        ManifestError: ``spec.responseCache.path`` outside the data roots.
    """
    if not spec.response_cache.enabled:
        return None, None
    path = default_cache_path()
    if spec.response_cache.path:
        where = base_dir or Path(".")
        path = (roots or DataRoots()).resolve(spec.response_cache.path, "spec.responseCache.path", where)
    cache: BaseCache = SqliteResponseCache(path)
    if store is None:
        return cache, None
    return StoreResponseCache(store, local=cache), StoreResponseCache(store, scope=f"run:{run_id or ''}")
