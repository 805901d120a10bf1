"""``summary.json`` and ``report.html`` for a finished run.

The report is one self-contained HTML file: a score-by-epoch plot (inline SVG: validation
objective of each checkpoint, and the mean train objective of its epoch), the holdout guard
result, and a per-case table (holdout cases of the best config for a TrainingRun, every case for
an EvaluationRun). Nothing in it comes from environment variables or Secrets.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from agentensor_api import RunStatus
from agentensor_store import CaseRow, CheckpointRecord, Store

MAX_TABLE_ROWS = 2000


def _svg_plot(points: list[tuple[int, float | None, float | None]], width: int = 640, height: int = 260) -> str:
    pad = 40
    if not points:
        return "<p>No checkpoints.</p>"
    xs = [p[0] for p in points]
    ys = [float(v) for p in points for v in p[1:] if v is not None]
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
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return html.escape(text if len(text) <= 300 else text[:300] + "…")


def render_report(title: str, status: RunStatus, checkpoints: list[CheckpointRecord], cases: list[CaseRow]) -> str:
    """Return the HTML report as a string."""
    points = [(c.epoch, c.score, c.train_score) for c in sorted(checkpoints, key=lambda c: c.epoch)]
    rows = []
    for c in cases[:MAX_TABLE_ROWS]:
        scores = ", ".join(f"{k}={v:.3g}" for k, v in sorted((c.scores or {}).items()))
        cls = "err" if c.error else ("ok" if c.passed else "fail")
        rows.append(
            f'<tr class="{cls}"><td>{_cell(c.case_id)}</td><td>{_cell(c.input)}</td>'
            f"<td>{_cell(c.expected)}</td><td>{_cell(c.output)}</td><td>{html.escape(scores)}</td>"
            f"<td>{_cell(c.error or '')}</td></tr>"
        )
    more = f"<p>{len(cases) - MAX_TABLE_ROWS} more rows are in the database.</p>" if len(cases) > MAX_TABLE_ROWS else ""
    conds = "".join(
        f"<li><b>{html.escape(c.type)}</b>={html.escape(c.status)} ({html.escape(c.reason)}) "
        f"{html.escape(c.message)}</li>"
        for c in status.conditions
    )
    h = status.holdout
    facts = {
        "phase": status.phase,
        "baseline (validation)": status.baseline_score,
        "best (validation)": status.best_score,
        "best version": status.best_version,
        "holdout baseline": h.baseline if h else None,
        "holdout best": h.best if h else None,
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
    fact_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(f'{v:.4f}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in facts.items()
        if v is not None
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}}
tr.fail td{{background:#fff3f3}}tr.err td{{background:#ffe0e0}}</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{fact_rows}</table>
<h2>Conditions</h2><ul>{conds}</ul>
<h2>Score by epoch</h2>{_svg_plot(points)}
<h2>Cases ({html.escape(cases[0].stage) if cases else "none"})</h2>
<table><tr><th>case</th><th>input</th><th>expected</th><th>output</th><th>scores</th><th>error</th></tr>
{"".join(rows)}</table>{more}
</body></html>
"""


def write_outputs(out_dir: Path, name: str, status: RunStatus, store: Store, *, training: bool) -> dict[str, Path]:
    """Write ``summary.json`` (the status shape, every checkpoint) and ``report.html``.

    Returns:
        ``{"summary": path, "report": path}``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    assert status.run_id is not None
    checkpoints = store.list_checkpoints(run_id=status.run_id)
    cases = store.list_cases(status.run_id, stage="holdout/best" if training else "eval")
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps(status.to_wire(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    report = out_dir / "report.html"
    report.write_text(render_report(name, status, checkpoints, cases), encoding="utf-8")
    return {"summary": summary, "report": report}
