"""Helpers of the cluster tier: drive hack/real-node.sh and hack/build-image.sh, and take a snapshot
of the host state the node must leave as it found it."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REAL_NODE = REPO / "hack" / "real-node.sh"
BUILD_IMAGE = REPO / "hack" / "build-image.sh"

# Host-wide sysctls kubelet 1.20 / kube-proxy would set if unpatched or misconfigured.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/netfilter/nf_conntrack_max",
    "net/bridge/bridge-nf-call-iptables",
)
# Paths outside the state folder that kubelet, containerd or CNI create.
PATHS = (
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/run/containerd",
    "/run/netns",
    "/opt/containerd",
    "/usr/libexec/kubernetes",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def why_no_node() -> str | None:
    """Why a real node cannot be built on this host (None when it can)."""
    if os.geteuid() != 0:
        return "the real node needs root (network namespace, containerd, buildah)"
    missing = [
        t
        for t in ("containerd", "runc", "nsenter", "socat", "buildah", "mmdebstrap", "kubectl", "gcc")
        if shutil.which(t) is None
    ]
    if missing or not Path("/usr/lib/cni/bridge").exists():
        return (
            f"missing {', '.join(missing) or '/usr/lib/cni/bridge'}: apt-get install containerd runc"
            " containernetworking-plugins socat buildah mmdebstrap gcc libc6-dev"
        )
    return None


def run(
    *argv: str | Path,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (cwd: the repository); on ``check`` a non-zero exit fails with its output."""
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd=REPO
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def parse_env(text: str) -> dict[str, str]:
    """The ``export K=V`` lines printed by ``real-node.sh up``/``env``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            out[key] = value
    return out


def kube_env(node: dict[str, str]) -> dict[str, str]:
    """The environment for kubectl/helm against the node (the host's environment plus KUBECONFIG)."""
    return {**os.environ, "KUBECONFIG": node["KUBECONFIG"]}


def node_up(timeout: float = 3600) -> dict[str, str]:
    return parse_env(run(REAL_NODE, "up", timeout=timeout).stdout)


def node_down() -> None:
    run(REAL_NODE, "down", timeout=300)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _lines(*argv: str) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return sorted(line for line in done.stdout.splitlines() if line and not line.startswith("#"))


def host_state() -> dict[str, Any]:
    """What the node must not change on the host: sysctls, host iptables (nft backend only; never
    iptables-legacy, whose listing creates a table), mounts, network namespaces, links, leftover paths
    and k8s.io cgroups."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if not fields[4].startswith("/tmp/pytest-of-"):  # other sessions' tests mount there (tmp_path)
            mounts.append(f"{fields[4]} {fields[sep + 1]} {fields[sep + 2]}")
    netns = sorted({os.readlink(p) for p in glob.glob("/proc/[0-9]*/ns/net") if _safe_readlink(p)})
    return {
        "sysctls": {name: _read(f"/proc/sys/{name}") for name in SYSCTLS},
        "iptables": _lines("iptables-nft", "-S"),
        "iptables-save": [ln.split(" [")[0] for ln in _lines("iptables-nft-save")],
        "mounts": sorted(mounts),
        "ip netns": _lines("ip", "netns", "list"),
        "net namespaces": netns,
        "links": sorted(ln.split(":")[1].strip().split("@")[0] for ln in _lines("ip", "-o", "link")),
        "paths": {p: Path(p).exists() for p in PATHS},
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/k8s.io")),
    }


def _safe_readlink(path: str) -> bool:
    try:
        os.readlink(path)
    except OSError:
        return False
    return True


# Other engineers share the machine: for these, only what appeared (and stayed) counts.
GROW_ONLY = ("mounts", "net namespaces", "links")


def diff_state(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs (empty: the host is as it was). For GROW_ONLY keys, the entries that are new."""
    out: dict[str, Any] = {}
    for key in before:
        if key in GROW_ONLY:
            new = sorted(set(after[key]) - set(before[key]))
            if new:
                out[key] = {"new": new}
        elif before[key] != after[key]:
            out[key] = {"before": before[key], "after": after[key]}
    return out


def build_image(example: bool) -> tuple[Path, dict[str, Any]]:
    """Build (or take from the cache) the image archive; returns (archive, its build record)."""
    argv: list[str | Path] = [BUILD_IMAGE] + (["--example"] if example else [])
    archive = Path(run(*argv, timeout=3600).stdout.strip().splitlines()[-1])
    record = json.loads(Path(f"{archive}.json").read_text())
    return archive, record
