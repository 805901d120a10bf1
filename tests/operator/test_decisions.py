"""The operator's pure decisions as tables: no cluster, no database, no clock."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from agentensor_api import (
    HOST_ALLOWLIST_ENV,
    HOST_STRICT_ENV,
    KEY_ENV_ALLOWLIST_ENV,
    TERMINAL_PHASES,
    CheckpointSummary,
    ManifestError,
    RunStatus,
    condition_of,
    load_manifests,
    set_condition,
)
from agentensor_operator import _decisions as d
from agentensor_operator._decisions import needs_reconcile
from agentensor_operator._settings import DatabaseSettings, JobSettings

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:05:00Z"
UID = "0b8f3c2e-1111-4222-8333-944445555666"
REF = d.RunRef(kind="TrainingRun", namespace="team-a", name="router-train", uid=UID, generation=1)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def run_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "router-train", "namespace": "team-a", "uid": UID, "generation": 1},
        "spec": {
            "workflow": {"template": "embedding-router", "options": {"embedder": "hashing"}},
            "promptConfigRef": {"name": "router"},
            "dataset": {"inline": [{"input": "hi", "expected": "a"}]},
            "evaluators": [{"name": "accuracy", "type": "exact_match"}],
            "optimizer": {"type": "exemplar", "epochs": 2},
        },
    }
    for k, v in over.items():
        body[k] = v
    return body


PC_BODY = {
    "apiVersion": "agentensor.dev/v1alpha1",
    "kind": "PromptConfig",
    "metadata": {"name": "router", "namespace": "team-a", "uid": "pc-uid"},
    "spec": {"workflow": "router", "prompts": {"intent.a": {"text": "a"}, "intent.b?": {"text": "b"}}},
}


# -- identity and Job shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        pytest.param("TrainingRun", "router-train", id="plain"),
        pytest.param("EvaluationRun", "x" * 253, id="longest-name"),
        pytest.param("TrainingRun", "a.b.c", id="dots"),
        pytest.param("TrainingRun", "...", id="nothing-usable"),
    ],
)
def test_job_name_is_a_stable_dns_label_carrying_the_uid(kind: str, name: str) -> None:
    ref = d.RunRef(kind=kind, namespace="ns", name=name, uid=UID, generation=3)
    got = d.job_name(ref)
    assert got == d.job_name(d.RunRef(kind=kind, namespace="ns", name=name, uid=UID, generation=9))
    assert got.endswith(UID) and len(got) <= 63 and DNS_LABEL.match(got)


@pytest.mark.parametrize(
    ("image", "secret_env", "service_account"),
    [
        pytest.param(None, (), None, id="defaults"),
        pytest.param("registry.local/agentensor:dev", (), None, id="image-override"),
        pytest.param(
            None,
            ({"name": "AGENTENSOR_MODEL_TASK_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "k"}}},),
            "runner",
            id="model-secret-and-sa",
        ),
    ],
)
def test_runner_job_shape(
    image: str | None, secret_env: tuple[dict[str, Any], ...], service_account: str | None
) -> None:
    jobs = JobSettings(service_account_name=service_account)
    job = d.runner_job(REF, image=image, jobs=jobs, database=DatabaseSettings(), secret_env=secret_env)
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == d.job_name(REF) and meta["namespace"] == "team-a"
    assert meta["labels"][d.LABEL_RUN_UID] == UID and meta["labels"][d.LABEL_MANAGED_BY] == d.MANAGED_BY
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("TrainingRun", UID, True)
    assert spec["backoffLimit"] == jobs.backoff_limit
    assert spec["activeDeadlineSeconds"] == jobs.active_deadline_seconds
    assert spec["ttlSecondsAfterFinished"] == jobs.ttl_seconds_after_finished
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod.get("serviceAccountName") == service_account
    container = pod["containers"][0]
    assert container["image"] == (image or jobs.image)
    assert container["command"] == ["agentensor", "runner", "--manifest", d.MANIFEST_PATH, "--base-dir", "/app"]
    env = {e["name"]: e for e in container["env"]}
    assert env[d.DATABASE_URL_ENV]["valueFrom"]["secretKeyRef"] == {"name": "agentensor-db", "key": "url"}
    for extra in secret_env:
        assert env[extra["name"]] == extra
    assert pod["volumes"][0]["configMap"]["name"] == meta["name"]
    assert d.RUNNER_SELECTOR.split(",")[0].split("=")[1] == meta["labels"][d.LABEL_MANAGED_BY]
    # Pod Security Standards "restricted", and no API token for a pod that never calls the API
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


KEY_FROM_SECRET = {"secretKeyRef": {"name": "llm", "key": "k"}}


@pytest.mark.parametrize(
    ("allowed", "secret_env", "expected"),
    [
        # empty: the variable is still set, to "", so a runner image's own ENV cannot widen it
        pytest.param([], (), "", id="empty-means-nothing-runs"),
        pytest.param(["mycompany.agents"], (), "mycompany.agents", id="one"),
        pytest.param(["mycompany.agents", "scorers"], (), "mycompany.agents,scorers", id="comma-joined"),
        pytest.param(
            ["mycompany.agents"],
            ({"name": d.ALLOWLIST_ENV, "valueFrom": KEY_FROM_SECRET},),
            "mycompany.agents",
            id="manifest-apiKeyEnv-cannot-override",
        ),
    ],
)
def test_runner_job_carries_the_operator_allowlist(
    allowed: list[str], secret_env: tuple[dict[str, Any], ...], expected: str
) -> None:
    jobs = JobSettings(allowed_modules=allowed)
    job = d.runner_job(REF, image=None, jobs=jobs, database=DatabaseSettings(), secret_env=secret_env)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    named = [e for e in env if e["name"] == d.ALLOWLIST_ENV]
    assert named == [{"name": d.ALLOWLIST_ENV, "value": expected}]


def test_manifest_env_cannot_replace_operator_variables() -> None:
    """A model key named like an operator variable is dropped; the operator's entries come last."""
    hostile = tuple({"name": n, "valueFrom": KEY_FROM_SECRET} for n in (d.DATABASE_URL_ENV, "HF_HUB_OFFLINE"))
    keep = {"name": "AGENTENSOR_MODEL_TASK_API_KEY", "valueFrom": KEY_FROM_SECRET}
    job = d.runner_job(REF, image=None, jobs=JobSettings(), database=DatabaseSettings(), secret_env=(*hostile, keep))
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)) and env[0] == keep
    assert names[-6:] == [
        d.DATABASE_URL_ENV,
        "HF_HUB_OFFLINE",
        d.ALLOWLIST_ENV,
        KEY_ENV_ALLOWLIST_ENV,
        HOST_ALLOWLIST_ENV,
        HOST_STRICT_ENV,
    ]
    dsn = next(e for e in env if e["name"] == d.DATABASE_URL_ENV)
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "agentensor-db", "key": "url"}


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        # empty: still set, so the runner image's own ENV cannot grant anything
        pytest.param(
            JobSettings(), {KEY_ENV_ALLOWLIST_ENV: "", HOST_ALLOWLIST_ENV: "", HOST_STRICT_ENV: "false"}, id="none"
        ),
        pytest.param(
            JobSettings(model_key_envs=["VLLM_KEY"], model_hosts=["*.llm.svc", "10.0.0.0/8"], model_hosts_strict=True),
            {KEY_ENV_ALLOWLIST_ENV: "VLLM_KEY", HOST_ALLOWLIST_ENV: "*.llm.svc,10.0.0.0/8", HOST_STRICT_ENV: "true"},
            id="chart-values",
        ),
    ],
)
def test_runner_job_carries_the_model_grants(jobs: JobSettings, expected: dict[str, str]) -> None:
    """The admin's lists reach the runner under the names it reads; a manifest's key variable cannot replace them."""
    hostile = tuple({"name": n, "valueFrom": KEY_FROM_SECRET} for n in expected)
    job = d.runner_job(REF, image=None, jobs=jobs, database=DatabaseSettings(), secret_env=hostile)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] in expected] == [{"name": k, "value": v} for k, v in expected.items()]


def test_allowlist_variable_is_the_one_the_runner_reads() -> None:
    from agentensor_runner._allowlist import ALLOWLIST_ENV

    assert d.ALLOWLIST_ENV == ALLOWLIST_ENV


def test_runner_manifest_round_trips_through_the_loader(tmp_path: Any) -> None:
    text = d.runner_manifest(run_body(), PC_BODY)
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    run, pc = load_manifests([path])
    assert run.kind == "TrainingRun" and run.metadata.uid == UID and pc.kind == "PromptConfig"
    assert d.accepted_spec(text) == run_body()["spec"]
    cm = d.runner_config_map(REF, text)
    assert cm["data"] == {d.MANIFEST_KEY: text} and cm["metadata"]["ownerReferences"][0]["uid"] == UID


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", None, id="empty"),
        pytest.param(": : :", None, id="not-yaml"),
        pytest.param("kind: PromptConfig\nspec: {a: 1}\n", None, id="no-run"),
        pytest.param("kind: EvaluationRun\nspec: {parallelism: 2}\n", {"parallelism": 2}, id="evaluation"),
    ],
)
def test_accepted_spec(text: str, expected: dict[str, Any] | None) -> None:
    assert d.accepted_spec(text) == expected


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        pytest.param({}, [], id="no-models"),
        pytest.param({"task": {"model": "openai:gpt-4o-mini"}}, [], id="provider-default-key"),
        pytest.param(
            {"task": {"model": "openai:gpt-4o-mini", "apiKeySecretRef": {"name": "llm", "key": "openai"}}},
            [
                {
                    "name": "AGENTENSOR_MODEL_TASK_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}},
                }
            ],
            id="secret-ref",
        ),
    ],
)
def test_model_api_keys_reach_the_runner_from_secrets(models: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    import agentensor_api

    if not hasattr(agentensor_api, "api_key_env_name"):
        pytest.skip("spec.models arrives with the LLM workflows")
    spec = run_body()["spec"] | {"models": models}
    assert d.model_secret_env(d.validate_run(run_body(spec=spec))) == expected


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_patch", "field"),
    [
        pytest.param({"objective": {"evaluator": "nope"}}, "spec", id="objective-names-no-evaluator"),
        pytest.param({"evaluators": []}, "spec.evaluators", id="no-evaluators"),
        pytest.param({"parallelism": 0}, "spec.parallelism", id="parallelism-zero"),
    ],
)
def test_validate_run_names_the_field(spec_patch: dict[str, Any], field: str) -> None:
    body = run_body(spec=run_body()["spec"] | spec_patch)
    with pytest.raises(ManifestError) as e:
        d.validate_run(body)
    assert e.value.field == field


def test_validate_promptconfig_rejects_bad_prompt_names() -> None:
    bad = PC_BODY | {"spec": {"workflow": "w", "prompts": {"has space": {"text": "x"}}}}
    with pytest.raises(ManifestError) as e:
        d.validate_promptconfig(bad)
    assert e.value.field.startswith("spec.prompts")


# -- Jobs, census, admission --------------------------------------------------------------------


def job(conditions: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "j"}, "spec": {}, "status": {"conditions": conditions or []}}
    for k, v in extra.items():
        body[k] = body.get(k, {}) | v
    return body


@pytest.mark.parametrize(
    ("body", "phase", "reason"),
    [
        pytest.param(job(), "Active", "", id="running"),
        pytest.param(job([{"type": "Complete", "status": "True"}]), "Succeeded", "Completed", id="complete"),
        pytest.param(
            job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]),
            "Failed",
            "BackoffLimitExceeded",
            id="failed",
        ),
        pytest.param(job([{"type": "Failed", "status": "False"}]), "Active", "", id="false-condition-ignored"),
        pytest.param(job(spec={"parallelism": 0}), "Stopped", "Stopped", id="parallelism-zero"),
        pytest.param(job(metadata={"deletionTimestamp": NOW}), "Stopped", "Stopped", id="being-deleted"),
    ],
)
def test_job_state(body: dict[str, Any], phase: str, reason: str) -> None:
    state = d.job_state(body)
    assert (state.phase, state.reason) == (phase, reason)


def test_count_active_counts_only_slot_holders() -> None:
    jobs = [job(), job(), job([{"type": "Complete", "status": "True"}]), job(spec={"parallelism": 0})]
    assert d.count_active(jobs) == 2


def body_with(phase: str | None, *, suspend: bool = False, accepted: str | None = None, deleting: bool = False) -> Any:
    status: dict[str, Any] = {} if phase is None else {"phase": phase}
    if accepted is not None:
        status["conditions"] = [{"type": "Accepted", "status": accepted, "reason": "X", "lastTransitionTime": NOW}]
    meta = {"name": "r", "namespace": "n", "uid": "u", "creationTimestamp": NOW}
    if deleting:
        meta["deletionTimestamp"] = NOW
    return {"kind": "TrainingRun", "metadata": meta, "spec": {"suspend": suspend}, "status": status}


@pytest.mark.parametrize(
    ("body", "waits"),
    [
        pytest.param(body_with(None), True, id="new"),
        pytest.param(body_with("Queued"), True, id="queued"),
        pytest.param(body_with("Pending", accepted="False"), False, id="refused"),
        pytest.param(body_with("Queued", suspend=True), False, id="suspended"),
        pytest.param(body_with("Running"), False, id="running"),
        pytest.param(body_with("Succeeded"), False, id="finished"),
        pytest.param(body_with("Queued", deleting=True), False, id="being-deleted"),
    ],
)
def test_census_queues_only_waiting_runs(body: dict[str, Any], waits: bool) -> None:
    got = d.census(body)
    assert (got.entry is not None) == waits
    assert got.phase == (body["status"].get("phase") or "Pending")


def q(created: str, uid: str) -> d.QueueEntry:
    return d.QueueEntry(created=created, uid=uid)


T1, T2 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"


@pytest.mark.parametrize(
    ("queue", "uid", "active", "cap", "admit", "position"),
    [
        pytest.param([q(T1, "a")], "a", 0, 3, True, 0, id="empty-cluster"),
        pytest.param([q(T1, "a")], "a", 3, 3, False, 0, id="cap-full"),
        pytest.param([q(T1, "a")], "a", 5, 3, False, 0, id="over-cap-after-lowering-it"),
        pytest.param([q(T1, "a"), q(T2, "b")], "b", 2, 3, False, 1, id="older-run-takes-last-slot"),
        pytest.param([q(T1, "a"), q(T2, "b")], "b", 1, 3, True, 1, id="two-free-slots"),
        pytest.param([q(T2, "a"), q(T1, "z")], "a", 2, 3, False, 1, id="creation-time-before-uid"),
        pytest.param([q(T1, "b"), q(T1, "a")], "a", 2, 3, True, 0, id="uid-breaks-ties"),
        pytest.param([q(T1, "a"), q(T1, "a")], "a", 2, 3, True, 0, id="duplicates-collapse"),
        pytest.param([q(T1, "a"), q(T1, "b")], "zz", 0, 3, True, 2, id="missing-from-index-goes-last"),
    ],
)
def test_admission(queue: list[d.QueueEntry], uid: str, active: int, cap: int, admit: bool, position: int) -> None:
    verdict = d.admission(queue, uid, active=active, cap=cap)
    assert (verdict.admit, verdict.position, verdict.free) == (admit, position, max(0, cap - active))


# -- spec changes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "changed"),
    [
        pytest.param({"suspend": True, "parallelism": 8}, [], id="suspend-and-parallelism-exempt"),
        pytest.param({"optimizer": {"type": "exemplar", "epochs": 5}}, ["spec.optimizer.epochs"], id="nested"),
        pytest.param({"evaluators": [{"name": "x"}]}, ["spec.evaluators"], id="lists-whole"),
        pytest.param({"caseTimeoutSeconds": 5}, ["spec.caseTimeoutSeconds"], id="added-key"),
        pytest.param({"dataset": None}, ["spec.dataset"], id="removed-key"),
    ],
)
def test_rejected_changes(current: dict[str, Any], changed: list[str]) -> None:
    accepted = run_body()["spec"] | {"parallelism": 4, "suspend": False}
    assert d.rejected_changes(accepted, {**accepted, **current}) == changed


# -- status -------------------------------------------------------------------------------------


def summary(epoch: int, score: float = 0.5) -> CheckpointSummary:
    return CheckpointSummary(epoch=epoch, version=epoch + 1, score=score, checksum=f"c{epoch}", accepted=0)


def runner_status(phase: str, **extra: Any) -> dict[str, Any]:
    st = RunStatus(phase=phase, epoch=2, epochs=3, best_score=0.8, baseline_score=0.5, best_version=3, **extra)
    if phase == "Succeeded":
        st.conditions = set_condition([], "Succeeded", "True", "Completed", "best version 3", now=NOW)
    if phase == "Failed":
        st.message = "every validation case failed; case c3: TimeoutError"
        st.conditions = set_condition([], "Failed", "True", "AllCasesFailed", st.message, now=NOW)
    return st.to_wire()


FAILED_CASE = d.FailedCase("c7", "epoch-2/train/batch-0", 2, "ValueError: boom")


@pytest.mark.parametrize(
    ("job_state", "runner", "failed_case", "phase", "reason", "fragments"),
    [
        pytest.param(d.JobState("Active"), None, None, "Running", "JobCreated", [], id="runner-not-started"),
        pytest.param(d.JobState("Active"), runner_status("Running"), None, "Running", None, [], id="training"),
        pytest.param(
            d.JobState("Active"), runner_status("Succeeded"), None, "Succeeded", "Completed", [], id="verdict-first"
        ),
        pytest.param(None, runner_status("Succeeded"), None, "Succeeded", "Completed", [], id="job-gone-after-verdict"),
        pytest.param(
            d.JobState("Failed", "BackoffLimitExceeded", "limit"),
            runner_status("Failed"),
            FAILED_CASE,
            "Failed",
            "AllCasesFailed",
            ["case c3"],
            id="runner-verdict-failed",
        ),
        pytest.param(
            d.JobState("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            runner_status("Running"),
            FAILED_CASE,
            "Failed",
            "BackoffLimitExceeded",
            ["BackoffLimitExceeded", "during epoch 2", "case c7", "ValueError: boom"],
            id="crash-names-epoch-and-case",
        ),
        pytest.param(
            d.JobState("Failed", "DeadlineExceeded", "deadline"),
            None,
            None,
            "Failed",
            "DeadlineExceeded",
            ["DeadlineExceeded"],
            id="deadline-before-start",
        ),
        pytest.param(
            d.JobState("Succeeded"),
            runner_status("Running"),
            None,
            "Failed",
            "NoVerdict",
            ["no verdict"],
            id="no-verdict",
        ),
        pytest.param(None, runner_status("Running"), None, "Failed", "JobMissing", ["disappeared"], id="job-vanished"),
    ],
)
def test_reflect_run(
    job_state: d.JobState | None,
    runner: dict[str, Any] | None,
    failed_case: d.FailedCase | None,
    phase: str,
    reason: str | None,
    fragments: list[str],
) -> None:
    prev = d.started_status(RunStatus(), REF, "job", now=NOW)
    new = d.reflect_run(
        prev,
        REF,
        job=job_state,
        job_name_="job",
        runner=runner,
        checkpoints=[summary(i) for i in range(8)],
        failed_case=failed_case,
        kept=5,
        now=LATER,
    )
    assert new.phase == phase and new.run_id == UID
    assert [c.epoch for c in new.checkpoints or []] == [3, 4, 5, 6, 7]
    key = {"Running": "Running", "Succeeded": "Succeeded", "Failed": "Failed"}[phase]
    cond = condition_of(new, key)
    if reason is not None:
        assert cond is not None and cond.reason == reason
    for fragment in fragments:
        assert fragment in (new.message or ""), new.message
    if runner is not None:
        assert new.best_score == 0.8 and new.best_version == 3
    if phase in TERMINAL_PHASES:
        assert new.completion_time is not None


def test_status_patch_sends_only_changes_and_drops_empty_strings() -> None:
    old = {"phase": "Running", "epoch": 1, "message": "old"}
    new = RunStatus(phase="Running", epoch=2)
    new.conditions = set_condition([], "Running", "False", "Completed", "", now=NOW)
    patch = d.status_patch(old, new)
    assert patch["epoch"] == 2 and patch["message"] is None and "phase" not in patch
    assert "message" not in patch["conditions"][0], "1.20 merge-patch turns '' in a list into null"
    assert d.status_patch(new.to_wire(), new) == {}


def test_milestones() -> None:
    prev = RunStatus(phase="Running", checkpoints=[summary(0)])
    new = RunStatus(phase="Succeeded", checkpoints=[summary(0), summary(1, 0.75)])
    new.conditions = set_condition([], "Succeeded", "True", "Completed", "best version 2", now=NOW)
    assert d.milestones(prev, new) == [
        ("Normal", "Checkpointed", "epoch 1: version 2, score 0.7500"),
        ("Normal", "Succeeded", "best version 2"),
    ]
    failed = RunStatus(phase="Failed", message="why")
    assert d.milestones(prev, failed) == [("Warning", "Failed", "why")]
    assert d.milestones(new, new) == []


def promotable(phase: str = "Succeeded", value: str = "True", best: int | None = 4) -> RunStatus:
    st = RunStatus(phase=phase, best_version=best)
    st.conditions = set_condition([], "Promotable", value, "HoldoutGuardPassed", now=NOW)  # type: ignore[arg-type]
    return st


@pytest.mark.parametrize(
    ("status", "pc_spec", "target"),
    [
        pytest.param(promotable(), {"promotion": {"policy": "Auto"}}, 4, id="auto"),
        pytest.param(promotable(), {}, None, id="manual-by-default"),
        pytest.param(promotable(), {"promotion": {"policy": "Manual"}}, None, id="manual"),
        pytest.param(promotable(value="False"), {"promotion": {"policy": "Auto"}}, None, id="not-promotable"),
        pytest.param(promotable(phase="Failed"), {"promotion": {"policy": "Auto"}}, None, id="failed"),
        pytest.param(promotable(), {"promotion": {"policy": "Auto"}, "activeVersion": 4}, None, id="already-active"),
        pytest.param(promotable(best=None), {"promotion": {"policy": "Auto"}}, None, id="no-best"),
    ],
)
def test_promotion_target(status: RunStatus, pc_spec: dict[str, Any], target: int | None) -> None:
    assert d.promotion_target(status, pc_spec) == target


@pytest.mark.parametrize(
    ("status", "generation", "needed"),
    [
        pytest.param({}, 1, True, id="new"),
        pytest.param({"phase": "Running"}, 1, True, id="running"),
        pytest.param(
            {"phase": "Succeeded", "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": NOW,
                 "observedGeneration": 1}
            ]},
            1,
            False,
            id="finished-and-seen",
        ),
        pytest.param(
            {"phase": "Succeeded", "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": NOW,
                 "observedGeneration": 1}
            ]},
            2,
            True,
            id="finished-spec-edited",
        ),
    ],
)  # fmt: skip
def test_timer_filter(status: dict[str, Any], generation: int, needed: bool) -> None:
    assert needs_reconcile({"metadata": {"generation": generation}, "status": status}) is needed


# -- PromptConfig -------------------------------------------------------------------------------


def test_active_config_map_keys_are_valid_and_hold_the_version() -> None:
    prompts = {"intent.reverted_card_payment?": "reverted", "intent.a": "a"}
    cm = d.active_config_map(PC_BODY, version=3, checksum="abc", prompts=prompts, parameters={"t": 0.2})
    assert cm["metadata"]["name"] == "router-active"
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", k) for k in cm["data"])
    assert json.loads(cm["data"]["prompts.json"]) == prompts
    assert json.loads(cm["data"]["parameters.json"]) == {"t": 0.2}
    assert (cm["data"]["version"], cm["data"]["checksum"]) == ("3", "abc")
    assert cm["metadata"]["ownerReferences"][0] == d.owner_reference(
        api_version="agentensor.dev/v1alpha1", kind="PromptConfig", name="router", uid="pc-uid"
    )


def test_promptconfig_status_keeps_the_last_good_version_on_error() -> None:
    good = d.promptconfig_status(
        None, generation=1, active_version=2, active_checksum="c2", latest_version=3, versions=3,
        best_version=3, best_score=0.9, error=None, now=NOW,
    )  # fmt: skip
    assert (good.active_version, good.observed_generation) == (2, 1)
    bad = d.promptconfig_status(
        good.to_wire(), generation=2, active_version=None, active_checksum=None, latest_version=3, versions=3,
        best_version=3, best_score=0.9, error=("VersionNotFound", "spec.activeVersion: no version 9"), now=LATER,
    )  # fmt: skip
    assert (bad.active_version, bad.active_checksum, bad.observed_generation) == (2, "c2", 1)
    ready = next((c for c in bad.conditions if c.type == "Ready"), None)
    assert ready is not None and (ready.status, ready.reason, ready.last_transition_time) == (
        "False",
        "VersionNotFound",
        LATER,
    )


def test_queued_and_invalid_statuses() -> None:
    queued = d.queued_status(RunStatus(), REF, "Waiting", "waiting", now=NOW)
    assert queued.phase == "Queued" and queued.observed_generation == 1
    assert condition_of(queued, "Accepted").reason == "Accepted"  # type: ignore[union-attr]
    err = ManifestError("spec.dataset", "set exactly one of dataset.path or dataset.inline")
    invalid = d.invalid_status(queued, REF, err, now=LATER)
    assert invalid.phase == "Failed" and invalid.message == f"{err.field}: {err.reason}"
    accepted = condition_of(invalid, "Accepted")
    assert accepted is not None and (accepted.status, accepted.observed_generation) == ("False", 1)
    rejected = d.spec_change_rejected(invalid, d.RunRef("TrainingRun", "n", "r", UID, 2), "no", now=LATER)
    assert condition_of(rejected, "Accepted").observed_generation == 2  # type: ignore[union-attr]
    assert rejected.observed_generation == 1


def test_manifest_yaml_is_plain_yaml() -> None:
    docs = list(yaml.safe_load_all(d.runner_manifest(run_body(), PC_BODY)))
    assert [doc["kind"] for doc in docs] == ["TrainingRun", "PromptConfig"]
    assert "status" not in docs[0]


@pytest.mark.parametrize(
    ("epoch", "case", "expected"),
    [
        pytest.param(None, None, "Job x failed", id="nothing-known"),
        pytest.param(3, None, "Job x failed; during epoch 3", id="epoch-only"),
        pytest.param(
            1,
            d.FailedCase("c7", "epoch-2/train/batch-2", 2, "row 7 has no field 'text'"),
            "Job x failed; during epoch 2; last error: case c7 (epoch-2/train/batch-2): row 7 has no field 'text'",
            id="rows-ahead-of-status",
        ),
        pytest.param(
            4,
            d.FailedCase("c1", "holdout/best", None, "x" * 500),
            "Job x failed; during epoch 4; last error: case c1 (holdout/best): " + "x" * 300,
            id="long-error-trimmed",
        ),
    ],
)
def test_failure_message(epoch: int | None, case: d.FailedCase | None, expected: str) -> None:
    assert d.failure_message("Job x failed", epoch=epoch, failed_case=case) == expected


# -- sharded EvaluationRuns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "parallelism", "per_pod", "cap", "shards"),
    [
        pytest.param("EvaluationRun", 4, 16, 4, 1, id="small"),
        pytest.param("EvaluationRun", 16, 16, 4, 1, id="exactly-one-pod"),
        pytest.param("EvaluationRun", 17, 16, 4, 2, id="just-over"),
        pytest.param("EvaluationRun", 256, 16, 4, 4, id="capped"),
        pytest.param("TrainingRun", 256, 16, 4, 1, id="training-never-shards"),
    ],
)
def test_shard_count(kind: str, parallelism: int, per_pod: int, cap: int, shards: int) -> None:
    assert d.shard_count(kind, parallelism, per_pod=per_pod, cap=cap) == shards


def qs(created: str, uid: str, slots: int) -> d.QueueEntry:
    return d.QueueEntry(created=created, uid=uid, slots=slots)


@pytest.mark.parametrize(
    ("queue", "uid", "active", "admit"),
    [
        pytest.param([qs(T1, "a", 2)], "a", 1, True, id="gang-fits"),
        pytest.param([qs(T1, "a", 3)], "a", 1, False, id="gang-waits-for-all-slots"),
        pytest.param([qs(T1, "a", 2), qs(T2, "b", 1)], "b", 0, True, id="behind-a-gang-that-fits"),
        pytest.param([qs(T1, "a", 3), qs(T2, "b", 1)], "b", 0, False, id="no-overtaking-a-waiting-gang"),
    ],
)
def test_admission_counts_slots(queue: list[d.QueueEntry], uid: str, active: int, admit: bool) -> None:
    assert d.admission(queue, uid, active=active, cap=3).admit is admit


def test_census_sizes_sharded_runs() -> None:
    body = body_with(None) | {"kind": "EvaluationRun", "spec": {"parallelism": 40}}
    entry = d.census(body, per_pod=16, cap=4).entry
    assert entry is not None and entry.slots == 3


def test_shard_jobs() -> None:
    ref = d.RunRef("EvaluationRun", "ns", "evaluate-the-router-now", UID, 1)
    jobs = [
        d.runner_job(ref, image=None, jobs=JobSettings(), database=DatabaseSettings(), shard=(i, 3)) for i in range(3)
    ]
    names = [j["metadata"]["name"] for j in jobs]
    assert len(set(names)) == 3 and all(len(n) <= 63 and DNS_LABEL.match(n) and UID in n for n in names)
    assert all(n != d.job_name(ref) for n in names)
    command = jobs[1]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-4:] == ["--shard", "1/3", "--run-id", f"{UID}-s1"]
    assert jobs[1]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == d.job_name(ref)
    assert d.job_shards(jobs) == 3 and [d.job_shard(j) for j in jobs] == [0, 1, 2]
    single = d.runner_job(ref, image=None, jobs=JobSettings(), database=DatabaseSettings())
    assert d.job_shards([single]) == 1 and d.job_shard(single) is None


def shard_status(phase: str, total: int, accuracy: float | None, *, message: str | None = None) -> dict[str, Any]:
    st = RunStatus(phase=phase, cases_total=total, cases_completed=total if phase != "Running" else total // 2)
    st.best_version = 3
    if accuracy is not None:
        st.scores, st.best_score = {"accuracy": accuracy}, accuracy
    if phase == "Failed":
        st.message = message
        st.conditions = set_condition([], "Failed", "True", "AllCasesFailed", message or "", now=NOW)
    return st.to_wire()


@pytest.mark.parametrize(
    ("shards", "phase", "reason", "fragment"),
    [
        pytest.param(
            [(d.JobState("Succeeded"), shard_status("Succeeded", 30, 0.5)),
             (d.JobState("Active"), shard_status("Succeeded", 10, 1.0))],
            "Succeeded", "Completed", "accuracy=0.6250 over 40 cases in 2 shards", id="weighted-by-cases",
        ),
        pytest.param(
            [(d.JobState("Succeeded"), shard_status("Succeeded", 30, 0.5)),
             (d.JobState("Succeeded"), shard_status("Succeeded", 0, None))],
            "Succeeded", "Completed", "accuracy=0.5000 over 30 cases", id="empty-shard-has-no-say",
        ),
        pytest.param(
            [(d.JobState("Active"), shard_status("Running", 30, None)), (d.JobState("Active"), None)],
            "Running", "Evaluating", "15/30 cases; 0/2 shards finished", id="running",
        ),
        pytest.param(
            [(d.JobState("Active"), shard_status("Running", 30, None)),
             (d.JobState("Failed", "AllCasesFailed"), shard_status("Failed", 10, None, message="every case failed"))],
            "Failed", "AllCasesFailed", "shard 1/2: every case failed", id="shard-verdict-failed",
        ),
        pytest.param(
            [(d.JobState("Failed", "BackoffLimitExceeded", "limit"), shard_status("Running", 30, None)),
             (d.JobState("Active"), None)],
            "Failed", "BackoffLimitExceeded", "shard 0/2: runner Job", id="shard-job-failed",
        ),
        pytest.param(
            [(None, shard_status("Running", 30, None)), (d.JobState("Active"), None)],
            "Failed", "JobMissing", "without a verdict", id="shard-job-vanished",
        ),
    ],
)  # fmt: skip
def test_reflect_sharded(
    shards: list[tuple[d.JobState | None, dict[str, Any] | None]], phase: str, reason: str, fragment: str
) -> None:
    ref = d.RunRef("EvaluationRun", "ns", "ev", UID, 1)
    new = d.reflect_sharded(RunStatus(phase="Running"), ref, shards=shards, failed_case=None, now=NOW)
    key = {"Succeeded": "Succeeded", "Failed": "Failed", "Running": "Running"}[phase]
    cond = condition_of(new, key)
    assert new.phase == phase and cond is not None and cond.reason == reason
    assert fragment in (cond.message or ""), cond.message
    if phase == "Succeeded":
        assert new.best_version == 3 and new.cases_total == new.cases_completed
        assert new.best_score == pytest.approx(new.scores["accuracy"])  # type: ignore[index]


def _shard_with_results(
    total: int, mean: float, n: int, parse_failures: int = 0, passed: bool = True
) -> dict[str, Any]:
    from agentensor_api import EvaluatorResults

    st = RunStatus.model_validate(shard_status("Succeeded", total, mean))
    st.results = {"accuracy": EvaluatorResults(mean=mean, pass_rate=mean, n=n, parse_failures=parse_failures)}
    # what the shard's own runner wrote: a verdict over its part of the cases only
    st.conditions = set_condition(st.conditions, "Passed", "True" if passed else "False", "CriteriaMet", "", now=NOW)
    return st.to_wire()


@pytest.mark.parametrize(("bound", "passed"), [(0.6, "True"), (0.7, "False")])
def test_a_sharded_run_passes_on_the_combined_results(bound: float, passed: str) -> None:
    from agentensor_api import PassCriterion

    ref = d.RunRef("EvaluationRun", "ns", "ev", UID, 1)
    shards = [
        (d.JobState("Succeeded"), _shard_with_results(30, 0.5, 28, parse_failures=2, passed=False)),
        (d.JobState("Succeeded"), _shard_with_results(12, 1.0, 12)),
    ]
    criteria = [PassCriterion.model_validate({"evaluator": "accuracy", "minMean": bound})]
    new = d.reflect_sharded(
        RunStatus(phase="Running"), ref, shards=shards, failed_case=None, now=NOW, pass_criteria=criteria
    )
    assert new.phase == "Succeeded" and new.results is not None
    combined = new.results["accuracy"]
    # (0.5 * 28 + 1.0 * 12) / 40 = 0.65 over the 40 scored cases; 2 left unscored
    assert combined.mean == pytest.approx(0.65) and combined.n == 40 and combined.parse_failures == 2
    cond = condition_of(new, "Passed")
    assert cond is not None and cond.status == passed, cond
    if passed == "False":
        assert "0.65" in (cond.message or ""), "the message gives the combined mean"
    # without criteria the shards' own Passed verdicts are not carried over
    plain = d.reflect_sharded(RunStatus(phase="Running"), ref, shards=shards, failed_case=None, now=NOW)
    assert condition_of(plain, "Passed") is None
