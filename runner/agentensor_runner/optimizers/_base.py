"""The optimizer interface.

An optimizer sees the current config and the feedback of one minibatch, and proposes candidate
configs. The trainer scores each candidate on the validation split, tells the optimizer the
score (``observe``), and accepts a candidate only if it beats the current validation score.

This fits both families:
- feedback-driven optimizers (``exemplar`` here; the LLM ``textgrad`` optimizer) use
  ``feedback`` and ignore most of ``observe``;
- search optimizers (Optuna TPE over a declared space) ignore ``feedback``, ``propose`` is an
  ask and ``observe`` a tell.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._errors import OptimizerConfigError
from ..prompts import PromptSet
from ..workflows import Feedback


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed config and a short note on what changed."""

    prompts: PromptSet
    changed: tuple[str, ...]
    note: str = ""


@dataclass
class Step:
    """Where the loop is: epoch (1-based), minibatch index, how many candidates, a seeded RNG."""

    epoch: int
    batch: int
    candidates: int
    rng: random.Random
    calls: dict[str, int] = field(default_factory=dict)
    """Counters the optimizer may bump (e.g. ``{"gradient": 3, "rewrite": 1}`` LLM calls)."""


class Optimizer(Protocol):
    """Proposes candidate configs from feedback; see the module docstring."""

    name: str

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]: ...

    def observe(self, candidate: Candidate, score: float, accepted: bool) -> None: ...


def check_options(options: Mapping[str, Any], known: Mapping[str, type | tuple[type, ...]]) -> None:
    """Raise :class:`OptimizerConfigError` for unknown options or wrong types."""
    for key, value in options.items():
        if key not in known:
            raise OptimizerConfigError(f"unknown option {key!r}; known: {sorted(known)}")
        if not isinstance(value, known[key]) or (isinstance(value, bool) and known[key] is int):
            raise OptimizerConfigError(f"option {key!r} has the wrong type {type(value).__name__}")


class CountingObserver:
    """``observe`` for feedback-driven optimizers: counts accepted and rejected candidates."""

    accepted: int = 0
    rejected: int = 0

    def observe(self, candidate: Candidate, score: float, accepted: bool) -> None:
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1


def new_candidate(current: PromptSet, changes: Mapping[str, str], seen: set[str], note: str) -> Candidate | None:
    """``current`` with ``changes`` as a :class:`Candidate`, or ``None`` if ``seen`` has its checksum.

    Adds the checksum to ``seen``, so the K candidates of one step are all different configs.
    """
    cand = current.with_texts(changes)
    key = cand.checksum()
    if key in seen:
        return None
    seen.add(key)
    return Candidate(cand, tuple(sorted(changes)), note)
