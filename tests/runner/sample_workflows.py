"""User workflows loaded through `spec.workflow.entrypoint` in tests."""

from __future__ import annotations

from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agentensor_runner import render


class State(TypedDict, total=False):
    input: str
    answer: str


def build_echo(options: dict[str, Any]) -> StateGraph[State, Any, State, State]:
    """An uncompiled graph whose node formats the input with a prompt template from options."""
    template = options.get("template", "{{prompts.prefix}} {{state.input}}")

    def answer(state: State, config: RunnableConfig) -> dict[str, Any]:
        return {"answer": render(template, config, state)}

    g: StateGraph[State, Any, State, State] = StateGraph(State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def build_broken(options: dict[str, Any]) -> Any:
    return 42


def build_pid_echo(options: dict[str, Any]) -> StateGraph[State, Any, State, State]:
    """Answers with the input and the id of the process that ran the case."""
    import os

    def answer(state: State, config: RunnableConfig) -> dict[str, Any]:
        return {"answer": f"{render('{{prompts.prefix}}', config)} {state['input']}|{os.getpid()}"}

    g: StateGraph[State, Any, State, State] = StateGraph(State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g
