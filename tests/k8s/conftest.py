"""Shared fixtures of the operator tests on the session's API server (EnvTest).

A module that tests the operator sets ``NS`` (its namespace), asks for ``cluster`` and
``operator``, and overrides ``operator_options`` when its operator needs other settings. Both are
built once per module and torn down after it (the operator first); a module-scoped fixture also
keeps the module's tests on one pytest-xdist worker (tests/conftest.py).

- ``namespace``: the module's ``NS`` (override the fixture for another name).
- ``cluster``: a fresh PostgreSQL database, ``namespace`` with the database Secret and a NodeAgent
  running its Pods as local processes (:class:`~tests.k8s.operator_harness.Cluster`).
- ``operator_options``: keyword arguments of :meth:`~tests.k8s.operator_harness.Cluster.operator`;
  by default one Job at a time.
- ``operator``: ``agentensor operator`` watching ``namespace``, started and live (``/healthz``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.k8s.envtest import EnvTest
from tests.k8s.operator_harness import Cluster, OperatorProcess, fresh_database


@pytest.fixture(scope="module")
def namespace(request: pytest.FixtureRequest) -> str:
    """The module's ``NS``: every module has a namespace of its own on the worker's API server."""
    ns = getattr(request.module, "NS", None)
    if not isinstance(ns, str):
        raise pytest.UsageError(f"{request.module.__name__} asks for the shared cluster but sets no NS = '<namespace>'")
    return ns


@pytest.fixture(scope="module")
def cluster(k8s_with_crds: EnvTest, namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh database and ``namespace`` wired for the operator (Secret, NodeAgent)."""
    with fresh_database() as url, Cluster(k8s_with_crds, namespace, url, tmp_path_factory.mktemp(namespace)) as c:
        yield c


@pytest.fixture(scope="module")
def operator_options() -> dict[str, Any]:
    """How the module's operator is started (:meth:`Cluster.operator`'s keyword arguments)."""
    return {"max_concurrent_jobs": 1}


@pytest.fixture(scope="module")
def operator(cluster: Cluster, operator_options: dict[str, Any]) -> Iterator[OperatorProcess]:
    """One operator process watching the module's namespace; stopped after the module."""
    op = cluster.operator(**operator_options).start()
    try:
        yield op
    finally:
        op.stop()
