"""EvaluationRun handlers: the shared run reconcile (no promotion; an evaluation only scores)."""

from __future__ import annotations

import kopf

from .._deps import Deps
from . import _runs

KIND = "EvaluationRun"


def register(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    _runs.register(registry, deps, kind=KIND, on_succeeded=None)
