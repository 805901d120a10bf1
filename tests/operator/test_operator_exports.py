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
        "describe_settings_error",
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


def test_decisions_use_the_api_status_vocabulary_not_their_own() -> None:
    from agentensor_operator import _decisions as d

    assert not {"put_condition", "condition_of"} & set(d.__all__)  # agentensor_api's are the only ones


def test_no_condition_is_set_or_read_with_a_literal_type_or_reason() -> None:
    """Every call that sets or reads a condition names its type and reason by constant."""
    import ast
    from pathlib import Path

    from agentensor_api import ConditionType, Reason

    vocabulary = {v for cls in (ConditionType, Reason) for k, v in vars(cls).items() if k.isupper()}
    setters = {"set_condition", "_put", "mark_failed", "mark_succeeded", "mark_running", "condition_of", "_condition"}
    setters |= {"put_condition", "queued_status", "refused_status", "promptconfig_status"}
    root = Path(agentensor_operator.__file__).parent
    literals = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in setters:
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for const in ast.walk(arg):
                    if isinstance(const, ast.Constant) and const.value in vocabulary:
                        literals.append(f"{path.relative_to(root)}:{const.lineno} {name}({const.value!r})")
    assert vocabulary and not literals, literals


def test_reflected_progress_fields_are_run_status_fields() -> None:
    """The fields copied from the runner's status exist (attribute access, no silent default)."""
    from agentensor_api import RunStatus
    from agentensor_operator._decisions._reflect import _PROGRESS_FIELDS

    assert set(_PROGRESS_FIELDS) <= set(RunStatus.model_fields)
