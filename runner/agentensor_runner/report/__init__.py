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

- :mod:`.outputs`: :func:`write_outputs` (both files) and :func:`version_diff` (two stored versions);
- :mod:`.page`: :func:`render_report`, the page; :mod:`.plot`: the score-by-epoch SVG;
- :mod:`.sections`: the per-class, prompts and case-table sections, and the CSS;
- :mod:`.case_table`: :func:`collect`, one bounded pass over the case rows.
"""

from .case_table import MAX_TABLE_ROWS
from .outputs import version_diff, write_outputs
from .page import render_report

__all__ = ["MAX_TABLE_ROWS", "render_report", "version_diff", "write_outputs"]
