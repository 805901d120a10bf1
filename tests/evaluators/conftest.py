"""Fixtures for the evaluator tests.

``python`` evaluators import ``tests.evaluators.sample_scorers`` by name, which needs the repo
root on ``sys.path``. ``python -m pytest`` from the root puts it there; plain ``pytest`` does
not, so a session fixture adds it for the duration of the session if it is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCORERS = "tests.evaluators.sample_scorers"


def _importable() -> bool:
    try:
        return importlib.util.find_spec(SCORERS) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _sample_scorers_importable() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        if not _importable():
            mp.syspath_prepend(str(REPO_ROOT))
        yield
