"""Garbage-collector settings for processes that run cases.

A run keeps thousands of short-lived container objects per second alive for a few milliseconds
(LangGraph's per-invoke state, LangChain messages and callback managers, the OpenAI SDK's
request models), on top of a heap of several hundred thousand objects from imports. With
CPython's default thresholds (700, 10, 10) the young generation is collected every 700
allocations and a full collection walks the whole import heap; at 32 cases in flight that was
about a sixth of the runner's CPU (docs/benchmarks.md, "LLM throughput": 2.8 -> 2.4 ms per
case, 3.3 -> 2.7 s wall for 1,000 cases).

:func:`tuned_gc` does what long-running Python servers commonly do (``gc.freeze`` after start-up,
documented in the :mod:`gc` module for exactly this, plus larger thresholds): objects that exist
when it is entered move to the permanent generation and are never scanned again, and
collections run every 50,000 allocations instead of 700. Reference counting still frees
everything that is not in a cycle at once, so memory grows only by cyclic garbage that waits
longer for its collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

THRESHOLDS = (50_000, 20, 100)
"""``gc.set_threshold`` arguments: young collections every 50,000 net allocations of container
objects, a middle one every 20 young ones, a full one every 100 middle ones (and, by
CPython's own rule, only when that would scan at least a quarter more long-lived objects)."""


def tune_gc() -> None:
    """Freeze the current heap and set :data:`THRESHOLDS` for the rest of the process (workers)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """:func:`tune_gc` for the duration of the block, then the previous thresholds and an
    unfrozen heap again (for callers that embed the runner in a longer-lived process)."""
    previous = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
