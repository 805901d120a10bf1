"""The runner Job and ConfigMap of a run, and what a Job's status says."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentensor_api import (
    API_VERSION,
    Reason,
)

from .._settings import DatabaseSettings, JobSettings
from ._names import (
    ANNOTATION_RUN,
    ANNOTATION_SHARDS,
    CONTAINER_NAME,
    DATABASE_URL_ENV,
    LABEL_SHARD,
    MANIFEST_DIR,
    MANIFEST_KEY,
    MANIFEST_PATH,
    JsonDict,
    RunRef,
    job_name,
    labels,
    owner_reference,
    shard_run_id,
)

ALLOWLIST_ENV = "AGENTENSOR_EVALUATOR_ALLOWLIST"
"""The runner's entrypoint allow-list variable (``agentensor_runner._allowlist.ALLOWLIST_ENV``;
the operator may not import the runner, a test keeps the two equal)."""

HF_OFFLINE_ENV = "HF_HUB_OFFLINE"


def runner_config_map(ref: RunRef, manifest: str) -> JsonDict:
    """The ConfigMap holding a run's manifest, owned by the run."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": job_name(ref),
            "namespace": ref.namespace,
            "labels": labels(ref),
            "ownerReferences": [owner_reference(api_version=API_VERSION, kind=ref.kind, name=ref.name, uid=ref.uid)],
        },
        "data": {MANIFEST_KEY: manifest},
    }


def runner_job(
    ref: RunRef,
    *,
    image: str | None,
    jobs: JobSettings,
    database: DatabaseSettings,
    secret_env: Sequence[JsonDict] = (),
    shard: tuple[int, int] | None = None,
) -> JsonDict:
    """The runner Job of a run (or of shard ``(i, n)`` of a sharded EvaluationRun).

    One Pod running ``agentensor runner --manifest ...`` (plus ``--shard i/n --run-id <uid>-s<i>``
    for a shard).

    Args:
        image: ``spec.workflow.image``; ``None`` uses ``jobs.image``.
        secret_env: extra env entries from Secrets (model API keys, :func:`model_secret_env`).
        shard: ``(index, count)`` for one shard of a sharded run.

    The DSN reaches the Pod only as an env var from a Secret reference (never inline); the
    manifest is mounted from the run's ConfigMap (one per run, shared by its shards). The
    entrypoint allow-list is ``jobs.allowed_modules`` (see :func:`_runner_env`).
    """
    command = ["agentensor", "runner", "--manifest", MANIFEST_PATH, "--base-dir", jobs.data_dir]
    job_labels = labels(ref)
    annotations = {ANNOTATION_RUN: f"{ref.kind}/{ref.name}", ANNOTATION_SHARDS: "1"}
    if shard is not None:
        index, count = shard
        command += ["--shard", f"{index}/{count}", "--run-id", shard_run_id(ref.uid, index)]
        job_labels[LABEL_SHARD] = str(index)
        annotations[ANNOTATION_SHARDS] = str(count)
    container = _runner_container(image or jobs.image, command, _runner_env(jobs, database, secret_env))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(ref, shard[0] if shard is not None else None),
            "namespace": ref.namespace,
            "labels": job_labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(api_version=API_VERSION, kind=ref.kind, name=ref.name, uid=ref.uid)],
        },
        "spec": {
            "backoffLimit": jobs.backoff_limit,
            "activeDeadlineSeconds": jobs.active_deadline_seconds,
            "ttlSecondsAfterFinished": jobs.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": job_labels}, "spec": _runner_pod_spec(ref, container, jobs)},
        },
    }


def _runner_env(jobs: JobSettings, database: DatabaseSettings, secret_env: Sequence[JsonDict]) -> list[JsonDict]:
    """The runner container's env: model keys first, then the variables only the operator sets.

    ``AGENTENSOR_EVALUATOR_ALLOWLIST`` is always set, to ``jobs.allowed_modules`` comma-joined
    (``""`` when empty: nothing may run, whatever the runner image's own ``ENV`` says). A
    ``secret_env`` entry naming an operator variable (a manifest's ``apiKeyEnv:
    AGENTENSOR_EVALUATOR_ALLOWLIST``) is dropped, and the operator's entries come last (the
    kubelet lets a later duplicate win), so a manifest can neither widen the allow-list nor
    redirect the DSN.
    """
    own: list[JsonDict] = [
        {
            "name": DATABASE_URL_ENV,
            "valueFrom": {"secretKeyRef": {"name": database.secret_name, "key": database.secret_key}},
        },
        {"name": HF_OFFLINE_ENV, "value": "1"},
        {"name": ALLOWLIST_ENV, "value": ",".join(jobs.allowed_modules)},
    ]
    reserved = {e["name"] for e in own}
    return [*(e for e in secret_env if e.get("name") not in reserved), *own]


def _runner_container(image: str, command: list[str], env: list[JsonDict]) -> JsonDict:
    """The runner container: the given env, the manifest volume, a restricted security context."""
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "command": command,
        "env": env,
        "volumeMounts": [
            {"name": "run", "mountPath": MANIFEST_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        # Pod Security Standards "restricted": the runner needs no privileges and writes only /tmp.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _runner_pod_spec(ref: RunRef, container: JsonDict, jobs: JobSettings) -> JsonDict:
    """The runner Pod: never restarted in place, the run's ConfigMap mounted, no API token."""
    pod_spec: JsonDict = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "run", "configMap": {"name": job_name(ref)}}, {"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,  # the runner talks to the database, never to the API
    }
    if jobs.service_account_name:
        pod_spec["serviceAccountName"] = jobs.service_account_name
    return pod_spec


def job_shards(jobs: Sequence[Mapping[str, Any]]) -> int:
    """How many shards a run's Jobs were created for (1 when unsharded or unknown)."""
    for job in jobs:
        value = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SHARDS)
        if value and str(value).isdigit():
            return max(1, int(value))
    return 1


def job_shard(job: Mapping[str, Any]) -> int | None:
    """The shard index of a runner Job (``None`` when unsharded)."""
    value = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_SHARD)
    return int(value) if value is not None and str(value).isdigit() else None


JobPhase = Literal["Active", "Succeeded", "Failed", "Stopped"]


@dataclass(frozen=True, slots=True)
class JobState:
    """What a runner Job says: Active, Succeeded, Failed (with reason), or Stopped (parallelism 0)."""

    phase: JobPhase
    reason: str = ""
    message: str = ""
    failed_pods: int = 0


def job_state(job: Mapping[str, Any]) -> JobState:
    """Read a Job's conditions (Complete/Failed) and counters."""
    status = job.get("status") or {}
    failed = int(status.get("failed") or 0)
    for c in status.get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == "Complete":
            return JobState("Succeeded", c.get("reason") or Reason.COMPLETED, c.get("message") or "", failed)
        if c.get("type") == "Failed":
            return JobState("Failed", c.get("reason") or Reason.JOB_FAILED, c.get("message") or "", failed)
    if (job.get("spec") or {}).get("parallelism") == 0 or (job.get("metadata") or {}).get("deletionTimestamp"):
        return JobState("Stopped", "Stopped", "", failed)
    return JobState("Active", "", "", failed)


def count_active(jobs: Iterable[Mapping[str, Any]]) -> int:
    """How many runner Jobs hold a slot of the cap (neither finished, stopped nor being deleted)."""
    return sum(1 for j in jobs if job_state(j).phase == "Active")
