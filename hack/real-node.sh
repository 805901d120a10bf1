#!/usr/bin/env bash
# A real single-node Kubernetes 1.20.2 on this machine: pods run as containerd + runc containers.
#
#   hack/real-node.sh up            start it (idempotent); prints `export KUBECONFIG=...` and friends
#   hack/real-node.sh env           print those lines again for a running node
#   hack/real-node.sh import TAR..  import docker-archive image(s) into the node's containerd (k8s.io)
#   hack/real-node.sh down          stop everything `up` started (by PID) and clean the leftovers
#
# Variant B of /work/shared/REALNODE.md: the whole node (containerd, etcd, apiserver, controller-manager,
# scheduler, kubelet, kube-proxy) runs in a network namespace of its own with a bridge cni0
# (10.88.0.1/16, no uplink, no default route out). Pods get pod IPs and the `kubernetes` Service works.
# The host reaches the apiserver at 127.0.0.1:<free port> through a socat relay over a unix socket;
# pods reach the host's PostgreSQL (127.0.0.1:5432 by default) at 10.88.0.1:5432 through the same
# kind of relay. No address outside 127.0.0.0/8 or the node namespace is ever used.
#
# The machine is shared, so the node leaves it as it found it:
# - the kubelet is built with the sysctl patch (hack/realnode-assets.sh): it never writes host sysctls;
# - iptables rules (kubelet's and kube-proxy's) only land in the node namespace;
# - AWS_EC2_METADATA_DISABLED=true for the kubelet (no cloud metadata probe);
# - containerd runs with restrict_oom_score_adj (no CAP_SYS_RESOURCE here);
# - `down` removes the leftovers kubelet 1.20 and containerd 1.6 hardcode outside the state folder
#   (only those that did not exist before `up`), and the empty k8s.io cgroups.
# tests/cluster/test_node_hygiene.py checks this.
#
# Environment:
#   AGENTENSOR_REALNODE_DIR   state folder (default $HOME/.cache/agentensor/realnode/node; the
#                             containerd root in it keeps imported images across runs)
#   AGENTENSOR_REALNODE_PG    host PostgreSQL address relayed to pods (default 127.0.0.1:5432)
# Needs root. Binaries: hack/envtest-assets.sh (etcd, apiserver, controller-manager) and
# hack/realnode-assets.sh (kubelet, scheduler, kube-proxy), both cached outside the clone.
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE="${AGENTENSOR_REALNODE_DIR:-$HOME/.cache/agentensor/realnode/node}"
RUN="$NODE/run"
NETNS="agentensor-realnode"
NSX=(nsenter "--net=/run/netns/$NETNS")
NODE_IP="10.88.0.1"
PG_ADDR="${AGENTENSOR_REALNODE_PG:-127.0.0.1:5432}"
# Paths kubelet 1.20 / containerd 1.6 / CNI create outside $NODE whatever the configuration says.
LEFTOVERS=(/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd /run/netns)
PAUSE_REF="localhost/node/pause:1"

log() { printf '[real-node] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# start NAME CMD...: run CMD in the background (in the node namespace unless NAME starts with host-),
# log to $RUN/NAME.log, remember its PID in $RUN/pids (start order).
start() {
  local name="$1"
  shift
  if [[ "$name" == host-* ]]; then
    setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  else
    setsid "${NSX[@]}" "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  fi
  printf '%s %s\n' "$name" "$!" >>"$RUN/pids"
}

wait_for() { # wait_for SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what (logs: $RUN/*.log)"
    sleep 0.5
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

is_up() { [[ -f "$RUN/env" && -f "$RUN/pids" ]] && pid_alive "$(awk '$1 == "host-api-relay" {print $2}' "$RUN/pids")"; }

print_env() { cat "$RUN/env"; }

pause_image() { # build the pause image archive once (Debian has none): a static C program
  local out="$NODE/../images/pause.tar"
  mkdir -p "$(dirname "$out")"
  if [[ ! -s "$out" ]]; then
    local tmp
    tmp="$(mktemp -d)"
    cat >"$tmp/pause.c" <<'EOF'
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void die(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) { signal(SIGINT, die); signal(SIGTERM, die); signal(SIGCHLD, reap); for (;;) pause(); }
EOF
    mkdir "$tmp/root"
    gcc -Os -static -o "$tmp/root/pause" "$tmp/pause.c" && strip "$tmp/root/pause"
    tar -C "$tmp/root" --owner=0 --group=0 -cf "$tmp/rootfs.tar" pause
    python3 "$HACK/mkimage.py" "$tmp/rootfs.tar" "$out" "$PAUSE_REF" /pause >/dev/null
    rm -rf "$tmp"
  fi
  printf '%s\n' "$out"
}

ctr_() { ctr -a "$NODE/ctd/containerd.sock" -n k8s.io "$@"; }

write_configs() {
  mkdir -p "$NODE/ctd" "$NODE/cni/net.d" "$NODE/kubelet/volume-plugins" "$RUN/certs"
  cat >"$NODE/ctd/config.toml" <<EOF
version = 2
root = "$NODE/ctd/root"
state = "$NODE/ctd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$NODE/ctd/containerd.sock"
[ttrpc]
  address = "$NODE/ctd/containerd-ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/ctd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$NODE/ctd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
EOF
  cat >"$NODE/cni/net.d/10-bridge.conflist" <<EOF
{ "cniVersion": "0.4.0", "name": "realnode", "plugins": [
  { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": { "type": "host-local", "dataDir": "$NODE/cni/ipam",
              "ranges": [[{ "subnet": "10.88.0.0/16", "gateway": "$NODE_IP" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
  { "type": "portmap", "capabilities": { "portMappings": true } } ] }
EOF
  cat >"$RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
maxPods: 50
EOF
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$RUN/sa.key" -out "$RUN/sa.crt" -days 2 -subj /CN=sa 2>/dev/null
  echo "admin-token,admin,admin,system:masters" >"$RUN/tokens.csv"
  kubeconfig "https://127.0.0.1:6443" >"$RUN/node.kubeconfig"
}

kubeconfig() {
  cat <<EOF
apiVersion: v1
kind: Config
clusters: [{name: realnode, cluster: {server: "$1", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: admin-token}}]
contexts: [{name: realnode, context: {cluster: realnode, user: admin, namespace: default}}]
current-context: realnode
EOF
}

record_leftovers() {
  : >"$RUN/created-paths"
  local p
  for p in "${LEFTOVERS[@]}"; do [[ -e "$p" ]] || echo "$p" >>"$RUN/created-paths"; done
  : >"$RUN/created-cgroups"
  for p in /sys/fs/cgroup/*; do [[ -e "$p/k8s.io" ]] || echo "$p/k8s.io" >>"$RUN/created-cgroups"; done
  compgen -G '/run/netns/cni-*' >"$RUN/cni-netns-before" || true
}

start_network() {
  ip netns add "$NETNS"
  "${NSX[@]}" ip link set lo up
  "${NSX[@]}" ip link add cni0 type bridge
  "${NSX[@]}" ip addr add "$NODE_IP/16" dev cni0
  "${NSX[@]}" ip link set cni0 up
}

start_control_plane() {
  local assets="$1" kc="$RUN/node.kubeconfig"
  start etcd "$assets/etcd" --data-dir "$RUN/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster default=http://127.0.0.1:2380
  start kube-apiserver "$assets/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 \
    --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --cert-dir="$RUN/certs" \
    --token-auth-file="$RUN/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$RUN/sa.crt" \
    --service-account-signing-key-file="$RUN/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true --kubelet-preferred-address-types=Hostname,InternalIP
  start node-api-relay socat "UNIX-LISTEN:$RUN/api.sock,fork" TCP:127.0.0.1:6443
  start host-api-relay socat "TCP-LISTEN:$API_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/api.sock"
  wait_for 180 "the apiserver /readyz" curl -skf -H "Authorization: Bearer admin-token" "https://127.0.0.1:$API_PORT/readyz"
  start kube-controller-manager "$assets/kube-controller-manager" --kubeconfig="$kc" --controllers='*' \
    --service-account-private-key-file="$RUN/sa.key" --root-ca-file="$RUN/certs/apiserver.crt" \
    --leader-elect=false --secure-port=0 --port=0 --use-service-account-credentials=false \
    --flex-volume-plugin-dir="$NODE/kubelet/volume-plugins"
}

start_node_agents() {
  local bins="$1" kc="$RUN/node.kubeconfig"
  start kube-scheduler "$bins/kube-scheduler" --kubeconfig="$kc" --leader-elect=false --secure-port=0 --port=0
  start kubelet env AWS_EC2_METADATA_DISABLED=true "$bins/kubelet" --config="$RUN/kubelet.yaml" --kubeconfig="$kc" \
    --container-runtime=remote --container-runtime-endpoint="unix://$NODE/ctd/containerd.sock" \
    --root-dir="$NODE/kubelet" --cert-dir="$NODE/kubelet/pki" --hostname-override=localhost \
    --pod-infra-container-image="$PAUSE_REF" --volume-plugin-dir="$NODE/kubelet/volume-plugins" \
    --node-ip="$NODE_IP"
  start kube-proxy "$bins/kube-proxy" --kubeconfig="$kc" --hostname-override=localhost --proxy-mode=iptables \
    --cluster-cidr=10.88.0.0/16 --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
    --conntrack-tcp-timeout-close-wait=0 --metrics-bind-address=127.0.0.1:10249 \
    --healthz-bind-address=127.0.0.1:10256
  # PostgreSQL of the host loopback, for pods at $NODE_IP:5432.
  start host-pg-relay socat "UNIX-LISTEN:$RUN/pg.sock,fork" "TCP:$PG_ADDR"
  start node-pg-relay socat "TCP-LISTEN:5432,bind=$NODE_IP,fork,reuseaddr" "UNIX-CONNECT:$RUN/pg.sock"
}

cmd_up() {
  [[ "$(id -u)" -eq 0 ]] || die "needs root (network namespace, containerd)"
  if is_up; then
    log "already up"
    print_env
    return 0
  fi
  [[ ! -e "$RUN/pids" ]] || die "a previous node was not torn down; run: $0 down"
  local tool
  for tool in containerd ctr runc nsenter ip socat curl openssl gcc python3 /usr/lib/cni/bridge; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install containerd runc containernetworking-plugins socat iproute2 gcc libc6-dev)"
  done
  local assets bins start_s=$SECONDS
  assets="$("$HACK/envtest-assets.sh" | tail -n 1)"
  bins="$("$HACK/realnode-assets.sh" | tail -n 1)"
  [[ -f "$bins/.sysctl-patched" ]] || die "$bins/kubelet lacks the sysctl patch; refusing to run it"
  ip netns list | grep -qw "$NETNS" && die "network namespace $NETNS exists already (another node?); run: $0 down"
  rm -rf "$RUN"
  mkdir -p "$RUN"
  record_leftovers
  # A failed start tears down what it started (logs kept in $NODE/failed-up/).
  trap 'rc=$?; if ((rc != 0)); then rm -rf "$NODE/failed-up"; cp -r "$RUN" "$NODE/failed-up" 2>/dev/null; cmd_down; fi' EXIT
  : >"$RUN/pids"
  API_PORT="$(free_port)"
  write_configs
  start_network
  start containerd containerd --config "$NODE/ctd/config.toml"
  wait_for 60 "containerd" ctr -a "$NODE/ctd/containerd.sock" version
  ctr_ image ls -q | grep -qxF "$PAUSE_REF" || ctr_ image import "$(pause_image)" >&2
  start_control_plane "$assets"
  start_node_agents "$bins"
  kubeconfig "https://127.0.0.1:$API_PORT" >"$RUN/kubeconfig"
  export KUBECONFIG="$RUN/kubeconfig"
  wait_for 240 "node/localhost Ready" kubectl wait --for=condition=Ready node/localhost --timeout=5s
  wait_for 120 "the default ServiceAccount" kubectl get serviceaccount default -n default
  cat >"$RUN/env" <<EOF
export KUBECONFIG=$RUN/kubeconfig
export AGENTENSOR_REALNODE_NODE_IP=$NODE_IP
export AGENTENSOR_REALNODE_PG_URL=postgresql+psycopg://postgres@$NODE_IP:5432/test
export AGENTENSOR_REALNODE_CONTAINERD=$NODE/ctd/containerd.sock
EOF
  trap - EXIT
  log "node Ready in $((SECONDS - start_s)) s (logs: $RUN)"
  print_env
}

cmd_import() {
  is_up || die "the node is not up"
  local archive
  for archive in "$@"; do
    [[ -s "$archive" ]] || die "image archive $archive: no such file"
    ctr_ image import "$archive" >&2
  done
}

stop_pid() { # stop_pid NAME PID: TERM, up to 15 s, then KILL
  local name="$1" pid="$2" i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.5
  done
  log "$name ($pid) ignored SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

kill_pod_containers() {
  [[ -S "$NODE/ctd/containerd.sock" ]] || return 0
  local id
  for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s KILL "$id" 2>/dev/null || true; done
  sleep 1
  for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$id" >/dev/null 2>&1 || true; done
}

unmount_under() { # lazily unmount every mount point under $1, deepest first
  local m
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

cmd_down() {
  [[ -d "$RUN" ]] || { log "nothing to stop"; return 0; }
  local -a names=() pids=()
  local name pid i
  if [[ -f "$RUN/pids" ]]; then
    while read -r name pid; do names+=("$name"); pids+=("$pid"); done <"$RUN/pids"
  fi
  # Reverse start order, containerd (and the pod containers it runs) last.
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    [[ "${names[i]}" == containerd ]] || stop_pid "${names[i]}" "${pids[i]}"
  done
  for ((i = 0; i < ${#names[@]}; i++)); do
    if [[ "${names[i]}" == containerd ]]; then
      kill_pod_containers
      stop_pid containerd "${pids[i]}"
    fi
  done
  unmount_under "$NODE"
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    grep -qxF "$ns" "$RUN/cni-netns-before" 2>/dev/null && continue
    umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  ip netns del "$NETNS" 2>/dev/null || true
  if [[ -f "$RUN/created-paths" ]]; then
    while read -r p; do
      [[ -n "$p" && -e "$p" ]] || continue
      unmount_under "$p"
      umount -l "$p" 2>/dev/null || true
      rm -rf "$p"
    done <"$RUN/created-paths"
  fi
  if [[ -f "$RUN/created-cgroups" ]]; then
    while read -r p; do
      [[ -n "$p" && -d "$p" ]] || continue
      find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done <"$RUN/created-cgroups"
  fi
  # Pod sandboxes' state and kubelet's pod folders: nothing survives a node; images (ctd/root) do.
  rm -rf "$NODE/kubelet" "$NODE/ctd/state" "$NODE/ctd/runc" "$NODE/cni/ipam" "$RUN"
  log "down"
}

case "${1:-}" in
  up) cmd_up ;;
  env) is_up || die "the node is not up"; print_env ;;
  import) shift; cmd_import "$@" ;;
  down) cmd_down ;;
  *) die "usage: $0 up|env|import ARCHIVE...|down" ;;
esac
