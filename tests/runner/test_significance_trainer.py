"""The holdout guard's significance gate in real training runs (hashing router, real database)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import RunStatus, condition_of, parse_resource
from agentensor_runner import execute

from ._synthetic import FILLERS, INTENTS, make_rows, manifests


def _run(store: Any, pc: dict[str, Any], tr: dict[str, Any], run_id: str) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(tr), parse_resource(pc), store, base_dir=Path("."), run_id=run_id)  # type: ignore[arg-type]
    )


@pytest.mark.one_backend
def test_a_real_improvement_is_promotable_with_its_test(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=2)
    status = _run(store, pc, tr, "sig-real")
    h = status.holdout
    assert h is not None and h.test == "mcnemar-exact" and h.confidence == 0.95
    assert h.delta is not None and h.p_value is not None and h.delta_low is not None and h.delta_high is not None
    assert h.delta > 0.2 and h.p_value < 0.05 and 0 < h.delta_low <= h.delta <= h.delta_high
    cond = condition_of(status, "Promotable")
    assert cond is not None and (cond.status, cond.reason) == ("True", "HoldoutGuardPassed")
    assert "mcnemar-exact p=" in cond.message


@pytest.mark.one_backend
def test_a_noise_level_improvement_is_not_significant(store: Any) -> None:
    """Five intents are already routed right; only the sixth, with 2 holdout cases, can improve."""
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    for intent, words in INTENTS.items():
        for _ in range(30 if intent != "travel_notice" else 8):
            a, b = rng.sample(words, 2)
            rows.append({"text": f"{rng.choice(FILLERS)} {a} {rng.choice(FILLERS)} {b}", "label": intent})
    rng.shuffle(rows)
    for i, r in enumerate(rows):
        r["id"] = f"n{i}"
    pc, tr = manifests(rows, epochs=2)
    for k, words in INTENTS.items():
        if k != "travel_notice":
            pc["spec"]["prompts"][f"intent.{k}"]["text"] = "\n".join(words)
    status = _run(store, pc, tr, "sig-noise")
    h = status.holdout
    assert h is not None and h.delta is not None and h.p_value is not None
    assert status.checkpoints
    assert status.best_version != status.checkpoints[0].version, "a candidate was accepted on validation"
    assert 0 < h.delta <= 2 / 48 + 1e-9 and h.p_value > 0.05
    cond = condition_of(status, "Promotable")
    assert cond is not None and (cond.status, cond.reason) == ("False", "NotSignificant"), cond
    assert "could be noise" in cond.message
