"""Issue 14 items 6 and 7, replayed against the real API server (1.20) with the real operator.

What a cluster user sees: ``kubectl wait --for=condition=Finished`` returns for a failed run and a
succeeded one; ``kubectl get`` prints rounded scores and progress; ``kubectl explain`` lists every
field with its description, status included; an invalid spec names every invalid field, in one
Event from ``agentensor-operator``; each milestone is one JSON log line with the run's fields;
the bind-address flags move /metrics and /healthz; a completion counter starts at 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.k8s.envtest import EnvTest
from tests.k8s.operator_harness import (
    AGENTENSOR,
    Cluster,
    OperatorProcess,
    condition,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS = "conventions"
KINDS = ("trainingrun", "evaluationrun", "promptconfig")
FREE_FORM = {"options", "parameters", "config"}
"""Fields that are free-form maps by design (x-kubernetes-preserve-unknown-fields)."""


# -- kubectl explain (no operator needed) ---------------------------------------------------------


def _explain(env: EnvTest, path: str, *args: str) -> str:
    return str(env.kubectl("explain", path, *args).stdout)


def test_explain_shows_nested_fields_and_status(k8s_with_crds: EnvTest) -> None:
    env = k8s_with_crds
    objective = _explain(env, "trainingrun.spec.objective")
    assert "FIELDS:" in objective, objective
    for field in ("evaluator", "direction", "goal"):
        assert re.search(rf"^\s+{field}\s+<\w+>", objective, flags=re.M), (field, objective)
    status = _explain(env, "trainingrun.status")
    for field in ("conditions", "phase", "bestScore", "display", "holdout"):
        assert re.search(rf"^\s+{field}\s+<", status, flags=re.M), (field, status)
    display = _explain(env, "evaluationrun.status.display")
    assert re.search(r"^\s+bestScore\s+<string>", display, flags=re.M) and "3 decimals" in display, display


@pytest.mark.parametrize("kind", KINDS)
def test_explain_recursive_has_no_untyped_field(k8s_with_crds: EnvTest, kind: str) -> None:
    tree = _explain(k8s_with_crds, kind, "--recursive")
    assert "status" in tree and "spec" in tree
    # The free-form maps (workflow/evaluator/optimizer options, parameters, spec.config) keep
    # unknown fields by design, and 1.20 publishes such a field without a type, so explain prints
    # `<>` for them (with their description); nothing else may be untyped.
    untyped = [line.strip().split("\t")[0] for line in tree.splitlines() if "<>" in line]
    assert not set(untyped) - FREE_FORM, untyped


def _walk(node: dict[str, Any], path: str, out: list[str]) -> None:
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}"
        if "$ref" in child:  # metadata: the API server substitutes ObjectMeta
            continue
        if not str(child.get("description", "")).strip():
            out.append(f"{where}: no description")
        if not child.get("type") and not (name in FREE_FORM and child.get("x-kubernetes-preserve-unknown-fields")):
            out.append(f"{where}: no type")
        _walk(child, where, out)
        items = child.get("items")
        if isinstance(items, dict):
            _walk(items, where + "[]", out)


@pytest.mark.parametrize("kind", ["TrainingRun", "EvaluationRun", "PromptConfig"])
def test_every_published_field_has_a_type_and_a_description(k8s_with_crds: EnvTest, kind: str) -> None:
    """Walk the OpenAPI v2 document the API server publishes (what kubectl explain reads)."""
    doc = json.loads(k8s_with_crds.kubectl("get", "--raw", "/openapi/v2").stdout)
    schema = doc["definitions"][f"dev.agentensor.v1alpha1.{kind}"]
    assert schema.get("description"), kind
    problems: list[str] = []
    _walk(schema, kind, problems)
    assert not problems, problems
    assert len(schema["properties"]["status"].get("properties") or {}) >= 3, "status is published with its fields"


def test_null_optional_fields_are_accepted_as_unset(k8s_with_crds: EnvTest) -> None:
    """Without ``nullable`` in the schema, the 1.20 API server prunes a null instead of refusing it."""
    doc = synthetic("nulls", "router", objective=None)
    doc["metadata"]["namespace"] = "default"
    doc["spec"]["dataset"]["limit"] = None
    k8s_with_crds.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(doc))
    got = json.loads(k8s_with_crds.kubectl("get", "trainingrun", "nulls", "-n", "default", "-o", "json").stdout)
    assert "objective" not in got["spec"] and "limit" not in got["spec"]["dataset"], got["spec"]
    k8s_with_crds.kubectl("delete", "trainingrun", "nulls", "-n", "default")


# -- the operator: conditions, columns, Events, logs, metrics -----------------------------------


@pytest.fixture(scope="module")
def operator(cluster: Cluster) -> Iterator[OperatorProcess]:
    """The operator started with the bind-address flags and --log-format json (not the port flags)."""
    op = cluster.operator(max_concurrent_jobs=2)
    environ = {**os.environ, "KUBECONFIG": str(cluster.env.kubeconfig), "AGENTENSOR_DATABASE_URL": cluster.db_url}
    environ.pop("AGENTENSOR_BIND_ADDRESS", None)
    argv = [
        *AGENTENSOR, "operator", "--namespace", NS, "--max-concurrent-jobs", "2",
        "--metrics-bind-address", f"127.0.0.1:{op.metrics_port}",
        "--health-probe-bind-address", f"127.0.0.1:{op.liveness_port}",
        "--log-format", "json",
    ]  # fmt: skip
    with op.log_path.open("ab") as log:
        op.process = subprocess.Popen(
            argv, env=environ, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        wait_for(op._live, 90, f"operator /healthz on 127.0.0.1:{op.liveness_port} (log: {op.log_path})", interval=0.25)
        yield op
    finally:
        op.stop()


def _wait_finished(cluster: Cluster, kind: str, name: str, timeout_seconds: int) -> dict[str, Any]:
    cluster.env.kubectl(
        "wait", "--for=condition=Finished", f"{kind}/{name}", "-n", NS, f"--timeout={timeout_seconds}s",
        timeout_seconds=timeout_seconds + 15,
    )  # fmt: skip
    run = cluster.get(kind, name)
    assert run is not None
    return run


def _log_records(op: OperatorProcess) -> list[dict[str, Any]]:
    records = []
    for line in op.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _milestones(op: OperatorProcess, name: str) -> list[dict[str, Any]]:
    return [r for r in _log_records(op) if r.get("run") == name and r.get("namespace") == NS]


def _completions(op: OperatorProcess) -> dict[tuple[str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(op.metrics()):
        for s in family.samples:
            if s.name == "agentensor_run_completions_total":
                out[(s.labels["kind"], s.labels["outcome"])] = s.value
    return out


def test_invalid_spec_finishes_and_names_every_field_once(cluster: Cluster, operator: OperatorProcess) -> None:
    # Valid for the CRD schema, invalid for the models in two places at once.
    before = _completions(operator)
    assert before[("TrainingRun", "Failed")] == 0 and before[("EvaluationRun", "Succeeded")] == 0, before
    bad = synthetic("two-errors", "router")
    bad["spec"]["config"]["callbacks"] = ["x"]
    bad["spec"]["dataset"]["split"] = {"train": 0.5, "validation": 0.25, "holdout": 0.5}
    cluster.apply(synthetic_promptconfig("router", "conventions-router"), bad)
    run = _wait_finished(cluster, "trainingrun", "two-errors", 60)
    finished, accepted = condition(run, "Finished"), condition(run, "Accepted")
    assert finished is not None and finished["status"] == "True" and finished["reason"] == "Failed"
    assert accepted is not None and accepted["reason"] == "InvalidSpec"
    assert "spec.config" in accepted["message"] and "callbacks" in accepted["message"], accepted
    assert "spec.dataset.split" in accepted["message"] and "sum to 1" in accepted["message"], accepted

    def events() -> list[dict[str, Any]]:
        return [e for e in cluster.events("two-errors") if e["reason"] in ("InvalidSpec", "Failed")]

    got = wait_for(events, 30, "the InvalidSpec Event")
    assert [e["reason"] for e in got] == ["InvalidSpec"] and got[0].get("count", 1) == 1, got
    assert got[0]["source"]["component"] == "agentensor-operator", got[0]
    assert got[0]["message"] == accepted["message"]
    lines = wait_for(
        lambda: [r for r in _milestones(operator, "two-errors") if r["reason"] == "InvalidSpec"], 30, "log"
    )
    assert len(lines) == 1 and lines[0]["kind"] == "TrainingRun" and lines[0]["severity"] == "warn", lines
    assert wait_for(lambda: _completions(operator)[("TrainingRun", "Failed")] == before[("TrainingRun", "Failed")] + 1,
                    30, "the Failed completion to be counted")  # fmt: skip


def test_failed_run_finishes_for_kubectl_wait(cluster: Cluster, operator: OperatorProcess) -> None:
    # Every case times out: the runner's verdict is Failed (AllCasesFailed) and it says Finished.
    cluster.apply(
        synthetic_promptconfig("slow", "conventions-slow"), synthetic("doomed", "slow", caseTimeoutSeconds=1e-9)
    )
    run = _wait_finished(cluster, "trainingrun", "doomed", 240)
    finished = condition(run, "Finished")
    assert run["status"]["phase"] == "Failed" and finished is not None and finished["reason"] == "Failed", run["status"]
    assert [e["reason"] for e in cluster.events("doomed") if e["reason"] == "Failed"] == ["Failed"]


def test_succeeded_run_finishes_with_rounded_columns(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.apply(synthetic_promptconfig("router", "conventions-router"), synthetic("ok", "router", epochs=2))
    run = _wait_finished(cluster, "trainingrun", "ok", 240)
    status = run["status"]
    finished = condition(run, "Finished")
    assert status["phase"] == "Succeeded" and finished is not None and finished["reason"] == "Succeeded"
    display = status["display"]
    assert display["bestScore"] == f"{status['bestScore']:.3f}" and display["progress"] == "100%", display
    assert display["epoch"] == f"{status['epoch']}/{status['epochs']}"
    header, row = cluster.env.kubectl("get", "trainingrun", "ok", "-n", NS).stdout.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "EPOCH", "PROGRESS", "BASELINE", "BEST", "VERSION", "AGE"], header
    cells = row.split()
    assert cells[1:6] == ["Succeeded", display["epoch"], "100%", display["baselineScore"], display["bestScore"]], row
    assert all(len(c.split(".")[-1]) <= 3 for c in cells if re.fullmatch(r"\d+\.\d+", c)), row
    wide = cluster.env.kubectl("get", "trainingrun", "ok", "-n", NS, "-o", "wide").stdout
    assert "HOLDOUT" in wide and display["holdoutScore"] in wide, wide

    reasons = [e["reason"] for e in cluster.events("ok") if e["reason"] in ("JobCreated", "Succeeded")]
    assert sorted(reasons) == ["JobCreated", "Succeeded"], reasons
    assert {e["source"]["component"] for e in cluster.events("ok")} == {"agentensor-operator"}
    logged = [r["reason"] for r in _milestones(operator, "ok")]
    assert logged.count("JobCreated") == 1 and logged.count("Succeeded") == 1, logged
    assert _completions(operator)[("TrainingRun", "Succeeded")] >= 1


def test_bind_address_flags_move_the_endpoints(operator: OperatorProcess) -> None:
    assert operator.get(operator.metrics_port, "/metrics")[0] == 200
    assert operator.get(operator.liveness_port, "/healthz")[0] == 200
    bad = subprocess.run(
        [*AGENTENSOR, "operator", "--metrics-bind-address", "localhost"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--metrics-bind-address must be [HOST]:PORT" in bad.stderr, bad.stderr
