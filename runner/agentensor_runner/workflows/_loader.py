"""Resolve ``spec.workflow`` into a :class:`Workflow`."""

from __future__ import annotations

import importlib
from typing import Any

from langchain_core.runnables import Runnable

from agentensor_api import ManifestError, WorkflowSpec

from ._base import Workflow


def load_workflow(spec: WorkflowSpec, **kwargs: Any) -> Workflow:
    """Build the workflow named by a template or an entrypoint.

    An entrypoint factory is called as ``factory(options)`` and may return a
    :class:`Workflow`, a compiled graph / Runnable, or an uncompiled ``StateGraph``.
    Keyword ``llm`` (an :class:`~agentensor_runner.llm.LlmRuntime`) is what the ``chat`` and
    ``task`` templates call models through; other kwargs go to ``embedding-router``.

    Raises:
        ManifestError: ``spec.workflow.entrypoint`` cannot be imported, is not callable, or
            returns something that is not a graph; ``spec.workflow.template`` is unknown.
    """
    if spec.template is not None:
        llm = kwargs.pop("llm", None)
        if spec.template == "embedding-router":
            from .embedding_router import build

            return build(spec.options, **kwargs)
        if spec.template in ("chat", "task"):
            from . import chat, task

            if spec.template == "chat":
                return chat.build(spec.options, llm=llm)
            return task.build(spec.options, llm=llm)
        raise ManifestError("spec.workflow.template", f"unknown template {spec.template!r}")
    assert spec.entrypoint is not None
    module_name, _, attr = spec.entrypoint.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ManifestError("spec.workflow.entrypoint", f"cannot import module {module_name!r}: {e}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ManifestError("spec.workflow.entrypoint", f"{module_name!r} has no callable {attr!r}")
    try:
        built = factory(dict(spec.options))
    except ManifestError:
        raise
    except Exception as e:
        raise ManifestError(
            "spec.workflow.entrypoint", f"factory {spec.entrypoint} raised {type(e).__name__}: {e}"
        ) from e
    if isinstance(built, Workflow):
        return built
    if hasattr(built, "compile") and not isinstance(built, Runnable):
        built = built.compile()
    if not isinstance(built, Runnable):
        raise ManifestError(
            "spec.workflow.entrypoint", f"factory returned {type(built).__name__}, expected a StateGraph or Runnable"
        )
    return Workflow(graph=built)
