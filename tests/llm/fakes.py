"""A small, real ``BaseChatModel`` for tests that need a judge without HTTP.

:class:`ExactJudgeModel` reads the ``expected``/``output`` case blocks that ``llm_judge`` writes
and answers score 1 when they are equal, else 0 (a deterministic stand-in for a judge).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentensor_api import ModelSpec
from agentensor_runner.llm import LlmRuntime

from .scripted_server import case_fields


class ExactJudgeModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "exact-judge"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        text = str(messages[-1].content)
        fields = case_fields(text)
        same = "expected" in fields and "output" in fields and fields["expected"].strip() == fields["output"].strip()
        reply = json.dumps({"score": 1 if same else 0, "reason": "matches" if same else "does not match the reference"})
        message = AIMessage(
            reply,
            usage_metadata={
                "input_tokens": len(text.split()),
                "output_tokens": 6,
                "total_tokens": len(text.split()) + 6,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def judge_runtime() -> LlmRuntime:
    """An :class:`LlmRuntime` whose model ``judge`` is :class:`ExactJudgeModel`."""
    return LlmRuntime(
        {"judge": ModelSpec(model="fake:exact-judge")},
        factory=lambda model, **kw: ExactJudgeModel(cache=kw.get("cache"), callbacks=kw.get("callbacks")),
    )
