"""Built-in ``embedding-router`` template: route an utterance to the most similar intent.

Graph: ``embed`` -> ``route`` (a LangGraph StateGraph). ``embed`` embeds the input with
all-MiniLM-L6-v2 (cached per text). ``route`` reads one trainable description per intent
(``options.descriptions``, default ``{{prompts.intent}}``), turns each description into a
prototype vector and returns ``{intent, score}`` for the highest cosine similarity.

Description -> prototype: every non-empty line of the description is embedded and the
L2-normalised mean of the line vectors is the prototype (class prototypes as in Snell et al.
2017, "Prototypical Networks for Few-shot Learning"). A one-line description is just its own
embedding. Line embeddings are cached by text, so editing one description re-embeds only its
new lines.

Nearest lines (``match: nearest``): instead of one prototype per intent, every line is kept and
an intent's score is the mean of its ``topK`` best line similarities (of all its lines when it
has fewer; k-nearest-neighbour scoring per class after Cover & Hart 1967, "Nearest neighbor
pattern classification"; with ``topK: 1`` it is the best-matching line). The output then also
carries ``line``, the winning intent's best-matching line, so credit assignment can tell which
line attracted a case.

Options:
    descriptions: placeholder resolving to a mapping of intent -> TextTensor
        (default ``{{prompts.intent}}``).
    match: ``prototype`` (default) or ``nearest``.
    topK: for ``match: nearest``, how many best lines of an intent are averaged (default 1).
    embedder: ``all-MiniLM-L6-v2`` (default) or ``hashing`` (a small bag-of-words embedder for
        tests that must not load torch).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph import END, START, StateGraph

from agentensor_api import ManifestError

from ..llm import CachedEmbedder, Embedder, HashingEmbedder, Vector, default_embedder
from ..prompts import TextTensor, iter_tensors
from ._base import Attribution, Feedback, Workflow, render

DEFAULT_DESCRIPTIONS = "{{prompts.intent}}"


class RouterInput(TypedDict):
    input: str


class RouterOutput(TypedDict, total=False):
    intent: str
    score: float
    line: str


class RouterState(TypedDict, total=False):
    input: str
    embedding: Any
    intent: str
    score: float
    line: str


def description_lines(text: str) -> list[str]:
    """Non-empty stripped lines of a description (a bullet ``- `` prefix is dropped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- "):
            line = line[2:].strip()
        if line:
            out.append(line)
    return out


class _Prototypes:
    """LRU cache: tuple of (intent, description) -> (labels, prototype matrix)."""

    def __init__(self, embedder: Embedder, size: int = 64) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[tuple[tuple[str, str], ...], tuple[list[str], Vector]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()

    def get(self, descriptions: Mapping[str, str]) -> tuple[list[str], Vector]:
        key = tuple(sorted(descriptions.items()))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        with self._build_lock:  # concurrent cases with a new config build it once
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
            labels = [k for k, _ in key]
            protos = np.zeros((len(labels), self._embedder.dim), dtype=np.float32)
            lines = [description_lines(text) or [text] for _, text in key]
            vecs = self._embedder.embed([ln for group in lines for ln in group])  # one batch
            start = 0
            for i, group in enumerate(lines):
                mean = vecs[start : start + len(group)].mean(axis=0)
                start += len(group)
                norm = float(np.linalg.norm(mean))
                protos[i] = mean / norm if norm > 0 else mean
            with self._lock:
                self._cache[key] = (labels, protos)
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return labels, protos


_LineSet = tuple[list[str], Vector, list[list[str]]]


class _Lines:
    """LRU cache: tuple of (intent, description) -> (labels, padded line tensor, line texts).

    The tensor has shape ``(intents, max_lines, dim)``; an intent's missing lines are zero rows
    (``len(line texts[i])`` says how many are real).
    """

    def __init__(self, embedder: Embedder, size: int = 64) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[tuple[tuple[str, str], ...], _LineSet] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, descriptions: Mapping[str, str]) -> _LineSet:
        key = tuple(sorted(descriptions.items()))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            labels = [k for k, _ in key]
            lines = [description_lines(text) or [text] for _, text in key]
            vecs = self._embedder.embed([ln for group in lines for ln in group])
            tensor = np.zeros((len(labels), max(len(g) for g in lines), self._embedder.dim), dtype=np.float32)
            start = 0
            for i, group in enumerate(lines):
                tensor[i, : len(group)] = vecs[start : start + len(group)]
                start += len(group)
            self._cache[key] = (labels, tensor, lines)
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return labels, tensor, lines


def nearest_scores(tensor: Vector, counts: npt.NDArray[np.int64], query: Vector, top_k: int) -> tuple[Vector, Vector]:
    """Per-intent score (mean of the ``top_k`` best line similarities) and best line index.

    Args:
        tensor: ``(intents, max_lines, dim)`` unit line vectors, zero rows past ``counts[i]``.
        counts: ``(intents,)`` number of real lines of each intent (>= 1).
        query: ``(dim,)`` unit vector.
        top_k: lines averaged per intent (>= 1); an intent with fewer lines averages all of them.

    Returns:
        ``(scores (intents,), best_line (intents,))``; cosine similarities in [-1, 1].
    """
    sims = tensor @ query
    sims[np.arange(sims.shape[1])[None, :] >= counts[:, None]] = -np.inf
    best_line = sims.argmax(axis=1)
    k = min(top_k, sims.shape[1])
    if k == 1:
        return sims.max(axis=1), best_line
    top = -np.sort(-sims, axis=1)[:, :k]
    top[~np.isfinite(top)] = 0.0
    return top.sum(axis=1) / np.minimum(counts, k), best_line


def _flatten(value: Any, root: str) -> dict[str, TextTensor]:
    if isinstance(value, TextTensor):
        return {root: value}
    if not isinstance(value, Mapping):
        raise TypeError(f"descriptions must resolve to a mapping of TextTensors, got {type(value).__name__}")
    return {t.name.removeprefix(root + ".") if root else t.name: t for t in iter_tensors(value)}


def build(options: Mapping[str, Any], *, embedder: Embedder | None = None) -> Workflow:
    """Compile the router graph.

    Raises:
        ManifestError: on unknown options (field ``spec.workflow.options.<key>``), a
            ``descriptions`` that is not a placeholder, or an unknown ``embedder``.
    """
    descriptions_ref, prefix = _descriptions(options)
    emb = _embedder(options, embedder)

    def texts(inputs: Sequence[Any]) -> list[str]:
        return [x for x in inputs if isinstance(x, str) and x.strip()]

    def prepare(inputs: Sequence[Any]) -> None:
        emb.embed(texts(inputs))

    def prefetch(inputs: Sequence[Any]) -> None:
        emb.prefetch(texts(inputs))

    return Workflow(
        graph=_graph(emb, descriptions_ref, prefix, *_matching(options)),
        defaults={"run_name": "embedding-router", "tags": ["agentensor", "embedding-router"]},
        attribute=_attribution(prefix),
        prepare=prepare,
        prefetch=prefetch,
    )


def _descriptions(options: Mapping[str, Any]) -> tuple[str, str]:
    """Check the option names; ``(descriptions placeholder, prompt-name prefix it resolves to)``."""
    unknown = set(options) - {"descriptions", "embedder", "match", "topK"}
    if unknown:
        raise ManifestError(
            f"spec.workflow.options.{sorted(unknown)[0]}",
            "unknown option for template embedding-router; known: descriptions, embedder, match, topK",
        )
    descriptions_ref = options.get("descriptions", DEFAULT_DESCRIPTIONS)
    if not isinstance(descriptions_ref, str) or not descriptions_ref.strip().startswith("{{"):
        raise ManifestError("spec.workflow.options.descriptions", "must be a placeholder like '{{prompts.intent}}'")
    prefix = descriptions_ref.strip()[2:-2].strip().removeprefix("prompts.").removeprefix("prompts")
    return descriptions_ref, prefix


def _matching(options: Mapping[str, Any]) -> tuple[str, int]:
    """``(match, topK)`` from the options (see the module docstring)."""
    match = options.get("match", "prototype")
    if match not in ("prototype", "nearest"):
        raise ManifestError("spec.workflow.options.match", f"unknown match {match!r}; use prototype or nearest")
    top_k = options.get("topK", 1)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 64:
        raise ManifestError("spec.workflow.options.topK", f"must be an integer in [1, 64], got {top_k!r}")
    return str(match), top_k


def _embedder(options: Mapping[str, Any], embedder: Embedder | None) -> CachedEmbedder:
    """The given embedder, else ``options.embedder``, wrapped in a per-text cache."""
    if embedder is None:
        kind = options.get("embedder", "all-MiniLM-L6-v2")
        if kind == "hashing":
            embedder = CachedEmbedder(HashingEmbedder())
        elif kind == "all-MiniLM-L6-v2":
            embedder = default_embedder()
        else:
            raise ManifestError(
                "spec.workflow.options.embedder", f"unknown embedder {kind!r}; use all-MiniLM-L6-v2 or hashing"
            )
    return embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)


def _graph(
    emb: CachedEmbedder, descriptions_ref: str, prefix: str, match: str = "prototype", top_k: int = 1
) -> Runnable[Any, Any]:
    """``embed`` -> ``route``, compiled (see the module docstring)."""
    prototypes = _Prototypes(emb)
    line_sets = _Lines(emb)

    def embed(state: RouterState) -> dict[str, Any]:
        text = state.get("input")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"input must be a non-empty string, got {text!r}")
        return {"embedding": emb.embed([text])[0]}

    def route(state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        tensors = _flatten(render(descriptions_ref, config), prefix)
        if not tensors:
            raise KeyError(f"{descriptions_ref} resolved to no prompts")
        texts = {k: t.text for k, t in tensors.items()}
        query = np.asarray(state["embedding"], dtype=np.float32)
        if match == "nearest":
            labels, tensor, lines = line_sets.get(texts)
            counts = np.array([len(g) for g in lines], dtype=np.int64)
            scores, best_line = nearest_scores(tensor, counts, query, top_k)
            best = int(np.argmax(scores))
            line = lines[best][int(best_line[best])]
            return {"intent": labels[best], "score": float(scores[best]), "line": line}
        labels, protos = prototypes.get(texts)
        sims = protos @ query
        best = int(np.argmax(sims))
        return {"intent": labels[best], "score": float(sims[best])}

    g: StateGraph[RouterState, Any, RouterInput, RouterOutput] = StateGraph(
        RouterState, input_schema=RouterInput, output_schema=RouterOutput
    )
    g.add_node("embed", embed)
    g.add_node("route", route)
    g.add_edge(START, "embed")
    g.add_edge("embed", "route")
    g.add_edge("route", END)
    return g.compile(name="embedding-router")


def _attribution(prefix: str) -> Attribution:
    """Credit assignment for the router: the expected intent's description and the chosen one's."""

    def attribute(
        *,
        case_id: str,
        input: Any,
        output: Any,
        expected: Any,
        used: frozenset[str],
        trainable: frozenset[str],
        message: str,
    ) -> list[Feedback]:
        """Blame the expected intent's description (missed) and the chosen one's (confused)."""
        out: list[Feedback] = []
        predicted = output.get("intent") if isinstance(output, Mapping) else None
        for label, role in ((expected, "missed"), (predicted, "confused")):
            if label is None:
                continue
            name = f"{prefix}.{label}" if prefix else str(label)
            if name in trainable:
                out.append(Feedback(name, case_id, input, expected, output, role, message))
        return out

    return attribute
