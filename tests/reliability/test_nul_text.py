"""NUL characters on real SQLite and PostgreSQL: refused at the boundary, or stored escaped, never a lost batch."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import EvaluationRun, ManifestError, PromptConfig, RunStatus, parse_resource
from agentensor_runner import execute
from agentensor_store import Store

from .catalogue import _as_evaluation, base


def _run(store: Store, pc_doc: dict[str, Any], run_doc: dict[str, Any], run_id: str) -> RunStatus:
    pc, run = parse_resource(pc_doc), parse_resource(run_doc)
    assert isinstance(pc, PromptConfig) and isinstance(run, EvaluationRun)
    return asyncio.run(execute(run, pc, store, base_dir=Path("."), run_id=run_id))


def test_nul_rows_are_error_rows_beside_the_good_ones(store: Store) -> None:
    pc, ev = _as_evaluation(base())
    for r in ev["spec"]["dataset"]["inline"][:2]:
        r["text"] = "refund\x00 please"
    status = _run(store, pc, ev, "nul-rows")
    assert status.phase == "Succeeded", status.message
    rows = store.list_cases("nul-rows")
    errors = [r for r in rows if r.error]
    assert len(rows) == 72 and len(errors) == 2
    assert all("NUL character (U+0000)" in (r.error or "") for r in errors)
    assert all(r.input == "refund\\u0000 please" for r in errors), [r.input for r in errors]


def test_a_nul_in_every_output_is_stored_escaped(store: Store) -> None:
    pc, ev = _as_evaluation(base())
    ev["spec"]["workflow"] = {"entrypoint": "tests.reliability.hostile:build_nul_output"}
    ev["spec"]["evaluators"] = [{"name": "accuracy", "type": "exact_match", "outputField": "answer"}]
    status = _run(store, pc, ev, "nul-out")
    assert status.phase == "Succeeded", status.message
    rows = store.list_cases("nul-out")
    assert len(rows) == 72 and all(str(r.output["answer"]).endswith("\\u0000") for r in rows)


@pytest.mark.parametrize("where", ["text", "name", "parameter"])
def test_a_promptconfig_with_nul_is_an_invalid_spec(where: str) -> None:
    pc, _ = base()
    pc = copy.deepcopy(pc)
    if where == "text":
        pc["spec"]["prompts"]["intent.lost_card"]["text"] = "lost\x00"
    elif where == "name":
        pc["spec"]["prompts"]["bad\x00name"] = {"text": "x"}
    else:
        pc["spec"]["parameters"] = {"stop": ["\x00"]}
    with pytest.raises(ManifestError) as refused:
        parse_resource(pc)
    assert refused.value.field.startswith("spec.") and "NUL character" in refused.value.reason
