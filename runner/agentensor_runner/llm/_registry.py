"""Named chat models of a run, built with ``langchain.chat_models.init_chat_model``.

``spec.models`` maps names to :class:`agentensor_api.ModelSpec`; workflows, the ``llm_judge``
evaluator and the ``textgrad`` optimizer ask :class:`LlmRuntime` for a model by name, purpose
and sampling parameters. A model instance is built once per ``(name, purpose, parameters)``
and reused by every case, so per-case cost is a dict lookup.

HTTP: ``openai:`` models get one connection pool per ``spec.models`` entry, on the OpenAI SDK's
aiohttp transport (``openai.DefaultAioHttpClient``), which costs about 1 ms less client CPU per
request than its default httpx transport (docs/benchmarks.md, "LLM throughput"). Connection
pools belong to the event loop that first used them: call :meth:`LlmRuntime.aclose` before that
loop ends; a runtime used from a new loop rebuilds its models and pools.
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import SecretStr

from agentensor_api import ManifestError, ModelAccess, ModelSpec, PriceSpec

from ._call import ainvoke_text
from ._keys import Redactor, model_access, resolve_api_key
from ._providers import missing_integration
from ._usage import UsageCallback, UsageLedger

PARAMETER_KWARGS: dict[str, str] = {
    "temperature": "temperature",
    "maxTokens": "max_tokens",
    "topP": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
}
"""PromptConfig ``parameters`` keys (camelCase) a model accepts -> ``init_chat_model`` kwargs."""

PURPOSES = ("task", "judge", "gradient", "rewrite")
"""Purposes calls are counted under; only ``task`` and ``judge`` calls use the response cache."""

CACHED_PURPOSES = frozenset({"task", "judge"})

AIOHTTP_PROVIDERS = frozenset({"openai"})
"""Providers whose client takes the OpenAI SDK's ``http_async_client`` (aiohttp transport)."""

log = logging.getLogger(__name__)

ModelFactory = Callable[..., BaseChatModel]
"""``factory(model, **kwargs) -> BaseChatModel``; default ``init_chat_model``."""


def _init_chat_model(model: str, **kwargs: Any) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    built: BaseChatModel = init_chat_model(model, **kwargs)
    return built


def sampling_kwargs(parameters: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The known sampling keys of ``parameters`` as client kwargs (other keys are ignored).

    Raises:
        ManifestError: a known key with a value of the wrong type, naming ``field.<key>``.
    """
    out: dict[str, Any] = {}
    for key, kwarg in PARAMETER_KWARGS.items():
        if key not in parameters or parameters[key] is None:
            continue
        value = parameters[key]
        if key == "stop":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ManifestError(f"{field}.{key}", f"must be a list of strings, got {value!r}")
            value = tuple(value)
        elif key in ("maxTokens", "seed"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "maxTokens" else 0):
                raise ManifestError(f"{field}.{key}", f"must be a positive integer, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ManifestError(f"{field}.{key}", f"must be a number, got {value!r}")
        else:
            value = float(value)
        out[kwarg] = value
    return out


class LlmRuntime:
    """The LLM side of a run: models by name, the usage ledger, the response cache, redaction.

    Args:
        models: ``spec.models``.
        pricing: ``spec.pricing`` (``provider:name`` -> price).
        cache: LangChain cache for ``task``/``judge`` calls (``None``: no caching).
        env: where API keys are read (default ``os.environ``); its names count as granted.
        access: what may be read and where a key may go (default :func:`model_access`: the
            grants in ``os.environ``).
        factory: builds a model from ``provider:name`` and kwargs (``base_url``, ``api_key``,
            ``cache``, ``callbacks``, sampling kwargs, and for ``openai:`` models with the
            default factory ``http_async_client``); default ``init_chat_model``.
        timeout_cap: the run's ``caseTimeoutSeconds``; each model's client timeout is
            ``min(timeoutSeconds, timeout_cap)`` so a slow call fails as a client timeout
            naming the model instead of the case being cancelled from outside.

    Raises:
        ManifestError: an API key variable named by a model spec is not granted or unset, a
            key would go to a host that may not receive it (all checked before any client
            exists; :meth:`agentensor_api.ModelAccess.check`), or (default
            factory) a model cannot be built; both checked here, before any call, so a run fails
            before it starts. With the default factory each model is built once here so the
            provider package is imported before any timed call (see :meth:`_preload`).
    """

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        *,
        pricing: Mapping[str, PriceSpec] | None = None,
        cache: BaseCache | None = None,
        env: Mapping[str, str] | None = None,
        factory: ModelFactory | None = None,
        timeout_cap: float | None = None,
        access: ModelAccess | None = None,
    ) -> None:
        self.specs = dict(models)
        self.timeout_cap = timeout_cap
        """``caseTimeoutSeconds``: no client timeout is longer than the case's own."""
        self._factory = factory or _init_chat_model
        self.pricing = dict(pricing or {})
        self.cache = cache
        self.optimizer_cache: BaseCache | None = None
        """Cache of the other purposes (textgrad ``gradient``/``rewrite``), set by ``build_runtime``
        when the run has a store; ``None``: those calls are never cached."""
        self.ledger = UsageLedger()
        self.redact = Redactor()
        self._keys: dict[str, SecretStr | None] = {}
        access = access or model_access(env)
        for name, spec in self.specs.items():
            key = resolve_api_key(name, spec, env, access)
            self._keys[name] = key
            self.redact.add(key)
        self._instances: dict[tuple[str, str, tuple[tuple[str, Any], ...]], BaseChatModel] = {}
        self._http: dict[str, Any] = {}
        """``spec.models`` name -> the OpenAI SDK's aiohttp-backed async HTTP client."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        """``spec.models`` name -> its ``maxConcurrency`` semaphore (per event loop)."""
        self.json_forms: dict[str, str] = {}
        """``spec.models`` name -> the structured-output form the server accepted (``llm_judge``)."""
        if self._factory is _init_chat_model:
            self._preload()

    def _preload(self) -> None:
        """Build every model once, here, and drop it.

        ``init_chat_model`` imports the provider's integration package on its first build
        (langchain-openai and the OpenAI SDK: 1-4 s of blocking CPU on a busy 2-core node).
        Done lazily, that import ran inside the first case's first call, counted against that
        step's LangGraph ``timeoutSeconds`` (the attempt timed out before sending a request)
        and stalled every other case of the event loop. Models are still built per event loop
        by :meth:`chat`; only the one-time import moves here.

        Raises:
            ManifestError: a model cannot be built (unknown provider, integration not installed).
        """
        for name, spec in self.specs.items():
            self._make(name, spec.model, self._client_kwargs(name))

    def check(self, name: Any, field: str) -> str:
        """``name`` if it is a key of ``spec.models``.

        Raises:
            ManifestError: naming ``field`` otherwise.
        """
        if not isinstance(name, str) or name not in self.specs:
            raise ManifestError(field, f"{name!r} is not one of spec.models {sorted(self.specs)}")
        return name

    def chat(self, name: str, purpose: str, kwargs: Mapping[str, Any] | None = None) -> BaseChatModel:
        """The chat model ``spec.models[name]`` with sampling ``kwargs`` (see :func:`sampling_kwargs`).

        Raises:
            KeyError: ``name`` is not in ``spec.models`` (call :meth:`check` when building).
        """
        params = tuple(sorted((kwargs or {}).items()))
        key = (name, purpose, params)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and loop is not self._loop:
            if self._loop is not None and self._http:
                log.debug("LlmRuntime used from a new event loop: rebuilding models and connection pools")
            self._instances.clear()
            self._http.clear()
            self._slots.clear()
            self._loop = loop
        model = self._instances.get(key)
        if model is None:
            model = self._build(name, purpose, dict(params))
            self._instances[key] = model
        return model

    def _client_kwargs(self, name: str) -> dict[str, Any]:
        """Client kwargs of model ``name``: ``max_retries``, capped ``timeout``, ``base_url``, ``api_key``."""
        spec = self.specs[name]
        timeout = spec.timeout_seconds if self.timeout_cap is None else min(spec.timeout_seconds, self.timeout_cap)
        extra: dict[str, Any] = {"max_retries": spec.max_retries, "timeout": timeout}
        if spec.base_url:
            extra["base_url"] = spec.base_url
        key = self._keys.get(name)
        if key is not None:
            extra["api_key"] = key
        return extra

    def _make(self, name: str, model: str, kwargs: dict[str, Any]) -> BaseChatModel:
        """``factory(model, **kwargs)``; a failure is a redacted ManifestError naming the field.

        A provider whose integration is not installed (an ``ImportError``) gets a reason that
        names the package and the extra to install (:func:`missing_integration`).
        """
        try:
            return self._factory(model, **kwargs)
        except ImportError as e:
            raise ManifestError(f"spec.models.{name}.model", missing_integration(model, e)) from None
        except Exception as e:
            raise ManifestError(
                f"spec.models.{name}.model", f"cannot build {model!r}: {type(e).__name__}: {self.redact(str(e))}"
            ) from None

    def _build(self, name: str, purpose: str, kwargs: dict[str, Any]) -> BaseChatModel:
        spec = self.specs[name]
        if "stop" in kwargs:
            kwargs["stop"] = list(kwargs["stop"])
        extra = self._client_kwargs(name)
        if spec.base_url and spec.model.startswith("openai:") and "max_tokens" in kwargs:
            # langchain-openai sends only max_completion_tokens, which llama-cpp-python's server
            # ignores (it then generates until the context is full); send max_tokens as well.
            extra["extra_body"] = {"max_tokens": kwargs["max_tokens"]}
        if self._factory is _init_chat_model and spec.model.split(":", 1)[0] in AIOHTTP_PROVIDERS:
            http = self._http_client(name)
            if http is not None:
                extra["http_async_client"] = http
        cache: BaseCache | bool = self.cache if (self.cache is not None and purpose in CACHED_PURPOSES) else False
        if purpose not in CACHED_PURPOSES and self.optimizer_cache is not None:
            cache = self.optimizer_cache
        callback = UsageCallback(self.ledger, purpose, self.pricing.get(spec.model))
        return self._make(name, spec.model, {**extra, **kwargs, "cache": cache, "callbacks": [callback]})

    async def ainvoke(
        self,
        name: str,
        purpose: str,
        kwargs: Mapping[str, Any] | None,
        messages: Sequence[BaseMessage],
        config: RunnableConfig | None,
        call_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """One call of ``spec.models[name]`` under its ``maxConcurrency`` limit; the reply text.

        The limit is one ``asyncio.Semaphore`` per model name shared by every purpose (task,
        judge, gradient, rewrite), so one purpose cannot hold all of a slow server's slots.
        ``call_kwargs`` go to the request; an ``extra_body`` there is merged over the model's own
        (which, for ``openai:`` models with a ``baseUrl``, carries ``max_tokens``).

        Raises:
            LlmCallError, TimeoutError: as :func:`ainvoke_text`.
        """
        model = self.chat(name, purpose, kwargs)
        base_body = getattr(model, "extra_body", None)
        if call_kwargs and "extra_body" in call_kwargs and isinstance(base_body, dict):
            call_kwargs = {**call_kwargs, "extra_body": {**base_body, **call_kwargs["extra_body"]}}
        limit = self.specs[name].max_concurrency
        if limit is None:
            return await ainvoke_text(model, messages, config, self.redact, call_kwargs)
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = asyncio.Semaphore(limit)
        async with slot:
            return await ainvoke_text(model, messages, config, self.redact, call_kwargs)

    def _http_client(self, name: str) -> Any:
        """The aiohttp-backed client of model ``name``, or ``None`` (the SDK's httpx default) when
        aiohttp is not installed."""
        client = self._http.get(name)
        if client is None:
            from openai import DefaultAioHttpClient

            try:
                client = DefaultAioHttpClient()
            except RuntimeError:  # openai installed without its aiohttp extra
                return None
            self._http[name] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP connection pools (in the loop that used them) and forget the models."""
        clients = list(self._http.values())
        self._http.clear()
        self._instances.clear()
        self._loop = None
        for client in clients:
            await client.aclose()

    def close(self) -> None:
        """Close the response cache."""
        close = getattr(self.cache, "close", None)
        if callable(close):
            close()
