"""The runner process's lifecycle in a Pod: its exit codes, SIGTERM, and the deadline of the unwind.

A runner is PID 1 of its container, and the kernel drops the signals PID 1 has no handler for, so
without a handler a deleted (or preempted) runner Pod would wait out its whole grace period for
SIGKILL. :func:`run_until_sigterm` runs the run's coroutine with a SIGTERM handler that cancels it:
the cases in flight are cancelled, the trainer records the rows of the cases its evaluation had
finished, the evaluation cache and the store-backed LLM response cache already hold every scored
case and every model reply, and the caller closes the store. The Job's next Pod resumes from the
last checkpoint and redoes the rest of the epoch with no repeated model call (docs/training.md,
"Resume"). The process then exits :data:`EXIT_TERMINATED` at once
(:func:`exit_at_once_after_sigterm`), or, if the unwind has not ended within
:func:`sigterm_deadline_seconds`, from a timer thread.

The public surface, which ``agentensor runner`` calls::

    with exit_at_once_after_sigterm():
        status = run_until_sigterm(execute(...))    # after opening the store; close it in a finally
    sys.exit(exit_code(status))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Final, NoReturn, TypeVar

from agentensor_api import Phase, RunStatus

_T = TypeVar("_T")

EXIT_SUCCEEDED: Final = 0
"""The run ended with phase ``Succeeded`` (an EvaluationRun's pass criteria may still have failed:
that is ``Passed=False`` in its status, not an exit code)."""

EXIT_FAILED: Final = 1
"""The run ended with phase ``Failed``; the reason and message are its verdict in the database."""

EXIT_INVALID: Final = 2
"""Nothing ran: an invalid flag, manifest or configuration (a spec or data error is also recorded
as the run's ``Failed`` verdict, so the operator fails the run at once instead of retrying the Pod)."""

EXIT_TERMINATED: Final = 128 + signal.SIGTERM
"""143, as a shell reports death by SIGTERM: the run was stopped by SIGTERM and unwound; what it
finished is recorded, and the Job's next Pod resumes it."""

SIGTERM_DEADLINE_ENV: Final = "AGENTENSOR_SIGTERM_DEADLINE_SECONDS"
"""Environment variable overriding :data:`DEFAULT_SIGTERM_DEADLINE_SECONDS` (seconds, > 0)."""

DEFAULT_SIGTERM_DEADLINE_SECONDS: Final = 20.0
"""Seconds the runner has after SIGTERM to unwind (cancel the cases in flight, record the finished
ones, close the store) before it exits 143 regardless. Well inside Kubernetes' default
``terminationGracePeriodSeconds`` of 30 s, and far above a normal unwind (under a second), so that
a database outage during the unwind, which the store would otherwise ride out for
``AGENTENSOR_DB_OUTAGE_RETRY_SECONDS``, cannot hold the Pod until the kubelet's SIGKILL."""

Say = Callable[[str], object]
"""Where the lifecycle's messages go (one line each; the CLI passes its stderr console's ``print``)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sigterm_deadline_seconds() -> float:
    """``$AGENTENSOR_SIGTERM_DEADLINE_SECONDS`` (> 0), else :data:`DEFAULT_SIGTERM_DEADLINE_SECONDS`."""
    raw = os.environ.get(SIGTERM_DEADLINE_ENV)
    try:
        value = float(raw) if raw else DEFAULT_SIGTERM_DEADLINE_SECONDS
    except ValueError:
        value = DEFAULT_SIGTERM_DEADLINE_SECONDS
    return value if value > 0 else DEFAULT_SIGTERM_DEADLINE_SECONDS


def exit_code(status: RunStatus) -> int:
    """:data:`EXIT_SUCCEEDED` when ``status.phase`` is ``Succeeded``, else :data:`EXIT_FAILED`."""
    return EXIT_SUCCEEDED if status.phase == Phase.SUCCEEDED else EXIT_FAILED


def exit_without_finalizing(code: int) -> NoReturn:
    """Flush the logs and both standard streams, then exit with ``code`` at once, skipping the
    interpreter's finalization.

    After SIGTERM the run has unwound and the store is closed; what is left is the interpreter's
    last full garbage collection over the whole heap (the runner froze it, see ``tuned_gc``),
    which took 5-8 s on a busy 2-core node: a third of the default grace period for nothing.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_late(say: Say, deadline: float) -> None:
    """The deadline timer's action: the unwind took too long, so exit 143 now."""
    say(f"SIGTERM: the unwind took longer than {deadline:g} s; exiting {EXIT_TERMINATED} now")
    os._exit(EXIT_TERMINATED)


async def cancel_on_sigterm(work: Coroutine[Any, Any, _T], *, say: Say = _stderr) -> _T:
    """Await ``work``; SIGTERM cancels it, and then this raises ``SystemExit(EXIT_TERMINATED)``.

    The first SIGTERM says so (through ``say``), starts a daemon timer that exits 143 after
    :func:`sigterm_deadline_seconds` if the unwind is still going, and cancels ``work``; a second
    SIGTERM does nothing more. The handler is removed when ``work`` ends. Must run in the main
    thread's event loop (``loop.add_signal_handler``).

    Raises:
        SystemExit: code :data:`EXIT_TERMINATED`, once ``work`` has unwound after SIGTERM.
        asyncio.CancelledError: ``work`` was cancelled by something other than SIGTERM.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = asyncio.Event()

    def terminate() -> None:
        if terminated.is_set():
            return
        terminated.set()
        deadline = sigterm_deadline_seconds()
        say(f"SIGTERM: stopping the run (finished cases stay recorded); exit {EXIT_TERMINATED} within {deadline:g} s")
        timer = threading.Timer(deadline, _exit_late, args=(say, deadline))
        timer.daemon = True
        timer.start()
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated.is_set():
            raise SystemExit(EXIT_TERMINATED) from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_until_sigterm(work: Coroutine[Any, Any, _T], *, say: Say = _stderr) -> _T:
    """Run ``work`` to completion in a new event loop under :func:`cancel_on_sigterm`; its result.

    Raises:
        SystemExit: code :data:`EXIT_TERMINATED` after SIGTERM (let it reach
            :func:`exit_at_once_after_sigterm` once the store is closed).
    """
    return asyncio.run(cancel_on_sigterm(work, say=say))


@contextlib.contextmanager
def exit_at_once_after_sigterm() -> Iterator[None]:
    """Turn ``SystemExit(EXIT_TERMINATED)`` leaving the block into :func:`exit_without_finalizing`.

    Wrap everything that must still run after SIGTERM (the unwind, closing the store) in it; any
    other exit or exception passes through unchanged.
    """
    try:
        yield
    except SystemExit as e:
        if e.code == EXIT_TERMINATED:
            exit_without_finalizing(EXIT_TERMINATED)
        raise


__all__ = [
    "DEFAULT_SIGTERM_DEADLINE_SECONDS",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_SUCCEEDED",
    "EXIT_TERMINATED",
    "SIGTERM_DEADLINE_ENV",
    "Say",
    "cancel_on_sigterm",
    "exit_at_once_after_sigterm",
    "exit_code",
    "exit_without_finalizing",
    "run_until_sigterm",
    "sigterm_deadline_seconds",
]
