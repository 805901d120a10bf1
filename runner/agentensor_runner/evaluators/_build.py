"""Build evaluators from ``spec.evaluators`` entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from agentensor_api import EvaluatorSpec

from ..llm import Embedder
from ._base import BaseEvaluator
from ._embedding import EmbeddingSimilarityEvaluator
from ._options import field_prefix
from ._paths import split_path
from ._python import PythonEvaluator, allowlist_from_env
from ._result import Evaluator, EvaluatorConfigError
from ._structured import JsonSchemaEvaluator, NumericEvaluator
from ._text import ContainsEvaluator, ExactMatchEvaluator, RegexEvaluator

if TYPE_CHECKING:
    from ..llm import LlmRuntime

_SIMPLE: dict[str, type[BaseEvaluator]] = {
    "exact_match": ExactMatchEvaluator,
    "contains": ContainsEvaluator,
    "regex": RegexEvaluator,
    "json_schema": JsonSchemaEvaluator,
    "numeric": NumericEvaluator,
}


def _default_embedder() -> Embedder:
    from ..llm import default_embedder

    return default_embedder()


def _load_embedder(factory: Callable[[], Embedder], index: int) -> Embedder:
    try:
        return factory()
    except Exception as e:
        raise EvaluatorConfigError(
            f"{field_prefix(index)}.type",
            f"embedding_similarity needs an embedding model, which failed to load: {type(e).__name__}: {e}",
        ) from e


def build_evaluator(
    spec: EvaluatorSpec,
    *,
    index: int,
    embedder: Embedder | None = None,
    allowed_entrypoints: Sequence[str] = (),
    llm: LlmRuntime | None = None,
) -> Evaluator:
    """Build one evaluator, validating its options now rather than per case.

    Args:
        spec: the manifest entry.
        index: its position in ``spec.evaluators``, used to name fields in errors.
        embedder: for ``embedding_similarity``; ``None`` loads the process-wide MiniLM
            (:func:`agentensor_runner.llm.default_embedder`, about 3 s the first time).
            Ignored by the other types.
        allowed_entrypoints: module prefixes a ``python`` evaluator may import (``"pkg"``
            allows ``pkg`` and ``pkg.*``). Empty: no python evaluator is allowed.
        llm: the run's models, for ``llm_judge`` (which fails to build without them).

    Returns:
        An :class:`Evaluator` whose ``evaluate`` never raises for a bad case.

    Raises:
        EvaluatorConfigError: with ``field`` like ``spec.evaluators[2].options.pattern`` for
            an unknown/invalid option, a malformed ``outputField``, a refused or unimportable
            entrypoint, or an embedding model that cannot be loaded.
    """
    _check_output_field(spec, index)
    simple = _SIMPLE.get(spec.type)
    if simple is not None:
        return simple(spec, index=index)
    return _build_with_dependencies(spec, index, embedder, allowed_entrypoints, llm)


def _check_output_field(spec: EvaluatorSpec, index: int) -> None:
    """Refuse a malformed ``outputField`` now, naming ``spec.evaluators[i].outputField``."""
    if spec.output_field is not None:
        try:
            split_path(spec.output_field)
        except ValueError as e:
            raise EvaluatorConfigError(f"{field_prefix(index)}.outputField", str(e)) from e


def _build_with_dependencies(
    spec: EvaluatorSpec,
    index: int,
    embedder: Embedder | None,
    allowed_entrypoints: Sequence[str],
    llm: LlmRuntime | None,
) -> Evaluator:
    """The evaluator types that need more than their options: an embedder, the allow-list, models."""
    if spec.type == "embedding_similarity":
        if embedder is None:
            embedder = _load_embedder(_default_embedder, index)
        return EmbeddingSimilarityEvaluator(spec, index=index, embedder=embedder)
    if spec.type == "python":
        return PythonEvaluator(spec, index=index, allowed_entrypoints=allowed_entrypoints)
    if spec.type == "llm_judge":
        from ._llm_judge import LlmJudgeEvaluator

        return LlmJudgeEvaluator(spec, index=index, llm=llm)
    raise EvaluatorConfigError(f"{field_prefix(index)}.type", f"unknown evaluator type {spec.type!r}")


def build_evaluators(
    specs: Sequence[EvaluatorSpec],
    *,
    embedder_factory: Callable[[], Embedder] | None = None,
    allowed_entrypoints: Sequence[str] | None = None,
    llm: LlmRuntime | None = None,
) -> list[Evaluator]:
    """Build every evaluator of a run, in order.

    Args:
        specs: ``spec.evaluators``.
        embedder_factory: called at most once, and only if some entry is
            ``embedding_similarity``; the embedder is shared by all of them. Default: the
            process-wide cached MiniLM.
        allowed_entrypoints: module prefixes for ``python`` evaluators; ``None`` reads the
            comma-separated ``AGENTENSOR_EVALUATOR_ALLOWLIST`` environment variable.
        llm: the run's models, for ``llm_judge`` evaluators.

    Raises:
        EvaluatorConfigError: see :func:`build_evaluator`; also for a repeated ``name``
            (field ``spec.evaluators[i].name``).
    """
    allowed = allowlist_from_env() if allowed_entrypoints is None else tuple(allowed_entrypoints)
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise EvaluatorConfigError(
                f"{field_prefix(i)}.name",
                f"duplicate evaluator name {spec.name!r} (also spec.evaluators[{seen[spec.name]}])",
            )
        seen[spec.name] = i
    embedder: Embedder | None = None
    out: list[Evaluator] = []
    for i, spec in enumerate(specs):
        if spec.type == "embedding_similarity" and embedder is None:
            embedder = _load_embedder(embedder_factory or _default_embedder, i)
        out.append(build_evaluator(spec, index=i, embedder=embedder, allowed_entrypoints=allowed, llm=llm))
    return out
