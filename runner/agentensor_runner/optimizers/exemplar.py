"""``exemplar``: an LLM-free optimizer that turns misrouted cases into text edits.

For each trainable prompt with ``missed`` feedback (cases that should have used it and did
not), append the inputs of up to ``maxNewLinesPerStep`` of those cases as new lines of the
prompt's text. A prompt keeps its first line (the original description) and at most
``maxLinesPerPrompt`` lines; beyond that the oldest added line is dropped. This is mistake-driven
exemplar selection (in the spirit of the perceptron / condensed nearest neighbour, Hart 1968):
only errors change the prompt, and the trainer keeps the edit only if validation improves.

With ``candidates: K > 1`` each candidate draws a different seeded subset of the missed cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..prompts import PromptSet
from ..workflows import Feedback
from ._base import Candidate, CountingObserver, Step, check_options, new_candidate

_OPTIONS: dict[str, type | tuple[type, ...]] = {"maxNewLinesPerStep": int, "maxLinesPerPrompt": int}


class ExemplarOptimizer(CountingObserver):
    """See the module docstring.

    Args:
        options: ``maxNewLinesPerStep`` (default 4) and ``maxLinesPerPrompt`` (default 32;
            all-MiniLM-L6-v2 embeds each line separately, so long descriptions cost only
            embedding time, not truncation).

    Raises:
        OptimizerConfigError: unknown option or wrong type.
    """

    name = "exemplar"
    deps: tuple[str, ...] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        check_options(opts, _OPTIONS)
        self.max_new = int(opts.get("maxNewLinesPerStep", 4))
        self.max_lines = int(opts.get("maxLinesPerPrompt", 32))
        if self.max_new < 1 or self.max_lines < 2:
            from ._base import OptimizerConfigError

            raise OptimizerConfigError("maxNewLinesPerStep must be >= 1 and maxLinesPerPrompt >= 2")

    def _edit(self, text: str, new_inputs: Sequence[str]) -> str:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        have = {ln.strip().lower() for ln in lines}
        for item in new_inputs:
            line = " ".join(item.split())
            if line and line.lower() not in have:
                lines.append(line)
                have.add(line.lower())
        if len(lines) > self.max_lines:
            lines = lines[:1] + lines[len(lines) - self.max_lines + 1 :]
        return "\n".join(lines)

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[str] = set()
        for k in range(step.candidates):
            changes: dict[str, str] = {}
            for name in sorted(feedback):
                if name not in current.trainable:
                    continue
                missed = [f for f in feedback[name] if f.role == "missed" and isinstance(f.input, str)]
                if not missed:
                    continue
                pick = missed if len(missed) <= self.max_new else step.rng.sample(missed, self.max_new)
                new_text = self._edit(current.texts[name], [f.input for f in pick])
                if new_text != current.texts[name]:
                    changes[name] = new_text
            if not changes:
                break
            cand = new_candidate(current, changes, seen, f"exemplar #{k}: +lines for {len(changes)} prompt(s)")
            if cand is not None:
                out.append(cand)
        return out
