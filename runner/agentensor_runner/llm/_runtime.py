"""Build a run's :class:`LlmRuntime` from its spec."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentensor_api import EvaluationRunSpec, TrainingRunSpec

from ._cache import SqliteResponseCache, StoreResponseCache, default_cache_path
from ._registry import LlmRuntime

if TYPE_CHECKING:
    from langchain_core.caches import BaseCache

    from agentensor_store import Store


def build_runtime(
    spec: TrainingRunSpec | EvaluationRunSpec,
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    store: Store | None = None,
    run_id: str | None = None,
) -> LlmRuntime | None:
    """The runtime for ``spec.models``, or ``None`` when the run declares no model.

    The response cache of task and judge calls is the SQLite file ``spec.responseCache.path``
    (relative to ``base_dir``), else :func:`default_cache_path`; with a ``store`` it is backed
    by the store as well (:class:`StoreResponseCache`, the file consulted first), so a
    restarted runner replays what its predecessor was answered. With a ``store`` the optimizer's
    calls (textgrad gradients and rewrites) are cached too, in the store only, under the
    scope ``run:<run_id>``: a restart of the run replays them, another run asks afresh.
    ``responseCache.enabled: false`` turns all of it off. Client timeouts are capped at
    ``spec.caseTimeoutSeconds``.

    Raises:
        ManifestError: an API key variable is unset (see :func:`resolve_api_key`).
    """
    if not spec.models:
        return None
    cache: BaseCache | None = None
    optimizer_cache: BaseCache | None = None
    if spec.response_cache.enabled:
        path = Path(spec.response_cache.path) if spec.response_cache.path else default_cache_path()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        cache = SqliteResponseCache(path)
        if store is not None:
            cache = StoreResponseCache(store, local=cache)
            optimizer_cache = StoreResponseCache(store, scope=f"run:{run_id or ''}")
    runtime = LlmRuntime(spec.models, pricing=spec.pricing, cache=cache, env=env, timeout_cap=spec.case_timeout_seconds)
    runtime.optimizer_cache = optimizer_cache
    return runtime
