#!/usr/bin/env bash
# Install the pgvector extension (0.8.0) into the system PostgreSQL 15, building it once.
#
# The retrieval tests and a cluster's retrieval index need `CREATE EXTENSION vector`, and Debian
# bookworm has no pgvector package. This fetches the upstream source as Debian ships it (trixie's
# pgvector_0.8.0.orig.tar.gz from the pool of the mirror apt uses, its sha256 pinned below: a
# mismatch is refused), builds it with PGXS
# against pg_config, and caches the installed tree (vector.so, its LLVM bitcode, vector.control,
# vector--*.sql, the header) outside the clone. A second call with the cache builds nothing: it
# copies only the files that differ into pg_config's --pkglibdir/--sharedir (and --includedir-server),
# so it is idempotent and cheap. Prints the cache folder as the last line of stdout; logs go to stderr.
#
# Built with OPTFLAGS="" (as Debian's own package is), not upstream's default -march=native, so a
# cached build runs on any x86-64 CPU, not only on the machine that built it.
#
# Needs: root or sudo (apt-get for postgresql-server-dev-15 when pg_config's PGXS is missing, and the
# copy into /usr), curl, make and a C compiler. About 30 s to build on 2 cores.
#
# Environment:
#   PG_CONFIG                  pg_config of the target server (default /usr/lib/postgresql/15/bin/pg_config).
#   AGENTENSOR_PGVECTOR_CACHE  cache root (default: $HOME/.cache/agentensor/pgvector).
set -euo pipefail

readonly VERSION="0.8.0"
readonly POOL_PATH="pool/main/p/pgvector/pgvector_${VERSION}.orig.tar.gz"  # from pgvector_0.8.0-1.dsc
readonly SHA256="867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"

log() { printf '[pgvector] %s\n' "$*" >&2; }
# shellcheck source=hack/lib/debian-mirror.sh
source "$(dirname "$0")/lib/debian-mirror.sh"
die() { log "error: $*"; exit 1; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || die "installing into the system PostgreSQL needs root or sudo"
  SUDO=(sudo)
fi

# The server's development files (PGXS); pg_config itself comes with postgresql-15.
pgxs_ready() { [[ -x "$PG_CONFIG" && -f "$("$PG_CONFIG" --pgxs 2>/dev/null)" ]]; }
if ! pgxs_ready; then
  major="$("$PG_CONFIG" --version 2>/dev/null | sed -nE 's/^PostgreSQL ([0-9]+).*/\1/p')"
  [[ -n "$major" ]] || die "no PostgreSQL at $PG_CONFIG; install postgresql-15 or set PG_CONFIG"
  log "installing postgresql-server-dev-$major (PGXS)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q update >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q \
    install --no-install-recommends "postgresql-server-dev-$major" >&2
  pgxs_ready || die "postgresql-server-dev-$major is installed but $PG_CONFIG --pgxs is missing"
fi
PG_MAJOR="$("$PG_CONFIG" --version | sed -nE 's/^PostgreSQL ([0-9]+).*/\1/p')"

CACHE_ROOT="${AGENTENSOR_PGVECTOR_CACHE:-$HOME/.cache/agentensor/pgvector}"
TREE="$CACHE_ROOT/$VERSION-pg$PG_MAJOR"  # the `make install DESTDIR=` tree: $TREE/usr/...
built() { [[ -f "$TREE/.complete" && -s "$TREE$("$PG_CONFIG" --pkglibdir)/vector.so" ]]; }

# build: fetch, check, compile and stage into $TREE (atomically, under a lock).
build() {
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.build.lock"
  flock 9
  built && return 0
  local work
  work="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  local url
  url="$(mirror)/$POOL_PATH"
  log "fetching $url"
  curl -fsSL --retry 3 -o "$work/src.tar.gz" "$url"
  local got
  got="$(sha256sum "$work/src.tar.gz" | cut -d' ' -f1)"
  [[ "$got" == "$SHA256" ]] || die "sha256 of $url is $got, expected $SHA256; refusing to build it"
  tar -xzf "$work/src.tar.gz" -C "$work"
  log "building pgvector $VERSION against PostgreSQL $PG_MAJOR"
  make -C "$work/pgvector-$VERSION" -s -j "$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >&2
  make -C "$work/pgvector-$VERSION" -s install PG_CONFIG="$PG_CONFIG" OPTFLAGS="" DESTDIR="$work/tree" >&2
  touch "$work/tree/.complete"
  rm -rf "$TREE"
  mv "$work/tree" "$TREE"
}

# install_tree: copy each cached file that is missing or differs into /; prints how many it copied.
install_tree() {
  local n=0 rel
  while IFS= read -r -d '' rel; do
    rel="${rel#./}"
    if ! cmp -s "$TREE/$rel" "/$rel"; then
      "${SUDO[@]}" install -D -m "$(stat -c %a "$TREE/$rel")" "$TREE/$rel" "/$rel"
      n=$((n + 1))
    fi
  done < <(cd "$TREE" && find . -type f ! -name .complete -print0)
  printf '%s\n' "$n"
}

if built; then
  log "using the cached build in $TREE"
else
  build
fi
copied="$(install_tree)"
log "installed into $("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension ($copied file(s) changed)"
printf '%s\n' "$TREE"
