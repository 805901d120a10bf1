"""The runner's GC settings: applied inside ``tuned_gc``, restored after it."""

from __future__ import annotations

import gc

from agentensor_runner import tuned_gc
from agentensor_runner.execution import THRESHOLDS


def test_tuned_gc_freezes_the_heap_and_restores_the_defaults() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with tuned_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 10_000, "the import heap is in the permanent generation"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
