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

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel
from ._pod_patterns import (
    DNS_SUBDOMAIN_PATTERN,
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    QUANTITY_PATTERN,
    RESOURCE_NAME_PATTERN,
)
from ._runner_env import EnvVar
from ._runner_volumes import Volume, VolumeMount

RESERVED_LABEL_DOMAINS = ("agentensor.dev/", "app.kubernetes.io/", "kueue.x-k8s.io/")
"""Label/annotation prefixes the operator writes (run, kind, uid, shard; Kueue's queue name comes
from the run's own ``metadata.labels``)."""


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
