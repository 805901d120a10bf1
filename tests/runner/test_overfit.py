"""The overfitting guard: validation/holdout inputs quoted verbatim by the best config are reported,
training inputs (legitimate exemplars) are not."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import ConditionType, Reason, RunStatus, condition_of, parse_resource
from agentensor_runner import execute
from agentensor_runner.data import Case
from agentensor_runner.stats.overfit import MIN_INPUT_CHARS, describe_leaks, find_leaks
from agentensor_store import Store

from ._synthetic import make_rows, manifests


def _case(case_id: str, text: Any) -> Case:
    return Case(case_id=case_id, input=text, expected="-", row={})


@pytest.mark.parametrize(
    ("prompt", "found"),
    [
        pytest.param("Route: my card was  stolen\n yesterday at the station.", ["v1"], id="whitespace-normalised"),
        pytest.param("ROUTE: MY CARD WAS STOLEN YESTERDAY AT THE STATION", ["v1"], id="case-folded"),
        pytest.param("my card was stolen yesterday", [], id="a part of the input is not the input"),
        pytest.param("card lost: help", [], id="short input ignored even when quoted"),
        pytest.param("examples: please refund the double charge on my invoice", [], id="train input is an exemplar"),
    ],
)
def test_find_leaks_table(prompt: str, found: list[str]) -> None:
    validation = [_case("v1", "my card was stolen yesterday at the station"), _case("v2", "card lost: help")]
    holdout = [_case("h1", {"text": "where is my new card, it has been two weeks"})]
    assert len("card lost: help") < MIN_INPUT_CHARS
    leaks = find_leaks({"intent.lost_card": prompt}, {"validation": validation, "holdout": holdout})
    assert [f.case_id for f in leaks] == found


def test_an_evaluation_input_that_is_also_a_train_input_is_not_a_leak() -> None:
    text = "please refund the double charge on my invoice"
    leaks = find_leaks({"p": f"e.g. {text}"}, {"validation": [_case("v1", text)]}, train=[_case("t1", f" {text} ")])
    assert leaks == []


def test_dict_inputs_are_checked_field_by_field_and_described() -> None:
    holdout = [_case("h1", {"text": "where is my new card, it has been two weeks", "lang": "en"})]
    leaks = find_leaks({"a": "Where is my new card, it has been two weeks?", "b": "unrelated"}, {"holdout": holdout})
    assert [(f.prompt, f.split, f.case_id) for f in leaks] == [("a", "holdout", "h1")]
    assert describe_leaks(leaks).startswith("the best config quotes 1 holdout input(s) verbatim (prompts: a)")
    assert describe_leaks([]) == "no validation or holdout input appears verbatim in the best config"


def _run(store: Store, pc: dict[str, Any], tr: dict[str, Any], run_id: str) -> RunStatus:
    return asyncio.run(
        execute(parse_resource(tr), parse_resource(pc), store, base_dir=Path("."), run_id=run_id)  # type: ignore[arg-type]
    )


@pytest.mark.one_backend
def test_exemplar_training_is_not_flagged_and_a_hand_made_leak_is(store: Store) -> None:
    rows = make_rows()
    pc, tr = manifests(rows, epochs=1)
    clean = _run(store, pc, tr, "overfit-clean")
    assert clean.phase == "Succeeded", clean.conditions
    cps = store.list_checkpoints(run_id="overfit-clean")
    assert cps[-1].checksum != cps[0].checksum, "exemplar accepted a config built from train inputs"
    cond = condition_of(clean, ConditionType.OVERFITTING)
    assert cond is not None and (cond.status, cond.reason) == ("False", Reason.NO_EVALUATION_INPUTS_IN_PROMPT)
    assert clean.leaked_inputs is None
    train_inputs = [r.input for r in store.list_cases("overfit-clean") if "/train/" in r.stage]
    assert any(str(t) in " ".join(cps[-1].prompts.values()) for t in train_inputs), "train inputs are quoted"

    # a hand-made config: one prompt quotes a validation input, another a holdout input
    val = max((r for r in store.list_cases("overfit-clean", stage="epoch-0/validation")), key=lambda r: len(r.input))
    hold = max((r for r in store.list_cases("overfit-clean", stage="holdout/baseline")), key=lambda r: len(r.input))
    assert len(val.input) >= 20 and len(hold.input) >= 20
    leaky = copy.deepcopy(pc)
    leaky["metadata"]["name"] = "leaky"
    prompts = leaky["spec"]["prompts"]
    prompts["intent.billing_issue"] = {"text": f"billing issue, e.g. {val.input}", "requiresGrad": False}
    prompts["intent.lost_card"] = {"text": f"lost card, e.g.  {hold.input.upper()}", "requiresGrad": False}
    tr2 = copy.deepcopy(tr)
    tr2["spec"]["promptConfigRef"]["name"] = "leaky"
    status = _run(store, leaky, tr2, "overfit-leaky")
    assert status.phase == "Succeeded", status.conditions
    cond = condition_of(status, ConditionType.OVERFITTING)
    assert cond is not None and (cond.status, cond.reason) == ("True", Reason.EVALUATION_INPUTS_IN_PROMPT)
    assert "intent.billing_issue" in cond.message and "intent.lost_card" in cond.message
    found = {(f.prompt, f.split, f.case_id) for f in status.leaked_inputs or []}
    assert ("intent.billing_issue", "validation", val.case_id) in found
    assert ("intent.lost_card", "holdout", hold.case_id) in found
    assert status.to_wire()["leakedInputs"]
