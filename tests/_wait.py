"""The one way tests wait for something: poll a probe until it answers, or fail naming what was awaited.

Every test that waits on a real component (the API server, the operator's ``/healthz``, a runner
process's checkpoint, the model server) calls :func:`wait_for` instead of a loop of its own, so the
timeout message is the same everywhere and says what never happened::

    wait_for(lambda: cluster.get("trainingrun", "r"), 60, "TrainingRun r to exist")

A process that must stay up while the test waits (a runner, an operator) is watched with ``alive``:
when it ends first the wait fails at once with its exit code, instead of running into the timeout.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

__all__ = ["WaitTimeout", "processes_alive", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The probe never answered truthy within the timeout; the message names what was awaited
    and the probe's last answer."""


def wait_for(
    probe: Callable[[], T | Literal[False] | None],
    timeout_seconds: float,
    what: str,
    *,
    interval: float = 0.2,
    alive: Callable[[], None] | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``probe`` every ``interval`` seconds until it returns something truthy, and return that.

    Args:
        probe: no arguments; a truthy return ends the wait (``None``, ``False`` and other falsy
            answers go on waiting). Exceptions it raises propagate, except those of ``retry_on``.
        timeout_seconds: how long to keep trying, in seconds (the probe runs at least once).
        what: what is awaited, as the end of "waiting for ...", e.g. ``"operator /healthz"``.
        interval: pause between probes, in seconds.
        alive: called before each probe; raises (typically ``AssertionError``) when something
            the wait depends on has died, e.g. :func:`processes_alive`.
        retry_on: exception types the probe may raise while the awaited thing does not exist yet
            (e.g. ``KeyError`` before a NodeAgent has taken a Pod); they count as a falsy answer.

    Raises:
        WaitTimeout: the probe stayed falsy for ``timeout_seconds``.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        if alive is not None:
            alive()
        try:
            result = probe()
        except retry_on as e:
            result = None
            last_error: Exception | None = e
        else:
            last_error = None
        if result:
            return result
        if time.monotonic() > deadline:
            answer = f"raised {last_error!r}" if last_error is not None else f"answered {result!r}"
            raise WaitTimeout(f"timed out after {timeout_seconds:g} s waiting for {what} (the probe last {answer})")
        time.sleep(interval)


def processes_alive(*procs: subprocess.Popen[str] | subprocess.Popen[bytes]) -> Callable[[], None]:
    """An ``alive`` check for :func:`wait_for`: fails when any of ``procs`` has exited, with its
    exit code and the tail of its captured stderr (when it was piped)."""

    def check() -> None:
        ended: Sequence[subprocess.Popen[str] | subprocess.Popen[bytes]] = [p for p in procs if p.poll() is not None]
        if ended:
            raise AssertionError(
                "ended while waiting: " + "; ".join(f"{p.args!r} exited {p.returncode}: {_stderr(p)}" for p in ended)
            )

    return check


def _stderr(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> str:
    if proc.stderr is None:
        return "(stderr not captured)"
    _, err = proc.communicate()
    text = err.decode(errors="replace") if isinstance(err, bytes) else (err or "")
    return text[-3000:]
