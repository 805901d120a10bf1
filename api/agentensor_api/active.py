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

What a bad update does: whatever is in the directory (a file that is not UTF-8 or not JSON,
``NaN``, a lone surrogate, nesting deeper than the parser's stack, a version of odd digits, a
wrong checksum, a FIFO, socket, device or directory in place of a file, a file over
:data:`MAX_FILE_BYTES`) is an :class:`ActiveConfigError`; the reader keeps the last good config,
counts the update once in :attr:`ActiveConfigReader.rejected_updates` and logs one warning on the
``agentensor_api.active`` logger (the file and the reason, never the file's content). Files are
opened with ``O_NONBLOCK`` and checked with ``fstat`` before any read, so nothing in the
directory can block ``get()``. The fingerprint of a rejected state is remembered like a good one,
so the next calls cost the same ``readlink`` and ``lstat`` until the mount changes again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
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
MAX_FILE_BYTES = 1024 * 1024
"""Largest file read, in bytes: 1 MiB, the API server's limit for a whole ConfigMap, so no key of a
real ``<name>-active`` ConfigMap is larger; a bigger file is refused without being read."""
MAX_VERSION = 2**63 - 1
"""Largest ``version`` accepted: the store keeps versions as 64-bit integers."""

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_VERSION = re.compile(r"[0-9]{1,19}")
_CHECKSUM = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger(__name__)


class ActiveConfigError(AgentensorError):
    """The mounted active config cannot be read: a file is missing, not a regular file, too large or
    unparsable, or the checksum is wrong. The message names the file and the reason, never its content."""


@dataclass(frozen=True)
class ActiveConfig:
    """One active version as mounted: ``version`` (>= 1), ``checksum`` (sha256 hex), prompts, parameters."""

    version: int
    checksum: str
    prompts: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def read_regular_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes, without blocking.

    Opens with ``O_NONBLOCK`` (a FIFO without a writer opens at once instead of waiting) and checks
    the open file with ``fstat`` before reading, so a FIFO, socket, device or directory is refused
    rather than read; reads at most ``limit + 1`` bytes, so a file that grows is refused too.

    Raises:
        ActiveConfigError: not a regular file, or larger than ``limit`` bytes.
        OSError: the file cannot be opened (missing, permission, a socket: ``ENXIO``).
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ActiveConfigError(f"{path}: {_kind(mode)}, not a regular file; refused without reading it")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ActiveConfigError(f"{path}: larger than {limit} bytes (a ConfigMap holds at most 1 MiB); refused")
    return b"".join(chunks)


def _read_texts(root: Path, base: str) -> dict[str, str]:
    raw: dict[str, str] = {}
    for key in KEYS:
        try:
            data = read_regular_file(os.path.join(base, key))
        except OSError as e:
            raise ActiveConfigError(f"{root}: cannot read {e.filename or root}: {e.strerror or e}") from e
        try:
            raw[key] = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ActiveConfigError(f"{root}/{key}: not UTF-8 ({e.reason} at byte {e.start})") from e
    return raw


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range ({len(text)} characters overflow a float)")
    return value


def _load_json(root: Path, key: str, text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as e:
        raise ActiveConfigError(f"{root}/{key}: invalid JSON (nested too deeply)") from e
    except ValueError as e:  # JSONDecodeError, the int digit limit, the hooks above
        raise ActiveConfigError(f"{root}/{key}: invalid JSON: {e}") from e


def _version(root: Path, text: str) -> int:
    text = text.strip()
    if not _VERSION.fullmatch(text) or not 1 <= int(text) <= MAX_VERSION:
        raise ActiveConfigError(
            f"{root}/version: expected a positive integer of ASCII digits up to {MAX_VERSION},"
            f" got {len(text)} character(s) that are not one"
        )
    return int(text)


def _checksum(root: Path, prompts: dict[str, str], parameters: dict[str, Any], expected: str) -> None:
    if not _CHECKSUM.fullmatch(expected):
        raise ActiveConfigError(f"{root}/checksum: expected 64 lowercase hex digits (sha256)")
    try:
        computed = config_checksum(prompts, parameters)
    except UnicodeEncodeError as e:
        raise ActiveConfigError(f"{root}: a prompt or parameter holds a lone surrogate ({e.reason})") from e
    except (ValueError, RecursionError) as e:
        raise ActiveConfigError(f"{root}: the prompts and parameters cannot be hashed: {type(e).__name__}") from e
    if computed != expected:
        raise ActiveConfigError(
            f"{root}/checksum: the prompts and parameters hash to {computed[:12]}, the file says {expected[:12]}"
        )


def read_active_config(directory: str | os.PathLike[str]) -> ActiveConfig:
    """Read the four keys of a mounted ``<name>-active`` ConfigMap and check the checksum.

    Reads from the directory ``..data`` resolves to when it exists, so the four files are of one
    version. Never blocks on what is in the directory (:func:`read_regular_file`).

    Raises:
        ActiveConfigError: a key is missing, unreadable, not a regular file or over
            :data:`MAX_FILE_BYTES`; a file is not UTF-8; ``version`` is not a positive integer of
            ASCII digits; a JSON file is invalid (including ``NaN``, overflowing numbers, nesting
            deeper than the interpreter's stack) or of the wrong type; a text holds a lone
            surrogate; or ``checksum`` is not ``config_checksum(prompts, parameters)``. Nothing else.
    """
    root = Path(directory)
    link = root / DATA_LINK
    base = os.path.realpath(link) if os.path.islink(link) else str(root)
    raw = _read_texts(root, base)
    prompts = _load_json(root, "prompts.json", raw["prompts.json"])
    parameters = _load_json(root, "parameters.json", raw["parameters.json"])
    version = _version(root, raw["version"])
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ActiveConfigError(f"{root}/prompts.json: expected an object of prompt name -> text")
    if not isinstance(parameters, dict):
        raise ActiveConfigError(f"{root}/parameters.json: expected an object")
    checksum = raw["checksum"].strip()
    _checksum(root, prompts, parameters, checksum)
    return ActiveConfig(version=version, checksum=checksum, prompts=prompts, parameters=parameters)


class ActiveConfigReader:
    """The active config of a mounted ``<name>-active`` ConfigMap, re-read when the kubelet swaps it.

    Thread-safe. ``get()`` costs one ``readlink`` and one ``lstat`` when nothing changed, so it
    can be called per request. A change that cannot be read (a malformed or tampered update, a
    FIFO in the directory: see the module docstring) keeps the last good config, is counted once
    and logged once, and is not read again until the mount changes.

    Args:
        directory: the volume's mount path.
        on_change: called with the new config after each reload that changed the version or
            checksum (not for the first read), on the thread that called ``get()``.

    Attributes:
        last_error: why the mount as it is now was refused; ``None`` when ``get()`` returns what
            is mounted.
        last_rejection: the message of the latest refusal, kept after a good update (``None``
            until one happens). Names the file and the reason, never file content.
        rejected_updates: how many mount states were refused, each counted once however many
            calls saw it (a counter to export as a metric).
        reads: how many times the files were read and parsed: once per mount state seen (twice
            when the kubelet removed the directory during the read).
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, on_change: Callable[[ActiveConfig], None] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.on_change = on_change
        self.last_error: ActiveConfigError | None = None
        self.last_rejection: str | None = None
        self.rejected_updates = 0
        self.reads = 0
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._config: ActiveConfig | None = None

    def get(self) -> ActiveConfig:
        """The current active config (read again only if the mount changed since the last call).

        Raises:
            ActiveConfigError: no good config was ever read (the first read failed, and the mount
                has not changed since or is still bad); later failures keep the last good config.
        """
        with self._lock:
            stamp = self._stamp_now()
            changed = self._refresh(stamp) if stamp != self._stamp else None
            config, error = self._config, self.last_error
        if config is None:
            assert error is not None
            raise ActiveConfigError(str(error)) from error
        if changed is not None and self.on_change is not None:
            self.on_change(changed)
        return config

    def _refresh(self, stamp: tuple[Any, ...]) -> ActiveConfig | None:
        """Read the mount in state ``stamp`` (under the lock); the new config if it changed the version."""
        self._stamp = stamp
        try:
            config = self._read()
        except ActiveConfigError as e:
            self._reject(e)
            return None
        previous, self._config, self.last_error = self._config, config, None
        if previous is not None and (previous.version, previous.checksum) != (config.version, config.checksum):
            return config
        return None

    def _reject(self, error: ActiveConfigError) -> None:
        self.last_error, self.last_rejection = error, str(error)
        self.rejected_updates += 1
        if self._config is not None:
            log.warning(
                "%s: update refused, keeping version %d (%d refused so far): %s",
                self.directory,
                self._config.version,
                self.rejected_updates,
                error,
            )

    def _read(self) -> ActiveConfig:
        try:
            return self._read_once()
        except ActiveConfigError as e:
            if not isinstance(e.__cause__, OSError):
                raise
            # the kubelet deletes the old directory right after the swap: resolve ..data again once
            return self._read_once()

    def _read_once(self) -> ActiveConfig:
        self.reads += 1
        try:
            return read_active_config(self.directory)
        except ActiveConfigError:
            raise
        except Exception as e:  # a serving process keeps its last good config whatever the mount holds
            raise ActiveConfigError(f"{self.directory}: unexpected {type(e).__name__} while reading") from e

    def _stamp_now(self) -> tuple[Any, ...]:
        link = self.directory / DATA_LINK
        try:
            if link.is_symlink():
                return ("link", os.readlink(link), link.lstat().st_ino)
            stats = [(self.directory / key).stat() for key in KEYS]
        except OSError:
            return ("missing",)
        return ("files", *((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats))
