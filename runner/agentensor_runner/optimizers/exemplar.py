"""``exemplar``: an LLM-free optimizer that turns misrouted cases into text edits.

For each trainable prompt with ``missed`` feedback (cases that should have used it and did
not), append the inputs of up to ``maxNewLinesPerStep`` of those cases as new lines of the
prompt's text. A prompt keeps its first line (the original description) and at most
``maxLinesPerPrompt`` lines. This is mistake-driven exemplar selection (in the spirit of the
perceptron / condensed nearest neighbour, Hart 1968, "The condensed nearest neighbor rule"):
only errors change the prompt, and the trainer keeps the edit only if validation improves.

Confusion-aware: a missed case also names the prompt that wrongly won it (``confused``
feedback), and, when the workflow reports it (the ``embedding-router`` with ``match: nearest``
puts it in ``output["line"]``), the line of that prompt that attracted it. Such a line is a
*confuser*. When a prompt is over ``maxLinesPerPrompt``, its confusers of this minibatch are
dropped first (most misroutes first), then its oldest added lines, in the spirit of the
reduced / edited nearest-neighbour rules (Gates 1972; Wilson 1972) that remove prototypes which
misclassify others. ``dropConfusersAfter: N`` (default 0, off) also drops an added line that
attracted at least N misroutes in one minibatch when its prompt is not full. The first line
is never dropped.

With ``candidates: K > 1`` each candidate draws a different seeded subset of the missed cases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import OptimizerConfigError
from ..prompts import PromptSet
from ..workflows import Feedback
from ._base import Candidate, CountingObserver, Step, check_options, new_candidate

_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "maxNewLinesPerStep": int,
    "maxLinesPerPrompt": int,
    "evictConfusers": bool,
    "dropConfusersAfter": int,
}


def _norm(line: str) -> str:
    return " ".join(line.split()).lower()


def confusers(feedback: Sequence[Feedback]) -> Counter[str]:
    """Normalised line -> how many misrouted cases it attracted, from ``confused`` feedback.

    Only feedback whose ``output`` is a mapping with a string ``line`` counts.
    """
    out: Counter[str] = Counter()
    for f in feedback:
        line = f.output.get("line") if f.role == "confused" and isinstance(f.output, Mapping) else None
        if isinstance(line, str) and line.strip():
            out[_norm(line)] += 1
    return out


class ExemplarOptimizer(CountingObserver):
    """See the module docstring.

    Args:
        options: ``maxNewLinesPerStep`` (default 4), ``maxLinesPerPrompt`` (default 32;
            all-MiniLM-L6-v2 embeds each line separately, so long descriptions cost only
            embedding time, not truncation), ``evictConfusers`` (default true) and
            ``dropConfusersAfter`` (default 0 = off).

    Raises:
        OptimizerConfigError: unknown option, wrong type, or a value out of range.
    """

    name = "exemplar"
    deps: tuple[str, ...] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        check_options(opts, _OPTIONS)
        self.max_new = int(opts.get("maxNewLinesPerStep", 4))
        self.max_lines = int(opts.get("maxLinesPerPrompt", 32))
        self.evict_confusers = bool(opts.get("evictConfusers", True))
        self.drop_after = int(opts.get("dropConfusersAfter", 0))
        if self.max_new < 1 or self.max_lines < 2 or self.drop_after < 0:
            raise OptimizerConfigError(
                "maxNewLinesPerStep must be >= 1, maxLinesPerPrompt >= 2 and dropConfusersAfter >= 0"
            )

    def _edit(self, text: str, new_inputs: Sequence[str], blamed: Counter[str] | None = None) -> str:
        """``text`` plus the new lines, cut to ``maxLinesPerPrompt`` (confusers first, then oldest)."""
        blamed = blamed or Counter()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if self.drop_after:
            lines = lines[:1] + [ln for ln in lines[1:] if blamed[_norm(ln)] < self.drop_after]
        have = {_norm(ln) for ln in lines}
        for item in new_inputs:
            line = " ".join(item.split())
            if line and line.lower() not in have:
                lines.append(line)
                have.add(line.lower())
        excess = len(lines) - self.max_lines
        if excess > 0 and self.evict_confusers:
            worst = sorted((ln for ln in lines[1:] if blamed[_norm(ln)]), key=lambda ln: -blamed[_norm(ln)])
            drop = set(worst[:excess])
            lines = lines[:1] + [ln for ln in lines[1:] if ln not in drop]
            excess = len(lines) - self.max_lines
        if excess > 0:
            lines = lines[:1] + lines[1 + excess :]
        return "\n".join(lines)

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[str] = set()
        blame = {name: confusers(fbs) for name, fbs in feedback.items()}
        for k in range(step.candidates):
            changes: dict[str, str] = {}
            for name in sorted(feedback):
                if name not in current.trainable:
                    continue
                missed = [f for f in feedback[name] if f.role == "missed" and isinstance(f.input, str)]
                if not missed and not (self.drop_after and blame[name]):
                    continue
                pick = missed if len(missed) <= self.max_new else step.rng.sample(missed, self.max_new)
                new_text = self._edit(current.texts[name], [str(f.input) for f in pick], blame[name])
                if new_text != current.texts[name]:
                    changes[name] = new_text
            if not changes:
                break
            cand = new_candidate(current, changes, seen, f"exemplar #{k}: edits for {len(changes)} prompt(s)")
            if cand is not None:
                out.append(cand)
        return out
