"""The operator end to end on a real API server: PromptConfig + TrainingRun -> Job -> runner
process (NodeAgent) -> PostgreSQL -> status; ConfigMap materialization and rollback; Auto
promotion; failure reporting; spec-change policy; /metrics.

One namespace, one database and one operator process (cap 3) serve the whole module.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.k8s.operator_harness import (
    Cluster,
    OperatorProcess,
    condition,
    phase,
    synthetic,
    synthetic_promptconfig,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

NS = "op-e2e"
FINISHED = ("Succeeded", "Failed")


@pytest.fixture(scope="module")
def operator_options() -> dict[str, Any]:
    return {"max_concurrent_jobs": 3, "verbose": True}


@pytest.fixture(scope="module")
def trained(cluster: Cluster, operator: OperatorProcess) -> dict[str, Any]:
    """PromptConfig ``router`` + a TrainingRun ``train`` that has succeeded (waited for with kubectl)."""
    cluster.apply(synthetic_promptconfig("router", "e2e-router"), synthetic("train", "router", epochs=2))
    cluster.env.kubectl(
        "wait", "--for=condition=Succeeded", "trainingrun/train", "-n", NS, "--timeout=120s", timeout_seconds=130
    )
    run = cluster.get("trainingrun", "train")
    assert run is not None
    return run


def _wait_phase(cluster: Cluster, kind: str, name: str, timeout: float = 90) -> dict[str, Any]:
    obj: dict[str, Any] = wait_for(
        lambda: (o := cluster.get(kind, name)) is not None and phase(o) in FINISHED and o,
        timeout,
        f"{kind}/{name} to finish",
    )
    return obj


def test_trainingrun_succeeds_with_scores_and_best_version(cluster: Cluster, trained: dict[str, Any]) -> None:
    status = trained["status"]
    uid = trained["metadata"]["uid"]
    assert status["phase"] == "Succeeded"
    assert status["runId"] == uid
    assert status["observedGeneration"] == trained["metadata"]["generation"]
    assert status["bestVersion"] >= 1 and 0 <= status["baselineScore"] <= status["bestScore"] <= 1
    # the holdout scores and the paired significance test of best against baseline (issue 13)
    holdout = status["holdout"]
    assert {"baseline", "best", "delta", "deltaLow", "deltaHigh", "confidence", "pValue", "test"} <= set(holdout)
    assert holdout["deltaLow"] <= holdout["delta"] <= holdout["deltaHigh"] and 0 <= holdout["pValue"] <= 1
    assert [c["epoch"] for c in status["checkpoints"]] == [0, 1, 2]
    assert status["epoch"] == status["epochs"] == 2
    assert status["casesCompleted"] == status["casesTotal"] > 0
    for type_ in ("Accepted", "Succeeded", "Promotable"):
        assert condition(trained, type_) is not None, type_
    assert condition(trained, "Succeeded")["status"] == "True"  # type: ignore[index]
    assert condition(trained, "Queued")["reason"] == "Admitted"  # type: ignore[index]

    jobs = cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metadata"]["ownerReferences"][0]["uid"] == uid
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "agentensor-operator"
    assert job["spec"]["backoffLimit"] >= 0 and job["spec"]["activeDeadlineSeconds"] > 0
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["agentensor", "runner"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "agentensor-db"
    assert not any("postgresql" in json.dumps(e) for e in container["env"]), "the DSN is never inline"

    reasons = {e["reason"] for e in cluster.events("train")}
    assert {"JobCreated", "Checkpointed", "Succeeded"} <= reasons

    from agentensor_store import Store

    store = Store(cluster.db_url)
    try:
        row = store.get_run(uid)
        assert row is not None and row.phase == "Succeeded" and row.name == "train"
        assert [c.epoch for c in store.list_checkpoints(run_id=uid)] == [0, 1, 2]
    finally:
        store.close()

    table = cluster.env.kubectl("get", "trainingruns", "-n", NS).stdout
    assert "Succeeded" in table


def test_promptconfig_reflects_best_version(cluster: Cluster, trained: dict[str, Any]) -> None:
    def settled() -> dict[str, Any] | None:
        pc = cluster.get("promptconfig", "router")
        st = (pc or {}).get("status") or {}
        return pc if st.get("bestVersion") == trained["status"]["bestVersion"] else None

    pc = wait_for(settled, 30, "PromptConfig bestVersion from the TrainingRun")
    st = pc["status"]
    assert st["activeVersion"] == 1 and st["latestVersion"] >= st["bestVersion"]
    assert st["versions"] == st["latestVersion"]
    assert st["bestScore"] == pytest.approx(trained["status"]["bestScore"])
    assert condition(pc, "Ready")["reason"] == "Materialized"  # type: ignore[index]


def _active(cluster: Cluster, name: str) -> dict[str, str]:
    cm = cluster.get("configmap", f"{name}-active")
    return dict((cm or {}).get("data") or {})


def test_active_version_materializes_and_rolls_back(cluster: Cluster, trained: dict[str, Any]) -> None:
    best = trained["status"]["bestVersion"]
    assert best > 1, "training produced a new version"
    baseline_text = json.loads(wait_for(lambda: _active(cluster, "router").get("prompts.json"), 30, "ConfigMap"))
    assert _active(cluster, "router")["version"] == "1"

    cluster.env.kubectl("patch", "promptconfig", "router", "-n", NS, "--type=merge", "-p", json.dumps(
        {"spec": {"activeVersion": best}}
    ))  # fmt: skip
    wait_for(lambda: _active(cluster, "router").get("version") == str(best), 30, f"ConfigMap at version {best}")
    promoted = json.loads(_active(cluster, "router")["prompts.json"])
    assert promoted != baseline_text
    from agentensor_store import Store

    store = Store(cluster.db_url)
    try:
        stored = store.get_version("e2e-router", best, namespace=NS)
        assert stored is not None and promoted == stored.prompts
        assert _active(cluster, "router")["checksum"] == stored.checksum
    finally:
        store.close()

    cluster.env.kubectl(
        "patch", "promptconfig", "router", "-n", NS, "--type=merge", "-p", '{"spec":{"activeVersion":99}}'
    )
    pc = wait_for(
        lambda: (c := condition(cluster.get("promptconfig", "router"), "Ready")) and c["status"] == "False" and c,
        30,
        "Ready=False for an unknown version",
    )
    assert pc["reason"] == "VersionNotFound" and "spec.activeVersion" in pc["message"]
    assert _active(cluster, "router")["version"] == str(best), "an unknown version keeps the last good ConfigMap"

    cluster.env.kubectl(
        "patch", "promptconfig", "router", "-n", NS, "--type=merge", "-p", '{"spec":{"activeVersion":1}}'
    )
    wait_for(lambda: _active(cluster, "router").get("version") == "1", 30, "rollback to version 1")
    assert json.loads(_active(cluster, "router")["prompts.json"]) == baseline_text
    cm = cluster.get("configmap", "router-active")
    assert cm is not None and cm["metadata"]["ownerReferences"][0]["kind"] == "PromptConfig"


def test_auto_promotion_sets_active_version(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.apply(
        synthetic_promptconfig("auto", "e2e-auto", promotion={"policy": "Auto"}),
        # 2 epochs: after 1 the 12-case holdout gain (9 vs 3 discordant) is not significant (p=0.07)
        synthetic("auto-train", "auto", epochs=2),
    )
    run = _wait_phase(cluster, "trainingrun", "auto-train")
    assert phase(run) == "Succeeded" and condition(run, "Promotable")["status"] == "True"  # type: ignore[index]
    best = run["status"]["bestVersion"]
    wait_for(
        lambda: (cluster.get("promptconfig", "auto") or {}).get("spec", {}).get("activeVersion") == best,
        30,
        "Auto promotion",
    )
    wait_for(lambda: _active(cluster, "auto").get("version") == str(best), 30, "promoted version materialized")
    assert "Promoted" in {e["reason"] for e in cluster.events("auto-train")}


def test_failed_run_names_the_failing_case(cluster: Cluster, operator: OperatorProcess) -> None:
    # Every case times out: the runner records error rows and the verdict AllCasesFailed. The
    # evaluation cache is off: other runs of this module scored the same (config, case) pairs, and
    # a cached score is reused whatever the timeout (only error rows are never cached).
    doomed = synthetic("doomed", "slow", caseTimeoutSeconds=1e-9, evaluationCache={"enabled": False})
    cluster.apply(synthetic_promptconfig("slow", "e2e-slow"), doomed)
    run = _wait_phase(cluster, "trainingrun", "doomed")
    assert phase(run) == "Failed"
    failed = condition(run, "Failed")
    assert failed is not None and failed["status"] == "True" and failed["reason"] == "AllCasesFailed"
    message = run["status"]["message"]
    assert "case c" in message and "caseTimeoutSeconds" in message, message
    assert "Failed" in {e["reason"] for e in cluster.events("doomed")}

    def stopped() -> bool:
        jobs = cluster.items("jobs", f"agentensor.dev/run-uid={run['metadata']['uid']}")
        return bool(jobs) and (
            jobs[0]["spec"].get("parallelism") == 0
            or any(c["type"] == "Failed" and c["status"] == "True" for c in jobs[0]["status"].get("conditions", []))
        )

    wait_for(stopped, 30, "the failed run's Job to stop retrying")


def test_invalid_spec_is_reported_by_field(cluster: Cluster, operator: OperatorProcess) -> None:
    # Valid for the CRD schema, invalid for the API models: the objective names no evaluator.
    bad = synthetic("bad-objective", "router", objective={"evaluator": "nope"})
    cluster.apply(bad)
    run = _wait_phase(cluster, "trainingrun", "bad-objective", timeout=30)
    accepted = condition(run, "Accepted")
    assert phase(run) == "Failed" and accepted is not None and accepted["status"] == "False"
    assert accepted["reason"] == "InvalidSpec" and "nope" in accepted["message"]
    assert not cluster.items("jobs", f"agentensor.dev/run-uid={run['metadata']['uid']}")


def test_missing_promptconfig_waits_then_runs(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.apply(synthetic("orphan", "late", epochs=1))
    waiting = wait_for(
        lambda: (c := condition(cluster.get("trainingrun", "orphan"), "Accepted")) and c["status"] == "False" and c,
        30,
        "Accepted=False while the PromptConfig is missing",
    )
    assert waiting["reason"] == "PromptConfigNotFound" and "spec.promptConfigRef.name" in waiting["message"]
    cluster.apply(synthetic_promptconfig("late", "e2e-late"))
    assert phase(_wait_phase(cluster, "trainingrun", "orphan")) == "Succeeded"


def test_spec_changes_after_start_are_rejected_except_parallelism(cluster: Cluster, trained: dict[str, Any]) -> None:
    generation = trained["metadata"]["generation"]
    cluster.env.kubectl("patch", "trainingrun", "train", "-n", NS, "--type=merge", "-p", json.dumps(
        {"spec": {"optimizer": {"epochs": 5}}}
    ))  # fmt: skip
    rejected = wait_for(
        lambda: (c := condition(cluster.get("trainingrun", "train"), "Accepted"))
        and c["observedGeneration"] > generation
        and c,
        30,
        "the spec change to be looked at",
    )  # fmt: skip
    assert rejected["reason"] == "SpecChangeRejected" and "spec.optimizer.epochs" in rejected["message"]
    run = cluster.get("trainingrun", "train")
    assert run is not None and run["status"]["observedGeneration"] == generation, "the change is not acted on"
    assert "SpecChangeRejected" in {e["reason"] for e in cluster.events("train")}

    # Revert the forbidden change and change parallelism: both fine, the new generation is accepted.
    cluster.env.kubectl("patch", "trainingrun", "train", "-n", NS, "--type=merge", "-p", json.dumps(
        {"spec": {"optimizer": {"epochs": 2}, "parallelism": 3}}
    ))  # fmt: skip
    accepted = wait_for(
        lambda: (r := cluster.get("trainingrun", "train")) and (c := condition(r, "Accepted"))
        and c["reason"] == "Accepted" and r,
        30,
        "the reverted spec to be accepted",
    )  # fmt: skip
    assert accepted["status"]["observedGeneration"] == accepted["metadata"]["generation"] > generation
    assert phase(accepted) == "Succeeded"


def test_metrics_endpoint_parses(cluster: Cluster, operator: OperatorProcess, trained: dict[str, Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, Any]:
        return {f.name: f for f in text_string_to_metric_families(operator.metrics())}

    families = wait_for(
        lambda: (m := scrape()) and any(s.labels.get("phase") == "Succeeded" for s in m["agentensor_runs"].samples)
        and m,
        30,
        "the census to count a Succeeded run",
    )  # fmt: skip
    assert families["agentensor_reconcile"].type == "counter"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("agentensor_reconcile_total", (("kind", "TrainingRun"), ("result", "success")))] > 0
    assert samples[("agentensor_reconcile_total", (("kind", "PromptConfig"), ("result", "success")))] > 0
    assert families["agentensor_reconcile_duration_seconds"].type == "histogram"
    assert ("agentensor_jobs_running", ()) in samples and ("agentensor_jobs_queued", ()) in samples
    key = (("kind", "TrainingRun"), ("name", "train"), ("namespace", NS))
    assert samples[("agentensor_run_best_score", key)] == pytest.approx(trained["status"]["bestScore"])
    assert samples[("agentensor_run_cases_completed", key)] == trained["status"]["casesCompleted"]
    assert ("agentensor_run_tokens", key) in samples and ("agentensor_run_cost_usd", key) in samples


def test_evaluationrun_scores_a_version(cluster: Cluster, trained: dict[str, Any]) -> None:
    er = synthetic("evaluate", "router")
    er["kind"] = "EvaluationRun"
    for key in ("optimizer", "holdoutGuard", "checkpoint"):
        del er["spec"][key]
    del er["spec"]["dataset"]["split"]
    er["spec"]["promptConfigRef"]["version"] = trained["status"]["bestVersion"]
    cluster.apply(er)
    cluster.env.kubectl(
        "wait", "--for=condition=Succeeded", "evaluationrun/evaluate", "-n", NS, "--timeout=90s", timeout_seconds=100
    )
    run = cluster.get("evaluationrun", "evaluate")
    assert run is not None
    st = run["status"]
    assert st["bestVersion"] == trained["status"]["bestVersion"]
    assert 0 <= st["scores"]["accuracy"] <= 1 and st["casesCompleted"] == st["casesTotal"] > 0
    jobs = cluster.items("jobs", f"agentensor.dev/run-uid={run['metadata']['uid']}")
    assert len(jobs) == 1 and jobs[0]["metadata"]["labels"]["agentensor.dev/kind"] == "EvaluationRun"


def test_sharded_evaluationrun_matches_the_unsharded_one(cluster: Cluster, trained: dict[str, Any]) -> None:
    unsharded = wait_for(lambda: phase(r := cluster.get("evaluationrun", "evaluate")) == "Succeeded" and r, 60, "ER")
    er = synthetic("evaluate-wide", "router", parallelism=32)  # 32 cases in flight = 2 Pods of 16
    er["kind"] = "EvaluationRun"
    for key in ("optimizer", "holdoutGuard", "checkpoint"):
        del er["spec"][key]
    del er["spec"]["dataset"]["split"]
    er["spec"]["promptConfigRef"]["version"] = trained["status"]["bestVersion"]
    cluster.apply(er)
    cluster.env.kubectl(
        "wait", "--for=condition=Succeeded", "evaluationrun/evaluate-wide", "-n", NS, "--timeout=90s",
        timeout_seconds=100,
    )  # fmt: skip
    run = cluster.get("evaluationrun", "evaluate-wide")
    assert run is not None
    uid = run["metadata"]["uid"]
    jobs = cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    assert sorted(j["metadata"]["labels"]["agentensor.dev/shard"] for j in jobs) == ["0", "1"]
    assert all("--shard" in j["spec"]["template"]["spec"]["containers"][0]["command"] for j in jobs)
    st, ref = run["status"], unsharded["status"]
    assert st["casesTotal"] == st["casesCompleted"] == ref["casesTotal"]
    assert st["scores"]["accuracy"] == pytest.approx(ref["scores"]["accuracy"]), "same cases, same version"
    assert st["bestVersion"] == ref["bestVersion"]
    from agentensor_store import Store

    store = Store(cluster.db_url)
    try:
        aggregate = store.get_run(uid)
        assert aggregate is not None and aggregate.phase == "Succeeded"
        assert aggregate.status["casesTotal"] == st["casesTotal"]
        shard_cases = [len(store.list_cases(f"{uid}-s{i}", stage="eval")) for i in range(2)]
        assert sum(shard_cases) == st["casesTotal"] and min(shard_cases) > 0
    finally:
        store.close()


def test_suspended_run_waits_without_a_job_until_resumed(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.apply(synthetic("held", "router", epochs=1, suspend=True))
    queued = wait_for(
        lambda: (c := condition(cluster.get("trainingrun", "held"), "Queued")) and c["reason"] == "Suspended" and c,
        30,
        "Queued=True reason Suspended",
    )
    assert queued["status"] == "True"
    uid = cluster.get("trainingrun", "held")["metadata"]["uid"]  # type: ignore[index]
    assert not cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    cluster.env.kubectl("patch", "trainingrun", "held", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    assert phase(_wait_phase(cluster, "trainingrun", "held")) == "Succeeded"


def test_deletion_removes_jobs_and_keeps_history(cluster: Cluster, operator: OperatorProcess) -> None:
    run = cluster.get("trainingrun", "held")
    assert run is not None and phase(run) == "Succeeded"
    uid = run["metadata"]["uid"]
    assert cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
    cluster.env.kubectl("delete", "trainingrun", "held", "-n", NS, "--timeout=30s", timeout_seconds=40)
    cluster.env.kubectl("delete", "promptconfig", "auto", "-n", NS, "--timeout=30s", timeout_seconds=40)
    wait_for(
        lambda: (
            not cluster.items("jobs", f"agentensor.dev/run-uid={uid}")
            and not cluster.items("configmaps", f"agentensor.dev/run-uid={uid}")
            and cluster.get("configmap", "auto-active") is None
        ),
        60,
        "the garbage collector to delete the run's Job and ConfigMap and the PromptConfig's ConfigMap",
    )
    from agentensor_store import Store

    store = Store(cluster.db_url)
    try:
        row = store.get_run(uid)
        assert row is not None and row.phase == "Succeeded", "history stays in the database"
        assert store.list_checkpoints(run_id=uid)
        assert len(store.list_versions("e2e-auto", namespace=NS)) >= 2, "deleting a PromptConfig keeps its versions"
    finally:
        store.close()
