"""``fewshot``: LLM-free few-shot demonstrations picked from the train split.

In the spirit of DSPy's ``LabeledFewShot`` (Khattab et al., 2023, "DSPy: Compiling Declarative
Language Model Calls into Self-Improving Pipelines"): labelled train cases become
demonstrations appended to a trainable prompt. Each ``propose`` draws, with the step's seeded
RNG, ``candidates`` different subsets of ``k`` cases from the minibatch's failed cases that have
an expected value (a pool that grows over the run, so later steps can also pick cases of earlier
minibatches), and renders them after the prompt's own text::

    <prompt text>

    Examples:
    Input: <case input>
    Answer: <expected>

No model is called; the trainer keeps a candidate only if it scores better on validation, and
the holdout guard decides promotion, as for every optimizer. The prompt's original text (before
the first ``Examples:`` block) is kept, so demonstrations are replaced, not accumulated.

Options:
    k: demonstrations per candidate (default 4, at least 1).
    prompt: the trainable prompt to extend (default: every trainable prompt with feedback).
    maxChars: cap on each rendered input and answer (default 300).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import OptimizerConfigError
from ..evaluators import as_text
from ..prompts import PromptSet
from ..workflows import Feedback
from ._base import Candidate, CountingObserver, Step, check_options, new_candidate

_OPTIONS: dict[str, type | tuple[type, ...]] = {"k": int, "prompt": str, "maxChars": int}
MARKER = "\n\nExamples:\n"


def _clip(value: Any, limit: int) -> str:
    text = " ".join(as_text(value).split())
    return text if len(text) <= limit else text[:limit] + "..."


class FewShotOptimizer(CountingObserver):
    """See the module docstring.

    Raises:
        OptimizerConfigError: unknown or ill-typed options, ``k < 1`` or ``maxChars < 20``.
    """

    name = "fewshot"
    deps: tuple[str, ...] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        check_options(opts, _OPTIONS)
        self.k = int(opts.get("k", 4))
        self.max_chars = int(opts.get("maxChars", 300))
        self.only: str | None = opts.get("prompt")
        if self.k < 1 or self.max_chars < 20:
            raise OptimizerConfigError("k must be >= 1 and maxChars >= 20")
        self.pool: dict[str, dict[str, Feedback]] = {}
        """prompt name -> case id -> a labelled failed train case seen so far."""

    def render(self, base: str, demos: Sequence[Feedback]) -> str:
        """``base`` followed by the ``Examples:`` block of ``demos``."""
        lines = [f"Input: {_clip(d.input, self.max_chars)}\nAnswer: {_clip(d.expected, self.max_chars)}" for d in demos]
        return base + MARKER + "\n\n".join(lines)

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]:
        names = [n for n in sorted(feedback) if n in current.trainable and (self.only in (None, n))]
        for n in names:
            bucket = self.pool.setdefault(n, {})
            for f in feedback[n]:
                if f.expected is not None:
                    bucket.setdefault(f.case_id, f)
        out: list[Candidate] = []
        seen: set[str] = set()
        for i in range(step.candidates):
            changes: dict[str, str] = {}
            for n in names:
                pool = sorted(self.pool.get(n, {}).values(), key=lambda f: f.case_id)
                if not pool:
                    continue
                demos = pool if len(pool) <= self.k else step.rng.sample(pool, self.k)
                changes[n] = self.render(current.texts[n].split(MARKER, 1)[0], demos)
            if not changes:
                break
            cand = new_candidate(current, changes, seen, f"fewshot #{i}: {self.k} demonstrations")
            if cand is not None:
                out.append(cand)
        return out
