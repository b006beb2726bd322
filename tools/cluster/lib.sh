# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are read by the scripts that source this file
# Names and paths the test cluster's scripts share (sourced, not run). One single-node Kubernetes
# per machine: its bridge, addresses and ports are fixed, its files live in the repository's
# git-ignored .tools/cluster/, and its sockets and pid files in /run/chaos-lab-cluster (a unix
# socket path must stay under 108 characters, wherever the repository is cloned).

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=$REPO/tools/cluster
TOOLS=$REPO/.tools/cluster
BIN=$TOOLS/bin
IMAGES=$TOOLS/images
STATE=$TOOLS/state
LOGS=$STATE/logs
PKI=$STATE/pki
RUNDIR=/run/chaos-lab-cluster
CONTAINERD_SOCK=$RUNDIR/containerd.sock

K8S_VERSION=v1.33.13
NODE_NAME=chaos-lab-node
# The node's address: on a bridge of its own (the apiserver needs an address that is not
# loopback to advertise), reachable from this machine only.
NODE_BRIDGE=clab0
NODE_IP=10.250.0.1
NODE_NET=10.250.0.0/24
# The pods' bridge (the CNI bridge plugin makes it) and address range.
POD_BRIDGE=clab-pods
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/12
DNS_IP=10.96.0.10
CONTEXT=chaos-lab-test
KUBECONFIG_FILE=$STATE/kubeconfig
# Marks the firewall rule that keeps pod traffic on this machine, so that down finds it.
RULE_COMMENT=chaos-lab-test-cluster

export PATH=$BIN:$PATH

# The Kubernetes components, built from tools/cluster/kubernetes (one Go module, pinned).
K8S_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

T0=${T0:-$(date +%s)}
log() { printf '[cluster %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

# waitfor DESCRIPTION SECONDS COMMAND…: runs COMMAND once a second until it succeeds.
waitfor() {
  local what=$1 seconds=$2 i
  shift 2
  for ((i = 0; i < seconds; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${seconds}s waiting for $what"
}

# The content hash of files: a build is redone when its inputs change.
inputs_hash() { cat "$@" | sha256sum | cut -c1-16; }

kctl() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }
