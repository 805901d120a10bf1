"""Token, cost and call accounting from LangChain ``usage_metadata``.

Every chat model the runner builds carries one :class:`UsageCallback` (added in code, never
from a manifest). When a call ends, the callback adds its tokens, cost and duration, under the
model's *purpose* (``task``, ``judge``, ``gradient``, ``rewrite``), to the run's
:class:`UsageLedger` and to the :class:`Usage` of the case being evaluated, if any (a context
variable the executor sets per case with :func:`begin_case`).

Two outcomes of a real model are counted beside the tokens:

- ``truncated``: calls whose reply ended with ``finish_reason: length`` (the ``maxTokens``
  limit cut it), by purpose, read from the message's ``response_metadata``;
- ``parse_failures``: judge replies that did not parse, by evaluator name
  (:func:`record_parse_failure`, called by ``llm_judge``).
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from agentensor_api import PriceSpec, UsageSummary

CACHE_HIT_KEY = "agentensor_cache_hit"
"""``response_metadata`` flag set on messages served from the response cache."""


@dataclass
class Usage:
    """Accumulated LLM usage. Tokens and cost exclude cache hits."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cached: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    truncated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Calls cut by the token limit (``finish_reason: length``), by purpose."""
    parse_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Judge replies that did not parse, by evaluator name."""

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost
        self.seconds += other.seconds
        for k, v in other.calls.items():
            self.calls[k] += v
        for k, v in other.cached.items():
            self.cached[k] += v
        for k, v in other.truncated.items():
            self.truncated[k] += v
        for k, v in other.parse_failures.items():
            self.parse_failures[k] += v

    def copy(self) -> Usage:
        out = Usage()
        out.add(self)
        return out

    def minus(self, earlier: Usage) -> Usage:
        """Usage accumulated since the snapshot ``earlier``."""
        out = Usage(
            self.input_tokens - earlier.input_tokens,
            self.output_tokens - earlier.output_tokens,
            self.cost - earlier.cost,
            self.seconds - earlier.seconds,
        )
        for mine, theirs, target in (
            (self.calls, earlier.calls, out.calls),
            (self.cached, earlier.cached, out.cached),
            (self.truncated, earlier.truncated, out.truncated),
            (self.parse_failures, earlier.parse_failures, out.parse_failures),
        ):
            for k, v in mine.items():
                if v - theirs.get(k, 0):
                    target[k] = v - theirs.get(k, 0)
        return out

    def to_summary(self) -> UsageSummary:
        return UsageSummary(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=round(self.cost, 9),
            llm_calls=dict(sorted(self.calls.items())),
            cached_calls=dict(sorted(self.cached.items())),
            llm_seconds=round(self.seconds, 6),
            truncated_calls=dict(sorted(self.truncated.items())),
            parse_failures=dict(sorted(self.parse_failures.items())),
        )

    def to_json(self) -> dict[str, Any]:
        """camelCase dict for checkpoint ``extra`` (same keys as :class:`UsageSummary`)."""
        return self.to_summary().to_wire()


_CASE: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("agentensor_case_usage", default=None)


def begin_case() -> tuple[Usage, contextvars.Token[Usage | None]]:
    """Start collecting the usage of one case in the current context; see :func:`end_case`."""
    usage = Usage()
    return usage, _CASE.set(usage)


def end_case(token: contextvars.Token[Usage | None]) -> None:
    _CASE.reset(token)


def record_parse_failure(ledger: UsageLedger, evaluator: str) -> None:
    """Count one unparsable judge reply of ``evaluator`` in the run and in the current case."""
    ledger.total.parse_failures[evaluator] += 1
    case = _CASE.get()
    if case is not None:
        case.parse_failures[evaluator] += 1


class UsageLedger:
    """A run's usage in total; :meth:`snapshot` + :meth:`since` give per-epoch figures."""

    def __init__(self) -> None:
        self.total = Usage()

    def snapshot(self) -> Usage:
        return self.total.copy()

    def since(self, snapshot: Usage) -> Usage:
        return self.total.minus(snapshot)


class UsageCallback(BaseCallbackHandler):
    """Records each finished call of one model under one purpose (see the module docstring).

    ``run_inline``: called in the event loop's task, so the per-case context variable is the
    case's own (LangChain would otherwise hop to a thread pool for a sync handler).
    """

    run_inline = True
    raise_error = False

    def __init__(self, ledger: UsageLedger, purpose: str, price: PriceSpec | None) -> None:
        self.ledger = ledger
        self.purpose = purpose
        self._in = price.input_per_million_tokens / 1e6 if price else 0.0
        self._out = price.output_per_million_tokens / 1e6 if price else 0.0
        self._started: dict[UUID, float] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._started[run_id] = time.perf_counter()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._started.pop(run_id, None)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._started.pop(run_id, None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        hit = cut = False
        tokens_in = tokens_out = 0
        for gens in response.generations:
            for gen in gens:
                msg = getattr(gen, "message", None)
                if msg is None:
                    continue
                meta_r = msg.response_metadata or {}
                hit = hit or bool(meta_r.get(CACHE_HIT_KEY))
                cut = cut or meta_r.get("finish_reason") == "length"
                meta = getattr(msg, "usage_metadata", None)
                if meta:
                    tokens_in += int(meta.get("input_tokens", 0))
                    tokens_out += int(meta.get("output_tokens", 0))
        targets = [self.ledger.total]
        case = _CASE.get()
        if case is not None:
            targets.append(case)
        for u in targets:
            u.seconds += seconds
            if hit:
                u.cached[self.purpose] += 1
                continue
            u.calls[self.purpose] += 1
            if cut:
                u.truncated[self.purpose] += 1
            u.input_tokens += tokens_in
            u.output_tokens += tokens_out
            u.cost += tokens_in * self._in + tokens_out * self._out
