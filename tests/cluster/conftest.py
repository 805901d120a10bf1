"""Fixtures of the cluster tier (marker ``cluster``).

- ``node``: one real node per session (hack/real-node.sh up; down at the end, after which the host
  state must equal the state before ``up``: sysctls, host iptables, mounts, network namespaces).
- ``example_image``: the WITH_EXAMPLE image built from the Dockerfile by hack/build-image.sh
  (cached outside the clone, keyed by a hash of its inputs) and imported into the node's containerd.

The tier runs only when selected (``-m cluster``, as `make test-cluster` does); a plain ``pytest``
deselects it, so the main suite does not start a node. Where the node cannot be built (not root, a
tool missing) the tests are skipped with that reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.node import build_image, diff_state, host_state, in_ci, node_down, node_up, run, why_no_node

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    mine = [item for item in items if _HERE in Path(str(item.fspath)).resolve().parents]
    if mine:
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if item not in mine]


@pytest.fixture(scope="session")
def node_possible() -> None:
    reason = why_no_node()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the cluster tier: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def node(node_possible: None) -> Iterator[dict[str, str]]:
    before = host_state()
    try:
        env = node_up()
        yield env
    finally:
        node_down()
    changed = diff_state(before, host_state())
    assert not changed, f"the node left the host changed: {changed}"


@pytest.fixture(scope="session")
def example_image(node: dict[str, str]) -> dict[str, Any]:
    """{'ref': image reference in the node's containerd, 'record': build seconds and bytes}.

    ``AGENTENSOR_CLUSTER_IMAGE_ARCHIVE`` (an archive hack/build-image.sh wrote earlier) skips the build:
    for iterating on tests while the tree changes under other work. CI never sets it.
    """
    given = os.environ.get("AGENTENSOR_CLUSTER_IMAGE_ARCHIVE")
    if given:
        archive, record = Path(given), json.loads(Path(f"{given}.json").read_text())
    else:
        archive, record = build_image(example=True)
    run("hack/real-node.sh", "import", archive, timeout=900)
    return {"ref": record["tag"], "record": record}
