"""The runner Job and ConfigMap of a run, and the checks of ``spec.runner`` against the settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentensor_api import (
    API_VERSION,
    HOST_ALLOWLIST_ENV,
    HOST_STRICT_ENV,
    KEY_ENV_ALLOWLIST_ENV,
    ManifestError,
    ResourceRequirements,
    RunnerSpec,
)

from .._k8s import quantity
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

LABEL_RUN = "agentensor.dev/run"
"""The run's name on its Jobs and Pods (``kubectl logs -l agentensor.dev/run=NAME``); a name longer
than a label value's 63 characters is cut (``agentensor.dev/run-uid`` stays exact)."""
LABEL_APP_NAME = "app.kubernetes.io/name"
LABEL_APP_INSTANCE = "app.kubernetes.io/instance"
LABEL_PART_OF = "app.kubernetes.io/part-of"
APP_NAME = "agentensor-runner"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
"""Kueue's LocalQueue label: copied from the run's ``metadata.labels`` to its Jobs, where Kueue's
Job integration looks for it."""


def _label_value(value: str) -> str:
    """``value`` cut to a valid label value (at most 63 characters, alphanumeric at both ends)."""
    return value[:63].rstrip("-_.")


def pod_labels(ref: RunRef) -> dict[str, str]:
    """Labels of a run's Jobs and runner Pods: :func:`labels` plus the run's name and the app labels."""
    return {
        **labels(ref),
        LABEL_RUN: _label_value(ref.name),
        LABEL_APP_NAME: APP_NAME,
        LABEL_APP_INSTANCE: _label_value(ref.name),
        LABEL_PART_OF: "agentensor",
    }


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
    runner: RunnerSpec | None = None,
    run_labels: Mapping[str, str] | None = None,
) -> JsonDict:
    """The runner Job of a run (or of shard ``(i, n)`` of a sharded EvaluationRun).

    One Pod running ``agentensor runner --manifest ...`` (plus ``--shard i/n --run-id <uid>-s<i>``
    for a shard).

    Args:
        image: ``spec.workflow.image``; ``None`` uses ``jobs.image``.
        secret_env: extra env entries from Secrets (model API keys, :func:`model_secret_env`).
        shard: ``(index, count)`` for one shard of a sharded run.
        runner: ``spec.runner`` (placement, resources, env, volumes), checked beforehand by
            :func:`check_runner`; the chart's defaults and forced placement are applied on top.
        run_labels: the run's ``metadata.labels``; Kueue's ``kueue.x-k8s.io/queue-name`` is
            copied to the Job.

    The DSN reaches the Pod only as an env var from a Secret reference (never inline); the
    manifest is mounted from the run's ConfigMap (one per run, shared by its shards). The
    entrypoint allow-list is ``jobs.allowed_modules`` (see :func:`_runner_env`).
    """
    command, job_labels, annotations = _identity(ref, jobs, shard)
    spec = runner or RunnerSpec()
    container = _run_container(image or jobs.image, command, jobs, database, secret_env, spec)
    template = {"metadata": _template_meta(job_labels, spec), "spec": _runner_pod_spec(ref, container, jobs, spec)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _job_metadata(ref, shard, job_labels, annotations, run_labels),
        "spec": {**_job_limits(jobs), "template": template},
    }


def _job_limits(jobs: JobSettings) -> JsonDict:
    """How often a runner Job retries its Pod, how long it may run, and how long it is kept once finished."""
    return {
        "backoffLimit": jobs.backoff_limit,
        "activeDeadlineSeconds": jobs.active_deadline_seconds,
        "ttlSecondsAfterFinished": jobs.ttl_seconds_after_finished,
    }


def _job_metadata(
    ref: RunRef,
    shard: tuple[int, int] | None,
    job_labels: Mapping[str, str],
    annotations: Mapping[str, str],
    run_labels: Mapping[str, str] | None,
) -> JsonDict:
    """The Job's name (the shard's, if any), labels and annotations, owned by the run.

    The labels are the Pod's plus Kueue's ``kueue.x-k8s.io/queue-name`` when the run carries one.
    """
    job_meta_labels = dict(job_labels)
    queue = (run_labels or {}).get(KUEUE_QUEUE_LABEL)
    if queue:
        job_meta_labels[KUEUE_QUEUE_LABEL] = queue
    return {
        "name": job_name(ref, shard[0] if shard is not None else None),
        "namespace": ref.namespace,
        "labels": job_meta_labels,
        "annotations": annotations,
        "ownerReferences": [owner_reference(api_version=API_VERSION, kind=ref.kind, name=ref.name, uid=ref.uid)],
    }


def _run_container(
    image: str,
    command: list[str],
    jobs: JobSettings,
    database: DatabaseSettings,
    secret_env: Sequence[JsonDict],
    runner: RunnerSpec,
) -> JsonDict:
    """The runner container with the run's own part on top: its env (before the operator's), its
    resources merged with the chart's defaults (:func:`effective_resources`), its volume mounts."""
    env = _runner_env(jobs, database, [*secret_env, *(e.to_wire() for e in runner.env or [])])
    container = _runner_container(image, command, env)
    container["resources"] = effective_resources(runner.resources, jobs.resources).to_wire()
    container["volumeMounts"] += [m.to_wire() for m in runner.volume_mounts or []]
    return container


def _identity(
    ref: RunRef, jobs: JobSettings, shard: tuple[int, int] | None
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """``(command, labels, annotations)`` of a run's Job, or of one shard's."""
    command = ["agentensor", "runner", "--manifest", MANIFEST_PATH, "--base-dir", jobs.data_dir]
    job_labels = pod_labels(ref)
    annotations = {ANNOTATION_RUN: f"{ref.kind}/{ref.name}", ANNOTATION_SHARDS: "1"}
    if shard is not None:
        index, count = shard
        command += ["--shard", f"{index}/{count}", "--run-id", shard_run_id(ref.uid, index)]
        job_labels[LABEL_SHARD] = str(index)
        annotations[ANNOTATION_SHARDS] = str(count)
    return command, job_labels, annotations


def _template_meta(job_labels: Mapping[str, str], runner: RunnerSpec) -> JsonDict:
    """The Pod template's metadata: the run's extra labels and annotations, then the operator's labels."""
    meta: JsonDict = {"labels": {**(runner.labels or {}), **job_labels}}
    if runner.annotations:
        meta["annotations"] = dict(runner.annotations)
    return meta


def _runner_env(jobs: JobSettings, database: DatabaseSettings, secret_env: Sequence[JsonDict]) -> list[JsonDict]:
    """The runner container's env: model keys first, then the variables only the operator sets.

    ``AGENTENSOR_EVALUATOR_ALLOWLIST`` is always set, to ``jobs.allowed_modules`` comma-joined
    (``""`` when empty: nothing may run, whatever the runner image's own ``ENV`` says); so are the
    model-credential grants (:func:`model_access_env`). A
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
        *model_access_env(jobs),
    ]
    reserved = {e["name"] for e in own}
    return [*(e for e in secret_env if e.get("name") not in reserved), *own]


def model_access_env(jobs: JobSettings) -> list[JsonDict]:
    """The admin's model-credential grants (chart ``runner.modelKeyEnvs``, ``modelHosts``,
    ``modelHostsStrict``) as the runner reads them (``agentensor_api.ModelAccess``); always set,
    so neither the image's ``ENV`` nor a manifest can widen them."""
    return [
        {"name": KEY_ENV_ALLOWLIST_ENV, "value": ",".join(jobs.model_key_envs)},
        {"name": HOST_ALLOWLIST_ENV, "value": ",".join(jobs.model_hosts)},
        {"name": HOST_STRICT_ENV, "value": "true" if jobs.model_hosts_strict else "false"},
    ]


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


def _runner_pod_spec(ref: RunRef, container: JsonDict, jobs: JobSettings, runner: RunnerSpec) -> JsonDict:
    """The runner Pod: never restarted in place, the run's ConfigMap mounted, no API token.

    Placement: the run's nodeSelector merged with the chart's (:func:`check_runner` refused a
    conflict), the run's tolerations then the chart's, the run's ServiceAccount and
    PriorityClass else the chart's.
    """
    volumes: list[JsonDict] = [{"name": "run", "configMap": {"name": job_name(ref)}}, {"name": "tmp", "emptyDir": {}}]
    pod_spec: JsonDict = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes + [v.to_wire() for v in runner.volumes or []],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,  # the runner talks to the database, never to the API
    }
    optional: JsonDict = {
        "serviceAccountName": runner.service_account_name or jobs.service_account_name,
        "priorityClassName": runner.priority_class_name or jobs.priority_class_name,
        "nodeSelector": {**(runner.node_selector or {}), **jobs.node_selector},
        "tolerations": [t.to_wire() for t in [*(runner.tolerations or []), *jobs.tolerations]],
    }
    pod_spec.update({k: v for k, v in optional.items() if v})
    return pod_spec


def effective_resources(spec: ResourceRequirements | None, default: ResourceRequirements) -> ResourceRequirements:
    """The runner container's resources: per resource name, the run's request and limit, else the default's.

    A resource the run names (in requests or limits) takes only the run's values, so a run asking
    for 8Gi of memory is not capped by a 4Gi default limit; every other resource keeps the
    chart's default request and limit.
    """
    spec = spec or ResourceRequirements()
    named = set(spec.requests or {}) | set(spec.limits or {})
    requests = {k: v for k, v in (default.requests or {}).items() if k not in named} | (spec.requests or {})
    limits = {k: v for k, v in (default.limits or {}).items() if k not in named} | (spec.limits or {})
    return ResourceRequirements(requests=requests or None, limits=limits or None)


def check_runner(runner: RunnerSpec | None, jobs: JobSettings) -> None:
    """Refuse a ``spec.runner`` the cluster's settings do not allow.

    Checks, in order: every quantity parses; each request is at most its limit (the effective
    ones, chart defaults included); none is above ``jobs.max_resources`` (chart
    ``runner.maxResources``); the nodeSelector does not contradict the chart's forced keys.

    Raises:
        ManifestError: naming the field, e.g. ``spec.runner.resources.requests.cpu: 8 is above
            the maximum 4 a runner may ask for (chart runner.maxResources.cpu)``.
    """
    spec = runner or RunnerSpec()
    effective = effective_resources(spec.resources, jobs.resources)
    for kind in ("requests", "limits"):
        for name, value in (getattr(effective, kind) or {}).items():
            field = f"spec.runner.resources.{kind}.{name}"
            amount = _amount(field, value)
            cap = jobs.max_resources.get(name)
            if cap is not None and amount > _amount(f"runner.maxResources.{name}", cap):
                raise ManifestError(
                    field, f"{value} is above the maximum {cap} a runner may ask for (chart runner.maxResources.{name})"
                )
    for name, request in (effective.requests or {}).items():
        limit = (effective.limits or {}).get(name)
        if limit is not None and _amount("", request) > _amount("", limit):
            raise ManifestError(
                f"spec.runner.resources.requests.{name}", f"{request} is above its limit {limit} (limits.{name})"
            )
    for key, value in (spec.node_selector or {}).items():
        forced = jobs.node_selector.get(key)
        if forced is not None and forced != value:
            raise ManifestError(
                f"spec.runner.nodeSelector.{key}",
                f"{value!r} contradicts the cluster's runner.nodeSelector {key}={forced!r}; "
                "leave it out or use that value",
            )


def _amount(field: str, value: str) -> Any:
    try:
        return quantity(value)
    except ValueError as e:
        raise ManifestError(field, f"{value!r} is not a Kubernetes quantity (e.g. '500m', '2', '1Gi')") from e
