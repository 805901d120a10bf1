"""A resumed run continues exactly where it stopped: its Pareto pool, parents and merge count included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import RunStatus, parse_resource
from agentensor_runner import execute
from agentensor_runner.training import LOOP_KEY
from agentensor_store import Store

from ._synthetic import make_rows, manifests


class _Stop(Exception):
    """Raised from ``on_status`` to stop a run the way a killed runner stops: no cleanup, no checkpoint."""


def _run(store: Any, pc: dict[str, Any], tr: dict[str, Any], run_id: str, **kw: Any) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(tr), parse_resource(pc), store, base_dir=Path("."), run_id=run_id, **kw)  # type: ignore[arg-type]
    )


def _timeless(loop: dict[str, Any]) -> dict[str, Any]:
    """A saved loop state without the wall-clock seconds of its budget (the one figure a rerun changes)."""
    budget = {k: v for k, v in loop["budget"].items() if k != "durationSeconds"}
    return {**loop, "budget": budget}


def _figures(store: Any, run_id: str) -> list[tuple[Any, ...]]:
    """Each checkpoint's epoch, accepted count, config checksum, validation score and call counters."""
    return [
        (c.epoch, c.accepted, c.checksum, c.score, c.extra.get("calls")) for c in store.list_checkpoints(run_id=run_id)
    ]


@pytest.fixture
def reference_store(tmp_path: Path) -> Iterator[Store]:
    """A second, SQLite store for the uninterrupted run: the evaluation cache is per store, and a
    shared one would answer the resumed run's every case from the reference's results."""
    with Store(f"sqlite:///{tmp_path / 'reference.db'}") as s:
        s.upgrade()
        yield s


@pytest.mark.one_backend
def test_a_resumed_pareto_run_continues_its_pool(store: Any, reference_store: Store) -> None:
    """Stopped right after epoch 1 and started again, a ``selection: pareto`` run with merges ends with
    the pool, checkpoints, scores and metric calls of an uninterrupted run with the same seed.

    Before the loop state was saved whole, the resumed run restarted its pool from the latest
    checkpoint's config, so its parents (and what it trained) differed from epoch 2 on.
    """
    pc, tr = manifests(make_rows(), epochs=3, batch_size=16)
    tr["spec"]["optimizer"].update({"selection": "pareto", "candidates": 2, "maxMerges": 3})
    reference = _run(reference_store, pc, tr, "pareto")
    ref_cps = reference_store.list_checkpoints(run_id="pareto")
    assert ref_cps[1].accepted >= 1, "the premise: epoch 1 kept candidates, so the pool has more than its root"

    def stop_after_epoch_1(status: RunStatus) -> None:
        if len(status.checkpoints or []) == 2:  # epoch 1's checkpoint was just written
            raise _Stop

    with pytest.raises(_Stop):
        _run(store, pc, tr, "pareto", on_status=stop_after_epoch_1)
    assert [c.epoch for c in store.list_checkpoints(run_id="pareto")] == [0, 1]
    resumed = _run(store, pc, tr, "pareto")

    assert resumed.phase == "Succeeded", resumed.conditions
    assert _figures(store, "pareto") == _figures(reference_store, "pareto")
    assert (resumed.best_checksum, resumed.best_score, resumed.holdout) == (
        reference.best_checksum,
        reference.best_score,
        reference.holdout,
    )
    assert resumed.budget is not None and reference.budget is not None
    assert resumed.budget.metric_calls.used == reference.budget.metric_calls.used
    cps = store.list_checkpoints(run_id="pareto")
    assert cps[-1].extra["budget"]["metricCalls"] == ref_cps[-1].extra["budget"]["metricCalls"]
    # the saved loop state: the same pool (configs, validation scores, ancestry) and merge count
    assert len(ref_cps[-1].extra["loop"]["pool"]) > 2
    assert _timeless(cps[-1].extra["loop"]) == _timeless(ref_cps[-1].extra["loop"])


def _as_written_before_the_loop_state(store: Store, run_id: str, loop: dict[str, Any] | None = None) -> None:
    """Rewrite the run's checkpoints as a runner before ``extra["loop"]`` wrote them (the other keys
    stay), or with ``loop`` as their saved state."""
    for c in store.list_checkpoints(run_id=run_id):
        version = store.get_version(c.workflow, c.version)
        assert version is not None
        extra = {k: v for k, v in c.extra.items() if k != LOOP_KEY} | ({LOOP_KEY: loop} if loop is not None else {})
        store.add_checkpoint(
            run_id,
            epoch=c.epoch,
            version=version,
            score=c.score,
            scores=c.scores,
            train_score=c.train_score,
            accepted=c.accepted,
            seed=c.seed,
            dataset_hash=c.dataset_hash,
            extra=extra,
        )


@pytest.mark.one_backend
@pytest.mark.parametrize(
    ("optimizer", "same_as_uninterrupted"),
    [
        pytest.param({"patience": 2}, True, id="greedy"),
        pytest.param({"selection": "pareto", "candidates": 2}, False, id="pareto-restarts-its-pool"),
    ],
)
def test_a_checkpoint_written_before_the_loop_state_still_resumes(
    store: Any, reference_store: Store, optimizer: dict[str, Any], same_as_uninterrupted: bool
) -> None:
    """A run stopped by a runner that saved no ``extra["loop"]`` resumes from the keys it did save
    (``stale``, ``budget``, ``calls``); a greedy run then ends as an uninterrupted one, a pareto run
    restarts its pool from the latest config (all that such a checkpoint knows) and still finishes."""
    pc, tr = manifests(make_rows(), epochs=3)
    tr["spec"]["optimizer"].update(optimizer)
    reference = _run(reference_store, pc, tr, "old")

    def stop_after_epoch_1(status: RunStatus) -> None:
        if len(status.checkpoints or []) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _run(store, pc, tr, "old", on_status=stop_after_epoch_1)
    _as_written_before_the_loop_state(store, "old")
    assert all(LOOP_KEY not in c.extra for c in store.list_checkpoints(run_id="old"))
    resumed = _run(store, pc, tr, "old")

    assert resumed.phase == "Succeeded", resumed.conditions
    cps = store.list_checkpoints(run_id="old")
    assert [c.epoch for c in cps] == [c.epoch for c in reference_store.list_checkpoints(run_id="old")]
    assert all(LOOP_KEY in c.extra for c in cps[2:]), "the resumed runner saves its state whole again"
    same = _figures(store, "old") == _figures(reference_store, "old")
    assert same is same_as_uninterrupted
    if same_as_uninterrupted:
        assert (resumed.best_checksum, resumed.best_score) == (reference.best_checksum, reference.best_score)


@pytest.mark.one_backend
def test_an_unreadable_saved_state_fails_the_run_naming_it(store: Any) -> None:
    """A checkpoint whose ``extra.loop`` this runner cannot read (a newer runner's format) fails the
    resumed run with ``InvalidInput`` naming the checkpoint and the key, not a traceback."""
    pc, tr = manifests(make_rows(n_per_intent=10), epochs=2)

    def stop_after_epoch_1(status: RunStatus) -> None:
        if len(status.checkpoints or []) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _run(store, pc, tr, "newer", on_status=stop_after_epoch_1)
    _as_written_before_the_loop_state(store, "newer", loop={"format": 2})
    status = _run(store, pc, tr, "newer")
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert (status.phase, failed.reason) == ("Failed", "InvalidInput")
    assert failed.message == "checkpoint epoch 1: extra.loop cannot be read: format 2; this runner reads 1"
