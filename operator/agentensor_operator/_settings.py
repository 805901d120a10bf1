"""Operator settings: grouped, read from ``AGENTENSOR_*`` environment variables, overridable by flags.

Every field's docstring gives its unit and why the default is what it is. Groups::

    OperatorSettings
    ├── watch     WatchSettings      AGENTENSOR_WATCH_*   namespaces and watch-stream timeouts
    ├── jobs      JobSettings        AGENTENSOR_JOB_*     runner Jobs and the concurrency cap
    ├── database  DatabaseSettings   AGENTENSOR_DB_*      DSN (AGENTENSOR_DATABASE_URL) and its Secret
    ├── status    StatusSettings     AGENTENSOR_STATUS_*  how often status is reflected, what it keeps
    └── server    ServerSettings     AGENTENSOR_*         metrics and liveness ports
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentensor_api import ResourceRequirements, Toleration, check_key_env_grant

from ._setting_checks import MODULE_PREFIX, SECRET_ENTRY, all_matching, host_patterns, mount_folders, split_commas

DEFAULT_MOUNT_PATHS = ("/data", "/mnt", "/models", "/cache", "/scratch", "/var/agentensor")
"""Where ``spec.runner.volumeMounts`` may mount by default: data folders that hold no code."""


class WatchSettings(BaseSettings):
    """What the operator watches, and how a watch-stream is kept alive."""

    model_config = SettingsConfigDict(env_prefix="AGENTENSOR_WATCH_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces to serve; empty means cluster-wide. Env: comma-separated
    (``AGENTENSOR_WATCH_NAMESPACES=team-a,team-b``); flag: ``--namespace`` (repeatable).
    Cluster-wide is the default because one operator per cluster is the usual deployment."""

    server_timeout_seconds: int = 300
    """Seconds (whole: the API takes an integer) asked of the API server per watch request as
    ``timeoutSeconds``. The server then ends each stream cleanly and kopf resumes from the last
    resourceVersion; 5 min matches the API server's own default upper bound, so a stream is
    never older than that."""

    client_timeout_seconds: float = 330.0
    """Seconds: total client-side lifetime of one watch request. 30 s above the server timeout,
    so a healthy stream is always closed by the server first and only a zombie (a TCP
    connection that silently died in a NAT or load balancer) is cut by the client."""

    connect_timeout_seconds: float = 10.0
    """Seconds to establish the watch connection; an API server that cannot accept a TCP+TLS
    connection within 10 s is failing over, and retrying beats waiting."""

    inactivity_timeout_seconds: float = 70.0
    """Seconds without any event (bookmarks included) before a stream is presumed dead and
    reopened from its resourceVersion. API servers send bookmarks about every 60 s and keep 75 s
    of events in their watch cache, so 70 s detects a zombie stream while the events missed
    are still replayable (no relist). On a quiet 1.20 server the reconnects are cheap."""

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_commas(value)


class JobSettings(BaseSettings):
    """Runner Jobs: image, retries, deadlines, and the operator-wide cap."""

    model_config = SettingsConfigDict(env_prefix="AGENTENSOR_JOB_", extra="ignore")

    max_concurrent_jobs: int = Field(
        default=4, ge=1, validation_alias=AliasChoices("AGENTENSOR_MAX_CONCURRENT_JOBS", "max_concurrent_jobs")
    )
    """Count of runner Jobs that may be active at once, operator-wide (env
    ``AGENTENSOR_MAX_CONCURRENT_JOBS``). Further runs wait in the ``Queued`` condition. 4 keeps
    a small cluster's nodes and the LLM provider's rate limits out of trouble; raise it with
    the cluster. Enforced by counting active Jobs through the API, so it holds across restarts."""

    image: str = "agentensor:0.1.0"
    """Default runner image (a run overrides it with ``spec.workflow.image``). The image must
    provide the ``agentensor`` command; this package's version is the natural default."""

    backoff_limit: int = Field(default=3, ge=0)
    """Pod retries per Job (Job ``backoffLimit``). A retried runner resumes from the last
    checkpoint, so retries are cheap; 3 rides out node loss or an evicted Pod without looping
    for long on a crash that repeats (Kubernetes' own default of 6 is generous for that)."""

    active_deadline_seconds: int = Field(default=86_400, ge=1)
    """Seconds a Job may run in total (Job ``activeDeadlineSeconds``). A day bounds the cost of
    a runaway run while leaving room for slow LLM-backed training on CPU."""

    ttl_seconds_after_finished: int = Field(default=3_600, ge=0)
    """Seconds a finished Job (and its Pods' logs) is kept (``ttlSecondsAfterFinished``). An
    hour is enough to read logs; run history lives in the database, not in Jobs."""

    service_account_name: str | None = None
    """ServiceAccount of runner Pods; unset uses the namespace's ``default``. Runners need no
    Kubernetes API access, only the database."""

    shard_concurrency: int = Field(default=16, ge=1)
    """Cases in flight per runner Pod of a sharded EvaluationRun: ``spec.parallelism`` P runs on
    ``ceil(P / 16)`` Pods (at most ``maxConcurrentJobs``), each with ``ceil(P / shards)`` in
    flight. 16 keeps one Pod's CPU or its LLM connections busy; past that, another Pod scales
    better than more coroutines in one process. TrainingRuns are never sharded."""

    data_dir: str = "/app"
    """Container path that relative ``spec.dataset.path`` values resolve against. The runner
    image must hold such datasets there; inline datasets need nothing."""

    allowed_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Python module prefixes that ``spec.workflow.entrypoint`` and ``python`` evaluators may load
    in runner Pods (env ``AGENTENSOR_JOB_ALLOWED_MODULES``, comma-separated, e.g.
    ``mycompany.agents,mycompany.scorers``; chart value ``runner.allowedModules``). Every runner
    container gets them, comma-joined, as ``AGENTENSOR_EVALUATOR_ALLOWLIST``, which nothing in a
    manifest can override. Empty by default: naming code to run is the cluster admin's decision,
    not the manifest author's, so until an admin lists modules no entrypoint runs (the built-in
    workflow templates and evaluators need none). Raises ``ValidationError`` naming
    ``allowed_modules`` for an entry that is not a dotted Python name."""

    model_key_envs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Variable names a run's ``spec.models.*.apiKeyEnv`` may read its API key from, beyond each
    provider's well-known one (``OPENAI_API_KEY`` for ``openai:``...) and the model's own
    ``AGENTENSOR_MODEL_<NAME>_API_KEY`` (env ``AGENTENSOR_JOB_MODEL_KEY_ENVS``, comma-separated;
    chart ``runner.modelKeyEnvs``). Runner containers get them as
    ``AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST``. Empty by default: which variables of the runner's
    environment may leave the process is the admin's decision. ``AGENTENSOR_*`` names are refused
    (``ValidationError``): they hold the runner's own settings and the database URL."""

    model_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts a ``spec.models.*.baseUrl`` may send an API key to (env ``AGENTENSOR_JOB_MODEL_HOSTS``,
    comma-separated: a name, ``*.suffix``, an IP or a CIDR network; chart ``runner.modelHosts``).
    Runner containers get them as ``AGENTENSOR_MODEL_HOST_ALLOWLIST``. Empty by default: keys go only
    to the provider's own endpoint (no ``baseUrl``) or to loopback, so a manifest cannot point the
    cluster's key at a server of its choosing."""

    model_hosts_strict: bool = False
    """Every ``baseUrl`` host must be on ``model_hosts``, keyed or not (env
    ``AGENTENSOR_JOB_MODEL_HOSTS_STRICT``; chart ``runner.modelHostsStrict``; runner env
    ``AGENTENSOR_MODEL_HOST_STRICT``): egress control for clusters that allow-list model servers.
    Off by default: a keyless model of a provider that reads no key may use any host."""

    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"memory": "4Gi"}
        )
    )
    """Default requests and limits of the runner container, per resource name (env
    ``AGENTENSOR_JOB_RESOURCES``, JSON ``{"requests": {...}, "limits": {...}}``; chart value
    ``runner.resources``). A run's ``spec.runner.resources`` replaces the default of each resource
    it names (its request and limit together) and keeps the others. With requests set, runner
    Pods are never BestEffort (BestEffort Pods get ``cpu.shares=2`` and starve on a busy node;
    they are also evicted first). 500m CPU and 1 GiB are what the Banking77 runner (embedding
    model plus dataset) needs to keep one core busy; the 4 GiB memory limit bounds a runaway
    without a CPU limit, which would throttle a CPU-bound runner for nothing."""

    max_resources: dict[str, str] = Field(default_factory=dict)
    """Largest request or limit a run may ask for, per resource name (env
    ``AGENTENSOR_JOB_MAX_RESOURCES``, JSON ``{"cpu": "4", "memory": "16Gi"}``; chart value
    ``runner.maxResources``). A run asking for more is refused with ``Accepted=False`` reason
    InvalidSpec naming the field (``spec.runner.resources.requests.cpu``). Empty: no maximum
    (a namespace ResourceQuota still applies)."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels every runner Pod must match (env ``AGENTENSOR_JOB_NODE_SELECTOR``, JSON; chart
    value ``runner.nodeSelector``). Merged with a run's ``spec.runner.nodeSelector``; a run that
    asks for another value of one of these keys is refused (InvalidSpec), so runners stay on the
    admin's node pool."""

    tolerations: list[Toleration] = Field(default_factory=list)
    """Tolerations added to every runner Pod, after the run's own (env
    ``AGENTENSOR_JOB_TOLERATIONS``, JSON list; chart value ``runner.tolerations``), e.g. for a
    tainted pool of runner nodes."""

    priority_class_name: str | None = None
    """PriorityClass of runner Pods unless a run sets ``spec.runner.priorityClassName`` (env
    ``AGENTENSOR_JOB_PRIORITY_CLASS_NAME``; chart ``runner.priorityClassName``). Unset: the
    cluster's default priority."""

    allowed_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Secrets, in the run's namespace, that a run may reference (env ``AGENTENSOR_JOB_ALLOWED_SECRETS``,
    comma-separated; chart value ``runner.allowedSecrets``): ``NAME`` allows every key of Secret
    NAME through ``spec.models.*.apiKeySecretRef`` and ``spec.runner.env[].valueFrom.secretKeyRef``
    and mounting it as a ``spec.runner.volumes[].secret``; ``NAME/KEY`` allows that one key, by
    reference only. Empty by default: which Secrets a run author may read is the cluster admin's
    decision, and a Secret in the namespace may hold anything (the operator's own database URL,
    another team's keys). The database Secret (``AGENTENSOR_DB_SECRET_NAME``) is never allowed:
    listing it stops the operator at startup (``ConfigurationError``; the chart refuses to render
    it), and a run naming it is refused whatever the list says. A run naming another Secret gets
    ``Accepted=False`` reason InvalidSpec naming the field. Raises ``ValidationError`` for an
    entry that is not ``NAME`` or ``NAME/KEY``."""

    allowed_mount_paths: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_MOUNT_PATHS))
    """Folders under which ``spec.runner.volumeMounts[].mountPath`` may lie (env
    ``AGENTENSOR_JOB_ALLOWED_MOUNT_PATHS``, comma-separated absolute paths; chart value
    ``runner.allowedMountPaths``). A volume mounted over the Python installation, ``/usr``,
    ``/lib``, ``/etc`` or the home folder would make the runner load the author's code or
    configuration, so mounts are allowed where data lives, not refused where code lives. The
    default (``/data``, ``/mnt``, ``/models``, ``/cache``, ``/scratch``, ``/var/agentensor``)
    holds no code in the agentensor image; replace it to fit your image. Raises
    ``ValidationError`` for a relative path, ``/`` or a ``..`` part."""

    allowed_metadata_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Pod label and annotation keys a run may set although their domain is refused (env
    ``AGENTENSOR_JOB_ALLOWED_METADATA_KEYS``, comma-separated; chart value
    ``runner.allowedMetadataKeys``): an exact key (``kubectl.kubernetes.io/default-container``)
    or a prefix ending in ``/`` (``example.kubernetes.io/``). Refused otherwise: keys of the
    ``kubernetes.io`` and ``k8s.io`` domains and their subdomains (AppArmor, seccomp, eviction
    and scheduling controls) and of the controllers that grant credentials or change a Pod's
    network from a key (Vault, IAM, workload identity, service meshes, CNI; see
    ``_decisions.DENIED_METADATA_DOMAINS``). Empty by default: none of them is the run author's."""

    allowed_service_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """ServiceAccounts a run may pick with ``spec.runner.serviceAccountName`` besides
    :attr:`service_account_name` (env ``AGENTENSOR_JOB_ALLOWED_SERVICE_ACCOUNTS``, comma-separated;
    chart value ``runner.allowedServiceAccounts``). No API token is mounted in runner Pods, but a
    ServiceAccount still carries credentials: its image pull secrets, and cloud identities bound to
    it (EKS IRSA, GKE and Azure workload identity), which webhooks and metadata servers hand to
    any Pod running as it. Empty by default: runs use the chart's runner account."""

    allowed_images: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Image prefixes ``spec.workflow.image`` must start with (env ``AGENTENSOR_JOB_ALLOWED_IMAGES``,
    comma-separated, e.g. ``registry.example.com/agents/``; chart value ``runner.allowedImages``).
    A run's image is code the run executes; empty (the default) allows any image, as before.
    :attr:`image`, the default runner image, is always allowed."""

    @field_validator("max_resources", mode="before")
    @classmethod
    def _quantities(cls, value: dict[str, str]) -> dict[str, str]:
        """Resource names and quantities checked as the API checks ``spec.runner.resources``."""
        return ResourceRequirements(limits=value).limits or {}

    @field_validator(
        "allowed_modules",
        "allowed_secrets",
        "allowed_mount_paths",
        "allowed_metadata_keys",
        "allowed_service_accounts",
        "allowed_images",
        "model_key_envs",
        "model_hosts",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("allowed_secrets")
    @classmethod
    def _secret_entries(cls, value: list[str]) -> list[str]:
        return all_matching(
            value, SECRET_ENTRY, "is not a Secret name or NAME/KEY (e.g. 'llm-keys' or 'llm-keys/openai')"
        )

    @field_validator("allowed_mount_paths")
    @classmethod
    def _mount_paths(cls, value: list[str]) -> list[str]:
        return mount_folders(value)

    @field_validator("model_key_envs")
    @classmethod
    def _key_envs(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_key_env_grant(n) for n in value))

    @field_validator("model_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return host_patterns(value)

    @field_validator("allowed_modules")
    @classmethod
    def _dotted_names(cls, value: list[str]) -> list[str]:
        return all_matching(
            value,
            MODULE_PREFIX,
            "is not a Python dotted module name (letters, digits and _, parts joined by '.', e.g. 'mycompany.agents')",
        )


class DatabaseSettings(BaseSettings):
    """The PostgreSQL database shared by the operator and the runners."""

    model_config = SettingsConfigDict(env_prefix="AGENTENSOR_DB_", extra="ignore")

    url: SecretStr | None = Field(default=None, validation_alias=AliasChoices("AGENTENSOR_DATABASE_URL", "url"))
    """SQLAlchemy URL the operator uses (env ``AGENTENSOR_DATABASE_URL``; in-cluster from a
    Secret). Required to run the operator; kept secret in logs and reprs."""

    secret_name: str = "agentensor-db"
    """Name of the Secret, in each run's namespace, whose key holds the DSN runner Jobs use
    (env ``AGENTENSOR_DB_SECRET_NAME``). Runners never see the operator's own environment."""

    secret_key: str = "url"
    """Key in that Secret holding the SQLAlchemy URL (env ``AGENTENSOR_DB_SECRET_KEY``)."""


class StatusSettings(BaseSettings):
    """How run and PromptConfig status is reflected."""

    model_config = SettingsConfigDict(env_prefix="AGENTENSOR_STATUS_", extra="ignore")

    poll_interval_seconds: float = Field(default=1.0, gt=0)
    """Seconds between refreshes of the fleet gauges (runs by phase, active and queued Jobs),
    computed in memory from the watch caches. Runs are not polled: a run is reflected when it
    changes (its watch events, its Jobs' events, the database's NOTIFY) and at the safety
    resync (``resync_seconds``)."""

    resync_seconds: float = Field(default=300.0, ge=10)
    """Seconds between safety reconciles of a run nothing woke, and between the Job cache's
    safety lists (env ``AGENTENSOR_STATUS_RESYNC_SECONDS``). Each run's own resync is spread by
    its uid over 0.75-1.25 of this, so runs applied together do not resync together. It only
    catches what a lost notification or a restarted listener missed (on SQLite, which has no
    NOTIFY, it is how runner progress reaches status); 1,000 idle runs cost about
    1,000 / resync_seconds reconciles per second."""

    promptconfig_interval_seconds: float = Field(default=5.0, gt=0)
    """Seconds between PromptConfig reflections (best version from TrainingRuns). Spec changes
    are handled at once by change handlers; 5 s is only for scores arriving from runs."""

    checkpoints_kept: int = Field(default=5, ge=0)
    """Latest checkpoints listed in ``.status.checkpoints``; history lives in the database, and
    a status object must stay small (etcd objects are capped near 1.5 MB)."""


class ServerSettings(BaseSettings):
    """HTTP endpoints of the operator process."""

    model_config = SettingsConfigDict(env_prefix="AGENTENSOR_", extra="ignore")

    metrics_port: int = Field(default=9090, ge=0, le=65535)
    """TCP port of ``/metrics`` (Prometheus); 0 disables it. 9090 is the conventional port."""

    liveness_port: int = Field(default=8080, ge=0, le=65535)
    """TCP port of kopf's ``/healthz`` liveness endpoint; 0 disables it."""

    bind_address: str = "0.0.0.0"
    """Address both endpoints listen on; all interfaces, since kubelet probes and Prometheus
    connect to the Pod IP."""

    metrics_host: str | None = None
    """Address ``/metrics`` listens on, if not :attr:`bind_address` (``--metrics-bind-address``)."""

    liveness_host: str | None = None
    """Address ``/healthz`` listens on, if not :attr:`bind_address` (``--health-probe-bind-address``)."""


class OperatorSettings(BaseModel):
    """All settings of the operator, grouped. ``OperatorSettings()`` reads the environment."""

    watch: WatchSettings = Field(default_factory=WatchSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


_GROUPS: dict[str, type[BaseSettings]] = {
    cls.__name__: cls for cls in (WatchSettings, JobSettings, DatabaseSettings, StatusSettings, ServerSettings)
}


def describe_settings_error(error: ValidationError) -> str:
    """One line per invalid setting, each named by its environment variable, e.g.
    ``AGENTENSOR_STATUS_RESYNC_SECONDS: Input should be greater than or equal to 10``.

    The values themselves are left out (one of them may be the database DSN).
    """
    group = _GROUPS.get(error.title)
    prefix = str(group.model_config.get("env_prefix") or "") if group is not None else "AGENTENSOR_"
    lines = []
    for e in error.errors(include_input=False, include_url=False):
        name = str(e["loc"][0]) if e["loc"] else ""
        variable = name if name.startswith("AGENTENSOR_") else f"{prefix}{name}".upper()
        lines.append(f"{variable}: {e['msg']}")
    return "; ".join(lines)
