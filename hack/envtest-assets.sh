#!/usr/bin/env bash
# Provide the binaries of a real Kubernetes control plane for tests (envtest style).
#
# Prints, as the last line of stdout, a directory holding `etcd`, `kube-apiserver` and
# `kube-controller-manager`. Everything else goes to stderr.
#
# Resolution order:
#   1. $KUBEBUILDER_ASSETS, if that folder holds all three binaries (the kubebuilder convention);
#   2. the cache ${AGENTENSOR_ENVTEST_CACHE:-$HOME/.cache/agentensor/envtest}/1.20.2/;
#   3. otherwise build Kubernetes 1.20.2 from Debian's source package into that cache
#      (about 4 minutes and 1.3 GB of RAM on 2 cores; see /work/shared/ENVTEST.md).
#
# The build needs root (or sudo) for apt: it installs etcd-server, golang-go, rsync and
# golang-github-modern-go-reflect2-dev, and adds a deb-src entry for the mirror apt already uses.
# It is idempotent, serialised by a lock file, and publishes the cache folder atomically, so it is
# safe to re-run after a failed or interrupted attempt.
#
# Environment:
#   KUBEBUILDER_ASSETS        use these binaries, build nothing.
#   AGENTENSOR_ENVTEST_CACHE  cache root (default: $HOME/.cache/agentensor/envtest).
#   AGENTENSOR_K8S_CACHE      shared source tree and Go build cache (default: $HOME/.cache/agentensor/k8s).
set -euo pipefail

readonly K8S_VERSION="1.20.2"
readonly BINARIES=(etcd kube-apiserver kube-controller-manager)
readonly APT_PACKAGES=(etcd-server golang-go rsync golang-github-modern-go-reflect2-dev)
readonly SRC_LIST="/etc/apt/sources.list.d/agentensor-envtest-src.sources"

log() { printf '[envtest-assets] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# has_all_binaries DIR: true if DIR holds an executable for each of BINARIES.
has_all_binaries() {
  local dir="$1" bin
  [[ -d "$dir" ]] || return 1
  for bin in "${BINARIES[@]}"; do
    [[ -x "$dir/$bin" && -s "$dir/$bin" ]] || return 1
  done
}

# 1. The kubebuilder convention.
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_all_binaries "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${BINARIES[*]}; falling back to the cache"
fi

# 2. The cache.
CACHE_ROOT="${AGENTENSOR_ENVTEST_CACHE:-$HOME/.cache/agentensor/envtest}"
ASSETS_DIR="$CACHE_ROOT/$K8S_VERSION"
if has_all_binaries "$ASSETS_DIR"; then
  printf '%s\n' "$ASSETS_DIR"
  exit 0
fi

# 3. Build. Serialise concurrent callers; the winner builds, the others find the cache afterwards.
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
log "waiting for the build lock $CACHE_ROOT/.build.lock"
flock 9
if has_all_binaries "$ASSETS_DIR"; then
  printf '%s\n' "$ASSETS_DIR"
  exit 0
fi
# We hold the lock, so any build folder left here belongs to an attempt that died (e.g. SIGKILL).
for stale in "$CACHE_ROOT"/.build.*/; do
  [[ -d "$stale" ]] || continue
  log "removing the leftover build folder $stale"
  chmod -R u+w "$stale" 2>/dev/null || true
  rm -rf "$stale"
done

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || die "building needs root or sudo (for apt-get); or set KUBEBUILDER_ASSETS"
  SUDO=(sudo)
fi
# Wait up to 10 minutes for another apt/dpkg process rather than failing at once.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q)

# deb_src_configured: true if any enabled apt source already has a deb-src entry.
deb_src_configured() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    grep -Eqs '^[[:space:]]*(Types:.*deb-src|deb-src[[:space:]])' "$f" && return 0
  done
  return 1
}

# add_deb_src: write deb-src entries mirroring the existing deb entries (deb822 or one-line format).
add_deb_src() {
  local tmp
  tmp="$(mktemp)"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    # Copy every stanza with a `Types: deb` line, switching it to deb-src; drop comments.
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Types:[[:space:]]*deb([[:space:]]|$)/ {
           out = ""
           n = split($0, lines, "\n")
           for (i = 1; i <= n; i++) {
             if (lines[i] ~ /^#/) continue
             if (lines[i] ~ /^Types:/) lines[i] = "Types: deb-src"
             out = out lines[i] "\n"
           }
           printf "%s", out; printf "\n"
         }' /etc/apt/sources.list.d/debian.sources >"$tmp"
    "${SUDO[@]}" install -m 0644 "$tmp" "$SRC_LIST"
  elif [[ -f /etc/apt/sources.list ]] && grep -Eq '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    sed -nE 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$tmp"
    "${SUDO[@]}" install -m 0644 "$tmp" "${SRC_LIST%.sources}.list"
  else
    rm -f "$tmp"
    die "found no Debian apt source to mirror as deb-src; add one by hand or set KUBEBUILDER_ASSETS"
  fi
  rm -f "$tmp"
  log "added deb-src entries in /etc/apt/sources.list.d/"
}

missing_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || printf '%s\n' "$pkg"
  done
}

need_update=0
if ! deb_src_configured; then
  add_deb_src
  need_update=1
fi
if [[ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]]; then
  need_update=1
fi
mapfile -t missing < <(missing_packages)
if ((${#missing[@]} > 0)) && ((need_update == 0)); then
  # Installing may still work from stale lists, but refreshing once is cheap and avoids 404s.
  need_update=1
fi
if ((need_update)); then
  log "apt-get update"
  "${APT[@]}" update >&2
fi
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  "${APT[@]}" install --no-install-recommends "${missing[@]}" >&2
fi
[[ -x /usr/bin/etcd ]] || die "etcd-server is installed but /usr/bin/etcd is missing"

# Build in the shared, fixed source tree (hack/lib/k8s-source.sh: fetched once, Go cache reused by
# hack/realnode-assets.sh), then stage beside the cache (same filesystem, so the final mv is atomic).
# shellcheck source=hack/lib/k8s-source.sh
source "$(dirname "$0")/lib/k8s-source.sh"
K8S_ROOT="${AGENTENSOR_K8S_CACHE:-$HOME/.cache/agentensor/k8s}"
BUILD_DIR="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
cleanup() { rm -rf "$BUILD_DIR"; }
trap cleanup EXIT
log "building kube-apiserver and kube-controller-manager (several minutes)"
OUT_DIR="$(k8s_build "$K8S_ROOT" "$K8S_VERSION" cmd/kube-apiserver cmd/kube-controller-manager | tail -n 1)"

STAGE_DIR="$BUILD_DIR/assets"
mkdir -p "$STAGE_DIR"
cp "$OUT_DIR/kube-apiserver" "$OUT_DIR/kube-controller-manager" "$STAGE_DIR/"
# A copy, not a symlink: the cache keeps working if etcd-server is removed later.
cp /usr/bin/etcd "$STAGE_DIR/etcd"
chmod 0755 "$STAGE_DIR"/*
has_all_binaries "$STAGE_DIR" || die "build finished but $STAGE_DIR lacks a binary"
"$STAGE_DIR/kube-apiserver" --version >&2

# Publish atomically. A leftover incomplete folder (from a manual edit) is moved aside first.
if [[ -e "$ASSETS_DIR" ]]; then
  mv "$ASSETS_DIR" "$BUILD_DIR/stale"
fi
mv "$STAGE_DIR" "$ASSETS_DIR"
log "assets ready in $ASSETS_DIR"
printf '%s\n' "$ASSETS_DIR"
