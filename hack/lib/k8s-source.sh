# Shared by hack/envtest-assets.sh and hack/realnode-assets.sh (sourced, not run).
#
# k8s_build ROOT VERSION WHAT...: build the Kubernetes commands WHAT (e.g. cmd/kubelet) from Debian's
# source package into ROOT/src/kubernetes-VERSION/_output/bin, and print that folder on stdout.
#
# The unpacked, prepared source tree lives at a fixed path under ROOT ($HOME/.cache/agentensor/k8s by
# default), and with it Go's build cache: Kubernetes' make sets GOCACHE to _output/local/go/cache
# inside the tree. So the second script reuses both: the source is fetched and unpacked once per
# machine, and the packages the two builds share (client-go, apimachinery, component-base: most of
# the compile) are compiled once (measured: the envtest build after an interrupted one, 8 min).
#
# Preparation, once: the vendored reflect2 1.0.1 (which crashes under Go >= 1.18, "fatal error: fault"
# in mapiterinit) is replaced by Debian's 1.0.2, and the kubelet is patched never to write host-wide
# sysctls (KernelTunableModify -> KernelTunableWarn in pkg/kubelet/cm; the API server and controller
# manager do not import that package). Preparation is serialised by ROOT/.src.lock, builds by ROOT/.build.lock.
#
# Needs: apt-get source (a deb-src entry), golang-go, rsync, golang-github-modern-go-reflect2-dev.

k8s_log() { printf '[k8s-source] %s\n' "$*" >&2; }

# k8s_prepare ROOT VERSION: make sure ROOT/src/kubernetes-VERSION is unpacked and patched; print it.
k8s_prepare() {
  local root="$1" version="$2" src tmp tarballs reflect2_src cm
  src="$root/src/kubernetes-$version"
  mkdir -p "$root/src"
  exec 8>"$root/.src.lock"
  flock 8
  if [[ -f "$src/.agentensor-prepared" ]]; then
    printf '%s\n' "$src"
    return 0
  fi
  if [[ -e "$src" ]]; then
    k8s_log "removing the incomplete source tree $src"
    chmod -R u+w "$src" 2>/dev/null || true
    rm -rf "$src"
  fi
  tmp="$(mktemp -d "$root/src/.fetch.XXXXXX")"
  k8s_log "downloading the kubernetes source package into $tmp"
  (cd "$tmp" && apt-get -q source --download-only kubernetes >&2)
  shopt -s nullglob
  tarballs=("$tmp"/kubernetes_*"$version".orig.tar.gz)
  shopt -u nullglob
  ((${#tarballs[@]} == 1)) || { k8s_log "error: expected one kubernetes_*$version.orig.tar.gz, found: $(ls "$tmp")"; return 1; }
  k8s_log "unpacking $(basename "${tarballs[0]}")"
  tar -xzf "${tarballs[0]}" -C "$tmp"
  [[ -d "$tmp/kubernetes-$version" ]] || { k8s_log "error: the tarball did not unpack to kubernetes-$version"; return 1; }

  reflect2_src="$(dpkg -L golang-github-modern-go-reflect2-dev | grep '/reflect2$' | head -n 1)"
  [[ -n "$reflect2_src" && -d "$reflect2_src" ]] || { k8s_log "error: cannot find Debian's reflect2 source"; return 1; }
  rm -rf "$tmp/kubernetes-$version/vendor/github.com/modern-go/reflect2"
  cp -r "$reflect2_src" "$tmp/kubernetes-$version/vendor/github.com/modern-go/reflect2"

  cm="$tmp/kubernetes-$version/pkg/kubelet/cm/container_manager_linux.go"
  grep -qxF $'\tb := KernelTunableModify' "$cm" || { k8s_log "error: sysctl patch target not found in $cm"; return 1; }
  sed -i 's/^\tb := KernelTunableModify$/\tb := KernelTunableWarn/' "$cm"
  if ! grep -qxF $'\tb := KernelTunableWarn' "$cm" || grep -qxF $'\tb := KernelTunableModify' "$cm"; then
    k8s_log "error: the sysctl patch did not apply"
    return 1
  fi
  k8s_log "patched kubelet: KernelTunableWarn (never writes host sysctls)"

  mkdir -p "$tmp/kubernetes-$version/.go/src/k8s.io"
  ln -s ../../.. "$tmp/kubernetes-$version/.go/src/k8s.io/kubernetes"
  mv "$tmp/kubernetes-$version" "$src"
  touch "$src/.agentensor-prepared"
  rm -rf "$tmp"
  printf '%s\n' "$src"
}

# k8s_build ROOT VERSION WHAT...: see the header.
k8s_build() {
  local root="$1" version="$2" src start
  shift 2
  src="$(k8s_prepare "$root" "$version")" || return 1
  k8s_log "building $* in $src"
  start=$SECONDS
  (
    # One make at a time in the shared tree (envtest and node builds may be asked for at once).
    exec 7>"$root/.build.lock"
    flock 7
    cd "$src"
    # No .git in the tarball, so state the version explicitly (kubectl version, helm kubeVersion).
    export KUBE_GIT_VERSION="v$version" KUBE_GIT_MAJOR="${version%%.*}" KUBE_GIT_TREE_STATE="clean"
    KUBE_GIT_MINOR="$(cut -d. -f2 <<<"$version")"
    export KUBE_GIT_MINOR
    GOPATH="$src/.go" CGO_ENABLED=0 GOPROXY=off GOFLAGS= \
      make WHAT="$*" >&2
  ) || return 1
  k8s_log "build took $((SECONDS - start)) s"
  printf '%s\n' "$src/_output/bin"
}
