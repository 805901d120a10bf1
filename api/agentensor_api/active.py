"""Read the live prompts of a PromptConfig in an application: the mounted ``<name>-active`` ConfigMap.

The operator writes the active version of PromptConfig ``NAME`` to ConfigMap ``NAME-active``
with four keys: ``prompts.json`` (prompt name -> text), ``parameters.json``, ``version`` and
``checksum`` (``config_checksum(prompts, parameters)``). Mount it as a volume (not with
``subPath``: a subPath mount is never updated) and read it with :class:`ActiveConfigReader`::

    from agentensor_api.active import ActiveConfigReader

    prompts = ActiveConfigReader("/etc/agentensor/router")
    config = prompts.get()          # re-read only when the kubelet has swapped the files
    system = config.prompts["intent.card_arrival"]

This module needs only the standard library and :func:`agentensor_api.config_checksum`: no
Kubernetes client, no database, so an inference service can import it.

How a change is seen: the kubelet's atomic writer (``pkg/volume/util/atomic_writer.go``) keeps
the files in a timestamped directory ``..<timestamp>/``, points the symlink ``..data`` at it,
and exposes each key as a symlink ``<key> -> ..data/<key>``. An update writes a new timestamped
directory, creates ``..data_tmp`` pointing at it, renames it over ``..data`` (atomic) and deletes
the old directory. So :meth:`ActiveConfigReader.get` compares the target and inode of ``..data``
(one ``readlink`` and one ``lstat`` per call) and, when they moved, reads all four files from the
one directory ``..data`` resolves to, never a mix of two versions. A directory without ``..data``
(a copy on disk, a test) is compared by the inode, mtime and size of the four files.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import AgentensorError
from ._resources import config_checksum

KEYS = ("prompts.json", "parameters.json", "version", "checksum")
"""The ConfigMap keys the operator writes (``agentensor_operator`` ``active_config_map``)."""
DATA_LINK = "..data"
"""The kubelet's symlink to the current timestamped directory of a ConfigMap volume."""


class ActiveConfigError(AgentensorError):
    """The mounted active config cannot be read: a file is missing or unparsable, or the checksum is wrong."""


@dataclass(frozen=True)
class ActiveConfig:
    """One active version as mounted: ``version`` (>= 1), ``checksum`` (sha256 hex), prompts, parameters."""

    version: int
    checksum: str
    prompts: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)


def read_active_config(directory: str | os.PathLike[str]) -> ActiveConfig:
    """Read the four keys of a mounted ``<name>-active`` ConfigMap and check the checksum.

    Reads from the directory ``..data`` resolves to when it exists, so the four files are of one
    version.

    Raises:
        ActiveConfigError: a key is missing or unreadable, ``version`` is not a positive integer,
            a JSON file is invalid, or ``checksum`` is not ``config_checksum(prompts, parameters)``.
    """
    root = Path(directory)
    base = (root / DATA_LINK).resolve() if (root / DATA_LINK).is_symlink() else root
    try:
        raw = {key: (base / key).read_text(encoding="utf-8") for key in KEYS}
    except OSError as e:
        raise ActiveConfigError(f"{root}: cannot read {e.filename or root}: {e.strerror or e}") from e
    try:
        prompts = json.loads(raw["prompts.json"])
        parameters = json.loads(raw["parameters.json"])
    except ValueError as e:
        raise ActiveConfigError(f"{root}: invalid JSON in prompts.json or parameters.json: {e}") from e
    version_text, checksum = raw["version"].strip(), raw["checksum"].strip()
    if not version_text.isdigit() or int(version_text) < 1:
        raise ActiveConfigError(f"{root}/version: expected a positive integer, got {version_text[:40]!r}")
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ActiveConfigError(f"{root}/prompts.json: expected an object of prompt name -> text")
    if not isinstance(parameters, dict):
        raise ActiveConfigError(f"{root}/parameters.json: expected an object")
    computed = config_checksum(prompts, parameters)
    if computed != checksum:
        raise ActiveConfigError(
            f"{root}/checksum: the prompts and parameters hash to {computed[:12]}, the file says {checksum[:12]}"
        )
    return ActiveConfig(version=int(version_text), checksum=checksum, prompts=prompts, parameters=parameters)


class ActiveConfigReader:
    """The active config of a mounted ``<name>-active`` ConfigMap, re-read when the kubelet swaps it.

    Thread-safe. ``get()`` costs one ``readlink`` and one ``lstat`` when nothing changed, so it
    can be called per request. A change that cannot be read (say a hand-made mount with a wrong
    checksum) keeps the last good config and is kept in :attr:`last_error`; only the first read
    raises.

    Args:
        directory: the volume's mount path.
        on_change: called with the new config after each reload that changed the version or
            checksum (not for the first read), on the thread that called ``get()``.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, on_change: Callable[[ActiveConfig], None] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.on_change = on_change
        self.last_error: ActiveConfigError | None = None
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._config: ActiveConfig | None = None

    def get(self) -> ActiveConfig:
        """The current active config (read again if the mount changed since the last call).

        Raises:
            ActiveConfigError: on the first read only (later failures keep the last good config).
        """
        changed: ActiveConfig | None = None
        with self._lock:
            stamp = self._stamp_now()
            if self._config is None or stamp != self._stamp:
                previous = self._config
                try:
                    self._config = self._read()
                except ActiveConfigError as e:
                    if previous is None:
                        raise
                    self.last_error = e
                    return previous
                self._stamp, self.last_error = stamp, None
                if previous is not None and (previous.version, previous.checksum) != (
                    self._config.version,
                    self._config.checksum,
                ):
                    changed = self._config
            config = self._config
        if changed is not None and self.on_change is not None:
            self.on_change(changed)
        return config

    def _read(self) -> ActiveConfig:
        try:
            return read_active_config(self.directory)
        except ActiveConfigError:
            # the kubelet deletes the old directory right after the swap: resolve ..data again once
            return read_active_config(self.directory)

    def _stamp_now(self) -> tuple[Any, ...]:
        link = self.directory / DATA_LINK
        try:
            if link.is_symlink():
                return ("link", os.readlink(link), link.lstat().st_ino)
            stats = [(self.directory / key).stat() for key in KEYS]
        except OSError:
            return ("missing",)
        return ("files", *((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats))
