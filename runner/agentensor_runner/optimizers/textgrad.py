"""``textgrad``: LLM feedback ("textual gradients") aggregated per prompt, then LLM rewrites.

For one minibatch, per trainable prompt that took part in failed cases:

1. **gradient**: ONE call to the optimizer model with the prompt's text and up to
   ``maxExamples`` of its failed cases (input, expected, output, loss = the evaluator's
   reason); the model answers with feedback on what in the prompt caused the failures.
   The calls for different prompts run concurrently (``asyncio.gather``).
2. **rewrite**: ONE call per prompt with the text and its feedback, asking for ``K``
   (``spec.optimizer.candidates``) alternative texts, each inside ``<prompt>...</prompt>``.
   Rewrites also run concurrently across prompts. Untagged, empty or placeholder-losing
   rewrites are rejected before any validation call and counted by reason
   (:func:`parse_candidates`).

Candidate ``k`` changes every prompt to its ``k``-th rewrite; the trainer scores each candidate
on the validation split and keeps one only if it beats the current score (the spine's rule).
Upstream agentensor makes one serial gradient call per failed case and rewrites once per
epoch; here a minibatch with F failures over P prompts costs P gradient + P rewrite calls.

The optimizer model is ``spec.optimizer.model`` (a key of ``spec.models``), separate from the
task model; its calls are counted under the purposes ``gradient`` and ``rewrite``.

Options:
    maxExamples: failed cases shown per gradient call (default 8; a seeded sample if more).
    maxChars: cap on each rendered input/expected/output in the gradient prompt (default 600).
    parameters: sampling parameters of the optimizer model (default ``{temperature: 0.7}``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from agentensor_api import ManifestError

from .._errors import OptimizerConfigError
from ..evaluators import as_text
from ..llm import LlmRuntime, sampling_kwargs
from ..prompts import PromptSet
from ..workflows import Feedback
from ._base import Candidate, CountingObserver, Step, check_options, new_candidate

_OPTIONS: dict[str, type | tuple[type, ...]] = {"maxExamples": int, "maxChars": int, "parameters": dict}

GRADIENT_SYSTEM = (
    "You improve prompts of an LLM application. You are shown one prompt and cases where the "
    "application failed while using it. Diagnose what in the prompt caused these failures and say concretely "
    "how the prompt should change. Give feedback only; do not write the new prompt."
)
REWRITE_SYSTEM = (
    "You rewrite one prompt of an LLM application following the feedback. Keep what works, fix what the "
    "feedback criticises, keep any {{placeholders}} unchanged. Reply with exactly {k} alternative version(s) "
    "of the prompt, each wrapped in <prompt> and </prompt>, and nothing else."
)
_CANDIDATE = re.compile(r"<prompt>(.*?)</prompt>", re.DOTALL)


def _clip(value: Any, limit: int) -> str:
    text = as_text(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _config(purpose: str, prompt: str) -> RunnableConfig:
    return {"run_name": f"textgrad:{purpose}", "tags": ["agentensor", "textgrad"], "metadata": {"prompt": prompt}}


_PLACEHOLDER = re.compile(r"\{\{\s*[^{}]+?\s*\}\}")

REJECT_REASONS = ("empty", "untagged", "lostPlaceholder")
"""Why a rewrite is dropped before any validation call; counted in checkpoint ``extra.calls`` as
``rejectedEmpty``, ``rejectedUntagged``, ``rejectedLostPlaceholder``."""


def _placeholders(text: str) -> set[str]:
    return {"".join(m.split()) for m in _PLACEHOLDER.findall(text)}


def parse_candidates(text: str, current: str, k: int, rejected: dict[str, int] | None = None) -> list[str]:
    """Up to ``k`` distinct rewrites from a reply: its ``<prompt>...</prompt>`` blocks.

    Rejected before any validation call, each counted in ``rejected`` under its reason
    (:data:`REJECT_REASONS`): a reply with no ``<prompt>`` block (``untagged``; a weak model's
    chatter is not a prompt), an empty block or reply (``empty``), and a rewrite that lost one
    of the current text's ``{{placeholders}}`` (``lostPlaceholder``). Rewrites equal to
    ``current`` or repeated are dropped silently (nothing would change).
    """
    counts = rejected if rejected is not None else {}
    if not text.strip():
        counts["empty"] = counts.get("empty", 0) + 1
        return []
    blocks = [m.strip() for m in _CANDIDATE.findall(text)]
    if not blocks:
        counts["untagged"] = counts.get("untagged", 0) + 1
        return []
    needed = _placeholders(current)
    out: list[str] = []
    for c in blocks:
        reason = "empty" if not c else ("lostPlaceholder" if not needed <= _placeholders(c) else None)
        if reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
        elif c != current.strip() and c not in out:
            out.append(c)
    return out[:k]


class TextGradOptimizer(CountingObserver):
    """See the module docstring.

    Args:
        options: ``spec.optimizer.options``.
        llm: the run's models; ``model``: ``spec.optimizer.model``.

    Raises:
        OptimizerConfigError: unknown or ill-typed options, no ``llm``, or an unknown model.
    """

    name = "textgrad"
    deps = ("llm", "model")

    def __init__(
        self, options: Mapping[str, Any] | None = None, *, llm: LlmRuntime | None = None, model: str | None = None
    ) -> None:
        opts = dict(options or {})
        check_options(opts, _OPTIONS)
        self.max_examples = int(opts.get("maxExamples", 8))
        self.max_chars = int(opts.get("maxChars", 600))
        if self.max_examples < 1 or self.max_chars < 50:
            raise OptimizerConfigError("maxExamples must be >= 1 and maxChars >= 50")
        if llm is None or model is None:
            raise OptimizerConfigError("textgrad needs spec.models and spec.optimizer.model")
        try:
            self.model = llm.check(model, "spec.optimizer.model")
            params = opts.get("parameters", {"temperature": 0.7})
            self.kwargs = sampling_kwargs(params, "spec.optimizer.options.parameters")
        except ManifestError as e:
            raise OptimizerConfigError(str(e)) from None
        self.llm = llm
        self.rejections: dict[str, int] = {}
        """Rewrites rejected before validation over the run, by reason (:data:`REJECT_REASONS`)."""

    def _examples(self, items: Sequence[Feedback], step: Step) -> list[Feedback]:
        unique = list({f.case_id: f for f in items}.values())
        if len(unique) <= self.max_examples:
            return unique
        return sorted(step.rng.sample(unique, self.max_examples), key=lambda f: f.case_id)

    async def gradient(self, name: str, text: str, items: Sequence[Feedback], step: Step) -> str:
        """One feedback call for prompt ``name`` over its failed cases."""
        shown = self._examples(items, step)
        cases = "\n\n".join(
            f"### Case {f.case_id}\nInput: {_clip(f.input, self.max_chars)}\n"
            f"Expected: {_clip(f.expected, self.max_chars)}\nOutput: {_clip(f.output, self.max_chars)}\n"
            f"Loss: {_clip(f.message, self.max_chars)}"
            for f in shown
        )
        user = (
            f"Prompt `{name}`:\n<prompt>\n{text}\n</prompt>\n\n"
            f"Failed cases ({len(shown)} of {len({f.case_id for f in items})}):\n\n{cases}"
        )
        messages = [SystemMessage(GRADIENT_SYSTEM), HumanMessage(user)]
        return await self.llm.ainvoke(self.model, "gradient", self.kwargs, messages, _config("gradient", name))

    async def rewrite(
        self, name: str, text: str, feedback: str, k: int, rejected: dict[str, int] | None = None
    ) -> list[str]:
        """One rewrite call for prompt ``name`` returning up to ``k`` new texts (see
        :func:`parse_candidates` for what is rejected and counted in ``rejected``)."""
        user = f"Prompt `{name}`:\n<prompt>\n{text}\n</prompt>\n\nFeedback:\n{feedback}\n\nWrite {k} version(s)."
        system = REWRITE_SYSTEM.replace("{k}", str(k))
        messages = [SystemMessage(system), HumanMessage(user)]
        reply = await self.llm.ainvoke(self.model, "rewrite", self.kwargs, messages, _config("rewrite", name))
        return parse_candidates(reply, text, k, rejected)

    async def _one(self, name: str, current: PromptSet, items: Sequence[Feedback], step: Step) -> list[str]:
        text = current.texts[name]
        grad = await self.gradient(name, text, items, step)
        rejected: dict[str, int] = {}
        out = await self.rewrite(name, text, grad, step.candidates, rejected)
        for reason, n in rejected.items():
            key = "rejected" + reason[0].upper() + reason[1:]
            step.calls[key] = step.calls.get(key, 0) + n
            self.rejections[reason] = self.rejections.get(reason, 0) + n
        return out

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]:
        names = [n for n in sorted(feedback) if n in current.trainable and feedback[n]]
        if not names:
            return []
        rewrites = await asyncio.gather(*(self._one(n, current, feedback[n], step) for n in names))
        out: list[Candidate] = []
        seen: set[str] = set()
        for k in range(step.candidates):
            changes = {n: texts[k] for n, texts in zip(names, rewrites, strict=True) if k < len(texts)}
            if not changes:
                break
            cand = new_candidate(current, changes, seen, f"textgrad #{k}: rewrote {len(changes)} prompt(s)")
            if cand is not None:
                out.append(cand)
        return out
