"""``agentensor runner`` records a config error as the run's verdict (issue 14: failures that explain themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentensor_api import ConditionType, Reason, RunStatus, condition_of
from agentensor_store import Store
from tests.operator.test_runner_cmd import UID, runner, write_manifest


def _verdict(db_url: str) -> RunStatus:
    store = Store(db_url)
    try:
        row = store.get_run(UID)
        assert row is not None, "the runner wrote no row"
        assert row.phase == "Failed"
        return RunStatus.model_validate(row.status)
    finally:
        store.close()


@pytest.mark.one_backend
def test_a_data_error_exits_2_and_records_invalid_input(tmp_path: Path, db_url: str) -> None:
    write_manifest(tmp_path, dataset={"inline": [{"text": "a", "label": "x"}], "inputField": "nosuch"})
    code, output = runner(tmp_path, db_url)
    assert code == 2, output
    status = _verdict(db_url)
    failed = condition_of(status, ConditionType.FAILED)
    assert failed is not None and failed.status == "True" and failed.reason == Reason.INVALID_INPUT
    assert status.message is not None and status.message.startswith(
        "spec.dataset.inputField: no row has a field 'nosuch'"
    )
    assert "columns are" in status.message and status.run_id == UID


@pytest.mark.one_backend
def test_a_spec_error_records_invalid_spec(tmp_path: Path, db_url: str) -> None:
    # a PromptConfig reference the manifest does not resolve is a spec error, not a data error
    write_manifest(tmp_path, promptConfigRef={"name": "nosuch"})
    code, output = runner(tmp_path, db_url)
    assert code == 2, output
    failed = condition_of(_verdict(db_url), ConditionType.FAILED)
    assert failed is not None and failed.reason == Reason.INVALID_SPEC and "nosuch" in failed.message


def test_an_unreachable_database_records_nothing_and_still_exits_2(tmp_path: Path) -> None:
    write_manifest(tmp_path, dataset={"inline": [{"text": "a"}], "inputField": "nosuch"})
    missing = tmp_path / "no" / "such" / "dir" / "a.db"  # sqlite cannot create it: the store fails
    code, output = runner(tmp_path, f"sqlite:///{missing}")
    assert code == 2 and "error" in output
