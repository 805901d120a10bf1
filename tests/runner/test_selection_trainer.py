"""``optimizer.selection: pareto`` and ``optimizer.minibatchGate`` in real training runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ManifestError, RunStatus, parse_resource
from agentensor_runner import execute

from ._synthetic import make_rows, manifests


def _run(store: Any, pc: dict[str, Any], tr: dict[str, Any], run_id: str) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(tr), parse_resource(pc), store, base_dir=Path("."), run_id=run_id)  # type: ignore[arg-type]
    )


def _stages(store: Any, run_id: str, kind: str) -> set[str]:
    """``epoch-E/batch-B/<kind>-I`` prefixes (without the kind) of the run's case rows."""
    return {
        r.stage.rsplit(f"/{kind}-", 1)[0] + f"#{r.stage.rsplit('-', 1)[1]}"
        for r in store.list_cases(run_id)
        if f"/{kind}-" in r.stage
    }


@pytest.mark.one_backend
def test_pareto_selection_trains_and_keeps_the_best(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=2)
    tr["spec"]["optimizer"].update({"selection": "pareto", "candidates": 2})
    status = _run(store, pc, tr, "pareto-1")
    assert status.phase == "Succeeded", status.conditions
    assert status.best_score is not None and status.baseline_score is not None
    assert status.best_score > status.baseline_score + 0.2
    assert status.checkpoints
    best_cp = max(status.checkpoints, key=lambda c: c.score or 0.0)
    assert status.best_score == best_cp.score, "the best version is the pool's best on validation"


@pytest.mark.one_backend
def test_minibatch_gate_counts_the_validation_cases_it_saves(store: Any) -> None:
    rows = make_rows()
    pc, tr = manifests(rows, epochs=2, batch_size=16)
    tr["spec"]["optimizer"].update({"minibatchGate": True, "candidates": 3})
    status = _run(store, pc, tr, "gate-1")
    assert status.phase == "Succeeded", status.conditions
    gated, validated = _stages(store, "gate-1", "gate"), _stages(store, "gate-1", "candidate")
    assert validated <= gated, "every validated candidate passed the gate first"
    assert gated - validated, "the gate refused at least one candidate in this run"
    n_val = len({r.case_id for r in store.list_cases("gate-1", stage="epoch-0/validation")})
    saved = sum(
        int((c.extra or {}).get("calls", {}).get("gateSavedCases", 0)) for c in store.list_checkpoints(run_id="gate-1")
    )
    assert saved == len(gated - validated) * n_val


def test_unknown_selection_names_the_field() -> None:
    _pc, tr = manifests(make_rows(n_per_intent=3), epochs=1)
    tr["spec"]["optimizer"]["selection"] = "random"
    with pytest.raises(ManifestError) as exc:
        parse_resource(tr)
    assert exc.value.field == "spec.optimizer.selection"


@pytest.mark.one_backend
def test_merges_cross_front_members_within_their_bound(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=3, batch_size=16)
    tr["spec"]["optimizer"].update({"selection": "pareto", "candidates": 2, "maxMerges": 3})
    status = _run(store, pc, tr, "merge-1")
    assert status.phase == "Succeeded", status.conditions
    calls = [(c.extra or {}).get("calls", {}) for c in store.list_checkpoints(run_id="merge-1")]
    proposed = sum(c.get("mergeProposals", 0) for c in calls)
    kept = sum(c.get("mergesAccepted", 0) for c in calls)
    assert 1 <= proposed <= 3 and 1 <= kept <= proposed, calls
    # every proposal was scored on the whole validation split, under its own stage
    n_val = len({r.case_id for r in store.list_cases("merge-1", stage="epoch-0/validation")})
    merge_rows = [r for r in store.list_cases("merge-1") if "/merge-" in r.stage]
    assert len({r.stage for r in merge_rows}) == proposed and len(merge_rows) == proposed * n_val


def test_merges_need_pareto_selection() -> None:
    _pc, tr = manifests(make_rows(n_per_intent=3), epochs=1)
    tr["spec"]["optimizer"]["maxMerges"] = 2
    with pytest.raises(ManifestError) as exc:
        parse_resource(tr)
    assert exc.value.field == "spec.optimizer" and "maxMerges" in str(exc.value)


def test_a_merge_pair_shares_an_ancestor_and_neither_descends_from_the_other() -> None:
    import random

    from agentensor_runner.training.merge import merge_pair

    # pool: 0 root; 1 and 2 children of 0; 3 child of 1
    parents: list[int | None] = [None, 0, 0, 1]
    seen = {merge_pair({"1": 2, "2": 1, "3": 4}, parents, random.Random(s)) for s in range(40)}
    assert seen == {(1, 2, 0), (2, 3, 0)}, "1 and 3 are one lineage; 2 meets either at the root"
    assert merge_pair({"1": 1, "3": 5}, parents, random.Random(0)) is None
    assert merge_pair({"0": 1}, parents, random.Random(0)) is None
