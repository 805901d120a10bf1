"""Which files a manifest may make the runner open: the data roots.

A manifest names files (``spec.dataset.path``, ``spec.responseCache.path``); what the runner reads
from them goes into prompts, so to the model at the author's ``baseUrl``. The author is not the
one who decides which files that may be: a path is opened only when, with every symlink and
``..`` resolved, it lies under a root the operator or the local user gave:

- the base directory (``agentensor runner --base-dir``, the chart's ``runner.dataDir`` in a Pod;
  locally the manifest's own folder), where relative paths resolve;
- ``extra`` roots: in a Pod the run's declared data volumes (``spec.runner.volumeMounts`` of
  ConfigMap, PVC and emptyDir volumes); locally each ``agentensor run --data-root DIR``;
- each folder of ``$AGENTENSOR_DATA_ROOTS`` (``os.pathsep``-separated; the local user's, or the
  runner image's).

``/proc``, ``/sys`` and ``/dev`` (``/proc/self/environ`` holds the database URL) and the ``denied``
paths (in a Pod, where Secret volumes are mounted) are refused even under a root.

Residual risk: the check resolves the path, then the file is opened; whoever can swap a directory
for a symlink in between (someone with write access to a data root) wins that race.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentensor_api import ManifestError

DATA_ROOTS_ENV = "AGENTENSOR_DATA_ROOTS"
"""Folders (``os.pathsep``-separated) a manifest may read files under, beyond the base directory."""

NEVER_READ: tuple[Path, ...] = (Path("/proc"), Path("/sys"), Path("/dev"))
"""Kernel and device trees: never a dataset, and ``/proc/self/environ`` holds this process's secrets."""


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True)
class DataRoots:
    """Folders granted beyond the base directory, and paths refused under any of them.

    Attributes:
        extra: more folders a manifest may read under (``--data-root``, declared data volumes).
        denied: paths never read, like :data:`NEVER_READ` (Secret volume mounts in a Pod).
    """

    extra: tuple[Path, ...] = ()
    denied: tuple[Path, ...] = ()

    @classmethod
    def of(cls, extra: Iterable[Path] = (), denied: Iterable[Path] = ()) -> DataRoots:
        return cls(tuple(extra), tuple(denied))

    def roots(self, base_dir: Path) -> list[Path]:
        """``base_dir``, the extra roots and ``$AGENTENSOR_DATA_ROOTS``, each with symlinks resolved."""
        env = [Path(p) for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
        return list(dict.fromkeys(_real(p) for p in [base_dir, *self.extra, *env]))

    def resolve(self, raw: str, field: str, base_dir: Path) -> Path:
        """The real path of the manifest's ``raw`` path (relative to ``base_dir``), if it may be opened.

        Returns:
            The path with every symlink and ``..`` resolved (open this one).

        Raises:
            ManifestError: naming ``field`` when the real path is under ``/proc``, ``/sys``,
                ``/dev`` or a denied path, or under none of the roots (the message says how to
                grant a folder).
        """
        path = Path(raw)
        real = _real(path if path.is_absolute() else base_dir / path)
        for never in [*NEVER_READ, *self.denied]:
            if _under(real, _real(never)) or _under(real, never):
                raise ManifestError(
                    field, f"{raw!r} resolves to {real}, under {never}, which a manifest may never read"
                )
        roots = self.roots(base_dir)
        if not any(_under(real, root) for root in roots):
            raise ManifestError(
                field,
                f"{raw!r} resolves to {real}, outside the folders a manifest may read "
                f"({', '.join(str(r) for r in roots)}); to grant a folder, pass --data-root DIR "
                f"or add it to {DATA_ROOTS_ENV}",
            )
        return real
