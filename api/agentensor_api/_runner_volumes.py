"""``spec.runner.volumes`` and ``volumeMounts``: the extra volumes of a runner Pod and where they appear.

Only data sources are offered (ConfigMap, Secret, PersistentVolumeClaim, emptyDir); mount paths are
normalised and a ``..`` part is refused (:func:`normal_path`); the operator's own volumes and
mount paths are reserved.
"""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel
from ._pod_patterns import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, QUANTITY_PATTERN

RESERVED_VOLUMES = frozenset({"run", "tmp"})
"""Volume names the operator uses (the manifest ConfigMap, ``/tmp``)."""
RESERVED_MOUNT_PATHS = ("/etc/agentensor", "/tmp")


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
