"""LlmRuntime's HTTP clients: openai models on the SDK's aiohttp transport, one pool per model,
bound to the event loop that used them, closed by ``aclose``; against the scripted server."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import warnings

import openai
from langchain_core.messages import HumanMessage

from agentensor_api import ModelSpec
from agentensor_runner.llm import LlmRuntime

from .conftest import API_KEY
from .scripted_server import ScriptedServer


def runtime(server: ScriptedServer) -> LlmRuntime:
    spec = ModelSpec(model="openai:gpt-scripted", base_url=server.base_url, api_key_env="K", max_retries=0)
    return LlmRuntime({"task": spec, "judge": spec}, env={"K": API_KEY})


def test_openai_models_share_one_aiohttp_pool_per_model(server: ScriptedServer) -> None:
    llm = runtime(server)

    async def main() -> list[object]:
        a = llm.chat("task", "task", {"temperature": 0.0})
        b = llm.chat("task", "task", {"temperature": 0.7})
        judge = llm.chat("judge", "judge")
        replies = await asyncio.gather(*(m.ainvoke([HumanMessage(f"q{i}")]) for i, m in enumerate((a, b, judge))))
        clients = [m.http_async_client for m in (a, b, judge)]  # type: ignore[attr-defined]
        await llm.aclose()
        return [*clients, *(r.content for r in replies)]

    a_http, b_http, judge_http, *texts = asyncio.run(main())
    assert texts == ["ok", "ok", "ok"]
    assert isinstance(a_http, openai.DefaultAioHttpClient)
    assert a_http is b_http, "sampling variants of one model share its connection pool"
    assert judge_http is not a_http, "each spec.models entry has its own pool"
    assert len(server.log) == 3


def test_a_new_event_loop_gets_new_models_and_pools(server: ScriptedServer) -> None:
    """One runtime used by two consecutive ``asyncio.run`` calls (the loop of the first is closed
    by then): the second call works and does not reuse the first loop's pool."""
    llm = runtime(server)

    async def call() -> tuple[object, str]:
        model = llm.chat("task", "task")
        reply = await model.ainvoke([HumanMessage("hello")])
        return model.http_async_client, str(reply.content)  # type: ignore[attr-defined]

    async def call_and_close() -> tuple[object, str]:
        try:
            return await call()
        finally:
            await llm.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unclosed aiohttp session warns (ResourceWarning) when collected
        first_http, first = asyncio.run(call_and_close())
        second_http, second = asyncio.run(call_and_close())
        gc.collect()
    assert (first, second) == ("ok", "ok")
    assert first_http is not second_http
    assert len(server.log) == 2


def test_aclose_closes_the_pools(server: ScriptedServer) -> None:
    llm = runtime(server)

    async def main() -> object:
        model = llm.chat("task", "task")
        await model.ainvoke([HumanMessage("hello")])
        http = model.http_async_client  # type: ignore[attr-defined]
        assert not http.is_closed
        await llm.aclose()
        return http

    http = asyncio.run(main())
    assert http.is_closed  # type: ignore[attr-defined]


def test_request_timeout_and_connection_errors_become_redacted_call_errors(server: ScriptedServer) -> None:
    """``spec.models.<m>.timeoutSeconds`` bounds a request on the aiohttp transport, and a refused
    connection fails fast; both surface as ``LlmCallError`` naming the SDK's error type."""
    from agentensor_runner.llm import LlmCallError, ainvoke_text

    server.add(user="slow", reply="late", latency_seconds=2.0)
    slow = ModelSpec(
        model="openai:gpt-scripted", base_url=server.base_url, api_key_env="K", max_retries=0, timeout_seconds=0.3
    )
    refused = ModelSpec(model="openai:gpt-scripted", base_url="http://127.0.0.1:9/v1", api_key_env="K", max_retries=0)
    llm = LlmRuntime({"slow": slow, "refused": refused}, env={"K": API_KEY})

    async def main() -> list[str]:
        errors = []
        for name, text in (("slow", "slow"), ("refused", "hello")):
            started = asyncio.get_running_loop().time()
            try:
                await ainvoke_text(llm.chat(name, "task"), [HumanMessage(text)], None, llm.redact)
            except LlmCallError as e:
                errors.append(f"{e} after {asyncio.get_running_loop().time() - started:.1f}")
        await llm.aclose()
        return errors

    slow_error, refused_error = asyncio.run(main())
    assert "TimeoutError: " in slow_error.split(" ", 1)[0] + " ", slow_error
    assert float(slow_error.rsplit(" ", 1)[1]) < 1.5, "the 0.3 s timeout cut the 2 s reply"
    # the SDK's aiohttp transport maps a refused connection to a timeout; the cause tells the truth
    assert "(cause: ConnectionRefusedError: " in refused_error and "127.0.0.1" in refused_error, refused_error
    assert API_KEY not in slow_error + refused_error


FIRST_CALL_IN_A_FRESH_PROCESS = """
import asyncio, os, sys
from langchain_core.messages import HumanMessage
from agentensor_api import ModelSpec
from agentensor_runner.llm import LlmRuntime

before = "langchain_openai" in sys.modules
spec = ModelSpec(model="openai:gpt-scripted", base_url=sys.argv[1], api_key_env="K", max_retries=0)
llm = LlmRuntime({"task": spec}, env={"K": os.environ["K"]})
after = "langchain_openai" in sys.modules

async def main() -> str:
    try:
        async with asyncio.timeout(1.0):  # a step's timeoutSeconds; importing langchain-openai alone takes longer
            return await llm.ainvoke("task", "task", None, [HumanMessage("hello")], None)
    finally:
        await llm.aclose()

print(before, after, asyncio.run(main()))
"""


def test_the_first_call_in_a_fresh_process_does_not_import_the_provider(server: ScriptedServer) -> None:
    """Building the runtime imports the provider's integration package, so the first call of a
    fresh process (a worker, a CLI run) is only the call: before, ``init_chat_model`` imported
    langchain-openai inside the first case's first attempt, which blocked the event loop for
    seconds and timed out a ``task`` step with ``timeoutSeconds: 0.5`` before it sent anything
    (its retry then drew the reply meant for the first attempt). A fresh interpreter, since any
    earlier test of this session has imported the package already."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL_IN_A_FRESH_PROCESS, server.base_url],
        env={**os.environ, "K": API_KEY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True", "ok"]
    assert len(server.log) == 1
