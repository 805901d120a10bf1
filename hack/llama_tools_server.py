"""llama-cpp-python's OpenAI-compatible server, with a chat format for Qwen2.5's tool calls (issue 22).

    python hack/llama_tools_server.py --model QWEN.gguf --chat_format qwen2.5-tools [server options]

Registers the chat format ``qwen2.5-tools``, then runs ``python -m llama_cpp.server`` with the
same arguments. Why (measured with Qwen2.5-Coder-0.5B, llama-cpp-python 0.3.36, langchain-openai's
``bind_tools``, docs/benchmarks.md "Qwen2.5-Coder-0.5B"):

- The GGUF's own chat template (the server's default) lists the tools the way Qwen was trained
  on (``<tools>`` in the system message), and the model answered 9 of 9 tool requests with the
  right call; but the server returns that call as text: ``tool_calls`` is empty.
- ``chatml-function-calling`` returns real tool calls only for a forced ``tool_choice``. With
  ``auto`` it returned a call for 3 of 9 tool requests (one with ``base`` and ``quote`` swapped),
  ``functions.<name>:`` as text for the others, and a plain message is impossible: its grammar
  forced all 3 greetings into ``functions.get_exchange_rate:``, as text.
- ``qwen2.5-tools`` (below): 9 of 9 tool requests came back as the right OpenAI tool call, and 2
  of 3 greetings as a message (the third system prompt asked for a function call).

``qwen2.5-tools`` renders the GGUF's template (so Qwen's own prompt), generates, and turns the
``{"name": ..., "arguments": {...}}`` objects of the reply (Qwen's ``<tool_call>`` blocks; the tags
are special tokens the server does not print) into OpenAI ``tool_calls`` when each names one of the
request's tools; any other reply stays a message. A forced ``tool_choice`` keeps llama-cpp-python's
path (the arguments generated under the tool's JSON schema). Streaming is passed through unparsed.

The server's request schema also refuses (HTTP 500) an assistant message whose ``content`` is
null, which is how langchain-openai sends an earlier tool call back, so the second turn of every
agent loop failed; :class:`NullContentAsEmpty` rewrites that ``null`` to ``""`` before the schema
sees it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from typing import Any

import llama_cpp.server.__main__ as server_main
from llama_cpp import llama_chat_format

FORMAT = "qwen2.5-tools"


def tool_calls_of(text: str, names: set[str]) -> list[dict[str, Any]] | None:
    """The OpenAI tool calls ``text`` consists of, or ``None`` when it is anything else.

    ``text`` must be one or more JSON objects ``{"name": <one of names>, "arguments": {...}}``,
    separated by whitespace only; the arguments are re-serialised as the JSON string OpenAI sends.
    """
    decoder, calls, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return calls or None
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return None
        if not (isinstance(obj, dict) and obj.get("name") in names and isinstance(obj.get("arguments"), dict)):
            return None
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": obj["name"], "arguments": json.dumps(obj["arguments"])},
            }
        )


def _arguments_object(call: dict[str, Any]) -> dict[str, Any]:
    """``call`` with ``function.arguments`` as an object when it is a JSON string (else unchanged)."""
    fn = dict(call.get("function") or {})
    if isinstance(fn.get("arguments"), str):
        with contextlib.suppress(json.JSONDecodeError):
            fn["arguments"] = json.loads(fn["arguments"])
    return {**call, "function": fn}


def _for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as Qwen's template reads them: an earlier tool call's arguments as an object, not
    the JSON string of the OpenAI wire (the template would quote it again)."""
    return [
        {**m, "tool_calls": [_arguments_object(c) for c in m["tool_calls"]]}
        if m.get("role") == "assistant" and m.get("tool_calls")
        else m
        for m in messages
    ]


def qwen_tools(llama: Any, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    """The ``qwen2.5-tools`` chat completion handler (llama-cpp-python's handler signature).

    Generation is the server's default for this GGUF: the handler ``Llama`` built from the file's
    chat template (``chat_template.default``, with its end-of-turn stop token).
    """
    handler = llama._chat_handlers["chat_template.default"]
    reply = handler(llama=llama, messages=_for_template(messages), **kwargs)
    tools, choice = kwargs.get("tools") or [], kwargs.get("tool_choice")
    if kwargs.get("stream") or not tools or choice == "none" or isinstance(choice, dict):
        return reply
    message = reply["choices"][0]["message"]
    calls = tool_calls_of(message.get("content") or "", {t["function"]["name"] for t in tools})
    if calls:
        reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": calls}
        reply["choices"][0]["finish_reason"] = "tool_calls"
    return reply


def _null_content_as_empty(body: bytes) -> bytes:
    """``body`` with each assistant message's ``"content": null`` as ``""`` (unchanged if not such JSON)."""
    try:
        request = json.loads(body)
    except ValueError:
        return body
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return body
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "assistant" and "content" in m and m["content"] is None:
            m["content"] = ""
    return json.dumps(request).encode()


class NullContentAsEmpty:
    """ASGI middleware: chat completion requests pass through :func:`_null_content_as_empty`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        body = _null_content_as_empty(body)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)


def _create_app(**kwargs: Any) -> Any:
    return NullContentAsEmpty(create_app(**kwargs))


if __name__ == "__main__":
    llama_chat_format.register_chat_completion_handler(FORMAT)(qwen_tools)
    create_app = server_main.create_app
    server_main.create_app = _create_app
    sys.argv[0] = "llama_cpp.server"
    server_main.main()
