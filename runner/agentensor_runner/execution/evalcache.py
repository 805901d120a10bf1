"""The evaluation cache: a scored (config, case) pair is never run again, by this run or another.

A case's result is decided by the config (prompt texts and parameters), the case itself and
everything else the scoring depends on. :func:`scoring_checksum` condenses the latter from a
run's spec; :func:`cache_key` is the sha256 of

    config checksum (``PromptSet.checksum()``) \\0 dataset hash \\0 case id \\0 case digest \\0 scoring checksum

where the case digest is the sha256 of the case's whole dataset row (so an evaluator reading a
column beyond ``input``/``expected`` through its ``expectedField`` sees a changed row). The run
id, the stage, parallelism, timeouts and the objective are not in the key: they do not change a
scored result.

Only scored cases are cached (:func:`cacheable`): an error row (a timeout, a workflow exception,
a bad dataset row) may be transient and is run again next time.

The entry (:func:`to_entry`, :func:`from_entry`) keeps the output (as JSON, else its ``repr``),
each evaluator's result (score, passed, reason and any further field ``EvalResult`` has), the
case latency in seconds, the prompts the case used and its LLM usage (``UsageSummary`` wire
form). The rows and the store's ``agentensor_eval_cache`` table hold the same JSON.

What the key cannot see: a ``module:factory`` workflow or ``python`` evaluator whose *code*
changed under the same name. Turn the cache off for such a run (``spec.evaluationCache.enabled:
false``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentensor_api import TrainingRunSpec, UsageSummary
from agentensor_store import EvalCacheEntry, EvalCacheStore

from ..data import Case
from ..evaluators import EvalResult
from ..llm import Usage
from .results import CaseResult, jsonable
from .runnable_config import case_thread_id

CACHE_VERSION = 1
"""Part of the scoring checksum: bumped when the entry format or the meaning of a result changes."""

HITS_METRIC = "agentensor_runner_evaluation_cache_hits_total"
"""Prometheus-style name of the hit counter (``status.evaluationCache.hits``)."""

MISSES_METRIC = "agentensor_runner_evaluation_cache_misses_total"
"""Prometheus-style name of the miss counter (``status.evaluationCache.misses``)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def scoring_checksum(spec: TrainingRunSpec, base_config: Mapping[str, Any]) -> str:
    """sha256 of what decides a case's result besides the config and the case.

    Covers ``spec.workflow`` (name, template or entrypoint, options), ``spec.evaluators`` (every
    field), ``spec.models`` (each model's ``provider:name`` and ``baseUrl``; retries, timeouts,
    concurrency and the key's source do not change a scored answer), the
    dataset's ``inputField``/``expectedField``, and of the merged RunnableConfig ``base_config``
    the keys that reach the graph's behaviour (``configurable``, ``recursion_limit``); tags,
    metadata and run names only label traces.
    """
    models = {name: [m.model, m.base_url] for name, m in spec.models.items()}
    dataset = spec.dataset.model_dump(mode="json", by_alias=True)
    return _digest(
        {
            "version": CACHE_VERSION,
            "workflow": spec.workflow.model_dump(mode="json", by_alias=True),
            "evaluators": [e.model_dump(mode="json", by_alias=True) for e in spec.evaluators],
            "models": models,
            "fields": [dataset.get("inputField"), dataset.get("expectedField")],
            "config": {k: base_config.get(k) for k in ("configurable", "recursion_limit")},
        }
    )


def cache_key(config_checksum: str, dataset_hash: str, case: Case, scoring: str, row_digest: str | None = None) -> str:
    """The entry's key (sha256 hex); see the module docstring for what goes in.

    ``row_digest``: the case row's digest if already computed (else computed here).
    """
    parts = (config_checksum, dataset_hash, case.case_id, row_digest or _digest(case.row), scoring)
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _round_trips(value: Any) -> bool:
    try:
        return bool(json.loads(json.dumps(value, allow_nan=False)) == value)
    except (TypeError, ValueError):
        return False


def cacheable(result: CaseResult) -> bool:
    """Only a scored case is cached.

    Not cached: an error row (timeout, exception, bad dataset row: possibly transient), a case
    with an unscored result (a judge reply that did not parse), and a case whose output does not
    survive a JSON round trip unchanged (a hit must give the optimizer the same output).
    """
    if result.error is not None or result.case.error is not None or not result.results:
        return False
    if not all(getattr(r, "scored", True) for r in result.results.values()):
        return False
    return _round_trips(result.output)


def _result_json(result: EvalResult) -> dict[str, Any]:
    return {f.name: jsonable(getattr(result, f.name)) for f in dataclasses.fields(result)}


def _result_from(data: Mapping[str, Any]) -> EvalResult:
    names = {f.name for f in dataclasses.fields(EvalResult)}
    return EvalResult(**{k: v for k, v in data.items() if k in names})


def to_entry(result: CaseResult, *, key: str, config_checksum: str, dataset_hash: str) -> EvalCacheEntry:
    """The store entry for one scored case (see :func:`cacheable`)."""
    payload: dict[str, Any] = {
        "output": jsonable(result.output),
        "results": {name: _result_json(r) for name, r in result.results.items()},
        "latencySeconds": result.latency_seconds,
        "usedPrompts": sorted(result.used_prompts),
        "usage": result.usage.to_json() if result.usage is not None else None,
    }
    return EvalCacheEntry(
        cache_key=key,
        config_checksum=config_checksum,
        dataset_hash=dataset_hash,
        case_id=result.case.case_id,
        result=payload,
    )


def _usage_from(data: Any) -> Usage | None:
    if not isinstance(data, Mapping):
        return None
    s = UsageSummary.model_validate(data)
    usage = Usage(s.input_tokens or 0, s.output_tokens or 0, s.cost or 0.0, s.llm_seconds or 0.0)
    usage.calls.update(s.llm_calls or {})
    usage.cached.update(s.cached_calls or {})
    usage.truncated.update(s.truncated_calls or {})
    usage.parse_failures.update(s.parse_failures or {})
    return usage


def from_entry(payload: Mapping[str, Any], case: Case, *, run_id: str, stage: str) -> CaseResult | None:
    """The cached result as this stage's :class:`CaseResult` (its own thread id), or None if unreadable.

    The usage is the original case's (what the answer cost when it was computed); the run's
    ledger counts no call for a hit.
    """
    try:
        results = {name: _result_from(r) for name, r in payload["results"].items()}
        return CaseResult(
            case=case,
            stage=stage,
            thread_id=case_thread_id(run_id, stage, case.case_id),
            output=payload.get("output"),
            results=results,
            error=None,
            latency_seconds=float(payload.get("latencySeconds") or 0.0),
            used_prompts=frozenset(payload.get("usedPrompts") or ()),
            usage=_usage_from(payload.get("usage")),
        )
    except (AttributeError, KeyError, TypeError, ValueError):  # an entry of an older format: run the case again
        return None


def lookup(
    store_results: Mapping[str, Mapping[str, Any]],
    cases: Sequence[Case],
    keys: Sequence[str],
    *,
    run_id: str,
    stage: str,
) -> dict[int, CaseResult]:
    """``{index in cases: cached result}`` for the cases whose key has a readable entry."""
    out: dict[int, CaseResult] = {}
    for i, (case, key) in enumerate(zip(cases, keys, strict=True)):
        payload = store_results.get(key)
        if payload is None:
            continue
        hit = from_entry(payload, case, run_id=run_id, stage=stage)
        if hit is not None:
            out[i] = hit
    return out


class EvalCache:
    """One run's view of the cache: keys, look-ups, stores and the hit counters.

    Args:
        store: the run's store (``cached_results`` / ``cache_results``).
        scoring: :func:`scoring_checksum` of the run.
        dataset_hash: ``status.datasetHash``.
        run_id: names the thread ids of hits (``case_thread_id(run_id, stage, case_id)``).
    """

    def __init__(self, store: EvalCacheStore, *, scoring: str, dataset_hash: str, run_id: str) -> None:
        self.store = store
        self.scoring = scoring
        self.dataset_hash = dataset_hash
        self.run_id = run_id
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self._row_digest: dict[str, str] = {}

    def keys(self, config_checksum: str, cases: Sequence[Case]) -> list[str]:
        """The key of every case under ``config_checksum`` (see :func:`cache_key`)."""
        digests = self._row_digest
        for c in cases:
            if c.case_id not in digests:
                digests[c.case_id] = _digest(c.row)
        return [cache_key(config_checksum, self.dataset_hash, c, self.scoring, digests[c.case_id]) for c in cases]

    def lookup(
        self, config_checksum: str, cases: Sequence[Case], stage: str
    ) -> tuple[list[str], dict[int, CaseResult]]:
        """``(keys, {index: cached result})``; counts hits and misses."""
        keys = self.keys(config_checksum, cases)
        found = lookup(self.store.cached_results(keys), cases, keys, run_id=self.run_id, stage=stage)
        self.hits += len(found)
        self.misses += len(cases) - len(found)
        return keys, found

    def put(self, config_checksum: str, results: Sequence[CaseResult], keys: Sequence[str]) -> int:
        """Store the :func:`cacheable` results (an existing key keeps its entry); returns how many."""
        entries = [
            to_entry(r, key=k, config_checksum=config_checksum, dataset_hash=self.dataset_hash)
            for r, k in zip(results, keys, strict=True)
            if cacheable(r)
        ]
        self.store.cache_results(entries)
        self.stored += len(entries)
        return len(entries)


__all__ = [
    "CACHE_VERSION",
    "HITS_METRIC",
    "MISSES_METRIC",
    "EvalCache",
    "cache_key",
    "cacheable",
    "from_entry",
    "lookup",
    "scoring_checksum",
    "to_entry",
]
