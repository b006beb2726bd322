#!/usr/bin/env bash
# Starts the test cluster: a single-node Kubernetes (etcd, apiserver, controller-manager,
# scheduler, containerd + runc, kubelet, kube-proxy, CoreDNS, kube-router for NetworkPolicy) from
# what build.sh made. Its network stays on this machine: the node on a bridge of its own, a
# firewall rule that drops any pod packet bound elsewhere, and a cluster DNS with no upstream.
# `down.sh` removes everything it made. Needs root.
#
#   tools/cluster/up.sh
#   export KUBECONFIG=$PWD/.tools/cluster/state/kubeconfig   # context chaos-lab-test
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "the test cluster needs root (network, mounts, containers)"
for c in "${K8S_COMMANDS[@]}" coredns kube-router; do
  [ -x "$BIN/$c" ] || die "$BIN/$c is missing: run tools/cluster/build.sh first"
done
for image in pause coredns; do
  [ -f "$IMAGES/$image.tar" ] || die "$IMAGES/$image.tar is missing: run tools/cluster/build.sh first"
done

if [ -f "$RUNDIR/up" ]; then
  if kctl get --raw /readyz >/dev/null 2>&1; then
    log "the test cluster is already up (KUBECONFIG=$KUBECONFIG_FILE)"
    exit 0
  fi
  log "a test cluster was left half up: removing it first"
  bash "$SRC/down.sh"
fi

if iptables -S 2>/dev/null | grep -q '^-N KUBE-' || ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
  die "another Kubernetes (or a test cluster whose state is gone) has left KUBE-* chains or the bridge $NODE_BRIDGE on this machine; tools/cluster/down.sh removes a test cluster's"
fi

# Whatever goes wrong from here on, nothing is left half made.
undo_on_failure() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "start failed (exit $status): removing what was made"
    bash "$SRC/down.sh" >/dev/null 2>&1 || true
  fi
}
trap undo_on_failure EXIT

mkdir -p "$RUNDIR" "$LOGS" "$STATE/kubelet" "$STATE/cni"
# The machine's settings that the cluster changes (CNI's gateway turns on forwarding), kept for down.
{
  echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] &&
    echo "bridge_nf_call_iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)"
} > "$RUNDIR/saved-sysctls"
# Paths the kubelet and CNI make outside the folders they are given: down removes those that
# were not here before.
for path in /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers /run/netns; do
  [ -e "$path" ] || echo "$path"
done > "$RUNDIR/made-paths"
touch "$RUNDIR/up"

ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# Pod packets go to other pods and to this machine, nowhere else. In mangle, before the filter
# table's FORWARD chain, where kube-proxy and kube-router add their own accepting rules.
iptables -t mangle -I FORWARD 1 -s "$POD_CIDR" ! -o "$POD_BRIDGE" -m comment --comment "$RULE_COMMENT" -j DROP
# Bridged pod-to-pod traffic must pass iptables (Services' DNAT replies, NetworkPolicies).
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
log "network: bridge $NODE_BRIDGE $NODE_IP, pod traffic kept on this machine"

bash "$SRC/pki.sh"
log "certificates made"

# start NAME COMMAND…: a daemon in its own session, its pid in $RUNDIR, its output in $LOGS.
start() {
  local name=$1
  shift
  setsid nohup nice -n 10 "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUNDIR/$name.pid"
}
fill() {
  sed -e "s#@STATE@#$STATE#g" -e "s#@RUNDIR@#$RUNDIR#g" -e "s#@PKI@#$PKI#g" -e "s#@NODE_IP@#$NODE_IP#g" \
    -e "s#@NODE_NET@#$NODE_NET#g" -e "s#@NODE_NAME@#$NODE_NAME#g" -e "s#@POD_CIDR@#$POD_CIDR#g" \
    -e "s#@NODE_POD_CIDR@#$NODE_POD_CIDR#g" -e "s#@POD_BRIDGE@#$POD_BRIDGE#g" -e "s#@DNS_IP@#$DNS_IP#g" "$1"
}
alive() { kill -0 "$(cat "$RUNDIR/$1.pid")" 2>/dev/null || die "$1 exited: $(tail -5 "$LOGS/$1.log")"; }

start etcd etcd --name chaos-lab --data-dir "$STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster chaos-lab=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
start kube-apiserver kube-apiserver \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address="$NODE_IP" --secure-port=6443 --advertise-address="$NODE_IP" \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --profiling=false --v=1
waitfor "the apiserver (see $LOGS/kube-apiserver.log)" 120 kctl get --raw /readyz
alive etcd
log "apiserver ready"

start kube-controller-manager kube-controller-manager --kubeconfig="$PKI/kcm.kubeconfig" \
  --authentication-kubeconfig="$PKI/kcm.kubeconfig" --authorization-kubeconfig="$PKI/kcm.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SERVICE_CIDR" --controllers='*,bootstrapsigner,tokencleaner' --v=1
start kube-scheduler kube-scheduler --kubeconfig="$PKI/sched.kubeconfig" \
  --authentication-kubeconfig="$PKI/sched.kubeconfig" --authorization-kubeconfig="$PKI/sched.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --v=1

fill "$SRC/conf/containerd.toml" > "$STATE/containerd.toml"
fill "$SRC/conf/cni.conflist" > "$STATE/cni/10-chaos-lab.conflist"
start containerd containerd --config "$STATE/containerd.toml"
waitfor "containerd (see $LOGS/containerd.log)" 60 ctr -a "$CONTAINERD_SOCK" version
for tar in "$IMAGES"/*.tar; do
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$tar" >/dev/null
done
log "containerd up; imported $(find "$IMAGES" -maxdepth 1 -name '*.tar' | wc -l) images"

fill "$SRC/conf/kubelet.yaml" > "$STATE/kubelet.yaml"
start kubelet kubelet --config="$STATE/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
  --root-dir="$STATE/kubelet" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" \
  --tls-cert-file="$PKI/kubelet-serving.crt" --tls-private-key-file="$PKI/kubelet-serving.key" --v=1
waitfor "node $NODE_NAME to be Ready (see $LOGS/kubelet.log)" 120 \
  kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
log "node Ready"

fill "$SRC/conf/kube-proxy.yaml" > "$STATE/kube-proxy.yaml"
start kube-proxy kube-proxy --config="$STATE/kube-proxy.yaml" --v=1
# NetworkPolicy: kube-router's firewall only (iptables and ipset; kube-network-policies needs
# NFT_QUEUE, which these kernels lack).
start kube-router kube-router --run-firewall=true --run-router=false --run-service-proxy=false \
  --enable-cni=false --enable-ipv6=false --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$NODE_NAME" \
  --health-port=20244 --iptables-sync-period=30s --v=1
fill "$SRC/conf/coredns.yaml" | kctl apply -f - >/dev/null
kctl -n kube-system rollout status deploy/coredns --timeout=180s >/dev/null
for daemon in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-router; do
  alive "$daemon"
done
# With autogroup scheduling (the kernel's default), nice counts only within a session, and each
# daemon is a session of its own: it would weigh as much as the whole load generator's session.
# Each daemon's autogroup is niced instead (the pods are weighed by the kubepods cgroup).
if [ -e /proc/self/autogroup ]; then
  own=$(cut -d' ' -f1 /proc/self/autogroup)
  for pidfile in "$RUNDIR"/*.pid; do
    pid=$(cat "$pidfile")
    group=$(cut -d' ' -f1 "/proc/$pid/autogroup" 2>/dev/null) || continue
    [ "$group" = "$own" ] || echo 10 > "/proc/$pid/autogroup" 2>/dev/null || true
  done
fi
log "cluster DNS ready; the test cluster is up"
trap - EXIT
echo "export KUBECONFIG=$KUBECONFIG_FILE   # context $CONTEXT"
