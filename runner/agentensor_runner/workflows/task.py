"""Built-in ``task`` template: ordered LLM steps, each with its own prompt, retry and timeout.

Graph: one LangGraph node per step, chained ``START -> step1 -> ... -> END``. Options:

- ``model``: default model for every step (a key of ``spec.models``, default ``task``).
- ``steps``: a non-empty list of mappings:
  - ``name`` (required, ``[A-Za-z_][A-Za-z0-9_]*``, unique),
  - ``system``: the step's prompt (default ``{{prompts.<name>}}``, a TextTensor),
  - ``user``: the user message (default ``{{state.input}}`` for the first step,
    ``{{state.output}}`` for the others: a step's output feeds the next),
  - ``model``: this step's model, ``parameters``: sampling overrides (as in ``chat``),
  - ``retries``: extra attempts after a failed or timed-out call (default 0; LangGraph
    ``RetryPolicy`` with 0.1 s initial backoff),
  - ``timeoutSeconds``: per-attempt limit (LangGraph node timeout; default none).

State: ``input``, ``output`` (the last step's text) and ``steps`` (``{name: text}``, readable
as ``{{state.steps.<name>}}``). The output is ``{"output": ..., "steps": {...}}``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from agentensor_api import ManifestError

from ..llm import LlmCallError, LlmRuntime
from ._base import Workflow
from .chat import ModelCall, check_parameters, require_llm

TASK_OPTIONS = frozenset({"model", "steps"})
STEP_KEYS = frozenset({"name", "system", "user", "model", "parameters", "retries", "timeoutSeconds"})
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RETRY_INITIAL_SECONDS = 0.1
"""First backoff of a step retry; LangGraph doubles it per attempt (with jitter)."""


class TaskState(TypedDict, total=False):
    input: Any
    output: str
    steps: Annotated[dict[str, str], operator.or_]


class TaskOutput(TypedDict):
    output: str
    steps: dict[str, str]


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, NodeTimeoutError | LlmCallError | TimeoutError)


def _step(raw: Any, i: int, default_model: str, llm: LlmRuntime, seen: set[str]) -> tuple[str, ModelCall, int, Any]:
    field = f"spec.workflow.options.steps[{i}]"
    if not isinstance(raw, Mapping):
        raise ManifestError(field, f"must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        raise ManifestError(f"{field}.{unknown[0]}", f"unknown step key; known: {sorted(STEP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _STEP_NAME.match(name):
        raise ManifestError(f"{field}.name", f"must be an identifier like 'draft', got {name!r}")
    if name in seen or name in ("input", "output", "steps"):
        raise ManifestError(f"{field}.name", f"step name {name!r} is repeated or reserved")
    seen.add(name)
    retries = raw.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ManifestError(f"{field}.retries", f"must be an integer in 0..10, got {retries!r}")
    timeout = raw.get("timeoutSeconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ManifestError(f"{field}.timeoutSeconds", f"must be a number > 0, got {timeout!r}")
    call = ModelCall(
        llm,
        llm.check(raw.get("model", default_model), f"{field}.model"),
        raw.get("system", f"{{{{prompts.{name}}}}}"),
        raw.get("user", "{{state.input}}" if i == 0 else "{{state.output}}"),
        check_parameters(raw.get("parameters"), f"{field}.parameters"),
        field,
    )
    return name, call, retries, timeout


def _node(name: str, call: ModelCall) -> Any:
    async def run(state: TaskState, config: RunnableConfig) -> dict[str, Any]:
        text = await call(state, config)
        return {"output": text, "steps": {name: text}}

    return run


def build(options: Mapping[str, Any], *, llm: LlmRuntime | None = None) -> Workflow:
    """Compile the task graph.

    Raises:
        ManifestError: unknown options or step keys, bad step values, unknown model names, or
            no ``spec.models`` (each error names its field).
    """
    unknown = sorted(set(options) - TASK_OPTIONS)
    if unknown:
        raise ManifestError(
            f"spec.workflow.options.{unknown[0]}", f"unknown option for template task; known: {sorted(TASK_OPTIONS)}"
        )
    runtime = require_llm(llm, "task")
    default_model = options.get("model", "task")
    steps = options.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ManifestError("spec.workflow.options.steps", "must be a non-empty list of steps")
    seen: set[str] = set()
    g: StateGraph[TaskState, Any, TaskState, TaskOutput] = StateGraph(TaskState, output_schema=TaskOutput)
    previous = START
    for i, raw in enumerate(steps):
        name, call, retries, timeout = _step(raw, i, default_model, runtime, seen)

        policy = RetryPolicy(max_attempts=retries + 1, initial_interval=RETRY_INITIAL_SECONDS, retry_on=_retryable)
        g.add_node(name, _node(name, call), retry_policy=policy, timeout=timeout)
        g.add_edge(previous, name)
        previous = name
    g.add_edge(previous, END)
    return Workflow(graph=g.compile(name="task"), defaults={"run_name": "task", "tags": ["agentensor", "task"]})
