"""A scripted OpenAI-compatible server: the real ``/v1/chat/completions`` wire protocol.

Rules decide the reply: the first rule whose regexes match (``system``: the system message,
``user``: the last user message, ``model``: the model name) answers with its ``reply`` (a
string or a function of the request body) or with an HTTP error. Every response carries
``usage`` (whitespace tokens of the messages and the reply) and waits ``latency_seconds`` (or
the rule's own latency) first. Requests are logged with arrival and finish times.

Run in a thread for tests (:class:`ScriptedServer` as a context manager) or as a process for
benchmarks: ``python tests/llm/scripted_server.py --port 0 --latency-ms 50 --reply ok``
(prints ``PORT <n>`` when ready).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Reply = str | Callable[[dict[str, Any]], str]


@dataclass
class Rule:
    """Match on regexes (``re.search``, DOTALL); ``None`` matches anything."""

    reply: Reply = ""
    system: str | None = None
    user: str | None = None
    model: str | None = None
    status: int = 200
    error: str = ""
    latency_seconds: float | None = None
    times: int | None = None
    """Answer at most this many requests, then let later rules answer."""
    finish_reason: str = "stop"
    """``choices[0].finish_reason`` of the reply (``length``: cut by the token limit)."""
    hits: int = 0

    def matches(self, body: dict[str, Any]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        msgs = body.get("messages") or []
        system = "\n".join(_text(m) for m in msgs if m.get("role") in ("system", "developer"))
        users = [_text(m) for m in msgs if m.get("role") == "user"]
        last_user = users[-1] if users else ""
        for pattern, value in ((self.system, system), (self.user, last_user), (self.model, body.get("model", ""))):
            if pattern is not None and not re.search(pattern, str(value), re.DOTALL):
                return False
        return True


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def system_of(body: dict[str, Any]) -> str:
    return "\n".join(_text(m) for m in body.get("messages", []) if m.get("role") in ("system", "developer"))


def user_of(body: dict[str, Any]) -> str:
    users = [_text(m) for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def count_tokens(text: str) -> int:
    return len(text.split())


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    finished: float = 0.0
    rule: int | None = None


@dataclass
class ScriptedServer:
    """See the module docstring. ``require_key``: answer 401 unless ``Authorization: Bearer <key>``."""

    rules: list[Rule] = field(default_factory=list)
    default_reply: str = "ok"
    latency_seconds: float = 0.0
    require_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    log: list[Request] = field(default_factory=list)
    keep_log: bool = True

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def add(self, **kwargs: Any) -> Rule:
        rule = Rule(**kwargs)
        self.rules.append(rule)
        return rule

    def requests(self, system: str | None = None) -> list[Request]:
        """Logged requests, optionally only those whose system message matches ``system``."""
        return [r for r in self.log if system is None or re.search(system, system_of(r.body), re.DOTALL)]

    # -- the protocol ----------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        body = await request.json()
        entry = Request(body, dict(request.headers), started)
        if self.keep_log:
            self.log.append(entry)
        if self.require_key is not None and request.headers.get("Authorization") != f"Bearer {self.require_key}":
            entry.finished = time.monotonic()
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        rule_index, rule = next(((i, r) for i, r in enumerate(self.rules) if r.matches(body)), (None, None))
        entry.rule = rule_index
        if rule is not None:
            rule.hits += 1
        latency = self.latency_seconds if rule is None or rule.latency_seconds is None else rule.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)
        if rule is not None:
            if rule.status != 200:
                entry.finished = time.monotonic()
                message = rule.error.replace("{auth}", request.headers.get("Authorization", ""))
                return _error(rule.status, "scripted_error", message)
            text = rule.reply(body) if callable(rule.reply) else rule.reply
        else:
            text = self.default_reply
        finish_reason = rule.finish_reason if rule is not None else "stop"
        prompt_tokens = sum(count_tokens(_text(m)) for m in body.get("messages", []))
        completion_tokens = count_tokens(text)
        entry.finished = time.monotonic()
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "system_fingerprint": "fp_scripted",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def start_async(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> ScriptedServer:
        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start_async())
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=serve, name="scripted-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}, status=status
    )


_CASE_BLOCK = re.compile(r'<(case_[0-9a-f]{16}) field="(\w+)">\n(.*?)\n</\1>', re.DOTALL)


def case_fields(text: str) -> dict[str, str]:
    """The ``field -> text`` of the delimited case blocks in an ``llm_judge`` user message."""
    return {m.group(2): m.group(3) for m in _CASE_BLOCK.finditer(text)}


def judge_reply(score: float, reason: str) -> str:
    """A judge answer in the format ``llm_judge`` asks for."""
    return json.dumps({"score": score, "pass": score >= 0.5, "reason": reason})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--reply", default="ok")
    args = parser.parse_args()
    server = ScriptedServer(
        default_reply=args.reply, latency_seconds=args.latency_ms / 1000, host=args.host, port=args.port, keep_log=False
    )

    async def run() -> None:
        await server.start_async()
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
