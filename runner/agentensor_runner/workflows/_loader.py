"""Resolve ``spec.workflow`` into a :class:`Workflow`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from agentensor_api import ManifestError, WorkflowSpec

from .._allowlist import allowlist_from_env, resolve_entrypoint
from .._errors import EntrypointRefused
from ._base import Workflow


def load_workflow(spec: WorkflowSpec, *, allowed: Sequence[str] | None = None, **kwargs: Any) -> Workflow:
    """Build the workflow named by a template or an entrypoint.

    An entrypoint is resolved through the allow-list first (``allowed`` module prefixes, by
    default ``$AGENTENSOR_EVALUATOR_ALLOWLIST``; empty: no entrypoint may run): the module must
    be allowed before it is imported, and the factory must be defined in an allowed module
    before it is called. The factory is then called as ``factory(options)`` and must return a
    LangGraph ``StateGraph`` (compiled here), a compiled graph (``CompiledStateGraph`` /
    ``Pregel``) or a :class:`Workflow` wrapping one.
    Keyword ``llm`` (an :class:`~agentensor_runner.llm.LlmRuntime`) is what the ``chat`` and
    ``task`` templates call models through; other kwargs go to ``embedding-router``.

    Raises:
        ManifestError: ``spec.workflow.entrypoint`` is not allow-listed, cannot be imported, is
            not a callable defined in an allowed module, raises, or returns something that is not
            a LangGraph graph; ``spec.workflow.template`` is unknown.
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
    return _from_entrypoint(spec, allowed)


def _from_entrypoint(spec: WorkflowSpec, allowed: Sequence[str] | None) -> Workflow:
    assert spec.entrypoint is not None
    prefixes = allowlist_from_env() if allowed is None else tuple(allowed)
    try:
        factory = resolve_entrypoint(spec.entrypoint, prefixes, what="workflow entrypoints")
    except EntrypointRefused as e:
        raise ManifestError("spec.workflow.entrypoint", str(e)) from e.__cause__
    try:
        built = factory(dict(spec.options))
    except ManifestError:
        raise
    except Exception as e:
        raise ManifestError(
            "spec.workflow.entrypoint", f"factory {spec.entrypoint} raised {type(e).__name__}: {e}"
        ) from e
    if isinstance(built, StateGraph):
        built = built.compile()
    graph = built.graph if isinstance(built, Workflow) else built
    if not isinstance(graph, Pregel):
        raise ManifestError(
            "spec.workflow.entrypoint",
            f"factory returned {type(graph).__name__}, expected a LangGraph StateGraph or compiled graph "
            "(CompiledStateGraph / Pregel)",
        )
    return built if isinstance(built, Workflow) else Workflow(graph=graph)
