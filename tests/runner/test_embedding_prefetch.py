"""CachedEmbedder's in-flight sharing and background prefetch, and an EvaluationRun that uses it.

Real embedders (feature hashing) behind a recorder of the inner calls; threads are real threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentensor_api import parse_resource
from agentensor_runner import execute
from agentensor_runner.llm import CachedEmbedder, HashingEmbedder, Vector
from agentensor_store import Store


class GatedEmbedder:
    """Hashing embeddings; each inner call is recorded and, while ``gate`` is clear, blocks."""

    def __init__(self, *, fail_first: int = 0, model_lock: bool = False) -> None:
        self.inner = HashingEmbedder()
        self.dim = self.inner.dim
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._fail = fail_first
        self._lock = threading.Lock()
        self._model = threading.Lock() if model_lock else None  # one call at a time, as MiniLMEmbedder

    def embed(self, texts: Sequence[str]) -> Vector:
        if self._model is None:
            return self._embed(texts)
        with self._model:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Vector:
        with self._lock:
            self.calls.append(list(texts))
            fail, self._fail = self._fail > 0, max(0, self._fail - 1)
        self.entered.set()
        self.gate.wait(10)
        if fail:
            raise RuntimeError("model out of memory")
        return self.inner.embed(texts)


TEXTS = [f"utterance number {i} about card {i % 7}" for i in range(40)]


def test_a_text_in_flight_is_waited_for_not_embedded_twice() -> None:
    inner = GatedEmbedder()
    emb = CachedEmbedder(inner)
    inner.gate.clear()
    first = threading.Thread(target=emb.embed, args=(["hello there", "lost card"],))
    first.start()
    assert inner.entered.wait(5)
    out: list[Vector] = []
    second = threading.Thread(target=lambda: out.append(emb.embed(["lost card", "new text"])))
    second.start()
    second.join(0.3)
    assert second.is_alive(), "'lost card' is in flight: the second call waits for it"
    inner.gate.set()
    first.join(5)
    second.join(5)
    assert inner.calls == [["hello there", "lost card"], ["new text"]]
    assert np.allclose(out[0], HashingEmbedder().embed(["lost card", "new text"]))
    assert emb.misses == 3


def test_prefetch_embeds_in_order_in_batches_and_every_text_once() -> None:
    inner = GatedEmbedder()
    emb = CachedEmbedder(inner)
    emb.prefetch(TEXTS + TEXTS[:5], batch_size=16).join(10)
    assert inner.calls == [TEXTS[:16], TEXTS[16:32], TEXTS[32:]]
    assert np.allclose(emb.embed(TEXTS), HashingEmbedder().embed(TEXTS))
    assert len(inner.calls) == 3 and emb.misses == len(TEXTS)


def test_a_caller_that_needs_a_text_now_goes_before_the_rest_of_the_prefetch() -> None:
    inner = GatedEmbedder(model_lock=True)
    emb = CachedEmbedder(inner)
    inner.gate.clear()
    prefetch = emb.prefetch(TEXTS, batch_size=8)
    assert inner.entered.wait(5)  # the first batch holds the model
    caller = threading.Thread(target=emb.embed, args=(["needed now", TEXTS[3], TEXTS[30]],))
    caller.start()
    for _ in range(500):  # until the caller has claimed its texts and queues for the model
        if emb._demand == 1:
            break
        threading.Event().wait(0.01)
    assert emb._demand == 1
    inner.gate.set()
    caller.join(5)
    prefetch.join(10)
    assert inner.calls[0] == TEXTS[:8]
    assert inner.calls[1] == ["needed now", TEXTS[30]], "the caller's batch runs next, before batch 2"
    assert sorted(t for call in inner.calls for t in call) == sorted([*TEXTS, "needed now"])


def test_a_failed_prefetch_batch_is_embedded_by_the_caller_that_needs_it() -> None:
    inner = GatedEmbedder(fail_first=1)
    emb = CachedEmbedder(inner)
    emb.prefetch(TEXTS[:10], batch_size=10).join(10)
    assert emb.misses == 0
    assert np.allclose(emb.embed(TEXTS[:2]), HashingEmbedder().embed(TEXTS[:2]))
    assert inner.calls[1] == TEXTS[:2]


def test_a_caller_waiting_on_a_failed_batch_embeds_its_text_itself() -> None:
    inner = GatedEmbedder(fail_first=1)
    emb = CachedEmbedder(inner)
    inner.gate.clear()
    prefetch = emb.prefetch(TEXTS[:10], batch_size=10)
    assert inner.entered.wait(5)
    out: list[Vector] = []
    caller = threading.Thread(target=lambda: out.append(emb.embed([TEXTS[4]])))
    caller.start()
    caller.join(0.2)
    inner.gate.set()
    caller.join(5)
    prefetch.join(5)
    assert np.allclose(out[0], HashingEmbedder().embed([TEXTS[4]]))
    assert inner.calls == [TEXTS[:10], [TEXTS[4]]]


def test_an_error_of_the_callers_own_batch_is_raised() -> None:
    emb = CachedEmbedder(GatedEmbedder(fail_first=1))
    with pytest.raises(RuntimeError, match="out of memory"):
        emb.embed(["a"])
    assert np.allclose(emb.embed(["a"]), HashingEmbedder().embed(["a"]))


EVAL = """
apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata: {name: router}
spec:
  workflow: router
  prompts:
    intent.card: {text: "lost card stolen card"}
    intent.refund: {text: "refund money back"}
---
apiVersion: agentensor.dev/v1alpha1
kind: EvaluationRun
metadata: {name: routed}
spec:
  promptConfigRef: {name: router}
  workflow: {template: embedding-router, options: {embedder: hashing}}
  parallelism: 4
  evaluators: [{name: acc, type: exact_match, outputField: intent}]
"""


def test_an_evaluation_run_scores_the_same_with_prefetched_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every case routed as when every input is embedded before the first case (no prefetch)."""
    import yaml

    from agentensor_runner import runs

    docs = list(yaml.safe_load_all(EVAL))
    rows = [{"id": str(i), "text": f"my card {i} was stolen" if i % 2 else f"i want a refund {i}"} for i in range(300)]
    for r in rows:
        r["label"] = "card" if "card" in r["text"] else "refund"
    docs[1]["spec"]["dataset"] = {"inline": rows, "idField": "id", "inputField": "text", "expectedField": "label"}
    pc, run = parse_resource(docs[0]), parse_resource(docs[1])
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.upgrade()
        outputs = []
        for run_id in ("prefetched", "prepared"):
            if run_id == "prepared":
                monkeypatch.setattr(runs, "_prepare", lambda ctx, inputs: ctx.workflow.prepare(inputs))
            status = asyncio.run(execute(run, pc, store, base_dir=tmp_path, run_id=run_id))  # type: ignore[arg-type]
            assert status.phase == "Succeeded", status.message
            assert status.cases_completed == len(rows) and not status.cases_failed
            outputs.append({r.case_id: r.output for r in store.list_cases(run_id)})
        assert len(outputs[0]) == len(rows)
        assert outputs[0] == outputs[1]
        assert sum(outputs[0][r["id"]]["intent"] == r["label"] for r in rows) >= 290
