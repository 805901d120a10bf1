# Shared by hack/build-image.sh and hack/pgvector.sh (sourced, not run).
#
# mirror: print the Debian mirror apt already uses (deb822 or one-line sources), else deb.debian.org.
mirror() {
  local uri
  uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
