"""The loop state: one object, saved whole in every checkpoint and loaded whole on resume.

:class:`LoopState` is what the loop carries from step to step: the epoch and step reached, the
current (best) config with its validation scores, the ``selection: pareto`` pool with each
member's per-case validation scores and its parent, the merges proposed, the patience counter
and the budgets used. Every checkpoint stores :meth:`LoopState.to_json` under ``extra["loop"]``
(:data:`LOOP_KEY`), so a resumed run continues its pool, parents and counters exactly where the
checkpoint left them (gepa's ``GEPAState``, saved and loaded whole). The loop keeps no random
state between steps: every draw uses a ``random.Random`` seeded from ``(dataset.seed, epoch,
batch, purpose)``, so there is none to save.

A checkpoint written before ``extra["loop"]`` existed still resumes (:func:`legacy_state`): the
patience counter from ``extra["stale"]`` (or derived, :func:`stale_after`), the merges from the
``calls.mergeProposals`` counters, the budgets from ``extra["budget"]``, and an empty pool that
the loop seeds with the current config, as those runners did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from agentensor_store import CheckpointRecord

from ..execution import Evaluation
from ..prompts import PromptSet

LOOP_KEY: Final = "loop"
"""Checkpoint ``extra`` key: :meth:`LoopState.to_json` of the state after that checkpoint's epoch."""

STALE_KEY: Final = "stale"
"""Checkpoint ``extra`` key: epochs in a row, up to and including this one, that accepted no candidate."""

STATE_FORMAT: Final = 1
"""``extra["loop"]["format"]``: bumped when the saved shape changes incompatibly."""


@dataclass(frozen=True)
class Scored:
    """A config with its validation figures (all a selector, a merge or a checkpoint needs of it).

    Attributes:
        prompts: the config.
        objective: the objective evaluator's mean on the validation split.
        means: every evaluator's mean on the validation split.
        case_scores: the objective evaluator's score of each validation case, cases sorted by id
            (raw scores: not sign-adjusted for a minimised objective).
    """

    prompts: PromptSet
    objective: float
    means: dict[str, float]
    case_scores: tuple[float, ...]

    @classmethod
    def of(cls, prompts: PromptSet, ev: Evaluation, objective: str) -> Scored:
        """``prompts`` with the figures of its validation evaluation ``ev``."""
        ordered = sorted(ev.cases, key=lambda r: r.case.case_id)
        return cls(prompts, ev.objective(objective), dict(ev.means), tuple(r.score(objective) for r in ordered))

    def to_json(self) -> dict[str, Any]:
        """``{texts, parameters, objective, means, caseScores}``."""
        return {
            "texts": dict(self.prompts.texts),
            "parameters": dict(self.prompts.parameters),
            "objective": self.objective,
            "means": dict(self.means),
            "caseScores": list(self.case_scores),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], trainable: frozenset[str]) -> Scored:
        """The inverse of :meth:`to_json`; ``trainable`` is the run's trainable prompt names."""
        prompts = PromptSet(dict(data["texts"]), trainable, dict(data.get("parameters") or {}))
        return cls(prompts, float(data["objective"]), dict(data["means"]), tuple(data["caseScores"]))


@dataclass
class LoopState:
    """What the loop carries from step to step; see the module docstring.

    Attributes:
        current: the config being trained, the best on validation so far (the latest accepted).
        epoch: the last epoch finished (0: only the baseline); the next to train is ``epoch + 1``.
        step: minibatch steps taken over the whole run.
        stale: epochs in a row that accepted no candidate (compared with ``optimizer.patience``).
        pool: ``selection: pareto``: the configs kept so far (``pool[0]`` the root); empty until
            the first step seeds it with ``current``.
        parents: ``pool[i]``'s parent as an index into ``pool`` (None for the root), for merges.
        merges: merges proposed so far in this run (``optimizer.maxMerges`` bounds it).
        budget: the budgets used so far (``extra["budget"]`` form, camelCase), set at each checkpoint.
    """

    current: Scored
    epoch: int = 0
    step: int = 0
    stale: int = 0
    pool: list[Scored] = field(default_factory=list)
    parents: list[int | None] = field(default_factory=list)
    merges: int = 0
    budget: dict[str, float] = field(default_factory=dict)

    def seed_pool(self) -> None:
        """Start the pool from ``current`` if it is empty (a fresh run, or one resumed from an old checkpoint)."""
        if not self.pool:
            self.pool.append(self.current)
            self.parents.append(None)

    def keep(self, member: Scored, parent: int | None) -> None:
        """Add ``member`` to the pool, descended from ``pool[parent]``."""
        self.pool.append(member)
        self.parents.append(parent)

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON (``extra["loop"]``); :meth:`from_json` reads it back."""
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "stale": self.stale,
            "merges": self.merges,
            "budget": dict(self.budget),
            "current": self.current.to_json(),
            "pool": [{**m.to_json(), "parent": p} for m, p in zip(self.pool, self.parents, strict=True)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], trainable: frozenset[str]) -> LoopState:
        """The state :meth:`to_json` saved.

        Raises:
            ValueError: ``data`` is of another :data:`STATE_FORMAT`.
        """
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}; this runner reads {STATE_FORMAT}")
        pool = list(data.get("pool") or [])
        return cls(
            current=Scored.from_json(data["current"], trainable),
            epoch=int(data["epoch"]),
            step=int(data.get("step", 0)),
            stale=int(data.get("stale", 0)),
            pool=[Scored.from_json(m, trainable) for m in pool],
            parents=[None if m.get("parent") is None else int(m["parent"]) for m in pool],
            merges=int(data.get("merges", 0)),
            budget=_amounts(data.get("budget")),
        )


def restore(checkpoints: Sequence[CheckpointRecord], current: Scored) -> LoopState:
    """The state after the latest of ``checkpoints``, whose config ``current`` was re-scored.

    Read whole from the latest checkpoint's ``extra["loop"]`` (its ``current`` replaced by the
    re-scored one), else :func:`legacy_state`. ``epoch`` is the latest checkpoint's epoch.

    Raises:
        ValueError: ``checkpoints`` is empty, or the saved state is malformed or of another format
            (the message names the checkpoint's epoch and ``extra.loop``).
    """
    if not checkpoints:
        raise ValueError("restore needs at least one checkpoint")
    latest = max(checkpoints, key=lambda c: c.epoch)
    saved = latest.extra.get(LOOP_KEY) if isinstance(latest.extra, Mapping) else None
    if not isinstance(saved, Mapping):
        return legacy_state(checkpoints, current)
    try:
        state = LoopState.from_json(saved, current.prompts.trainable)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"checkpoint epoch {latest.epoch}: extra.loop cannot be read: {e!s}") from e
    state.current, state.epoch = current, latest.epoch
    return state


def legacy_state(checkpoints: Sequence[CheckpointRecord], current: Scored) -> LoopState:
    """The state of a checkpoint written without ``extra["loop"]``: counters from its other keys, no pool."""
    latest = max(checkpoints, key=lambda c: c.epoch)
    budget = latest.extra.get("budget") if isinstance(latest.extra, Mapping) else None
    return LoopState(
        current=current,
        epoch=latest.epoch,
        stale=stale_after(checkpoints),
        merges=sum(calls_of(c).get("mergeProposals", 0) for c in checkpoints),
        budget=_amounts(budget),
    )


def _amounts(stored: Any) -> dict[str, float]:
    """The numeric entries of a stored ``budget`` mapping ({} when it is not one)."""
    if not isinstance(stored, Mapping):
        return {}
    return {k: float(v) for k, v in stored.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def stale_after(checkpoints: Sequence[CheckpointRecord]) -> int:
    """The patience counter after the latest checkpoint (epochs in a row that accepted nothing).

    Read from the latest checkpoint's ``extra[STALE_KEY]``. A checkpoint without it (written
    before the key existed) gets the number of trailing checkpoints of epoch >= 1 with
    ``accepted == 0``, which is exact when every epoch is checkpointed (``checkpoint.every: 1``).

    Raises:
        ValueError: ``checkpoints`` is empty.
    """
    if not checkpoints:
        raise ValueError("stale_after needs at least one checkpoint")
    ordered = sorted(checkpoints, key=lambda c: c.epoch, reverse=True)
    stored = ordered[0].extra.get(STALE_KEY) if isinstance(ordered[0].extra, Mapping) else None
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    stale = 0
    for cp in ordered:
        if cp.epoch == 0 or cp.accepted:
            break
        stale += 1
    return stale


def calls_of(checkpoint: CheckpointRecord) -> dict[str, int]:
    """A checkpoint's ``extra.calls`` counters ({} when absent or malformed)."""
    calls = checkpoint.extra.get("calls") if isinstance(checkpoint.extra, Mapping) else None
    return {k: v for k, v in calls.items() if isinstance(v, int)} if isinstance(calls, Mapping) else {}
