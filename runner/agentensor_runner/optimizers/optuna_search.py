"""``optuna``: TPE search over a declared space of prompt variants and numeric parameters.

``spec.optimizer.searchSpace`` maps ``prompts.<name>`` (categorical text variants) and
``parameters.<name>`` (categorical, float or int: temperature, topP, a router threshold...) to
Optuna distributions. Each ``propose`` asks the study for ``K`` trials
(``spec.optimizer.candidates``) and turns each into a candidate config; ``observe`` tells the
study the candidate's validation objective. Feedback text is not used. The trainer still
decides acceptance on validation, as for every optimizer.

The sampler is ``TPESampler(seed=dataset.seed)``. The study lives in the run's database when
that is PostgreSQL (Optuna's ``RDBStorage``; its tables and alembic version table sit beside
the store's, which uses ``agentensor_alembic_version``), so a resumed run continues the same
study (``agentensor-<runId>``); on SQLite it is kept in memory.

Options:
    nStartupTrials: random trials before TPE starts modelling (default 4; Optuna's is 10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentensor_api import SearchDimension

from .._errors import OptimizerConfigError
from ..prompts import PromptSet
from ..workflows import Feedback
from ._base import Candidate, Step, check_options

_OPTIONS: dict[str, type | tuple[type, ...]] = {"nStartupTrials": int}


def distribution(dim: SearchDimension) -> Any:
    """The Optuna distribution of one declared dimension."""
    import optuna

    if dim.type == "categorical":
        return optuna.distributions.CategoricalDistribution(list(dim.choices or []))
    assert dim.low is not None and dim.high is not None
    if dim.type == "int":
        step = int(dim.step) if dim.step else 1
        return optuna.distributions.IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=step)
    return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)


class OptunaOptimizer:
    """See the module docstring.

    Args:
        options: ``spec.optimizer.options``.
        search_space: ``spec.optimizer.searchSpace``.
        direction: the objective's ``maximize``/``minimize``.
        seed: sampler seed (``dataset.seed``).
        storage_url: a PostgreSQL SQLAlchemy URL for the study, or ``None`` for in-memory.
        study_name: the study's name (one per run).

    Raises:
        OptimizerConfigError: bad options or an empty search space.
    """

    name = "optuna"
    deps = ("search_space", "direction", "seed", "storage_url", "study_name")

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        search_space: Mapping[str, SearchDimension] | None = None,
        direction: str = "maximize",
        seed: int = 0,
        storage_url: str | None = None,
        study_name: str = "agentensor",
    ) -> None:
        import optuna

        opts = dict(options or {})
        check_options(opts, _OPTIONS)
        if not search_space:
            raise OptimizerConfigError("optuna needs spec.optimizer.searchSpace")
        self.space = {key: distribution(dim) for key, dim in search_space.items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(opts.get("nStartupTrials", 4)))
        storage: Any = None
        if storage_url:
            from sqlalchemy.pool import NullPool

            # NullPool: no connection outlives a storage call (the optimizer has no close hook).
            storage = optuna.storages.RDBStorage(storage_url, engine_kwargs={"poolclass": NullPool})
        self.study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=sampler,
            direction="minimize" if direction == "minimize" else "maximize",
            load_if_exists=True,
        )
        self._pending: dict[int, list[Any]] = {}
        self.accepted = 0
        self.rejected = 0

    def _apply(self, current: PromptSet, params: Mapping[str, Any]) -> tuple[PromptSet, tuple[str, ...]]:
        texts = {k.partition(".")[2]: v for k, v in params.items() if k.startswith("prompts.")}
        values = {k.partition(".")[2]: v for k, v in params.items() if k.startswith("parameters.")}
        unknown = sorted(set(texts) - set(current.texts))
        if unknown:
            raise OptimizerConfigError(f"searchSpace names prompts that the PromptConfig does not have: {unknown}")
        texts = {k: v for k, v in texts.items() if v != current.texts[k]}
        cand = PromptSet({**current.texts, **texts}, current.trainable, {**current.parameters, **values})
        changed = tuple(sorted([f"prompts.{k}" for k in texts] + [f"parameters.{k}" for k in values]))
        return cand, changed

    async def propose(
        self,
        current: PromptSet,
        feedback: Mapping[str, Sequence[Feedback]],
        step: Step,
    ) -> list[Candidate]:
        out: list[Candidate] = []
        for _ in range(step.candidates):
            trial = self.study.ask(self.space)
            cand, changed = self._apply(current, trial.params)
            out.append(Candidate(cand, changed, f"optuna trial {trial.number}"))
            self._pending.setdefault(id(out[-1]), []).append(trial)
        return out

    def observe(self, candidate: Candidate, score: float, accepted: bool) -> None:
        for trial in self._pending.pop(id(candidate), []):
            self.study.tell(trial, score)
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
