"""``summary.json`` and ``report.html`` for a run, from the database (see :mod:`.page`).

- :mod:`.page`: :func:`write_outputs` (both files), :func:`render_report` and :func:`version_diff`;
- :mod:`.sections`: the per-class, prompts and case-table sections, and the CSS;
- :mod:`.case_table`: :func:`collect`, one bounded pass over the case rows.
"""

from .case_table import MAX_TABLE_ROWS
from .page import render_report, version_diff, write_outputs

__all__ = ["MAX_TABLE_ROWS", "render_report", "version_diff", "write_outputs"]
