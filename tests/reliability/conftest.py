"""Fixtures of the operator fault tests (tests/k8s's harness on the session API server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def namespace_for(request: pytest.FixtureRequest, prefix: str) -> str:
    return prefix + str(request.node.name).removeprefix("test_").replace("_", "-")[:40].rstrip("-")


@pytest.fixture
def cluster(k8s_with_crds: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A namespace on the session API server with a fresh database, a NodeAgent and the DB Secret."""
    from tests.k8s.operator_harness import Cluster, fresh_database

    with fresh_database() as url, Cluster(k8s_with_crds, namespace_for(request, "rel-"), url, tmp_path) as c:
        yield c
