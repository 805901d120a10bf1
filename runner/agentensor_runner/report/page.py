"""The HTML of ``report.html``: one self-contained page (inline CSS and SVG, a few lines of JS).

Sections, in order: the facts of the status, the per-evaluator results, the conditions, the
score-by-epoch plot (:mod:`.plot`), per-class accuracy and confusion, the learned prompts and the
case table (:mod:`.sections`). Every value from a row, a prompt or the status is escaped.
"""

from __future__ import annotations

import html

from agentensor_api import RunStatus
from agentensor_store import CheckpointRecord, VersionRecord

from .case_table import CaseTable
from .plot import score_plot
from .sections import CSS, cases_section, classes_section, fmt, prompts_section


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
    """Return the HTML report as a string (see the package docstring for its sections).

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
<h2>Score by epoch</h2>{score_plot(status, checkpoints)}
{classes_section(table)}
<h2>Learned prompts</h2><div class="prompts">{prompts}</div>
{cases_section(table)}
</body></html>
"""
