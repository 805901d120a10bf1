"""One chat call that returns text, and raises errors that cannot carry an API key."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from .._errors import LlmCallError


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of ``exc``'s ``__cause__``/``__context__`` chain (cycle-safe)."""
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


async def ainvoke_text(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    config: RunnableConfig | None,
    redact: Callable[[str], str],
    call_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """``model.ainvoke(messages, config, **call_kwargs)`` and the reply's text.

    Raises:
        LlmCallError: the call failed: ``"<ErrorType>: <redacted message>"``, followed by
            ``" (cause: <RootType>: <redacted message>)"`` when the SDK wrapped a lower-level
            error (the OpenAI SDK's aiohttp transport reports a refused connection as a timeout;
            the cause says ``ConnectionRefusedError: ...``).
        TimeoutError, asyncio.CancelledError: passed through (per-step and per-case timeouts).
    """
    try:
        reply = await model.ainvoke(list(messages), config, **(call_kwargs or {}))
    except TimeoutError:
        raise
    except Exception as e:
        detail = f"{type(e).__name__}: {redact(str(e))}"
        root = _root_cause(e)
        if root is not e and str(root).strip():
            detail += f" (cause: {type(root).__name__}: {redact(str(root).strip())})"
        raise LlmCallError(detail[:2000]) from None
    content: Any = reply.content
    if isinstance(content, str):
        return content
    return "".join(
        part if isinstance(part, str) else str(part.get("text", "")) for part in content if isinstance(part, str | dict)
    )
