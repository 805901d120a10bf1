"""HTML sections of ``report.html``: plain HTML, inline CSS/SVG and a few lines of JS, no CDN.

Every value from a row, a prompt or the status is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import difflib
import html
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentensor_api import RunStatus
from agentensor_store import CheckpointRecord

from .case_table import MAX_CONFUSION_PAIRS, CaseTable, CaseView

CELL_CHARS = 300
"""Characters of an input/output cell shown before it is clipped with an ellipsis."""
MATRIX_MAX_CLASSES = 12
"""At most this many labels get a full confusion matrix; more get the list of top pairs."""

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
#cases td{max-width:360px;overflow-wrap:anywhere}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fff3f3}tr.err td{background:#ffe0e0}
#cases.failures-only tr.ok{display:none}#cases.changed-only tr.same{display:none}
pre.diff{background:#fafafa;border:1px solid #ddd;padding:6px;white-space:pre-wrap;font-size:12px}
pre.diff .add{background:#e6ffec;display:block}pre.diff .del{background:#ffebe9;display:block}
pre.diff .hunk{color:#6a737d;display:block}
.bar{display:inline-block;height:10px;background:#1f77b4;vertical-align:middle}
.filters{margin:.5em 0;font-size:14px}.filters label{margin-right:1.5em}
td.m0{background:#fff}td.m1{background:#fde0dd}td.m2{background:#fa9fb5}td.m3{background:#c51b8a;color:#fff}
td.diag{background:#e5f5e0}
.prompts{max-height:640px;overflow:auto;border:1px solid #eee;padding:0 8px}
.side{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}.scroll{max-height:520px;overflow:auto}"""

FILTER_JS = """(function(){var t=document.getElementById('cases');if(!t)return;
['failures-only','changed-only'].forEach(function(id){var box=document.getElementById(id);if(!box)return;
function apply(){t.classList.toggle(id,box.checked);}
box.addEventListener('change',apply);
if(location.hash.slice(1).split(',').indexOf(id)>=0){box.checked=true;}apply();});})();"""
"""The filters: a checkbox toggles a class on the case table (CSS hides the rows); a URL
fragment such as ``report.html#failures-only`` (or ``#failures-only,changed-only``) turns them
on when the page opens, so a filtered view can be linked."""


def esc(value: Any) -> str:
    """``value`` as escaped text (JSON for non-strings), clipped to :data:`CELL_CHARS`."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return html.escape(text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…")


def fmt(value: Any) -> str:
    return html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))


def prompt_diff(old: Mapping[str, str], new: Mapping[str, str], old_name: str, new_name: str) -> str:
    """Unified diff (``difflib.unified_diff``) of two prompt sets, one block per changed prompt.

    Returns HTML: a ``<pre class="diff">`` per prompt that differs, and a line counting the
    prompts that are the same.
    """
    blocks, same = [], 0
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            same += 1
            continue
        lines = difflib.unified_diff(
            (a or "").splitlines(), (b or "").splitlines(), f"{old_name}/{key}", f"{new_name}/{key}", lineterm=""
        )
        body = "".join(_diff_line(line) for line in lines)
        blocks.append(f'<h4>{html.escape(key)}</h4><pre class="diff">{body}</pre>')
    head = f"<p>{len(blocks)} prompt(s) changed, {same} unchanged.</p>"
    return head + "".join(blocks)


def _diff_line(line: str) -> str:
    cls = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else "del" if line[:1] == "-" else ""
    if line.startswith(("+++", "---")):
        cls = "hunk"
    text = html.escape(line)
    return f'<span class="{cls}">{text}</span>' if cls else f"{text}\n"


def prompts_section(checkpoints: Sequence[CheckpointRecord], status: RunStatus) -> str:
    """The learned prompts: the best version in full, its diff from the baseline, and each
    checkpoint's diff from the one before (collapsed)."""
    if not checkpoints:
        return "<p>No checkpoints (an EvaluationRun scores one stored version).</p>"
    ordered = sorted(checkpoints, key=lambda c: c.epoch)
    base = ordered[0]
    best = next((c for c in reversed(ordered) if c.version == status.best_version), ordered[-1])
    parts = [
        f"<h3>Baseline v{base.version} → best v{best.version}</h3>",
        prompt_diff(base.prompts, best.prompts, f"v{base.version}", f"v{best.version}"),
        f"<details><summary>Best prompts (v{best.version}, {len(best.prompts)} prompts, "
        f"checksum {html.escape(best.checksum[:12])})</summary><table>",
        *(
            f"<tr><th>{html.escape(k)}</th><td><pre>{html.escape(v)}</pre></td></tr>"
            for k, v in sorted(best.prompts.items())
        ),
        "</table></details><h3>Each checkpoint against the one before</h3>",
    ]
    for prev, cur in itertools.pairwise(ordered):
        score = "-" if cur.score is None else f"{cur.score:.4f}"
        parts.append(
            f'<details class="checkpoint"><summary>epoch {cur.epoch}: v{prev.version} → v{cur.version} '
            f"(validation {score})</summary>"
            f"{prompt_diff(prev.prompts, cur.prompts, f'v{prev.version}', f'v{cur.version}')}</details>"
        )
    parts.append("<p>Any two versions: <code>agentensor report RUN --diff A B</code>.</p>")
    return "".join(parts)


def classes_section(table: CaseTable) -> str:
    """Per-class accuracy (worst first) and a confusion view; empty when not classification."""
    if not table.classes:
        return ""
    rows = []
    for s in sorted(table.classes.values(), key=lambda s: (s.accuracy, s.label)):
        width = round(100 * s.accuracy)
        rows.append(
            f'<tr><td>{html.escape(s.label)}</td><td class="num">{s.n}</td><td class="num">{s.passed}</td>'
            f'<td class="num">{s.accuracy:.3f}</td><td><span class="bar" style="width:{width}px"></span></td></tr>'
        )
    per_class = (
        f'<div class="scroll"><h2>Per-class accuracy ({len(table.classes)} classes, {html.escape(table.stage)})</h2>'
        '<table id="per-class"><tr><th>expected label</th><th class="num">cases</th><th class="num">passed</th>'
        f'<th class="num">accuracy</th><th></th></tr>{"".join(rows)}</table></div>'
    )
    return f'<div class="side">{per_class}<div class="scroll">{_confusion(table)}</div></div>'


def _confusion(table: CaseTable) -> str:
    assert table.classes is not None
    labels = sorted(table.classes)
    if len(labels) <= MATRIX_MAX_CLASSES:
        return _matrix(table, labels)
    pairs = table.confusion.most_common(MAX_CONFUSION_PAIRS)
    if not pairs:
        return "<h2>Confusion</h2><p>No mistakes.</p>"
    rows = "".join(
        f'<tr><td>{html.escape(e)}</td><td>{html.escape(p)}</td><td class="num">{n}</td></tr>' for (e, p), n in pairs
    )
    return (
        f"<h2>Confusion: the {len(pairs)} most frequent mistakes</h2>"
        '<table id="confusion"><tr><th>expected</th><th>predicted</th><th class="num">cases</th></tr>'
        f"{rows}</table>"
    )


def _matrix(table: CaseTable, labels: list[str]) -> str:
    assert table.classes is not None
    cols = sorted({p for (_, p) in table.confusion} - set(labels))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*labels, *cols])
    peak = max(table.confusion.values(), default=1)
    body = []
    for e in labels:
        wrong = sum(n for (x, _), n in table.confusion.items() if x == e)
        cells = []
        for p in [*labels, *cols]:
            n = table.classes[e].n - wrong if p == e else table.confusion.get((e, p), 0)
            level = "diag" if p == e else f"m{min(3, -(-3 * n // peak))}"
            cells.append(f'<td class="num {level}">{n}</td>')
        body.append(f"<tr><th>{html.escape(e)}</th>{''.join(cells)}</tr>")
    return (
        "<h2>Confusion matrix (rows: expected, columns: predicted)</h2>"
        f'<table id="confusion"><tr><th></th>{head}</tr>{"".join(body)}</table>'
    )


def cases_section(table: CaseTable) -> str:
    """The case table with the failures-only (and changed-vs-baseline) filters."""
    on_holdout = table.baseline_stage is not None
    head = ["case", "input", "expected", "predicted", *(["baseline"] if on_holdout else [])]
    head += ["scores", "reasons", "latency (s)", "tokens in/out", "cost", "error"]
    rows = "".join(_case_row(v, on_holdout) for v in table.shown)
    filters = '<label><input type="checkbox" id="failures-only"> failures only</label>'
    if on_holdout:
        filters += '<label><input type="checkbox" id="changed-only"> changed against the baseline only</label>'
    more = (
        f"<p>{table.hidden} more rows are in the database (the table keeps failures first).</p>" if table.hidden else ""
    )
    summary = (
        f"<p>{table.total} cases, {table.failures} failed ({table.errors} error rows); "
        f"latency {table.latency_sum:.2f} s in total; tokens {table.input_tokens} in / {table.output_tokens} out; "
        f"cost {table.cost:.4f}."
    )
    if on_holdout:
        summary += f" Against the baseline: {table.fixed} fixed, {table.broken} broken."
    return (
        f"<h2>Cases ({html.escape(table.stage)})</h2>{summary}</p>"
        f'<div class="filters">{filters}</div>'
        f'<table id="cases"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{rows}</table>{more}'
        f"<script>{FILTER_JS}</script>"
    )


def _case_row(v: CaseView, on_holdout: bool) -> str:
    c = v.row
    ok = c.error is None and bool(c.passed)
    cls = ["ok" if ok else ("err" if c.error else "fail")]
    cells = [esc(c.case_id), esc(c.input), esc(c.expected), esc(v.predicted if v.predicted is not None else c.output)]
    if on_holdout:
        cls.append("same" if v.baseline_passed == ok else "changed")
        mark = {True: "pass", False: "fail", None: "-"}[v.baseline_passed]
        guess = "" if v.baseline_predicted is None else f": {esc(v.baseline_predicted)}"
        cells.append(f"{mark}{guess}" if v.baseline_passed is not None else "-")
    usage = c.usage or {}
    cells += [
        html.escape(", ".join(f"{k}={s:.3g}" for k, s in sorted((c.scores or {}).items()))),
        esc("; ".join(f"{k}: {r}" for k, r in sorted((c.reasons or {}).items()))),
        f"{c.latency_seconds or 0.0:.3f}",
        f"{int(usage.get('inputTokens') or 0)}/{int(usage.get('outputTokens') or 0)}",
        f"{float(usage.get('cost') or 0.0):.4g}",
        esc(c.error or ""),
    ]
    nums = {len(cells) - 4, len(cells) - 3, len(cells) - 2}
    tds = "".join(f'<td class="num">{x}</td>' if i in nums else f"<td>{x}</td>" for i, x in enumerate(cells))
    return f'<tr class="{" ".join(cls)}">{tds}</tr>'
