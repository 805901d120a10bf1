"""What the runner needs from a workflow: a compiled graph plus optional hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.runnables import Runnable, RunnableConfig

from ..prompts import interpolate


@dataclass(frozen=True, slots=True)
class Feedback:
    """Textual feedback for one trainable prompt from one failed case (a "textual gradient").

    Attributes:
        prompt: dotted prompt name the feedback is for.
        role: ``missed`` (the prompt should have been chosen/used and was not), ``confused``
            (it was chosen wrongly), or ``used`` (it took part in a failed case).
        message: human-readable loss, e.g. the evaluator's reason.
    """

    prompt: str
    case_id: str
    input: Any
    expected: Any
    output: Any
    role: str
    message: str


class Attribution(Protocol):
    """Credit assignment: the feedback one failed case gives the trainable prompts.

    Called by the trainer with keywords only: the case's id, input, output and expected value,
    ``used`` (the prompts the case read, from the prompt tape), ``trainable`` (the prompts that
    may change) and ``message`` (the evaluator's reason or the case's error). Returns one
    :class:`Feedback` per prompt to blame; see :func:`default_attribution`.
    """

    def __call__(
        self,
        *,
        case_id: str,
        input: Any,
        output: Any,
        expected: Any,
        used: frozenset[str],
        trainable: frozenset[str],
        message: str,
    ) -> list[Feedback]: ...


@dataclass
class Workflow:
    """A runnable workflow.

    Attributes:
        graph: a LangGraph compiled graph (any Runnable taking a state dict).
        defaults: RunnableConfig defaults merged under the manifest's ``spec.config``.
        attribute: credit assignment for failed cases; default blames every trainable prompt
            the case read (recorded on the prompt tape).
        prepare: called once with all case inputs before a run (e.g. to batch-embed them).
        prefetch: like ``prepare`` but returns at once, doing the work in the background in
            the order given (the order the cases will run), while each case can still get what
            it needs on demand; used instead of ``prepare`` where cases run in input order (an
            EvaluationRun), so that the first cases need not wait for the last input.
    """

    graph: Runnable[Any, Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    attribute: Attribution | None = None
    prepare: Callable[[Sequence[Any]], None] | None = None
    prefetch: Callable[[Sequence[Any]], None] | None = None

    def to_state(self, value: Any) -> dict[str, Any]:
        """Case input -> graph input: a mapping is the state itself, anything else is ``input``."""
        return dict(value) if isinstance(value, Mapping) else {"input": value}


def default_attribution(
    *,
    case_id: str,
    input: Any,
    output: Any,
    expected: Any,
    used: frozenset[str],
    trainable: frozenset[str],
    message: str,
) -> list[Feedback]:
    """Blame every trainable prompt the case read, with the evaluator's reason as message."""
    return [Feedback(p, case_id, input, expected, output, "used", message) for p in sorted(used & trainable)]


def render(value: Any, config: RunnableConfig | None, state: Mapping[str, Any] | None = None) -> Any:
    """Interpolate ``{{prompts.x}}``, ``{{parameters.y}}`` and ``{{state.z}}`` for a node.

    Nodes of user workflows call this with the ``config`` LangGraph passes them.

    Raises:
        KeyError: if a placeholder names nothing.
    """
    configurable = dict((config or {}).get("configurable") or {})
    ctx = {
        "prompts": configurable.get("prompts", {}),
        "parameters": configurable.get("parameters", {}),
        "configurable": configurable,
        "state": dict(state or {}),
    }
    return interpolate(value, ctx)
