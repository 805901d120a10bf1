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
