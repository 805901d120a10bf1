"""Hostile entrypoint targets: an allow-listed module (under ``tests``) that re-exports what it must not run."""

from __future__ import annotations

import asyncio
from os import system
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

__all__ = ["build_nul_output", "build_slow", "system"]


class _State(TypedDict, total=False):
    input: Any
    answer: Any


def build_slow(options: dict[str, Any]) -> StateGraph[_State, Any, _State, _State]:
    """A graph whose one node sleeps ``options["seconds"]`` (default 0.2 s) and echoes the input.

    With ``options["gate"]`` (a file path) every case first waits until that file exists, so a test
    holds the run in the middle of its first case for exactly as long as it needs.
    """
    seconds = float(options.get("seconds", 0.2))
    gate = Path(options["gate"]) if "gate" in options else None

    async def answer(state: _State) -> dict[str, Any]:
        while gate is not None and not gate.exists():
            await asyncio.sleep(0.05)
        await asyncio.sleep(seconds)
        return {"answer": state.get("input")}

    g: StateGraph[_State, Any, _State, _State] = StateGraph(_State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def build_nul_output(options: dict[str, Any]) -> StateGraph[_State, Any, _State, _State]:
    """A graph that answers with its input followed by a NUL character (PostgreSQL cannot store it)."""

    def answer(state: _State) -> dict[str, Any]:
        return {"answer": f"{state.get('input')}\x00"}

    g: StateGraph[_State, Any, _State, _State] = StateGraph(_State)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g
