"""The prompt half of the :class:`~agentensor_store.Store` facade: versions, checkpoints, caches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentensor_api import PromptConfig

from ._checks import check_checkpoint_values, check_json, check_namespace, version_checksum, without_nul
from ._errors import InvalidValueError
from ._models import utcnow
from ._records import DEFAULT_NAMESPACE, DIRECTIONS, CheckpointRecord, EvalCacheEntry, VersionRecord
from ._repos.caches import EvalCacheRepository, LlmCacheRepository, cache_values
from ._repos.checkpoints import CheckpointRepository, checkpoint_values
from ._repos.versions import VersionRepository, version_values


class PromptsApi:
    """Store methods over the version, checkpoint and cache repositories (a mixin of ``Store``)."""

    _versions: VersionRepository
    _checkpoints: CheckpointRepository
    _eval_cache: EvalCacheRepository
    _llm_cache: LlmCacheRepository

    # -- prompt versions ----------------------------------------------------------------------

    def register_version(
        self,
        workflow: str,
        prompts: dict[str, str],
        parameters: dict[str, Any],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        source: str = "inline",
        source_run_id: str | None = None,
        seed: int | None = None,
        dataset_hash: str | None = None,
    ) -> VersionRecord:
        """Store a prompt config as the next version of ``(namespace, workflow)``, or return its existing twin.

        The same ``workflow`` in two namespaces is two independent sequences (both start at 1),
        neither reading the other's texts. Configs are identified by
        :func:`agentensor_api.config_checksum`: registering a config again in the namespace returns
        the stored version unchanged (``source``/``seed`` of the first registration). New
        versions are numbered ``max(version) + 1`` per key, starting at 1.

        Concurrent callers (threads or processes) never get duplicate numbers or checksums:
        the unique constraints decide, and a caller that loses the race retries in a fresh
        transaction (at most :data:`REGISTER_VERSION_ATTEMPTS` times). On PostgreSQL the
        attempt also takes a transaction-scoped advisory lock on the workflow, so contenders
        queue instead of starving each other; SQLite writers queue on ``BEGIN IMMEDIATE``.

        Raises:
            InvalidValueError: unknown ``source``, non-string prompts, parameters that are not
                JSON (NaN included), or a namespace that is empty or over 253 characters.
            VersionConflictError: every attempt lost the race.
        """
        check_namespace(namespace)
        checksum = version_checksum(source, prompts, parameters)
        values = version_values(namespace, workflow, checksum, prompts, parameters)
        values.update(source=source, source_run_id=source_run_id, seed=seed, dataset_hash=dataset_hash)
        return self._versions.register(values)

    def register_inline_version(self, prompt_config: PromptConfig) -> VersionRecord:
        """Register a PromptConfig's inline ``spec.prompts`` texts and ``spec.parameters``.

        The version of ``(metadata.namespace, spec.workflow)`` with ``source="inline"``
        (deduplicated by checksum, as :meth:`register_version`; a manifest without a namespace
        is in ``"default"``). The runner registers its starting config this way and the
        operator a PromptConfig's spec, so both get the same version for the same spec.

        Raises:
            InvalidValueError, VersionConflictError: as :meth:`register_version`.
        """
        spec = prompt_config.spec
        texts = {name: prompt.text for name, prompt in spec.prompts.items()}
        return self.register_version(
            spec.workflow, texts, dict(spec.parameters), namespace=prompt_config.namespace, source="inline"
        )

    def get_version(self, workflow: str, version: int, *, namespace: str = DEFAULT_NAMESPACE) -> VersionRecord | None:
        """Version number ``version`` of ``(namespace, workflow)``, or None (another namespace's is never returned)."""
        return self._versions.get(namespace, workflow, version)

    def list_versions(self, workflow: str, *, namespace: str = DEFAULT_NAMESPACE) -> list[VersionRecord]:
        """Every version of ``(namespace, workflow)``, by version number."""
        return self._versions.list_all(namespace, workflow)

    # -- checkpoints --------------------------------------------------------------------------

    def add_checkpoint(
        self,
        run_id: str,
        *,
        epoch: int,
        version: VersionRecord,
        score: float | None,
        scores: dict[str, float],
        train_score: float | None = None,
        accepted: int = 0,
        seed: int | None = None,
        dataset_hash: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CheckpointRecord:
        """Record the config kept after ``epoch`` (upsert on ``(run_id, epoch)``).

        ``score`` must be the validation objective of ``version`` itself, so that every
        score is attributable to exactly one config. Re-adding an epoch replaces its fields
        and keeps its id and ``created_at``.

        Raises:
            RunNotFoundError: no such run.
            VersionNotFoundError: ``version`` is not stored here (or its checksum differs), or
                it belongs to another namespace than the run.
            InvalidValueError: a non-finite score, or values that are not JSON.
        """
        check_checkpoint_values(score, train_score, scores, extra)
        values = checkpoint_values(run_id, epoch, version, score, scores, train_score)
        values.update(accepted=accepted, seed=seed, dataset_hash=dataset_hash, extra=dict(extra or {}))
        return self._checkpoints.upsert(version, values)

    def list_checkpoints(
        self, *, run_id: str | None = None, workflow: str | None = None, namespace: str | None = None
    ) -> list[CheckpointRecord]:
        """Checkpoints of a run and/or a workflow and/or a namespace (all if none), in creation order.

        A ``workflow`` is looked up in ``namespace`` (``"default"`` when not given): the
        checkpoints of the same workflow key in another namespace are never listed.
        """
        return self._checkpoints.list_all(run_id, workflow, namespace)

    def best_checkpoint(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        namespace: str | None = None,
        direction: str = "maximize",
    ) -> CheckpointRecord | None:
        """The best-scoring checkpoint (``score`` not null) of a run and/or workflow and/or namespace.

        ``workflow`` and ``namespace`` filter as in :meth:`list_checkpoints`. Ties go to the
        earliest prompt version, then to the earliest checkpoint.

        Raises:
            InvalidValueError: ``direction`` is not ``maximize``/``minimize``.
        """
        if direction not in DIRECTIONS:
            raise InvalidValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        return self._checkpoints.best(run_id, workflow, namespace, direction == "maximize")

    # -- evaluation cache ---------------------------------------------------------------------

    def cached_results(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{cache_key: result}`` for the keys that have an entry (queried in chunks of 500)."""
        return self._eval_cache.get_many(keys)

    def cache_results(self, entries: Sequence[EvalCacheEntry]) -> None:
        """Insert evaluation-cache entries in one transaction; an existing key keeps its first result.

        Raises:
            InvalidValueError: a result that is not JSON (NaN too).
        """
        if entries:
            self._eval_cache.insert(cache_values(entries, utcnow()))

    # -- LLM response cache -------------------------------------------------------------------

    def llm_response(self, key: str) -> Any | None:
        """The cached reply stored under ``key`` (JSON), or None."""
        return self._llm_cache.get(key)

    def put_llm_response(self, key: str, value: Any) -> None:
        """Store a reply under ``key`` (last write wins).

        Raises:
            InvalidValueError: a value that is not JSON.
        """
        check_json(f"llm response {key!r}", value)
        self._llm_cache.put(key, without_nul(value))

    def clear_llm_responses(self) -> int:
        """Delete every cached LLM reply; returns how many there were."""
        return self._llm_cache.clear()
