"""Bad-input catalogue: each entry is rejected naming its field, or isolated as error rows.

Every entry runs against a real SQLite store that already holds a checkpointed run; after each
entry that run's checkpoints and versions are unchanged (nothing already checkpointed is lost).
The table in docs/reliability.md is generated from the same catalogue (`render_table`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import AgentensorError, EvaluationRun, ManifestError, PromptConfig, TrainingRun, parse_resource
from agentensor_runner import DataRoots, execute
from agentensor_store import Store

from .catalogue import CATALOGUE, Entry, base

REPO = Path(__file__).resolve().parents[2]


def _execute(store: Store, docs: tuple[dict[str, Any], dict[str, Any]], run_id: str, grant: Path | None = None) -> Any:
    """Execute the run from the repository's folder; ``grant``: the folder the user grants (``--data-root``)."""
    pc = parse_resource(docs[0])
    run = parse_resource(docs[1])
    assert isinstance(pc, PromptConfig) and isinstance(run, (TrainingRun, EvaluationRun))
    roots = DataRoots.of([grant] if grant else [])
    return asyncio.run(execute(run, pc, store, base_dir=Path("."), run_id=run_id, data_roots=roots))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[Any], list[Any]]]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('db') / 'catalogue.db'}")
    store.upgrade()
    status = _execute(store, base(), "reference")
    assert status.phase == "Succeeded"
    yield store, store.list_checkpoints(run_id="reference"), store.list_versions("synthetic-router")
    store.close()


def test_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 60
    assert len({e.id for e in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id) for e in CATALOGUE])
def test_bad_input(entry: Entry, seeded: tuple[Store, list[Any], list[Any]], tmp_path: Path) -> None:
    store, checkpoints, versions = seeded
    docs = entry.mutate(base(), tmp_path)
    run_id = entry.run_id or f"bad-{entry.id}"
    reference = store.get_run("reference")
    if entry.outcome == "rejected":
        with pytest.raises(ManifestError) as exc:
            _execute(store, docs, run_id, tmp_path)
        assert exc.value.field == entry.field, str(exc.value)
        assert entry.needle in exc.value.reason, str(exc.value)
        assert store.get_run(run_id) is None, "a rejected run writes nothing"
    elif entry.outcome == "refused":
        with pytest.raises(AgentensorError) as refused:
            _execute(store, docs, run_id, tmp_path)
        assert entry.needle in str(refused.value) and repr(run_id) in str(refused.value), str(refused.value)
        assert store.get_run(run_id) == reference, "a refused resume changes nothing of the run it names"
    elif entry.outcome == "failed":
        status = _execute(store, docs, run_id, tmp_path)
        assert status.phase == "Failed" and entry.needle in (status.message or ""), status
    else:
        status = _execute(store, docs, run_id, tmp_path)
        assert status.phase == "Succeeded", status.conditions
        errors = store.list_cases(run_id, errors_only=True)
        assert errors, "the bad rows are recorded as error rows"
        assert all(entry.needle in (r.error or "") for r in errors), [r.error for r in errors][:3]
        assert status.cases_failed and status.cases_failed >= 1
        assert len(store.list_cases(run_id)) > len(errors), "the good rows are recorded beside the bad ones"
    if entry.check is not None:
        entry.check(store, run_id)
    assert store.list_checkpoints(run_id="reference") == checkpoints
    assert store.list_versions("synthetic-router")[: len(versions)] == versions


def render_table() -> str:
    """The Markdown table of docs/reliability.md's bad-input section."""
    lines = ["| # | input | outcome | field named | message contains |", "| --- | --- | --- | --- | --- |"]
    for i, e in enumerate(CATALOGUE, start=1):
        needle = e.needle.replace("|", "\\|")
        lines.append(f"| {i} | {e.what} (`{e.id}`) | {e.outcome} | `{e.field}` | `{needle}` |")
    return "\n".join(lines) + "\n"


def test_docs_table_matches_catalogue() -> None:
    text = (REPO / "docs" / "reliability.md").read_text()
    assert render_table() in text, (
        "regenerate with: python -c 'from tests.reliability.test_bad_input import render_table as r; print(r())'"
    )
