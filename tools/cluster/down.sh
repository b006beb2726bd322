#!/usr/bin/env bash
# Stops the test cluster and removes everything up.sh made: processes, containers and their
# mounts and network namespaces, the bridges, the firewall rules and ipsets of kube-proxy,
# kube-router and CNI, the cgroups, the state; and the machine's forwarding settings as they
# were. Safe to run at any time, twice, or after a half-made start.
set -uo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || die "the test cluster needs root"

# Whether a process runs: a zombie does not (the daemons are orphans once up.sh has exited, and
# PID 1 of a container may be slow to reap them).
running() {
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# stop NAME PATTERN: TERM, up to 20 s, then KILL — by pid file, and by command line in case the
# pid file is gone (a killed up.sh).
stop() {
  local name=$1 pattern=$2 pids p i left
  pids=$(cat "$RUNDIR/$name.pid" 2>/dev/null; pgrep -f "$pattern" || true)
  for p in $pids; do kill "$p" 2>/dev/null; done
  for ((i = 0; i < 40; i++)); do
    left=0
    for p in $pids; do running "$p" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  for p in $pids; do running "$p" && kill -9 "$p" 2>/dev/null; done
  rm -f "$RUNDIR/$name.pid"
}

if [ -f "$KUBECONFIG_FILE" ] && kctl get --raw /readyz >/dev/null 2>&1; then
  # Pods first, while the kubelet still runs: it tears their sandboxes down (CNI DEL, netns, mounts).
  kctl delete deployments,daemonsets,replicasets,statefulsets,jobs --all --all-namespaces --wait=false >/dev/null 2>&1
  kctl delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
  for ((i = 0; i < 60; i++)); do
    [ -z "$(kctl get pods -A -o name 2>/dev/null)" ] && break
    sleep 1
  done
fi
stop kube-router "^kube-router --run-firewall"
[ -x "$BIN/kube-router" ] && "$BIN/kube-router" --cleanup-config >/dev/null 2>&1
stop kubelet "^kubelet --config=$STATE/"
if [ -S "$CONTAINERD_SOCK" ]; then
  C=(ctr -a "$CONTAINERD_SOCK" -n k8s.io)
  for t in $("${C[@]}" tasks ls -q 2>/dev/null); do "${C[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $("${C[@]}" tasks ls -q 2>/dev/null); do "${C[@]}" tasks rm -f "$t" >/dev/null 2>&1; done
  for c in $("${C[@]}" containers ls -q 2>/dev/null); do "${C[@]}" containers rm "$c" >/dev/null 2>&1; done
fi
stop containerd "^containerd --config $STATE/"
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK"); do kill -9 "$p" 2>/dev/null; done
stop kube-proxy "^kube-proxy --config=$STATE/"
[ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
stop kube-scheduler "^kube-scheduler --kubeconfig=$PKI/"
stop kube-controller-manager "^kube-controller-manager --kubeconfig=$PKI/"
stop kube-apiserver "^kube-apiserver --etcd-servers=http://127.0.0.1:2379"
stop etcd "^etcd --name chaos-lab "

# Mounts under our folders (containers' rootfs, volumes, the sandboxes' shm), deepest first.
awk -v s="$STATE/" -v r="$RUNDIR/" 'index($2, s) == 1 || index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
# The pods' network namespaces that the kubelet could not tear down (CNI names them cni-…).
for n in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
  if ip netns exec "$n" ip -o addr 2>/dev/null | grep -q "inet ${NODE_POD_CIDR%.*}\."; then ip netns delete "$n"; fi
done
ip link del "$POD_BRIDGE" 2>/dev/null
ip link del "$NODE_BRIDGE" 2>/dev/null
while iptables -t mangle -D FORWARD -s "$POD_CIDR" ! -o "$POD_BRIDGE" -m comment --comment "$RULE_COMMENT" -j DROP 2>/dev/null; do :; done
# The chains kube-proxy, kube-router and CNI made (KUBE-*, CNI-*), and the jumps to them.
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    "$ipt" -t "$table" -S 2>/dev/null |
      grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-)' | sed 's/^-A /-D /' |
      while read -r rule; do eval "$ipt -t $table $rule"; done
    chains=$("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}')
    for c in $chains; do "$ipt" -t "$table" -F "$c" 2>/dev/null; done
    for c in $chains; do "$ipt" -t "$table" -X "$c" 2>/dev/null; done
  done
done
for s in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-)'); do ipset destroy "$s" 2>/dev/null; done
if [ -f "$RUNDIR/saved-sysctls" ]; then
  while IFS='=' read -r key value; do
    case $key in
      ip_forward) sysctl -qw net.ipv4.ip_forward="$value" ;;
      bridge_nf_call_iptables) sysctl -qw net.bridge.bridge-nf-call-iptables="$value" ;;
    esac
  done < "$RUNDIR/saved-sysctls"
fi
# The pods' cgroups (cgroupfs driver), empty once their processes are gone.
for g in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$g" ] && find "$g" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# Paths the kubelet and CNI create outside their configured folders, when up.sh found them absent.
if [ -f "$RUNDIR/made-paths" ]; then
  while read -r made; do rm -rf "$made"; done < "$RUNDIR/made-paths"
fi
rm -rf "$STATE" "$RUNDIR"
log "the test cluster is down"
exit 0
