#!/usr/bin/env bash
# Provide kubelet, kube-scheduler and kube-proxy for the local real node (hack/real-node.sh).
#
# Prints, as the last line of stdout, a directory holding `kubelet`, `kube-scheduler` and `kube-proxy`
# built from the same Debian Kubernetes 1.20.2 source as hack/envtest-assets.sh (whose etcd,
# kube-apiserver and kube-controller-manager are reused, not rebuilt). Everything else goes to stderr.
#
# The kubelet is patched so that it never writes host-wide sysctls: unpatched, kubelet 1.20 sets
# vm.overcommit_memory=1, kernel.panic=10 and kernel.panic_on_oops=1 for the whole machine at start-up
# (setupKernelTunables). With the patch it only logs the values it would have wanted.
#
# Cached in ${AGENTENSOR_REALNODE_CACHE:-$HOME/.cache/agentensor/realnode}/1.20.2/; idempotent,
# serialised by a lock file, published atomically (same pattern as envtest-assets.sh).
# About 10-20 minutes of CPU on 2 cores for a clean build; needs root for apt-get.
set -euo pipefail

readonly K8S_VERSION="1.20.2"
readonly BINARIES=(kubelet kube-scheduler kube-proxy)
readonly APT_PACKAGES=(golang-go rsync golang-github-modern-go-reflect2-dev)
# The patch marker: a build from an unpatched tree is never published.
readonly PATCH_TO=$'\tb := KernelTunableWarn'

log() { printf '[realnode-assets] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

has_all_binaries() {
  local dir="$1" bin
  [[ -d "$dir" && -f "$dir/.sysctl-patched" ]] || return 1
  for bin in "${BINARIES[@]}"; do
    [[ -x "$dir/$bin" && -s "$dir/$bin" ]] || return 1
  done
}

CACHE_ROOT="${AGENTENSOR_REALNODE_CACHE:-$HOME/.cache/agentensor/realnode}"
ASSETS_DIR="$CACHE_ROOT/$K8S_VERSION"
if has_all_binaries "$ASSETS_DIR"; then
  printf '%s\n' "$ASSETS_DIR"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
log "waiting for the build lock $CACHE_ROOT/.build.lock"
flock 9
if has_all_binaries "$ASSETS_DIR"; then
  printf '%s\n' "$ASSETS_DIR"
  exit 0
fi
for stale in "$CACHE_ROOT"/.build.*/; do
  [[ -d "$stale" ]] || continue
  log "removing the leftover build folder $stale"
  chmod -R u+w "$stale" 2>/dev/null || true
  rm -rf "$stale"
done

[[ "$(id -u)" -eq 0 ]] || die "building needs root (apt-get); or provide $ASSETS_DIR"
APT=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$pkg")
done
if [[ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]]; then
  # envtest-assets.sh adds the deb-src stanza (and installs the same toolchain); let it do so.
  log "no deb-src entry for kubernetes yet; running hack/envtest-assets.sh first"
  "$(dirname "$0")/envtest-assets.sh" >/dev/null
  [[ -n "$(apt-cache showsrc kubernetes 2>/dev/null)" ]] || "${APT[@]}" update >&2
fi
if ((${#missing[@]} > 0)); then
  "${APT[@]}" update >&2
  "${APT[@]}" install --no-install-recommends "${missing[@]}" >&2
fi

# The shared, fixed source tree (hack/lib/k8s-source.sh, which applies the sysctl patch) and Go cache:
# after hack/envtest-assets.sh, the packages both builds share are not compiled again.
# shellcheck source=hack/lib/k8s-source.sh
source "$(dirname "$0")/lib/k8s-source.sh"
K8S_ROOT="${AGENTENSOR_K8S_CACHE:-$HOME/.cache/agentensor/k8s}"
BUILD_DIR="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
cleanup() { rm -rf "$BUILD_DIR"; }
trap cleanup EXIT
grep -qxF "$PATCH_TO" "$(k8s_prepare "$K8S_ROOT" "$K8S_VERSION")/pkg/kubelet/cm/container_manager_linux.go" ||
  die "the shared source tree lacks the sysctl patch"
log "building kubelet, kube-scheduler and kube-proxy"
OUT_DIR="$(k8s_build "$K8S_ROOT" "$K8S_VERSION" cmd/kubelet cmd/kube-scheduler cmd/kube-proxy | tail -n 1)"

STAGE_DIR="$BUILD_DIR/assets"
mkdir -p "$STAGE_DIR"
for bin in "${BINARIES[@]}"; do cp "$OUT_DIR/$bin" "$STAGE_DIR/"; done
chmod 0755 "$STAGE_DIR"/*
printf 'kubelet built with %s\n' "$PATCH_TO" >"$STAGE_DIR/.sysctl-patched"
has_all_binaries "$STAGE_DIR" || die "build finished but $STAGE_DIR lacks a binary"
"$STAGE_DIR/kubelet" --version >&2
if [[ -e "$ASSETS_DIR" ]]; then mv "$ASSETS_DIR" "$BUILD_DIR/stale"; fi
mv "$STAGE_DIR" "$ASSETS_DIR"
log "assets ready in $ASSETS_DIR"
printf '%s\n' "$ASSETS_DIR"
