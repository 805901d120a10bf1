"""The files of a run's outputs, from what the store holds: ``summary.json`` and ``report.html``.

The case rows are read in one pass and only counters plus the shown rows are kept
(:mod:`.case_table`); a sharded EvaluationRun's cases are read from its shards' rows.
"""

from __future__ import annotations

import difflib
import itertools
import json
from pathlib import Path

from agentensor_api import RunStatus
from agentensor_store import RunRecord, Store, VersionRecord

from .case_table import CaseTable, add_baseline, collect, objective_of, stage_rows
from .page import render_report


def _shard_ids(store: Store, record: RunRecord | None) -> list[str]:
    """Run ids ``<uid>-s<i>`` of a sharded EvaluationRun's shards (whose rows hold its cases)."""
    if record is None or record.kind != "EvaluationRun":
        return []
    prefix = f"{record.id}-s"
    runs = store.find_runs(namespace=record.namespace, name=record.name, kind=record.kind)
    return [r.id for r in runs if r.id.startswith(prefix) and r.id[len(prefix) :].isdigit()]


def _case_table(store: Store, run_ids: list[str], spec: dict[str, object], *, training: bool) -> CaseTable:
    objective = objective_of(spec)
    stage = "holdout/best" if training else "eval"
    rows = itertools.chain.from_iterable(stage_rows(store, rid, stage) for rid in run_ids)
    table, passing = collect(rows, stage, objective)
    run_id = run_ids[0]
    if training:
        add_baseline(table, stage_rows(store, run_id, "holdout/baseline"), "holdout/baseline", objective, passing)
    return table


def write_outputs(out_dir: Path, name: str, status: RunStatus, store: Store, *, training: bool) -> dict[str, Path]:
    """Write ``summary.json`` (``status`` in wire form, every checkpoint) and ``report.html``.

    The same function serves ``agentensor run`` (the status it just finished) and
    ``agentensor report`` (the status stored for the run), so both render the same files. For
    a sharded EvaluationRun's aggregate row (run id = the uid) the cases are read from its
    shards' rows (``<uid>-s<i>``).

    Returns:
        ``{"summary": path, "report": path}``.

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    assert status.run_id is not None
    record = store.get_run(status.run_id)
    spec = dict(record.spec) if record is not None else {}
    checkpoints = store.list_checkpoints(run_id=status.run_id)
    run_ids = _shard_ids(store, record) or [status.run_id]
    table = _case_table(store, run_ids, spec, training=training)
    evaluated = None
    if not training and record is not None and table.shown and table.shown[0].row.version is not None:
        evaluated = store.get_version(record.workflow, table.shown[0].row.version, namespace=record.namespace)
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps(status.to_wire(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    report = out_dir / "report.html"
    report.write_text(render_report(name, status, checkpoints, table, evaluated=evaluated), encoding="utf-8")
    return {"summary": summary, "report": report}


def version_diff(a: VersionRecord, b: VersionRecord) -> str:
    """Unified diff (``difflib.unified_diff``) of two stored versions' prompts and parameters, as text.

    One block per prompt that differs, then the parameters (JSON, sorted keys) if they differ;
    ``""`` when the versions are identical.
    """
    out: list[str] = []
    for key in sorted(set(a.prompts) | set(b.prompts)):
        old, new = a.prompts.get(key), b.prompts.get(key)
        if old != new:
            out += difflib.unified_diff(
                (old or "").splitlines(),
                (new or "").splitlines(),
                f"v{a.version}/{key}",
                f"v{b.version}/{key}",
                lineterm="",
            )
    if a.parameters != b.parameters:
        out += difflib.unified_diff(
            json.dumps(a.parameters, indent=2, sort_keys=True).splitlines(),
            json.dumps(b.parameters, indent=2, sort_keys=True).splitlines(),
            f"v{a.version}/parameters",
            f"v{b.version}/parameters",
            lineterm="",
        )
    return "\n".join(out) + ("\n" if out else "")
