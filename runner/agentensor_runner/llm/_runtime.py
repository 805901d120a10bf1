"""Build a run's :class:`LlmRuntime` from its spec."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agentensor_api import EvaluationRunSpec, TrainingRunSpec

from ._cache import SqliteResponseCache, default_cache_path
from ._registry import LlmRuntime


def build_runtime(
    spec: TrainingRunSpec | EvaluationRunSpec,
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LlmRuntime | None:
    """The runtime for ``spec.models``, or ``None`` when the run declares no model.

    The response cache is ``spec.responseCache.path`` (relative to ``base_dir``), else
    :func:`default_cache_path`; ``responseCache.enabled: false`` turns it off. Client
    timeouts are capped at ``spec.caseTimeoutSeconds``.

    Raises:
        ManifestError: an API key variable is unset (see :func:`resolve_api_key`).
    """
    if not spec.models:
        return None
    cache = None
    if spec.response_cache.enabled:
        path = Path(spec.response_cache.path) if spec.response_cache.path else default_cache_path()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        cache = SqliteResponseCache(path)
    return LlmRuntime(spec.models, pricing=spec.pricing, cache=cache, env=env, timeout_cap=spec.case_timeout_seconds)
