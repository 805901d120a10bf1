"""Model calls and exit time of a TrainingRun runner killed mid-epoch and resumed.

The scenario of ``tests/cli/test_runner_sigterm.py``: a textgrad TrainingRun (16 cases, 1 epoch,
parallelism 1) on the scripted OpenAI-compatible server, ``agentensor runner`` as a subprocess on
a SQLite store, stopped while the candidate's second validation call is in flight, then started
again under the same run id with an empty LLM file cache. Prints, per signal, the requests of an
uninterrupted run, of the first process, of the resumed process, how many of the latter repeat an
answered one, and the seconds from SIGTERM to exit.

    .venv/bin/python benchmarks/resume_after_kill.py
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cli.test_runner_sigterm import _answered, _finish, _key, _script, _start_runner, _wait_for
from tests.llm.conftest import API_KEY
from tests.llm.scripted_server import ScriptedServer


def uninterrupted(tmp: Path) -> int:
    with ScriptedServer(require_key=API_KEY) as server:
        _script(server, hang=False)
        proc = _start_runner(tmp, server, f"sqlite:///{tmp / 'reference.db'}", 0)
        _finish(proc)
        assert proc.returncode == 0
        return len(server.log)


def interrupted(tmp: Path, sig: signal.Signals) -> dict[str, object]:
    with ScriptedServer(require_key=API_KEY) as server:
        held = _script(server, hang=True)
        assert held is not None
        db = f"sqlite:///{tmp / f'{sig.name}.db'}"
        first = _start_runner(tmp, server, db, 1)
        _wait_for(first, held)
        sent = time.monotonic()
        first.send_signal(sig)
        stderr = _finish(first, timeout=60)
        took = time.monotonic() - sent
        before, answered, _ = _answered(server)
        second = _start_runner(tmp, server, db, 2)
        _finish(second)
        assert second.returncode == 0
        after = [_key(r.body) for r in server.log[before:]]
        return {
            "firstRequests": before,
            "resumedRequests": len(after),
            "repeated": sum(1 for k in after if k in answered),
            "exitCode": first.returncode,
            "secondsToExit": round(took, 3),
            "runnerSaid": [line for line in stderr.splitlines() if "SIGTERM" in line],
        }


async def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        report: dict[str, object] = {"uninterruptedRequests": uninterrupted(tmp)}
        for sig in (signal.SIGKILL, signal.SIGTERM):
            sub = tmp / sig.name
            sub.mkdir()
            report[sig.name] = interrupted(sub, sig)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
