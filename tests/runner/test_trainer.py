"""The training loop on a real (hashing-embedding) router and a real database."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import EvaluationRun, PromptConfig, RunStatus, TrainingRun, parse_resource
from agentensor_runner import execute
from agentensor_runner.execution import run_cases
from agentensor_runner.prompts import PromptSet
from agentensor_runner.training import promotion_decision, stale_after

from ._synthetic import INTENTS, make_rows, manifests


def _run(store: Any, pc: dict[str, Any], tr: dict[str, Any], run_id: str, **kw: Any) -> RunStatus:
    run, config = parse_resource(tr), parse_resource(pc)
    assert isinstance(run, TrainingRun | EvaluationRun) and isinstance(config, PromptConfig)
    return asyncio.run(
        execute(
            run,
            config,
            store,
            base_dir=Path("."),
            run_id=run_id,
            **kw,
        )
    )


@pytest.mark.one_backend
def test_training_improves_and_checkpoints_score_their_own_config(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=2, frozen=("travel_notice",))
    status = _run(store, pc, tr, "run-1")
    assert status.phase == "Succeeded", status.conditions
    assert status.baseline_score is not None and status.best_score is not None
    assert status.best_score > status.baseline_score + 0.2
    assert status.holdout is not None and status.holdout.best > status.holdout.baseline  # type: ignore[operator]
    cond = {c.type: c for c in status.conditions}
    assert cond["Promotable"].status == "True" and cond["Succeeded"].status == "True"

    cps = store.list_checkpoints(run_id="run-1")
    assert [c.epoch for c in cps] == [0, 1, 2]
    assert cps[0].prompts == {f"intent.{k}": k.replace("_", " ") for k in INTENTS}
    # the frozen prompt never changes
    assert {c.prompts["intent.travel_notice"] for c in cps} == {"travel notice"}
    # every checkpoint's score is the validation score of exactly that checkpoint's config
    res = parse_resource(tr)
    assert isinstance(res, TrainingRun)
    from agentensor_runner.data import split_cases
    from agentensor_runner.execution import build_context

    ctx = build_context(res, parse_resource(pc), store, run_id="check", base_dir=Path("."))  # type: ignore[arg-type]
    assert res.spec.dataset.split is not None
    splits = split_cases(ctx.cases, res.spec.dataset.split, res.spec.dataset.seed)
    assert splits.dataset_hash == cps[0].dataset_hash == status.dataset_hash
    for cp in cps:
        ps = PromptSet(cp.prompts, ctx.start.trainable, cp.parameters)
        ev = asyncio.run(
            run_cases(
                ctx.workflow,
                ps,
                splits.validation,
                ctx.evaluators,
                base_config={},
                run_id="check",
                stage="v",
                parallelism=4,
                case_timeout_seconds=10,
            )
        )
        assert ev.means["accuracy"] == pytest.approx(cp.score)
        assert cp.checksum == ps.checksum()
    best = store.best_checkpoint(run_id="run-1")
    assert best.version == status.best_version and best.score == status.best_score

    # rows: every holdout case of baseline and best, each with its own thread_id
    rows = store.list_cases("run-1", stage="holdout/best")
    assert len(rows) == len(splits.holdout)
    all_rows = store.list_cases("run-1")
    assert len({(r.stage, r.thread_id) for r in all_rows}) == len(all_rows)


@pytest.mark.one_backend
def test_checkpoint_every_two_still_saves_last(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=3, every=2)
    status = _run(store, pc, tr, "run-every")
    assert [c.epoch for c in store.list_checkpoints(run_id="run-every")] == [0, 2, 3]
    assert status.best_version is not None


@pytest.mark.one_backend
def test_versions_are_shared_per_workflow_and_deduplicated(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=1)
    a = _run(store, pc, tr, "run-a")
    b = _run(store, pc, tr, "run-b")
    assert a.best_checksum == b.best_checksum
    assert a.best_version == b.best_version  # same config -> same version, not a duplicate
    versions = store.list_versions("synthetic-router")
    assert len({v.checksum for v in versions}) == len(versions)


class _Crash(Exception):
    pass


def _training_rows(store: Any, run_id: str, epoch: int) -> dict[tuple[str, str], tuple[int | None, float]]:
    """``(stage, case_id) -> (version, latency)`` of an epoch's train and candidate rows.

    The latency is measured per invocation, so a row that a later attempt re-ran (an upsert on
    the same key) shows a different one.
    """
    return {
        (r.stage, r.case_id): (r.version, r.latency_seconds)
        for r in store.list_cases(run_id)
        if r.epoch == epoch and r.stage != f"epoch-{epoch}/validation"
    }


@pytest.mark.one_backend
def test_resume_after_crash_gives_same_best(store: Any) -> None:
    pc, tr = manifests(make_rows(), epochs=3)
    reference = _run(store, pc, tr, "run-ref")

    def crash_in_epoch_2(status: RunStatus) -> None:
        if status.epoch == 2:
            raise _Crash

    with pytest.raises(_Crash):
        _run(store, pc, tr, "run-crash", on_status=crash_in_epoch_2)
    assert [c.epoch for c in store.list_checkpoints(run_id="run-crash")] == [0, 1]
    epoch_1 = _training_rows(store, "run-crash", 1)
    assert any("/train/" in stage for stage, _ in epoch_1) and any("/candidate-" in stage for stage, _ in epoch_1)

    stages: set[str] = set()
    running_reasons: list[str] = []

    def watch(status: RunStatus) -> None:
        running_reasons.extend(c.reason for c in status.conditions if c.type == "Running" and c.status == "True")

    resumed = _run(
        store, pc, tr, "run-crash", on_status=watch, on_progress=lambda stage, done, total: stages.add(stage)
    )
    cps = store.list_checkpoints(run_id="run-crash")
    assert [c.epoch for c in cps] == [0, 1, 2, 3]
    assert resumed.best_checksum == reference.best_checksum
    assert resumed.best_version == reference.best_version
    assert "Resumed" in running_reasons
    # The resumed run re-scores the baseline's and the epoch-1 config's validation (to know the
    # score to beat) and trains no epoch-1 case again: not one epoch-1 row was rewritten ...
    assert _training_rows(store, "run-crash", 1) == epoch_1
    # ... and the only epoch-1 stage it ran is that validation re-score.
    assert {s for s in stages if s.startswith(("epoch-0/", "epoch-1/"))} == {"epoch-0/validation", "epoch-1/validation"}
    assert any(s.startswith("epoch-2/train/") for s in stages) and any(s.startswith("epoch-3/") for s in stages)


@pytest.mark.one_backend
def test_patience_survives_a_resume(store: Any) -> None:
    """A resumed run with ``patience`` stops after the same epoch as an uninterrupted one."""
    pc, tr = manifests(make_rows(), epochs=6)
    tr["spec"]["optimizer"]["patience"] = 2
    reference = _run(store, pc, tr, "run-patience-ref")
    ref_cps = store.list_checkpoints(run_id="run-patience-ref")
    # the premise: epochs 1-2 accept candidates, 3-4 do not, so patience 2 stops after epoch 4 of 6
    assert [(c.epoch, c.accepted > 0) for c in ref_cps] == [(0, False), (1, True), (2, True), (3, False), (4, False)]
    # the stop state each checkpoint stores, and the same derived for checkpoints written without it
    assert [c.extra["stale"] for c in ref_cps] == [0, 0, 0, 1, 2]
    legacy = [dataclasses.replace(c, extra={"calls": c.extra["calls"]}) for c in ref_cps]
    assert [stale_after(ref_cps[: i + 1]) for i in range(5)] == [0, 0, 0, 1, 2]
    assert [stale_after(legacy[: i + 1]) for i in range(5)] == [0, 0, 0, 1, 2]

    def crash_in_epoch_4(status: RunStatus) -> None:
        if status.epoch == 4:
            raise _Crash

    with pytest.raises(_Crash):
        _run(store, pc, tr, "run-patience", on_status=crash_in_epoch_4)
    assert [c.epoch for c in store.list_checkpoints(run_id="run-patience")] == [0, 1, 2, 3]  # one stale epoch so far
    resumed = _run(store, pc, tr, "run-patience")
    assert resumed.phase == "Succeeded", resumed.conditions
    cps = store.list_checkpoints(run_id="run-patience")
    assert [(c.epoch, c.accepted, c.checksum, c.score) for c in cps] == [
        (c.epoch, c.accepted, c.checksum, c.score) for c in ref_cps
    ]
    trained = {r.epoch for r in store.list_cases("run-patience") if "/train/" in r.stage}
    assert trained == {1, 2, 3, 4}
    assert (resumed.best_version, resumed.best_score) == (reference.best_version, reference.best_score)


@pytest.mark.one_backend
def test_all_cases_failing_fails_the_run_with_the_case(store: Any) -> None:
    rows = [{"text": "", "label": k, "id": f"e{i}"} for i, k in enumerate(list(INTENTS) * 5)]
    pc, tr = manifests(rows, epochs=1)
    status = _run(store, pc, tr, "run-fail")
    assert status.phase == "Failed"
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "AllCasesFailed"
    assert "input must be a non-empty string" in failed.message
    assert len(store.list_cases("run-fail", errors_only=True)) > 0


PASSED = "HoldoutGuardPassed"


@pytest.mark.parametrize(
    ("baseline", "best", "direction", "unchanged", "promotable", "reason", "expected_message"),
    [
        pytest.param(
            0.60, 0.80, "maximize", False, True, PASSED,
            "version 3: holdout 0.8000 vs baseline 0.6000 (maxRegression 0.02)", id="improves",
        ),
        pytest.param(
            0.80, 0.79, "maximize", False, True, PASSED,
            "version 3: holdout 0.7900 vs baseline 0.8000 (maxRegression 0.02)", id="within-guard",
        ),
        pytest.param(
            0.80, 0.77, "maximize", False, False, "HoldoutRegression",
            "best version 3 scores 0.7700 on holdout vs baseline 0.8000: a regression of 0.0300 > maxRegression 0.02",
            id="regresses",
        ),
        pytest.param(
            0.80, 0.78, "maximize", False, True, PASSED,
            "version 3: holdout 0.7800 vs baseline 0.8000 (maxRegression 0.02)", id="exactly-at-guard",
        ),
        pytest.param(
            1.00, 1.05, "minimize", False, False, "HoldoutRegression",
            "best version 3 scores 1.0500 on holdout vs baseline 1.0000: a regression of 0.0500 > maxRegression 0.02",
            id="minimize-regresses",
        ),
        pytest.param(
            1.00, 0.50, "minimize", False, True, PASSED,
            "version 3: holdout 0.5000 vs baseline 1.0000 (maxRegression 0.02)", id="minimize-improves",
        ),
        pytest.param(
            0.70, 0.70, "maximize", True, False, "NoImprovement",
            "no candidate beat the baseline on validation; nothing to promote", id="unchanged",
        ),
    ],
)  # fmt: skip
def test_promotion_decision(
    baseline: float,
    best: float,
    direction: str,
    unchanged: bool,
    promotable: bool,
    reason: str,
    expected_message: str,
) -> None:
    ok, why, message = promotion_decision(
        baseline=baseline, best=best, direction=direction, max_regression=0.02, unchanged=unchanged, best_version=3
    )
    assert (ok, why, message) == (promotable, reason, expected_message)
