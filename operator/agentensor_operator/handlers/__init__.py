"""kopf handlers, one module per custom resource; each exposes ``register(registry, deps)``."""

from __future__ import annotations

import kopf

from .._deps import Deps
from . import evaluationrun, promptconfig, trainingrun


def register_all(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    """Register every resource handler of the operator into ``registry``."""
    promptconfig.register(registry, deps)
    trainingrun.register(registry, deps)
    evaluationrun.register(registry, deps)


__all__ = ["register_all"]
