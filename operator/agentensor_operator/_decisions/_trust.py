"""What a run author may put into a runner Pod beyond the API models' own checks.

The API models refuse what no cluster may allow (an env name that changes what the runner
loads, a ``..`` in a mount path); this module refuses what the cluster admin did not grant
through the chart (operator settings): Secrets, mount folders, Pod label and annotation keys of
security-relevant domains, ServiceAccounts and images. Every check raises
:class:`~agentensor_api.ManifestError` naming the field, which the run handler turns into
``Accepted=False`` reason InvalidSpec, before any ConfigMap or Job exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentensor_api import (
    EvaluationRun,
    ManifestError,
    ModelAccess,
    ModelSpec,
    RunnerSpec,
    TrainingRun,
    denied_env_name,
)

from .._settings import DatabaseSettings, JobSettings
from ._jobs import model_access_env

DENIED_METADATA_DOMAINS = (
    "kubernetes.io",
    "k8s.io",
    "agentensor.dev",
    "x-k8s.io",
    "vault.hashicorp.com",
    "amazonaws.com",
    "azure.workload.identity",
    "gke.io",
    "istio.io",
    "linkerd.io",
    "cncf.io",
    "projectcalico.org",
    "cilium.io",
)
"""Label and annotation domains (and their subdomains) a run may not set on its Pod unless the
admin allows the key (chart ``runner.allowedMetadataKeys``): Kubernetes' own (AppArmor
``container.apparmor.security.beta.kubernetes.io/*``, seccomp, eviction, scheduling), the
operator's, Kueue's, and those of controllers that act on a Pod's keys: Vault's agent injector
(``vault.hashicorp.com/agent-inject-secret-*`` fetches secrets with the Pod's identity), kube2iam /
kiam (``iam.amazonaws.com/role``), EKS and GKE and Azure workload identity, Istio and Linkerd
(sidecar injection and traffic capture: egress policy), Multus (``k8s.v1.cni.cncf.io/networks``),
Calico and Cilium (addresses, policies)."""

ALLOWED_SECRETS_HINT = "chart value runner.allowedSecrets"


@dataclass(frozen=True, slots=True)
class SecretUse:
    """One place a run names a Secret: ``key`` is ``None`` when the whole Secret is mounted."""

    field: str
    name: str
    key: str | None


def secret_uses(run: TrainingRun | EvaluationRun) -> list[SecretUse]:
    """Every Secret a run names: model API keys, env ``secretKeyRef``, Secret volumes."""
    uses = [
        SecretUse(
            f"spec.models.{name}.apiKeySecretRef.name", model.api_key_secret_ref.name, model.api_key_secret_ref.key
        )
        for name, model in sorted(run.spec.models.items())
        if model.api_key_secret_ref is not None
    ]
    runner = run.spec.runner or RunnerSpec()
    for i, env in enumerate(runner.env or []):
        ref = env.value_from.secret_key_ref if env.value_from is not None else None
        if ref is not None:
            uses.append(SecretUse(f"spec.runner.env[{i}].valueFrom.secretKeyRef.name", ref.name, ref.key))
    for i, volume in enumerate(runner.volumes or []):
        if volume.secret is not None:
            uses.append(SecretUse(f"spec.runner.volumes[{i}].secret.secretName", volume.secret.secret_name, None))
    return uses


def model_env_names(run: TrainingRun | EvaluationRun) -> list[tuple[str, str]]:
    """``(field, name)`` of each ``apiKeyEnv`` the operator sets from an ``apiKeySecretRef``."""
    return [
        (f"spec.models.{name}.apiKeyEnv", model.api_key_env)
        for name, model in sorted(run.spec.models.items())
        if model.api_key_secret_ref is not None and model.api_key_env
    ]


def check_secrets(uses: Iterable[SecretUse], jobs: JobSettings, database: DatabaseSettings) -> None:
    """Refuse a Secret the admin did not list in ``jobs.allowed_secrets``, and the database Secret always.

    ``NAME`` in the list allows every key and the volume; ``NAME/KEY`` one key by reference.

    Raises:
        ManifestError: e.g. ``spec.runner.env[0].valueFrom.secretKeyRef.name: Secret 'x' is not in
            the operator's allowed Secrets (chart value runner.allowedSecrets)``.
    """
    allowed = set(jobs.allowed_secrets)
    for use in uses:
        if use.name == database.secret_name:
            raise ManifestError(
                use.field,
                f"Secret {use.name!r} holds the operator's database URL and is never available to a run",
            )
        if use.name in allowed:
            continue
        if use.key is None:
            raise ManifestError(
                use.field,
                f"Secret {use.name!r} may not be mounted: only Secrets listed by name (not NAME/KEY) in "
                f"the operator's allowed Secrets ({ALLOWED_SECRETS_HINT}) may be",
            )
        if f"{use.name}/{use.key}" not in allowed:
            raise ManifestError(
                use.field, f"Secret {use.name!r} is not in the operator's allowed Secrets ({ALLOWED_SECRETS_HINT})"
            )


def check_env_names(names: Iterable[tuple[str, str]]) -> None:
    """Refuse an env name :func:`agentensor_api.denied_env_name` denies (e.g. ``apiKeyEnv: PYTHONPATH``).

    Raises:
        ManifestError: naming the field and why the variable is refused.
    """
    for field, name in names:
        why = denied_env_name(name)
        if why is not None:
            raise ManifestError(field, f"{name}: a run may not set this variable: it {why}")


def metadata_key_allowed(key: str, allowed: Iterable[str]) -> bool:
    """Whether a run may set Pod label/annotation ``key``: outside :data:`DENIED_METADATA_DOMAINS`, or listed.

    ``allowed`` holds exact keys and prefixes ending in ``/``.
    """
    if "/" not in key:
        return True
    if any(key == a or (a.endswith("/") and key.startswith(a)) for a in allowed):
        return True
    domain = key.split("/", 1)[0].lower()
    return not any(domain == d or domain.endswith("." + d) for d in DENIED_METADATA_DOMAINS)


def check_pod_metadata(runner: RunnerSpec, jobs: JobSettings) -> None:
    """Refuse ``spec.runner.labels`` / ``annotations`` keys of a denied domain the admin did not allow.

    Raises:
        ManifestError: e.g. ``spec.runner.annotations.container.apparmor.security.beta.kubernetes.io/runner:
            the kubernetes.io domain is not a run's to set ...``.
    """
    for what, values in (("labels", runner.labels), ("annotations", runner.annotations)):
        for key in values or {}:
            if not metadata_key_allowed(key, jobs.allowed_metadata_keys):
                domain = key.split("/", 1)[0]
                raise ManifestError(
                    f"spec.runner.{what}.{key}",
                    f"keys of the domain {domain!r} control the Pod's security, identity or network and are "
                    "not a run's to set (chart value runner.allowedMetadataKeys)",
                )


def check_mount_paths(runner: RunnerSpec, jobs: JobSettings) -> None:
    """Refuse a ``volumeMounts[].mountPath`` outside ``jobs.allowed_mount_paths``.

    Paths are already normalised by the API model (no ``..``, no repeated ``/``).

    Raises:
        ManifestError: naming ``spec.runner.volumeMounts[i].mountPath`` and the allowed folders.
    """
    roots = jobs.allowed_mount_paths
    for i, mount in enumerate(runner.volume_mounts or []):
        path = mount.mount_path
        if not any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots):
            raise ManifestError(
                f"spec.runner.volumeMounts[{i}].mountPath",
                f"{path!r} is not under one of the operator's allowed mount paths {list(roots)} "
                "(chart value runner.allowedMountPaths)",
            )


def check_identity(runner: RunnerSpec, image: str | None, jobs: JobSettings) -> None:
    """Refuse a ServiceAccount or image the admin did not allow.

    Raises:
        ManifestError: naming ``spec.runner.serviceAccountName`` or ``spec.workflow.image``.
    """
    account = runner.service_account_name
    if account is not None and account != jobs.service_account_name and account not in jobs.allowed_service_accounts:
        raise ManifestError(
            "spec.runner.serviceAccountName",
            f"{account!r} is not an allowed ServiceAccount (a ServiceAccount can carry image pull secrets and "
            "cloud identities; chart value runner.allowedServiceAccounts)",
        )
    if image and jobs.allowed_images and image != jobs.image and not image.startswith(tuple(jobs.allowed_images)):
        raise ManifestError(
            "spec.workflow.image",
            f"{image!r} does not start with one of the operator's allowed image prefixes "
            f"{list(jobs.allowed_images)} (chart value runner.allowedImages)",
        )


@dataclass(frozen=True, slots=True)
class Grants:
    """What in a run reaches a credential or code: checked by :func:`check_grants`."""

    secrets: tuple[SecretUse, ...] = ()
    env_names: tuple[tuple[str, str], ...] = ()
    models: tuple[tuple[str, ModelSpec], ...] = ()


def grants(run: TrainingRun | EvaluationRun) -> Grants:
    """The Secrets, the model env names and the models of a validated run."""
    models = tuple(sorted((run.spec.models or {}).items()))
    return Grants(tuple(secret_uses(run)), tuple(model_env_names(run)), models)


def model_access(jobs: JobSettings) -> ModelAccess:
    """The model-credential grants a runner Pod of this operator gets (the same variables
    ``_jobs.model_access_env`` sets), read as the runner reads them."""
    return ModelAccess.from_env({str(e["name"]): str(e["value"]) for e in model_access_env(jobs)})


def check_models(models: Iterable[tuple[str, ModelSpec]], jobs: JobSettings) -> None:
    """``spec.models`` against the admin's model grants, at admission: a key variable or a
    ``baseUrl`` host the runner would refuse (``ModelAccess.check``) is refused here first, so the
    run is ``InvalidSpec`` before any Pod starts. Raises ManifestError naming the field."""
    access = model_access(jobs)
    for name, spec in models:
        access.check(name, spec)


def check_grants(
    granted: Grants, runner: RunnerSpec | None, image: str | None, jobs: JobSettings, database: DatabaseSettings
) -> None:
    """Every check of this module, in field order. Raises ManifestError naming the first bad field."""
    spec = runner or RunnerSpec()
    check_identity(spec, image, jobs)
    check_env_names(granted.env_names)
    check_secrets(granted.secrets, jobs, database)
    check_models(granted.models, jobs)
    check_mount_paths(spec, jobs)
    check_pod_metadata(spec, jobs)
