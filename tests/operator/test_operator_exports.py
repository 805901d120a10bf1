"""The public surface of agentensor_operator is pinned."""

from __future__ import annotations

import agentensor_operator


def test_exported_names() -> None:
    assert sorted(agentensor_operator.__all__) == [
        "ConfigurationError",
        "DatabaseSettings",
        "DependencyNotReadyError",
        "JobSettings",
        "KubernetesApiError",
        "OperatorError",
        "OperatorSettings",
        "ServerSettings",
        "StatusSettings",
        "WatchSettings",
        "build",
        "run",
    ]


def test_only_k8s_module_imports_the_kubernetes_client() -> None:
    from pathlib import Path

    root = Path(agentensor_operator.__file__).parent
    importers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "from kubernetes" in p.read_text() or "import kubernetes" in p.read_text()
    )
    assert importers == ["_k8s.py"]
