"""``summary.json`` and ``report.html`` for a run, from the database.

Both files are written by :func:`write_outputs` from what the store holds: ``summary.json`` is
the run's stored status (the same document the runner publishes and the operator copies to
``.status``), and ``report.html`` is one self-contained HTML file (inline CSS, SVG and a few
lines of JS; nothing from a CDN) with:

- the facts of the status, the per-evaluator results and the conditions;
- the score-by-epoch plot (validation objective of each checkpoint, mean train objective of its
  epoch, and the holdout scores of the baseline and of the best config);
- the learned prompts: the baseline-to-best diff (:func:`difflib.unified_diff`) and each
  checkpoint against the one before;
- per-class accuracy and a confusion view when the expected values are labels;
- the case table (holdout of the best config for a TrainingRun, with the baseline's outcome per
  case; every case for an EvaluationRun), at most ``MAX_TABLE_ROWS`` rows, failures first, with a
  failures-only filter, latency, tokens and cost.

The case rows are read in one pass and only counters plus the shown rows are kept
(:mod:`.case_table`). Nothing in either file comes from environment variables or Secrets.
"""

from __future__ import annotations

import difflib
import html
import itertools
import json
from pathlib import Path

from agentensor_api import RunStatus
from agentensor_store import CheckpointRecord, RunRecord, Store, VersionRecord

from .case_table import MAX_TABLE_ROWS, CaseTable, add_baseline, collect, objective_of, stage_rows
from .sections import CSS, cases_section, classes_section, fmt, prompts_section

__all__ = ["MAX_TABLE_ROWS", "render_report", "version_diff", "write_outputs"]


def _svg_plot(
    points: list[tuple[int, float | None, float | None]],
    holdout: list[tuple[int, float, str]],
    width: int = 640,
    height: int = 260,
) -> str:
    """Validation and train objective by epoch as polylines; holdout scores as labelled squares."""
    pad = 40
    if not points:
        return "<p>No checkpoints.</p>"
    xs = [p[0] for p in points]
    ys = [float(v) for p in points for v in p[1:] if v is not None] + [h[1] for h in holdout]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    lo, hi = min(lo, 0.0) if lo < 0 else max(0.0, lo - 0.05), min(1.0, hi + 0.05) if hi <= 1 else hi
    span_x = max(1, max(xs) - min(xs))
    span_y = (hi - lo) or 1.0

    def xy(x: float, y: float) -> tuple[float, float]:
        return (pad + (x - min(xs)) / span_x * (width - 2 * pad), height - pad - (y - lo) / span_y * (height - 2 * pad))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="score by epoch">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
    ]
    for i in range(5):
        v = lo + span_y * i / 4
        _, y = xy(min(xs), v)
        parts.append(f'<text x="4" y="{y + 4:.1f}" font-size="11">{v:.2f}</text>')
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#eee"/>')
    for x in xs:
        px, _ = xy(x, lo)
        parts.append(f'<text x="{px - 4:.1f}" y="{height - pad + 16}" font-size="11">{x}</text>')
    parts.append(f'<text x="{width / 2 - 20}" y="{height - 6}" font-size="12">epoch</text>')
    for idx, (color, label) in enumerate((("#1f77b4", "validation"), ("#ff7f0e", "train"))):
        series = [(p[0], val) for p in points if (val := p[1 + idx]) is not None]
        if not series:
            continue
        coords = " ".join(f"{xy(ex, sy)[0]:.1f},{xy(ex, sy)[1]:.1f}" for ex, sy in series)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for ex, sy in series:
            cx, cy = xy(ex, sy)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>')
        parts.append(f'<text x="{width - pad - 90}" y="{pad + 14 * idx}" font-size="12" fill="{color}">{label}</text>')
    for i, (ex, sy, label) in enumerate(holdout):
        cx, cy = xy(ex, sy)
        parts.append(f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="#2ca02c" class="holdout"/>')
        anchor, tx = ("end", cx - 6) if cx > width / 2 else ("start", cx + 6)
        parts.append(
            f'<text x="{tx:.1f}" y="{cy + 4 + 12 * i:.1f}" font-size="11" fill="#2ca02c" '
            f'text-anchor="{anchor}">{label}</text>'
        )
    if holdout:
        parts.append(f'<text x="{width - pad - 90}" y="{pad + 28}" font-size="12" fill="#2ca02c">holdout</text>')
    parts.append("</svg>")
    return "".join(parts)


def _facts(status: RunStatus) -> str:
    h = status.holdout
    facts = {
        "phase": status.phase,
        "baseline (validation)": status.baseline_score,
        "best (validation)": status.best_score,
        "best version": status.best_version,
        "holdout baseline": h.baseline if h else None,
        "holdout best": h.best if h else None,
        "holdout delta (p-value)": f"{h.delta:+.4f} (p={h.p_value:.3g}, {h.test})"
        if h and h.delta is not None and h.p_value is not None
        else None,
        "cases": status.cases_completed,
        "error rows": status.cases_failed,
        "dataset hash": (status.dataset_hash or "")[:16],
    }
    if status.usage is not None:
        u = status.usage
        facts["LLM tokens (input / output)"] = f"{u.input_tokens} / {u.output_tokens}"
        facts["LLM cost"] = u.cost
        facts["LLM calls by purpose"] = ", ".join(f"{k}={v}" for k, v in u.llm_calls.items()) or "none"
        facts["cache hits by purpose"] = ", ".join(f"{k}={v}" for k, v in u.cached_calls.items()) or "none"
        facts["truncated replies by purpose"] = ", ".join(f"{k}={v}" for k, v in u.truncated_calls.items()) or "none"
        facts["judge parse failures"] = ", ".join(f"{k}={v}" for k, v in u.parse_failures.items()) or "none"
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in facts.items() if v is not None)


def _results(status: RunStatus) -> str:
    """``status.results`` as a table (mean, passRate, n, parseFailures per evaluator)."""
    results = status.results or {}
    if not results:
        return ""
    rows = "".join(
        f'<tr><td>{html.escape(name)}</td><td class="num">{r.mean:.4f}</td><td class="num">{r.pass_rate:.4f}</td>'
        f'<td class="num">{r.n}</td><td class="num">{r.parse_failures}</td></tr>'
        for name, r in sorted(results.items())
    )
    return (
        '<h2>Results</h2><table id="results"><tr><th>evaluator</th><th class="num">mean</th>'
        f'<th class="num">passRate</th><th class="num">n</th><th class="num">parseFailures</th></tr>{rows}</table>'
    )


def _plot(status: RunStatus, checkpoints: list[CheckpointRecord]) -> str:
    ordered = sorted(checkpoints, key=lambda c: c.epoch)
    points = [(c.epoch, c.score, c.train_score) for c in ordered]
    holdout: list[tuple[int, float, str]] = []
    h = status.holdout
    if h is not None and ordered:
        best_epoch = next((c.epoch for c in reversed(ordered) if c.version == status.best_version), ordered[-1].epoch)
        if h.baseline is not None:
            holdout.append((ordered[0].epoch, h.baseline, f"holdout baseline {h.baseline:.3f}"))
        if h.best is not None:
            holdout.append((best_epoch, h.best, f"holdout best {h.best:.3f}"))
    return _svg_plot(points, holdout)


def _evaluated_prompts(version: VersionRecord | None) -> str:
    if version is None:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><pre>{html.escape(v)}</pre></td></tr>"
        for k, v in sorted(version.prompts.items())
    )
    return (
        f"<details><summary>Evaluated prompts (v{version.version}, {len(version.prompts)} prompts, "
        f"checksum {html.escape(version.checksum[:12])})</summary><table>{rows}</table></details>"
    )


def render_report(
    title: str,
    status: RunStatus,
    checkpoints: list[CheckpointRecord],
    table: CaseTable,
    *,
    evaluated: VersionRecord | None = None,
) -> str:
    """Return the HTML report as a string (see the module docstring for its sections).

    Args:
        title: heading, e.g. ``TrainingRun/banking77-router-train``.
        status: the run's status (as stored).
        checkpoints: the run's checkpoints (prompts included); none for an EvaluationRun.
        table: the case table from :func:`~agentensor_runner.report.case_table.collect`.
        evaluated: an EvaluationRun's scored version, whose prompts are listed.
    """
    conds = "".join(
        f"<li><b>{html.escape(c.type)}</b>={html.escape(c.status)} ({html.escape(c.reason)}) "
        f"{html.escape(c.message)}</li>"
        for c in status.conditions
    )
    prompts = prompts_section(checkpoints, status) if checkpoints else _evaluated_prompts(evaluated)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<table id="facts">{_facts(status)}</table>
{_results(status)}
<h2>Conditions</h2><ul>{conds}</ul>
<h2>Score by epoch</h2>{_plot(status, checkpoints)}
{classes_section(table)}
<h2>Learned prompts</h2><div class="prompts">{prompts}</div>
{cases_section(table)}
</body></html>
"""


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
