"""Pure decisions of the operator: resource bodies in, Job/ConfigMap/status dicts out.

Nothing here touches the network, the database or a clock it was not given, so every
function is tested as a table without a cluster (tests/operator/). Handlers fetch what a
decision needs, call it, and apply the result. One concern per module:

    _names         names, labels, owner references, shard counts and run ids
    _specs         validation, RunFacts, the runner manifest, the spec-change policy
    _jobs          the runner Job and ConfigMap, and the checks of spec.runner against the settings
    _job_state     what a Job says: JobPhase, JobState, shard index and count
    _queue         census of runs, queue order and (gang) admission under the cap
    _status        status transitions, merge patches, milestone Events
    _reflect       a started run's status from its Job(s) and the runner's rows; promotion
    _shards        run ids, error rows, checkpoints and pass criteria a reflection reads
    _pass          one daemon pass: needs_reconcile, the status it sees, JSON merge patch, retries
    _promptconfig  the ``<name>-active`` ConfigMap and PromptConfig status
    _trust         what the admin granted a run: Secrets, mount folders, Pod keys, accounts, images

Conditions are set and read with :mod:`agentensor_api`'s status vocabulary
(``ConditionType``, ``Reason``, ``set_condition``, ``condition_of``, ``mark_*``), never with
string literals, so the operator and the runner write the same conditions.

Naming: a run's runner Job and its ConfigMap share one name derived from the run's uid
(:func:`job_name`), so creating them again after a crash or restart is a harmless 409.
"""

from ._job_state import (
    JobConditionType,
    JobPhase,
    JobPhaseValue,
    JobState,
    count_active,
    job_shard,
    job_shards,
    job_state,
)
from ._jobs import (
    ALLOWLIST_ENV,
    KUEUE_QUEUE_LABEL,
    LABEL_RUN,
    check_runner,
    effective_resources,
    pod_labels,
    runner_config_map,
    runner_job,
)
from ._names import (
    ANNOTATION_RUN,
    ANNOTATION_SHARDS,
    API_VERSION_NAME,
    CONTAINER_NAME,
    DATABASE_URL_ENV,
    GROUP_NAME,
    IMMUTABLE_EXEMPT,
    LABEL_COMPONENT,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_PROMPTCONFIG,
    LABEL_RUN_UID,
    LABEL_SHARD,
    MANAGED_BY,
    MANIFEST_DIR,
    MANIFEST_KEY,
    MANIFEST_PATH,
    PLURALS,
    RUNNER_SELECTOR,
    SHORT_KIND,
    JsonDict,
    RunRef,
    job_name,
    labels,
    owner_reference,
    run_ref,
    shard_count,
    shard_run_id,
)
from ._pass import (
    RETRY_SOON,
    Sent,
    merge_patch,
    needs_reconcile,
    pass_view,
    resync_seconds,
    retry_soon,
)
from ._promptconfig import (
    active_config_map,
    active_config_map_name,
    promptconfig_status,
)
from ._queue import (
    Admission,
    QueueEntry,
    QueueIndex,
    RunCensus,
    admission,
    census,
    queue_position,
)
from ._reflect import (
    FailedCase,
    failure_message,
    promotion_target,
    reflect_run,
    reflect_sharded,
)
from ._shards import (
    CheckpointRow,
    ErrorRow,
    checkpoint_summaries,
    latest_error,
    pass_criteria,
    shard_pairs,
    shard_run_ids,
)
from ._specs import (
    RunFacts,
    accepted_spec,
    model_secret_env,
    rejected_changes,
    run_facts,
    runner_manifest,
    validate_promptconfig,
    validate_run,
)
from ._status import (
    accepted_status,
    invalid_status,
    milestones,
    parse_run_status,
    queued_status,
    refused_status,
    spec_change_rejected,
    started_status,
    status_patch,
)
from ._trust import (
    DENIED_METADATA_DOMAINS,
    Grants,
    SecretUse,
    check_grants,
    check_identity,
    check_mount_paths,
    check_pod_metadata,
    check_secrets,
    grants,
    metadata_key_allowed,
)

__all__ = [
    "ALLOWLIST_ENV",
    "ANNOTATION_RUN",
    "ANNOTATION_SHARDS",
    "API_VERSION_NAME",
    "CONTAINER_NAME",
    "DATABASE_URL_ENV",
    "DENIED_METADATA_DOMAINS",
    "GROUP_NAME",
    "IMMUTABLE_EXEMPT",
    "KUEUE_QUEUE_LABEL",
    "LABEL_COMPONENT",
    "LABEL_KIND",
    "LABEL_MANAGED_BY",
    "LABEL_PROMPTCONFIG",
    "LABEL_RUN",
    "LABEL_RUN_UID",
    "LABEL_SHARD",
    "MANAGED_BY",
    "MANIFEST_DIR",
    "MANIFEST_KEY",
    "MANIFEST_PATH",
    "PLURALS",
    "RETRY_SOON",
    "RUNNER_SELECTOR",
    "SHORT_KIND",
    "Admission",
    "CheckpointRow",
    "ErrorRow",
    "FailedCase",
    "Grants",
    "JobConditionType",
    "JobPhase",
    "JobPhaseValue",
    "JobState",
    "JsonDict",
    "QueueEntry",
    "QueueIndex",
    "RunCensus",
    "RunFacts",
    "RunRef",
    "SecretUse",
    "Sent",
    "accepted_spec",
    "accepted_status",
    "active_config_map",
    "active_config_map_name",
    "admission",
    "census",
    "check_grants",
    "check_identity",
    "check_mount_paths",
    "check_pod_metadata",
    "check_runner",
    "check_secrets",
    "checkpoint_summaries",
    "count_active",
    "effective_resources",
    "failure_message",
    "grants",
    "invalid_status",
    "job_name",
    "job_shard",
    "job_shards",
    "job_state",
    "labels",
    "latest_error",
    "merge_patch",
    "metadata_key_allowed",
    "milestones",
    "model_secret_env",
    "needs_reconcile",
    "owner_reference",
    "parse_run_status",
    "pass_criteria",
    "pass_view",
    "pod_labels",
    "promotion_target",
    "promptconfig_status",
    "queue_position",
    "queued_status",
    "reflect_run",
    "reflect_sharded",
    "refused_status",
    "rejected_changes",
    "resync_seconds",
    "retry_soon",
    "run_facts",
    "run_ref",
    "runner_config_map",
    "runner_job",
    "runner_manifest",
    "shard_count",
    "shard_pairs",
    "shard_run_id",
    "shard_run_ids",
    "spec_change_rejected",
    "started_status",
    "status_patch",
    "validate_promptconfig",
    "validate_run",
]
