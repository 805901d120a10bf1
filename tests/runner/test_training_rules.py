"""Each rule of the training loop alone: the loop state, selectors, acceptance, gate, merge and stoppers."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from agentensor_api import BudgetSpec
from agentensor_runner.data import Case
from agentensor_runner.evaluators import EvalResult
from agentensor_runner.execution import CaseResult, summarize
from agentensor_runner.prompts import PromptSet
from agentensor_runner.training import merge
from agentensor_runner.training.acceptance import StepAcceptance
from agentensor_runner.training.budget import BudgetMeter, StopPoller
from agentensor_runner.training.gate import passes
from agentensor_runner.training.selectors import CurrentBest, Pareto, front, selector_for
from agentensor_runner.training.state import LOOP_KEY, LoopState, Scored, restore
from agentensor_runner.training.stoppers import AnyOf, BudgetOrStop, GoalReached, MaxEpochs, NoImprovement
from agentensor_store import CheckpointRecord, Store

TRAINABLE = frozenset({"a", "b"})


def _ps(a: str = "a0", b: str = "b0") -> PromptSet:
    return PromptSet({"a": a, "b": b}, TRAINABLE)


def _scored(objective: float, case_scores: tuple[float, ...] = (), a: str = "a0", b: str = "b0") -> Scored:
    return Scored(_ps(a, b), objective, {"acc": objective}, case_scores)


def _better(direction: str = "maximize") -> Any:
    def better(x: float, y: float, min_delta: float = 0.0) -> bool:
        return x > y + min_delta if direction == "maximize" else x < y - min_delta

    return better


def _cp(epoch: int, extra: dict[str, Any], accepted: int = 0) -> CheckpointRecord:
    return CheckpointRecord(
        id=epoch,  # type: ignore[arg-type]
        run_id="r",  # type: ignore[arg-type]
        epoch=epoch,
        version=epoch + 1,
        version_id=epoch,  # type: ignore[arg-type]
        namespace="default",
        workflow="w",
        checksum="c",
        prompts={"a": "a0", "b": "b0"},
        parameters={},
        score=0.5,
        scores={},
        train_score=None,
        accepted=accepted,
        seed=3,
        dataset_hash="h",
        extra=extra,
        created_at=datetime.now(UTC),
    )


# -- the loop state -------------------------------------------------------------------------------


def test_scored_takes_case_scores_in_case_id_order() -> None:
    def row(cid: str, score: float) -> CaseResult:
        result = EvalResult(score=score, passed=score >= 1.0, reason="")
        return CaseResult(Case(cid, "x", "y", {}), "s", cid, None, {"acc": result}, None, 0.0, frozenset())

    ev = summarize([row("c2", 0.0), row("c0", 1.0), row("c1", 0.5)], [])
    ev = type(ev)(ev.cases, {"acc": 0.5}, ev.errors)
    assert Scored.of(_ps(), ev, "acc") == Scored(_ps(), 0.5, {"acc": 0.5}, (1.0, 0.5, 0.0))


def test_the_loop_state_round_trips_through_json() -> None:
    state = LoopState(
        current=_scored(0.8, (1.0, 0.0), a="a2"),
        epoch=2,
        step=7,
        stale=1,
        pool=[_scored(0.5, (0.0, 1.0)), _scored(0.8, (1.0, 0.0), a="a2"), _scored(0.6, (1.0, 1.0), b="b1")],
        parents=[None, 0, 0],
        merges=1,
        budget={"metricCalls": 120.0},
    )
    data = state.to_json()
    assert data["pool"][2] == {**_scored(0.6, (1.0, 1.0), b="b1").to_json(), "parent": 0}
    assert LoopState.from_json(data, TRAINABLE) == state


def test_a_saved_state_of_another_format_is_refused_by_name() -> None:
    data = {**LoopState(current=_scored(0.5)).to_json(), "format": 99}
    with pytest.raises(ValueError, match="format 99; this runner reads 1"):
        LoopState.from_json(data, TRAINABLE)


def test_restore_reads_the_latest_checkpoints_state_whole() -> None:
    saved = LoopState(current=_scored(0.7), epoch=1, stale=0, pool=[_scored(0.5, (0.0,)), _scored(0.7, (1.0,))])
    saved.parents, saved.merges, saved.budget = [None, 0], 2, {"metricCalls": 40.0}
    rescored = _scored(0.7, (1.0,))
    state = restore([_cp(0, {}), _cp(1, {LOOP_KEY: saved.to_json(), "stale": 5})], rescored)
    assert state.current is rescored
    assert (state.epoch, state.stale, state.merges, state.budget) == (1, 0, 2, {"metricCalls": 40.0})
    assert (state.pool, state.parents) == (saved.pool, [None, 0])


@pytest.mark.parametrize(
    ("loop", "expected"),
    [
        pytest.param({"format": 2}, "format 2; this runner reads 1", id="newer-format"),
        pytest.param({"format": 1, "epoch": 1}, "'current'", id="no-current"),
        pytest.param({"format": 1, "epoch": 1, "current": _scored(0.5).to_json(), "pool": [{"texts": 3}]}, "",
                     id="malformed-pool"),
    ],
)  # fmt: skip
def test_an_unreadable_saved_state_names_its_checkpoint(loop: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=r"checkpoint epoch 1: extra\.loop cannot be read") as exc:
        restore([_cp(0, {}), _cp(1, {LOOP_KEY: loop})], _scored(0.5))
    assert expected in str(exc.value)


@pytest.mark.parametrize(
    ("extras", "stale", "merges", "budget"),
    [
        pytest.param(
            [{}, {"calls": {"mergeProposals": 1}, "stale": 0, "budget": {"metricCalls": 10, "tokens": True}},
             {"calls": {"mergeProposals": 2}, "stale": 1, "budget": {"metricCalls": 30}}],
            1, 3, {"metricCalls": 30.0}, id="extra-keys",
        ),
        pytest.param([{}, {"calls": {}}, {"calls": {}}], 2, 0, {}, id="before-stale-and-budget"),
    ],
)  # fmt: skip
def test_a_checkpoint_written_before_the_loop_state_still_restores(
    extras: list[dict[str, Any]], stale: int, merges: int, budget: dict[str, float]
) -> None:
    current = _scored(0.6)
    state = restore([_cp(i, e) for i, e in enumerate(extras)], current)
    assert (state.epoch, state.stale, state.merges, state.budget) == (2, stale, merges, budget)
    assert state.pool == [] and state.current is current
    state.seed_pool()
    assert (state.pool, state.parents) == ([current], [None])


# -- selectors ------------------------------------------------------------------------------------


def test_current_best_always_edits_the_current_config() -> None:
    state = LoopState(current=_scored(0.9), pool=[_scored(0.1), _scored(0.9)], parents=[None, 0])
    assert CurrentBest().parent(state, random.Random(0)) == (state.current, None)


def test_pareto_starts_from_the_root_and_then_samples_only_the_front() -> None:
    state = LoopState(current=_scored(0.5, (0.5, 0.5, 0.5)))
    with pytest.raises(ValueError, match="pool is empty"):
        Pareto("maximize").parent(state, random.Random(0))
    state.seed_pool()
    assert Pareto("maximize").parent(state, random.Random(0)) == (state.current, 0)
    # 1 wins case 0, 2 wins cases 1-2; 3 is dominated by 2; the root wins nothing
    for m in (
        _scored(0.6, (1.0, 0.2, 0.2), a="x"),
        _scored(0.7, (0.2, 1.0, 1.0), a="y"),
        _scored(0.6, (0.2, 0.9, 0.9)),
    ):
        state.keep(m, 0)
    picks = {Pareto("maximize").parent(state, random.Random(s))[1] for s in range(50)}
    assert picks == {1, 2}
    assert front(state.pool, "maximize") == {"1": 1, "2": 2}
    assert front(state.pool, "minimize") == {"1": 2, "3": 1}, "lower is better: 3 now dominates 2"


@pytest.mark.parametrize(
    ("selection", "kind"),
    [pytest.param("greedy", CurrentBest, id="greedy"), pytest.param("pareto", Pareto, id="pareto")],
)
def test_selector_for_names_the_strategy(selection: str, kind: type) -> None:
    assert isinstance(selector_for(selection, "maximize"), kind)


def test_an_unknown_selection_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"spec\.optimizer\.selection: unknown selection 'random'"):
        selector_for("random", "maximize")


# -- acceptance -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keeps_pool", "current", "parent", "candidates", "judged", "new_current", "pooled"),
    [
        pytest.param(False, 0.5, 0.5, [0.55, 0.58], [False, False], 0.5, 0, id="greedy-within-min-delta"),
        pytest.param(False, 0.5, 0.5, [0.7, 0.65, 0.8], [True, False, True], 0.8, 0, id="greedy-later-must-beat-best"),
        pytest.param(False, 0.5, 0.5, [0.7, 0.71], [True, True], 0.71, 0, id="greedy-later-needs-no-min-delta"),
        pytest.param(True, 0.9, 0.5, [0.7, 0.65, 0.58], [True, True, False], 0.9, 2, id="pareto-pools-below-current"),
        pytest.param(True, 0.6, 0.5, [0.7, 0.8], [True, True], 0.8, 2, id="pareto-best-becomes-current"),
    ],
)  # fmt: skip
def test_step_acceptance(
    keeps_pool: bool,
    current: float,
    parent: float,
    candidates: list[float],
    judged: list[bool],
    new_current: float,
    pooled: int,
) -> None:
    state = LoopState(current=_scored(current, (current,)))
    state.seed_pool()
    acceptance = StepAcceptance(state, _scored(parent, (parent,)), 0, _better(), 0.1, keeps_pool)
    assert [acceptance.judge(_scored(c, (c,), a=f"a{c}")) for c in candidates] == judged
    assert acceptance.settle() == any(judged)
    assert state.current.objective == new_current
    assert len(state.pool) - 1 == pooled and state.parents[1:] == [0] * pooled


def test_acceptance_of_a_minimised_objective() -> None:
    state = LoopState(current=_scored(0.5))
    acceptance = StepAcceptance(state, state.current, None, _better("minimize"), 0.0, False)
    assert [acceptance.judge(_scored(s)) for s in (0.6, 0.4, 0.45, 0.3)] == [False, True, False, True]
    assert acceptance.settle() and state.current.objective == 0.3


# -- the minibatch gate ---------------------------------------------------------------------------


def _ev(scores: list[float]) -> Any:
    rows = [
        CaseResult(Case(f"c{i}", "x", "y", {}), "s", f"c{i}", None, {"acc": EvalResult(s, s >= 1, "")}, None, 0.0,
                   frozenset())
        for i, s in enumerate(scores)
    ]  # fmt: skip
    return summarize(rows, [])


@pytest.mark.parametrize(
    ("candidate", "parent", "direction", "expected"),
    [
        pytest.param([1, 1, 0], [1, 0, 0], "maximize", True, id="better-mean"),
        pytest.param([1, 0, 0], [0, 1, 0], "maximize", False, id="equal-mean-is-not-better"),
        pytest.param([0, 0, 1], [1, 0, 1], "minimize", True, id="minimize-lower-wins"),
    ],
)
def test_the_minibatch_gate(candidate: list[float], parent: list[float], direction: str, expected: bool) -> None:
    assert passes(_ev(candidate), _ev(parent), "acc", direction) is expected


def test_the_gate_needs_the_same_minibatch() -> None:
    with pytest.raises(ValueError, match="same, non-empty minibatch"):
        passes(_ev([1.0]), _ev([1.0, 0.0]), "acc", "maximize")


# -- merge ----------------------------------------------------------------------------------------


def _merge_state() -> LoopState:
    """Root (a0, b0); member 1 changed prompt a, member 2 changed prompt b; each wins other cases."""
    state = LoopState(current=_scored(0.5, (0.5, 0.5)))
    state.seed_pool()
    state.keep(_scored(0.6, (1.0, 0.2), a="a1"), 0)
    state.keep(_scored(0.6, (0.2, 1.0), b="b1"), 0)
    return state


def test_a_merge_takes_each_prompt_from_the_member_that_changed_it() -> None:
    state = _merge_state()
    proposal = merge.propose(state, "maximize", "3:1:0")
    assert proposal is not None and (proposal.a, proposal.b) == (1, 2)
    assert dict(proposal.prompts.texts) == {"a": "a1", "b": "b1"}
    merged = _scored(0.9, (1.0, 1.0), a="a1", b="b1")
    assert merge.kept(merged, proposal, state, _better(), 0.0)
    assert not merge.kept(_scored(0.65, (1.0, 0.3)), proposal, state, _better(), 0.1)
    merge.admit(merged, proposal, state, _better())
    assert state.parents[-1] == 1 and state.current is merged


def test_a_merge_that_repeats_a_pooled_config_is_not_proposed() -> None:
    state = _merge_state()
    state.keep(_scored(0.55, (0.1, 0.1), a="a1", b="b1"), 1)
    assert merge.propose(state, "maximize", "3:1:0") is None


def test_a_merge_below_the_current_config_is_pooled_but_not_current() -> None:
    state = _merge_state()
    state.current = _scored(0.95)
    proposal = merge.propose(state, "maximize", "3:1:0")
    assert proposal is not None
    merge.admit(_scored(0.9, (1.0, 1.0), a="a1", b="b1"), proposal, state, _better())
    assert state.current.objective == 0.95 and len(state.pool) == 4


# -- stoppers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stopper", "state", "expected"),
    [
        pytest.param(MaxEpochs(3), LoopState(current=_scored(0.5), epoch=2), None, id="epochs-left"),
        pytest.param(MaxEpochs(3), LoopState(current=_scored(0.5), epoch=3), "Completed", id="epochs-done"),
        pytest.param(GoalReached(None, _better()), LoopState(current=_scored(1.0)), None, id="no-goal"),
        pytest.param(GoalReached(0.8, _better()), LoopState(current=_scored(0.79)), None, id="goal-not-reached"),
        pytest.param(GoalReached(0.8, _better()), LoopState(current=_scored(0.8)), "GoalReached", id="goal-reached"),
        pytest.param(GoalReached(0.2, _better("minimize")), LoopState(current=_scored(0.1)), "GoalReached",
                     id="goal-reached-minimize"),
        pytest.param(NoImprovement(None), LoopState(current=_scored(0.5), stale=9), None, id="no-patience"),
        pytest.param(NoImprovement(2), LoopState(current=_scored(0.5), stale=1), None, id="patience-left"),
        pytest.param(NoImprovement(2), LoopState(current=_scored(0.5), stale=2), "PatienceExhausted",
                     id="patience-exhausted"),
        pytest.param(AnyOf(NoImprovement(1), GoalReached(0.5, _better())), LoopState(current=_scored(0.5), stale=1),
                     "PatienceExhausted", id="any-of-first-wins"),
        pytest.param(AnyOf(), LoopState(current=_scored(0.5)), None, id="any-of-none"),
    ],
)  # fmt: skip
def test_stoppers(stopper: Any, state: LoopState, expected: str | None) -> None:
    assert stopper.check(state) == expected


def _store(tmp_path: Any) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'stop.db'}")
    store.upgrade()
    return store


def test_a_used_up_budget_stops_the_loop_and_stays_stopped(tmp_path: Any) -> None:
    with _store(tmp_path) as store:
        meter = BudgetMeter(BudgetSpec(max_metric_calls=10))
        halt = BudgetOrStop(meter, StopPoller(store, "r"), lambda: None, "r")
        state = LoopState(current=_scored(0.5))
        meter.metric_calls = 9
        assert not halt.poll() and halt.check(state) is None
        meter.metric_calls = 10
        assert halt.poll() and halt.check(state) == "BudgetExhausted" and halt.exhausted == "maxMetricCalls"
        meter.metric_calls = 0
        assert halt.poll(), "sticky"


def test_a_stop_request_stops_the_loop_when_polled(tmp_path: Any) -> None:
    with _store(tmp_path) as store:
        store.create_run(run_id="r", kind="TrainingRun", namespace="default", name="t", workflow="w", spec={})
        halt = BudgetOrStop(BudgetMeter(BudgetSpec()), StopPoller(store, "r"), lambda: None, "r")
        state = LoopState(current=_scored(0.5))
        assert not halt.poll(force=True)
        store.request_stop("r")
        assert halt.check(state) is None, "check never reads the store"
        assert halt.poll(force=True) and halt.check(state) == "StopRequested" and halt.exhausted is None
