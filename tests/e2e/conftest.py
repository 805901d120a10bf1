"""End-to-end tests on a kind cluster (pytest-kind). They need a Docker engine; where `docker info`
fails they are skipped, and the skip reason says so."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "e2e: builds the image and runs it on a kind cluster (needs a Docker engine; about 15 minutes)",
    )
