"""Built-in ``chat`` template: one LLM call with a trainable system prompt.

Graph: ``respond`` (a one-node LangGraph StateGraph). The node renders the system prompt
(option ``system``, default ``{{prompts.system}}``, a TextTensor) and the user message (option
``user``, default ``{{state.input}}``), calls the model named by option ``model`` (a key of
``spec.models``, default ``task``) and returns ``{"output": <reply text>}``.

Sampling parameters come from the PromptConfig's ``parameters`` (``temperature``,
``maxTokens``, ``topP``, ``seed``, ``stop``, ``presencePenalty``, ``frequencyPenalty``; other
keys are ignored), overridden by option ``parameters`` (a mapping whose values may be
placeholders such as ``{{parameters.answerTemperature}}``). The node passes its
RunnableConfig to the model, so tags, metadata, callbacks and ``run_name`` reach the LLM run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agentensor_api import ManifestError

from ..llm import LlmRuntime, sampling_kwargs
from ._base import Workflow, render

CHAT_OPTIONS = frozenset({"model", "system", "user", "parameters"})


class ChatState(TypedDict, total=False):
    input: Any
    output: str


class ChatOutput(TypedDict):
    output: str


def require_llm(llm: LlmRuntime | None, template: str) -> LlmRuntime:
    """The run's runtime, or an error saying ``spec.models`` is needed.

    Raises:
        ManifestError: field ``spec.models``.
    """
    if llm is None:
        raise ManifestError("spec.models", f"template {template} needs at least one model in spec.models")
    return llm


def check_parameters(value: Any, field: str) -> Mapping[str, Any]:
    """Option ``parameters``: a mapping (values may be placeholders).

    Raises:
        ManifestError: naming ``field`` if it is not a mapping.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(field, f"must be a mapping of sampling parameters, got {type(value).__name__}")
    return value


class ModelCall:
    """Renders a (system, user) pair and calls one named model with the case's parameters."""

    def __init__(
        self, llm: LlmRuntime, model: str, system: Any, user: Any, parameters: Mapping[str, Any], field: str
    ) -> None:
        self.llm, self.model, self.system, self.user = llm, model, system, user
        self.parameters = dict(parameters)
        self.field = field
        self._params_memo: tuple[int, dict[str, Any]] | None = None

    def kwargs(self, config: RunnableConfig) -> dict[str, Any]:
        """Sampling kwargs: PromptConfig parameters, then this call's overrides (memoised per evaluation)."""
        params = (config.get("configurable") or {}).get("parameters") or {}
        memo = self._params_memo
        if memo is not None and memo[0] == id(params) and not self.parameters:
            return memo[1]
        merged = dict(params)
        if self.parameters:
            merged.update(render(self.parameters, config))
        out = sampling_kwargs(merged, f"{self.field}.parameters")
        if not self.parameters:
            self._params_memo = (id(params), out)
        return out

    async def __call__(self, state: Mapping[str, Any], config: RunnableConfig) -> str:
        system = str(render(self.system, config, state))
        user = render(self.user, config, state)
        messages = [SystemMessage(system), HumanMessage(user if isinstance(user, str) else str(user))]
        return await self.llm.ainvoke(self.model, "task", self.kwargs(config), messages, config)


def build(options: Mapping[str, Any], *, llm: LlmRuntime | None = None) -> Workflow:
    """Compile the chat graph.

    Raises:
        ManifestError: unknown options (``spec.workflow.options.<key>``), a model name not in
            ``spec.models``, or no ``spec.models`` at all.
    """
    unknown = sorted(set(options) - CHAT_OPTIONS)
    if unknown:
        raise ManifestError(
            f"spec.workflow.options.{unknown[0]}", f"unknown option for template chat; known: {sorted(CHAT_OPTIONS)}"
        )
    runtime = require_llm(llm, "chat")
    model = runtime.check(options.get("model", "task"), "spec.workflow.options.model")
    call = ModelCall(
        runtime,
        model,
        options.get("system", "{{prompts.system}}"),
        options.get("user", "{{state.input}}"),
        check_parameters(options.get("parameters"), "spec.workflow.options.parameters"),
        "spec.workflow.options",
    )

    async def respond(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        return {"output": await call(state, config)}

    g: StateGraph[ChatState, Any, ChatState, ChatOutput] = StateGraph(ChatState, output_schema=ChatOutput)
    g.add_node("respond", respond)
    g.add_edge(START, "respond")
    g.add_edge("respond", END)
    return Workflow(graph=g.compile(name="chat"), defaults={"run_name": "chat", "tags": ["agentensor", "chat"]})
