"""The overfitting guard: does the best config quote validation or holdout inputs verbatim?

A prompt that contains an evaluation input word for word scores that case by memory, not by
skill, so its validation and holdout scores overstate what it does on unseen data (the failure
gepa-ai/gepa#261 reports for reflective optimizers). Training inputs are legitimate exemplars
(the ``exemplar`` optimizer adds them on purpose) and are never flagged, nor is an evaluation
input whose text is also a training input (a duplicated row: the quote may come from train).

Matching: inputs and prompts are compared after whitespace normalisation (runs of whitespace
become one space, ends stripped) and case folding; an input shorter than
:data:`MIN_INPUT_CHARS` characters after normalisation is ignored (short inputs such as ``"yes"``
or ``"card"`` occur in prompts by chance). A dict input is checked field by field (its string
values), any other input by its ``str``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from agentensor_api import LeakedInput

from ..data import Case

MIN_INPUT_CHARS: Final = 20
"""Inputs shorter than this (after normalisation) are not checked: a 20-character span is a
sentence fragment, which a prompt does not contain by chance."""

MAX_REPORTED: Final = 20
"""At most this many findings go into status (the condition's message gives the total)."""

_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Collapse whitespace to single spaces, strip the ends and case-fold."""
    return _WS.sub(" ", text).strip().casefold()


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)
    elif value is not None:
        yield str(value)


def find_leaks(
    prompts: Mapping[str, str], splits: Mapping[str, Sequence[Case]], train: Sequence[Case] = ()
) -> list[LeakedInput]:
    """Every (prompt, split, case) whose input occurs verbatim in the prompt's text.

    Args:
        prompts: prompt name -> text (the best config's texts).
        splits: split name (``validation``, ``holdout``) -> its cases; pass only evaluation
            splits, never ``train``.
        train: the training cases; an evaluation input with the same (normalised) text as a
            training input is not a leak.

    Returns:
        Findings sorted by prompt, split and case id (empty when the config is clean).
    """
    texts = {name: normalise(text) for name, text in prompts.items()}
    exemplars = {normalise(t) for c in train for t in _texts(c.input)}
    out: list[LeakedInput] = []
    for split, cases in splits.items():
        for case in cases:
            if case.error is not None:
                continue
            needles = {
                n
                for n in (normalise(t) for t in _texts(case.input))
                if len(n) >= MIN_INPUT_CHARS and n not in exemplars
            }
            for name, text in texts.items():
                if any(n in text for n in needles):
                    out.append(LeakedInput(prompt=name, split=split, case_id=case.case_id))
    return sorted(out, key=lambda f: (f.prompt, f.split, f.case_id))


def describe_leaks(leaks: Sequence[LeakedInput]) -> str:
    """The ``Overfitting`` condition's message: counts by split and the prompts concerned."""
    if not leaks:
        return "no validation or holdout input appears verbatim in the best config"
    by_split = {s: sum(1 for f in leaks if f.split == s) for s in ("validation", "holdout")}
    prompts = sorted({f.prompt for f in leaks})
    counts = ", ".join(f"{n} {s}" for s, n in by_split.items() if n)
    shown = ", ".join(prompts[:5]) + (f" and {len(prompts) - 5} more" if len(prompts) > 5 else "")
    return (
        f"the best config quotes {counts} input(s) verbatim (prompts: {shown}); its validation and holdout "
        "scores overstate unseen data"
    )
