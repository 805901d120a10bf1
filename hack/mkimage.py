#!/usr/bin/env python3
"""Wrap one root-filesystem tar as a one-layer `docker save` archive (no registry, no engine).

Usage: mkimage.py ROOTFS.tar OUT.tar REF [CMD...]

- ROOTFS.tar: an uncompressed tar of the whole root filesystem (e.g. from ``mmdebstrap --format=tar``).
- OUT.tar: the docker-archive written (manifest.json, the image config, the layer), readable by
  ``ctr image import``, ``buildah pull docker-archive:`` and ``docker load``.
- REF: the fully qualified image reference, e.g. ``localhost/agentensor/python:3.11-bookworm``.
- CMD: the image's default command (optional).

The layer digest is the sha256 of ROOTFS.tar (an uncompressed layer's diff_id is its own digest;
see the OCI image spec, "Layer DiffID"). The config's ``created`` is fixed, so the same rootfs gives
the same image ID. Errors: a missing ROOTFS exits 2 with a message naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(rootfs: Path, out: Path, ref: str, cmd: list[str]) -> str:
    """Write the docker-archive ``out`` and return the image config digest (hex)."""
    layer_digest = sha256_file(rootfs)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": cmd or None},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    layer_name = f"{layer_digest}/layer.tar"
    manifest = [{"Config": f"{config_digest}.json", "RepoTags": [ref], "Layers": [layer_name]}]
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as archive:
        for name, data in ((f"{config_digest}.json", config_bytes), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        archive.add(str(rootfs), arcname=layer_name)
    tmp.replace(out)
    return config_digest


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    rootfs, out, ref, cmd = Path(argv[0]), Path(argv[1]), argv[2], argv[3:]
    if not rootfs.is_file():
        print(f"mkimage.py: ROOTFS {rootfs}: no such file", file=sys.stderr)
        return 2
    print(write_archive(rootfs, out, ref, cmd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
