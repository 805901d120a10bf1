"""Optimizers: the interface and the built-in implementations."""

from collections.abc import Mapping
from typing import Any

from agentensor_api import ManifestError, OptimizerSpec

from .._errors import OptimizerConfigError
from ._base import Candidate, Optimizer, Step
from .exemplar import ExemplarOptimizer
from .fewshot import FewShotOptimizer
from .optuna_search import OptunaOptimizer
from .textgrad import TextGradOptimizer

REGISTRY: dict[str, type[Any]] = {
    "exemplar": ExemplarOptimizer,
    "fewshot": FewShotOptimizer,
    "textgrad": TextGradOptimizer,
    "optuna": OptunaOptimizer,
}
"""``spec.optimizer.type`` -> class; every class's ``deps`` tuple names the keyword dependencies it takes."""


def build_optimizer(spec: OptimizerSpec, **deps: Any) -> Optimizer:
    """Instantiate ``spec.type`` with ``spec.options``.

    ``deps`` (e.g. ``llm``, ``direction``, ``seed``, ``storage_url``, ``study_name``) plus
    ``model`` and ``search_space`` from the spec are passed to the classes that list them in
    their ``deps``.

    Raises:
        ManifestError: unknown type (``spec.optimizer.type``) or bad options
            (``spec.optimizer.options``).
    """
    cls = REGISTRY.get(spec.type)
    if cls is None:
        raise ManifestError("spec.optimizer.type", f"unknown optimizer {spec.type!r}; known: {sorted(REGISTRY)}")
    options: Mapping[str, Any] = spec.options
    offered = {"model": spec.model, "search_space": spec.search_space, **deps}
    wanted = {k: v for k, v in offered.items() if k in cls.deps}
    try:
        optimizer: Optimizer = cls(options, **wanted)
        return optimizer
    except OptimizerConfigError as e:
        raise ManifestError("spec.optimizer.options", str(e)) from e


__all__ = [
    "REGISTRY",
    "Candidate",
    "ExemplarOptimizer",
    "FewShotOptimizer",
    "Optimizer",
    "OptimizerConfigError",
    "OptunaOptimizer",
    "Step",
    "TextGradOptimizer",
    "build_optimizer",
]
