"""``make example-llm`` as a user runs it: examples/local-llm's TrainingRun on SmolLM2-135M.

``examples/local-llm/run.sh`` (what the make target calls) starts its own server on a free port,
rewrites the manifests' ``baseUrl`` to it, runs the TrainingRun with ``agentensor run`` and
stops the server. The session's :func:`llm_server` fixture is only asked for so that a missing
wheel skips here (and fails in CI) with the same reason as the rest of the tier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, LlmServer, _free_port

pytestmark = pytest.mark.llm_real

EXAMPLE_TIMEOUT_SECONDS = 900
"""The issue's bound is 10 minutes on 2 cores; this leaves room for a loaded CI machine."""


def test_make_example_llm_trains_and_writes_the_summary_and_report(llm_server: LlmServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {
        **os.environ,
        "LLM_PORT": str(_free_port()),
        "OUT": str(out),
        "PYTHON": sys.executable,
        "AGENTENSOR": str(Path(sys.executable).with_name("agentensor")),
    }
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "local-llm" / "run.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_SECONDS,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\nserver log:\n{(out / 'server.log').read_text()[-2000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["phase"] == "Succeeded", summary.get("message")
    usage = summary["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, "real usage blocks from the server"
    assert summary["checkpoints"], "a checkpoint every epoch"
    assert summary["bestScore"] >= summary["baselineScore"], "the best checkpoint is never worse than the baseline"
    promotable = next(c for c in summary["conditions"] if c["type"] == "Promotable")
    assert promotable["status"] in ("True", "False") and promotable["reason"], "the holdout guard decided, and why"
    report = (out / "report.html").read_text()
    assert "holdout" in report and "<svg" in report
    scores = f"baseline {summary['baselineScore']:.3f} -> best {summary['bestScore']:.3f}"
    tokens = f"{usage['inputTokens']}/{usage['outputTokens']}"
    decision = f"Promotable={promotable['status']} ({promotable['reason']})"
    print(f"make example-llm: {elapsed:.0f} s; {scores}; {decision}; tokens {tokens}")
