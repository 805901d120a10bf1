"""The manifest file of ``agentensor promote``: bounded reads and a locked compare-and-swap write.

Reading never blocks and never reads without bound: anything but a regular file (a FIFO,
``/dev/zero``, a directory) is refused from its ``stat`` before it is opened, the open itself is
non-blocking, and at most ``MAX_MANIFEST_BYTES`` (8 MiB, the manifest limit of
``load_manifests``) are read.

Writing is a compare-and-swap under a lock, so that two promotes of different PromptConfigs in
one file both land::

    read FILE, plan the edit (unlocked; the database lookup happens here)
    open FILE, flock(LOCK_EX) on it, check the path still names the locked file
    re-read it: unchanged?  yes -> write a temporary file beside it, os.replace it over FILE
                            no  -> give up this attempt; the caller plans again on the new text

The lock is an ``flock`` on the manifest itself, not on a ``FILE.lock`` beside it: a lock file
would stay in the Git checkout (flock-based lock files are never removed, since removing them
races). A process that waited on the lock finds that the path now names the replaced file and
locks that one instead. Editors and ``git checkout`` take no lock; the content comparison still
catches their writes unless one lands in the microseconds between the comparison and the rename.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agentensor_api._limits import MAX_MANIFEST_BYTES

READ_CHUNK = 1024 * 1024


class ManifestFileError(Exception):
    """The manifest cannot be read or written; the message names the file and the reason."""


def resolve(path: Path) -> Path:
    """The file ``path`` names, symlinks followed, so that the link itself stays a link."""
    return Path(os.path.realpath(path))


def read_manifest(path: Path, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        ManifestFileError: missing, not a regular file, unreadable, or larger than ``limit``.
    """
    with _open_regular(path) as fd:
        return _read_fd(path, fd, limit)


def replace_if_unchanged(path: Path, expected: bytes, new: bytes) -> bool:
    """Replace ``path``'s content with ``new`` if it still is ``expected``; False if it changed.

    Holds an exclusive ``flock`` on the file from the comparison to the rename. The new file
    keeps the old one's permission bits.

    Raises:
        ManifestFileError: the file cannot be opened, locked, read or replaced.
    """
    while True:
        with _open_regular(path) as fd:
            _lock(path, fd)
            if not _still_names(path, fd):
                continue  # replaced while we waited: lock the file the path names now
            if _read_fd(path, fd, MAX_MANIFEST_BYTES) != expected:
                return False
            _write_atomically(path, new, stat.S_IMODE(os.fstat(fd).st_mode))
            return True


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[int]:
    """A read-only descriptor of the regular file ``path``; refused from ``stat`` before opening."""
    try:
        before = os.stat(path)
    except OSError as e:
        raise ManifestFileError(f"cannot read {path}: {e.strerror or e}") from e
    kind = _kind(before.st_mode)
    if kind is not None:
        raise ManifestFileError(f"{path} is {kind}, expected a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ManifestFileError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        if _kind(os.fstat(fd).st_mode) is not None:  # swapped between stat and open
            raise ManifestFileError(f"{path} is not a regular file")
        yield fd
    finally:
        os.close(fd)


def _read_fd(path: Path, fd: int, limit: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := os.read(fd, min(READ_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ManifestFileError(f"{path} is larger than the limit of {limit} bytes")
    except OSError as e:
        raise ManifestFileError(f"cannot read {path}: {e.strerror or e}") from e
    return b"".join(chunks)


def _lock(path: Path, fd: int) -> None:
    if sys.platform == "win32":  # no flock: the content comparison alone guards the write
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:
        raise ManifestFileError(f"cannot lock {path}: {e.strerror or e}") from e


def _still_names(path: Path, fd: int) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file in ``path``'s directory and rename it over ``path``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".promote", dir=path.parent)
    except OSError as e:
        raise ManifestFileError(f"cannot write beside {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ManifestFileError(f"cannot write {path}: {e.strerror or e}") from e
