#!/usr/bin/env bash
# Build the agentensor image from the project's Dockerfile with buildah, with no registry and no
# Docker engine, and write it as a docker-archive (importable by `ctr image import`, `docker load`).
#
#   hack/build-image.sh [--example]      prints the archive path as the last line of stdout
#
# - Base image: Debian bookworm's own python3.11 (python3, python3-venv, python-is-python3), made with
#   mmdebstrap from the mirror apt already uses and wrapped by hack/mkimage.py; passed to the
#   Dockerfile as BASE_IMAGE (the default for users stays python:3.11-slim-bookworm).
# - Python packages: PyPI (PIP_INDEX_URL), and the CPU torch wheel from a local wheel folder
#   (TORCH_FIND_LINKS, bind-mounted read-only into the RUN steps) instead of download.pytorch.org.
# - Cache: ${AGENTENSOR_IMAGE_CACHE:-$HOME/.cache/agentensor/images}/agentensor-<variant>-<hash>.tar,
#   the hash covering the Dockerfile, every file of the build context, the base image and the build
#   arguments, so a warm run does not rebuild. buildah's own storage lives beside it.
# - Records build seconds and archive bytes in <archive>.json.
#
# Environment: AGENTENSOR_WHEEL_DIR (default /opt/wheels), AGENTENSOR_PIP_INDEX_URL
# (default https://pypi.org/simple), AGENTENSOR_IMAGE_CACHE. Needs root (buildah --isolation chroot).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AGENTENSOR_IMAGE_CACHE:-$HOME/.cache/agentensor/images}"
WHEELS="${AGENTENSOR_WHEEL_DIR:-/opt/wheels}"
INDEX="${AGENTENSOR_PIP_INDEX_URL:-https://pypi.org/simple}"
BASE_REF="localhost/agentensor/python:3.11-bookworm"
BASE_PACKAGES="python3,python3-venv,python-is-python3,passwd,ca-certificates"
STORAGE=(--root "$CACHE/buildah/storage" --runroot "$CACHE/buildah/run" --storage-driver overlay)

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

variant=plain
with_example=false
if [[ "${1:-}" == "--example" ]]; then variant=example; with_example=true; fi
[[ "$(id -u)" -eq 0 ]] || die "needs root (buildah --isolation chroot, mmdebstrap --mode=root)"
command -v buildah >/dev/null && command -v mmdebstrap >/dev/null || die "apt-get install buildah mmdebstrap"
mkdir -p "$CACHE"
exec 8>"$CACHE/.build.lock"
flock 8

# shellcheck source=hack/lib/debian-mirror.sh
source "$REPO/hack/lib/debian-mirror.sh"

# 1. The Debian python3.11 base image (cached rootfs archive, pulled into buildah's storage).
base_archive="$CACHE/base-bookworm-python3.11.tar"
if [[ ! -s "$base_archive" ]]; then
  log "mmdebstrap bookworm with $BASE_PACKAGES"
  tmp="$(mktemp -d "$CACHE/.base.XXXXXX")"
  mmdebstrap --variant=minbase --mode=root --format=tar --include="$BASE_PACKAGES" \
    --aptopt='Acquire::Languages "none"' --dpkgopt='path-exclude=/usr/share/{doc,man,locale}/*' \
    bookworm "$tmp/rootfs.tar" "deb $(mirror) bookworm main" >&2
  python3 "$REPO/hack/mkimage.py" "$tmp/rootfs.tar" "$tmp/base.tar" "$BASE_REF" python3 >&2
  mv "$tmp/base.tar" "$base_archive"
  rm -rf "$tmp"
fi
base_sum="$(sha256sum "$base_archive" | cut -c1-64)"
if ! buildah "${STORAGE[@]}" inspect --type image "$BASE_REF" >/dev/null 2>&1; then
  buildah "${STORAGE[@]}" pull "docker-archive:$base_archive" >&2
fi

# 2. The cache key: Dockerfile, .dockerignore, the context the Dockerfile copies, base, arguments.
torch_wheel="$(ls "$WHEELS"/torch-*+cpu-*.whl 2>/dev/null | head -n 1 || true)"
key="$(
  cd "$REPO"
  {
    printf '%s\n' "$variant" "$base_sum" "$INDEX" "$(basename "${torch_wheel:-none}")"
    find Dockerfile .dockerignore pyproject.toml README.md api store runner operator cli migrations \
      examples/banking77/data -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*_cache/*' -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)"
out="$CACHE/agentensor-$variant-$key.tar"
tag="localhost/agentensor:$variant-$key"
if [[ -s "$out" ]]; then
  log "cached: $out"
  printf '%s\n' "$out"
  exit 0
fi

# 3. Build.
args=(--build-arg "BASE_IMAGE=$BASE_REF" --build-arg "PIP_INDEX_URL=$INDEX" --build-arg "WITH_EXAMPLE=$with_example")
mounts=()
# The host's CA bundle (it may hold a TLS-inspecting proxy's CA, which the base image lacks).
if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
  args+=(--build-arg "PIP_CERT=/etc/pip-host-ca.crt")
  mounts+=(--volume "/etc/ssl/certs/ca-certificates.crt:/etc/pip-host-ca.crt:ro")
fi
if [[ "$with_example" == true ]]; then
  [[ -n "$torch_wheel" ]] || die "no CPU torch wheel in $WHEELS (set AGENTENSOR_WHEEL_DIR)"
  args+=(--build-arg "TORCH_FIND_LINKS=/wheels")
  mounts+=(--volume "$WHEELS:/wheels:ro")
fi
log "buildah bud ($variant) -> $tag"
start_s=$SECONDS
buildah "${STORAGE[@]}" bud --isolation chroot --network host --layers=false \
  "${args[@]}" "${mounts[@]}" -t "$tag" -f "$REPO/Dockerfile" "$REPO" >&2
buildah "${STORAGE[@]}" push "$tag" "docker-archive:$out.tmp:$tag" >&2
mv "$out.tmp" "$out"
seconds=$((SECONDS - start_s))
bytes="$(stat -c %s "$out")"
printf '{"variant": "%s", "tag": "%s", "build_seconds": %d, "archive_bytes": %d}\n' \
  "$variant" "$tag" "$seconds" "$bytes" >"$out.json"
buildah "${STORAGE[@]}" rmi "$tag" >/dev/null 2>&1 || true
# Keep only the newest archive per variant.
for old in "$CACHE"/agentensor-"$variant"-*.tar; do
  [[ "$old" == "$out" ]] || rm -f "$old" "$old.json"
done
log "built in $seconds s, $((bytes / 1048576)) MiB: $out"
printf '%s\n' "$out"
