"""``spec.runner``: where and how a run's runner Pods run (resources, placement, env, volumes).

Typed fields rather than a free Pod template: the operator owns the runner container's command,
image policy, security context, the manifest and ``/tmp`` volumes and the operator's own variables
(the DSN Secret, the entrypoint allow-list), and a free template could override every one of them.
What a manifest author may set is exactly what is below, each field validated by the CRD schema
where it can (an unknown toleration operator, a malformed quantity is refused by the API server)
and by these models otherwise (an env name that changes what the runner loads, a ``..`` in a mount
path: ``Accepted=False`` reason InvalidSpec in the operator, exit 2 in ``agentensor run``). Field
shapes and names follow the Pod API (``core/v1``); only the subset a runner needs is offered. The
cluster admin's defaults, limits and grants (chart ``runner.resources``, ``runner.maxResources``,
``runner.nodeSelector``, ``runner.tolerations``, ``runner.allowedSecrets``,
``runner.allowedMountPaths``, ``runner.allowedMetadataKeys``, ``runner.allowedServiceAccounts``)
are applied by the operator on top.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""A Kubernetes resource quantity as a string (``500m``, ``1Gi``, ``2``): the grammar of
``k8s.io/apimachinery/pkg/api/resource.Quantity``, as its OpenAPI definition states it."""
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

RESOURCE_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

DENIED_ENV_NAMES: dict[str, str] = {
    "PATH": "decides which programs run",
    "HOME": "decides which user configuration files (~/.local, ~/.netrc, ~/.config) are read",
    "SHELL": "decides which shell runs subcommands",
    "BASH_ENV": "is a script every non-interactive bash runs",
    "ENV": "is a script every POSIX shell runs",
    "IFS": "changes how shells split words",
    "GCONV_PATH": "loads glibc character-set modules (shared libraries)",
    "GETCONF_DIR": "changes glibc's getconf helpers",
    "GLIBC_TUNABLES": "tunes glibc's loader and allocator",
    "HOSTALIASES": "redirects host names",
    "LOCALDOMAIN": "changes DNS resolution",
    "RES_OPTIONS": "changes DNS resolution",
    "NLSPATH": "loads message catalogues",
    "TMPDIR": "moves temporary files off the operator's /tmp",
    "NETRC": "supplies HTTP credentials from a file",
    "REQUESTS_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
    "CURL_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
    "NODE_OPTIONS": "loads code into Node.js",
    "PERL5LIB": "loads Perl code",
    "PERL5OPT": "loads Perl code",
    "JAVA_TOOL_OPTIONS": "loads Java agents",
    "KRB5_CONFIG": "changes Kerberos trust",
    "KRB5CCNAME": "supplies Kerberos credentials",
}
"""Env names ``spec.runner.env`` (and ``apiKeyEnv`` with ``apiKeySecretRef``) may not set, compared
upper-cased, each with why: they change what code the runner process (Python, its loader, a
shell it starts) loads, where its network traffic goes, whom it trusts over TLS, or what the
operator set. The reason is part of the refusal message."""

DENIED_ENV_PREFIXES: dict[str, str] = {
    "AGENTENSOR_": "is set by the operator (database URL, entrypoint allow-list, outage settings)",
    "PYTHON": "changes what the Python interpreter loads (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME...)",
    "LD_": "changes what the dynamic loader loads (LD_PRELOAD, LD_LIBRARY_PATH...)",
    "DYLD_": "changes what the dynamic loader loads",
    "PG": "is read by libpq (host, password file, service file, TLS files of the database connection)",
    "SSL": "replaces TLS trust files or logs TLS keys (SSL_CERT_FILE, SSL_CERT_DIR, SSLKEYLOGFILE)",
    "OPENSSL_": "loads OpenSSL configuration and engines (shared libraries)",
    "HF_": "changes where Hugging Face models and code come from (HF_ENDPOINT, HF_HOME, HF_MODULES_CACHE...)",
    "TRANSFORMERS_": "changes where Transformers models and code come from",
    "SENTENCE_TRANSFORMERS_": "changes where sentence-transformers models come from",
    "TORCH": "changes where torch loads models and extensions from",
    "PYTORCH": "changes how torch loads and runs code",
    "MPL": "makes matplotlib load a configuration file or a backend module (MPLBACKEND=module://...)",
    "PSYCOPG": "changes which psycopg implementation loads",
    "LANGCHAIN_": "sends traces of every model call (prompts, cases, outputs) to a tracing service",
    "LANGSMITH_": "sends traces of every model call (prompts, cases, outputs) to a tracing service",
    "OTEL_": "sends telemetry elsewhere or loads OpenTelemetry plugins",
    "LOCPATH": "loads locale files from another folder",
    "XDG_": "moves configuration and cache folders",
    "GIT_": "changes what git runs",
    "COV_CORE_": "makes pytest-cov's startup hook run code",
    "COVERAGE_": "makes coverage's startup hook run code",
}
"""Env name prefixes refused the same way (upper-cased): interpreter, loader, libpq, TLS, model
hub and cache variables. ``HF_TOKEN`` alone is allowed (a Hugging Face read token changes no code)."""

DENIED_ENV_SUFFIXES: dict[str, str] = {
    "_PROXY": "routes network traffic through a proxy (HTTP_PROXY, https_proxy, ALL_PROXY, NO_PROXY...)",
    "_BASE_URL": "sends model requests, and their API key, elsewhere than spec.models.*.baseUrl",
    "_API_BASE": "sends model requests, and their API key, elsewhere than spec.models.*.baseUrl",
    "_ENDPOINT": "sends requests (model, tracing, hub) elsewhere",
    "_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
}
"""Env name suffixes refused the same way (upper-cased)."""

ALLOWED_ENV_NAMES = frozenset({"HF_TOKEN"})
"""Names allowed although a prefix above matches them."""


def denied_env_name(name: str) -> str | None:
    """Why ``spec.runner.env`` may not set variable ``name``, or ``None`` when it may.

    Compared upper-cased: the consumers of several of these (proxies, ``https_proxy``) read either
    case, and no legitimate variable differs from a denied one by case alone.
    """
    upper = name.upper()
    if upper in ALLOWED_ENV_NAMES:
        return None
    if upper in DENIED_ENV_NAMES:
        return DENIED_ENV_NAMES[upper]
    for prefix, why in DENIED_ENV_PREFIXES.items():
        if upper.startswith(prefix):
            return why
    for suffix, why in DENIED_ENV_SUFFIXES.items():
        if upper.endswith(suffix) or upper == suffix.lstrip("_"):
            return why
    return None


RESERVED_LABEL_DOMAINS = ("agentensor.dev/", "app.kubernetes.io/", "kueue.x-k8s.io/")
"""Label/annotation prefixes the operator writes (run, kind, uid, shard; Kueue's queue name comes
from the run's own ``metadata.labels``)."""
RESERVED_VOLUMES = frozenset({"run", "tmp"})
"""Volume names the operator uses (the manifest ConfigMap, ``/tmp``)."""
RESERVED_MOUNT_PATHS = ("/etc/agentensor", "/tmp")


def _quantities(value: object) -> object:
    """``{cpu: 2}`` -> ``{cpu: "2"}`` for local manifests (the CRD requires strings)."""
    if isinstance(value, dict):
        return {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in value.items()}
    return value


class ResourceRequirements(ApiModel):
    """Compute resources of the runner container (``core/v1`` ResourceRequirements).

    Quantities are strings (``cpu: "500m"``, ``memory: "1Gi"``). Resources left out take the
    chart's ``runner.resources`` defaults; a value above ``runner.maxResources`` is refused
    (``Accepted=False`` reason InvalidSpec naming the field).
    """

    requests: dict[str, str] | None = Field(
        default=None,
        max_length=16,
        description='Resource name (cpu, memory, ephemeral-storage, nvidia.com/gpu) -> quantity, e.g. "500m", "1Gi".',
        json_schema_extra={"additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN}},
    )
    limits: dict[str, str] | None = Field(
        default=None,
        max_length=16,
        description="Resource name -> quantity; at least the request (the operator checks).",
        json_schema_extra={"additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN}},
    )

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _as_strings(cls, value: object) -> object:
        return _quantities(value)

    @field_validator("requests", "limits")
    @classmethod
    def _shape(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, quantity in (value or {}).items():
            if not re.match(RESOURCE_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a resource name (cpu, memory, example.com/gpu)")
            if not re.match(QUANTITY_PATTERN, quantity):
                raise ValueError(f"{name}: {quantity!r} is not a quantity (e.g. '500m', '2', '1Gi')")
        return value


class Toleration(ApiModel):
    """A Pod toleration (``core/v1`` Toleration): lets runner Pods onto tainted nodes."""

    key: str | None = Field(
        default=None, max_length=316, pattern=LABEL_KEY_PATTERN, description="Taint key; empty with Exists: all taints."
    )
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value (Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty: all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="NoExecute only: seconds the Pod stays after the taint appears."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.operator == "Equal" and not self.key:
            raise ValueError("a toleration with operator Equal needs a key (an empty key needs operator Exists)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect NoExecute")
        return self


class KeySelector(ApiModel):
    """A key of a Secret or ConfigMap in the run's namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Secret or ConfigMap name.")
    key: str = Field(min_length=1, max_length=253, description="Key in its data.")
    optional: bool | None = Field(default=None, description="Start the Pod even if it is missing.")


class EnvVarSource(ApiModel):
    """Where an env value comes from: exactly one of secretKeyRef and configMapKeyRef.

    The value is read by the kubelet; it never appears in the manifest, the run's status, the
    operator's logs or the database.
    """

    secret_key_ref: KeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(default=None, description="A key of a ConfigMap.")

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable of the runner container: a literal ``value`` or ``valueFrom``."""

    name: str = Field(
        pattern=ENV_NAME_PATTERN,
        max_length=253,
        description="Variable name. Refused: names that change what the runner loads or where its traffic "
        "goes (AGENTENSOR_*, PYTHON*, LD_*, PG*, SSL*, HF_* but HF_TOKEN, *_PROXY, *_BASE_URL, PATH, HOME...).",
    )
    value: str | None = Field(default=None, description="Literal value; for secrets use valueFrom.secretKeyRef.")
    value_from: EnvVarSource | None = Field(default=None, description="A Secret or ConfigMap key.")

    @model_validator(mode="after")
    def _checks(self) -> EnvVar:
        why = denied_env_name(self.name)
        if why is not None:
            raise ValueError(f"{self.name}: a run may not set this variable: it {why}")
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"{self.name}: set value or valueFrom, not both")
        return self


class ConfigMapVolume(ApiModel):
    """A ConfigMap mounted as files."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="ConfigMap name.")
    optional: bool | None = Field(default=None, description="Start the Pod even if it is missing.")


class SecretVolume(ApiModel):
    """A Secret mounted as files."""

    secret_name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Secret name.")
    optional: bool | None = Field(default=None, description="Start the Pod even if it is missing.")


class PvcVolume(ApiModel):
    """A PersistentVolumeClaim in the run's namespace (datasets, model caches)."""

    claim_name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="PVC name.")
    read_only: bool | None = Field(default=None, description="Mount read-only.")


class EmptyDirVolume(ApiModel):
    """Scratch space that lives as long as the Pod."""

    medium: Literal["", "Memory"] | None = Field(default=None, description='"" (node disk) or Memory (tmpfs).')
    size_limit: str | None = Field(default=None, pattern=QUANTITY_PATTERN, description='e.g. "1Gi".')


class Volume(ApiModel):
    """A Pod volume: exactly one of configMap, secret, persistentVolumeClaim, emptyDir.

    hostPath and other node-level sources are not offered: a runner has no business on the node's
    filesystem.
    """

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="Volume name (not run or tmp).")
    config_map: ConfigMapVolume | None = Field(default=None, description="A ConfigMap.")
    secret: SecretVolume | None = Field(default=None, description="A Secret.")
    persistent_volume_claim: PvcVolume | None = Field(default=None, description="A PersistentVolumeClaim.")
    empty_dir: EmptyDirVolume | None = Field(default=None, description="An emptyDir.")

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        if self.name in RESERVED_VOLUMES:
            raise ValueError(f"volume name {self.name!r} is used by the operator")
        sources = [self.config_map, self.secret, self.persistent_volume_claim, self.empty_dir]
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                f"volume {self.name}: set exactly one of configMap, secret, persistentVolumeClaim, emptyDir"
            )
        return self


def normal_path(path: str, field: str) -> str:
    """``path`` normalised (``//a/./b/`` -> ``/a/b``); ``ValueError`` naming ``field`` for a ``..`` part.

    A ``..`` part is refused rather than resolved: what it names depends on the mounts below it.
    """
    if ".." in path.split("/"):
        raise ValueError(f"{field} {path!r} has a '..' part; write the path without it")
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if path.startswith("/") else normal


class VolumeMount(ApiModel):
    """Where a volume of ``spec.runner.volumes`` appears in the runner container.

    ``mountPath`` is normalised (``//data/./x/`` -> ``/data/x``) before it is checked and rendered,
    and a ``..`` part in it or in ``subPath`` is refused. The operator also requires it under one of
    the chart's ``runner.allowedMountPaths`` (``/data``, ``/mnt``, ``/models``... by default), so a
    volume cannot cover the Python installation or the system's libraries.
    """

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="A name from spec.runner.volumes.")
    mount_path: str = Field(
        pattern=r"^/",
        max_length=4096,
        description="Absolute path without '..' parts, under one of the operator's allowed mount paths "
        "(chart runner.allowedMountPaths; by default /data, /mnt, /models, /cache, /scratch, /var/agentensor).",
    )
    read_only: bool | None = Field(default=None, description="Mount read-only.")
    sub_path: str | None = Field(
        default=None, max_length=4096, description="A relative path inside the volume, without '..' parts."
    )

    @field_validator("mount_path")
    @classmethod
    def _normal_mount_path(cls, value: str) -> str:
        return normal_path(value, "mountPath")

    @field_validator("sub_path")
    @classmethod
    def _relative_sub_path(cls, value: str | None) -> str | None:
        if not value:
            return value
        if value.startswith("/"):
            raise ValueError(f"subPath {value!r} must be relative to the volume")
        return normal_path(value, "subPath")

    @model_validator(mode="after")
    def _not_reserved(self) -> VolumeMount:
        path = self.mount_path
        for reserved in RESERVED_MOUNT_PATHS:
            if path == reserved or path.startswith(reserved + "/") or reserved.startswith(path + "/") or path == "/":
                raise ValueError(f"mountPath {self.mount_path!r} overlaps {reserved}, which the operator mounts")
        return self


def _check_keys(values: dict[str, str], what: str) -> None:
    for key in values:
        if not re.match(LABEL_KEY_PATTERN, key) or len(key) > 316:
            raise ValueError(f"{what} key {key!r} is not a valid label/annotation key")
        if key.startswith(RESERVED_LABEL_DOMAINS):
            raise ValueError(f"{what} key {key!r}: the prefixes {', '.join(RESERVED_LABEL_DOMAINS)} are the operator's")


class RunnerSpec(ApiModel):
    """Placement and environment of the run's runner Pods (``spec.runner``).

    Every field is optional; the operator adds the chart's defaults (``runner.resources``), forced
    placement (``runner.nodeSelector`` wins per key, ``runner.tolerations`` are appended) and its
    own labels, env and volumes.
    """

    resources: ResourceRequirements | None = Field(
        default=None, description="Requests and limits of the runner container; unset resources take chart defaults."
    )
    node_selector: dict[str, str] | None = Field(
        default=None, max_length=32, description="Node labels the Pod must match (the chart's forced keys win)."
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Taints the Pod tolerates.")
    env: list[EnvVar] | None = Field(
        default=None, max_length=128, description="Extra env of the runner container (names not AGENTENSOR_*)."
    )
    volumes: list[Volume] | None = Field(default=None, max_length=32, description="Extra Pod volumes.")
    volume_mounts: list[VolumeMount] | None = Field(
        default=None, max_length=32, description="Mounts of spec.runner.volumes in the runner container."
    )
    service_account_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description="ServiceAccount of the Pod (default: the chart's runner account). No API token is mounted.",
    )
    priority_class_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description="PriorityClass of the Pod (default: the chart's runner.priorityClassName).",
    )
    labels: dict[str, str] | None = Field(
        default=None,
        max_length=32,
        description="Extra Pod labels (not agentensor.dev/, app.kubernetes.io/, kueue.x-k8s.io/).",
    )
    annotations: dict[str, str] | None = Field(
        default=None, max_length=32, description="Extra Pod annotations (same reserved prefixes as labels)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunnerSpec:
        _check_keys(self.labels or {}, "labels")
        _check_keys(self.annotations or {}, "annotations")
        for key, value in (self.labels or {}).items():
            if len(value) > 63 or not re.match(LABEL_VALUE_PATTERN, value):
                raise ValueError(f"labels.{key}: {value!r} is not a label value (at most 63 of [-A-Za-z0-9_.])")
        names = [v.name for v in self.volumes or []]
        if len(names) != len(set(names)):
            raise ValueError("volumes: names must be unique")
        for i, mount in enumerate(self.volume_mounts or []):
            if mount.name not in names:
                raise ValueError(f"volumeMounts[{i}].name: {mount.name!r} is not in spec.runner.volumes")
        env = [e.name for e in self.env or []]
        if len(env) != len(set(env)):
            raise ValueError("env: names must be unique")
        return self
