#!/usr/bin/env bash
# Builds what the test cluster needs and is not there yet, into .tools/cluster/ (git-ignored):
# the Kubernetes components, CoreDNS, kube-router and Prometheus from the Go module proxy (pinned
# by the go.mod/go.sum beside this script), and the images the node runs (nothing can be pulled:
# each one is made here). A step is redone only when its inputs changed; each prints its time.
#
#   tools/cluster/build.sh          everything
#   tools/cluster/build.sh --no-lab-image   all but the lab's own image
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

lab_image=1
for arg in "$@"; do
  case $arg in
    --no-lab-image) lab_image=0 ;;
    *) die "unknown argument $arg (expected --no-lab-image)" ;;
  esac
done

command -v go >/dev/null || die "Go is needed to build the test cluster (https://go.dev/dl/, or Debian's golang)"
for tool in etcd containerd runc iptables ipset gcc; do
  command -v "$tool" >/dev/null || die "$tool is missing: run tools/cluster/deps.sh (as root) first"
done
mkdir -p "$BIN" "$IMAGES"
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# Both cores when the machine is ours (CI); nice, so that an interactive shell stays usable.
GO_P=${CHAOS_LAB_GO_P:-2}

# stage NAME STAMP-HASH OUTPUTS… -- COMMAND…: runs COMMAND unless every output exists and the
# stamp says it was built from the same inputs.
stage() {
  local name=$1 hash=$2 stamp=$TOOLS/stamps/$1
  shift 2
  local outputs=()
  while [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  shift
  local fresh=1 out
  for out in "${outputs[@]}"; do [ -e "$out" ] || fresh=0; done
  if [ "$fresh" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    log "$name: up to date"
    return 0
  fi
  local began
  began=$(date +%s)
  log "$name: building…"
  "$@"
  mkdir -p "$TOOLS/stamps"
  echo "$hash" > "$stamp"
  log "$name: built in $(($(date +%s) - began)) s"
}

k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=33 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
build_kubernetes() {
  local packages=() c
  for c in "${K8S_COMMANDS[@]}"; do packages+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$SRC/kubernetes" && nice -n 10 go build -p "$GO_P" -trimpath -ldflags "$k8s_ldflags" -o "$BIN/" "${packages[@]}")
}
k8s_outputs=()
for c in "${K8S_COMMANDS[@]}"; do k8s_outputs+=("$BIN/$c"); done
stage kubernetes "$(inputs_hash "$SRC/kubernetes/go.mod" "$SRC/kubernetes/go.sum"; echo "$k8s_ldflags")" \
  "${k8s_outputs[@]}" -- build_kubernetes

build_coredns() {
  (cd "$SRC/coredns" && nice -n 10 go build -p "$GO_P" -trimpath -ldflags "-s -w" -o "$BIN/coredns" .)
}
stage coredns "$(inputs_hash "$SRC"/coredns/go.mod "$SRC"/coredns/go.sum "$SRC"/coredns/main.go)" \
  "$BIN/coredns" -- build_coredns

# The sandbox ("pause") image: a static C program, as Kubernetes' own.
image_pause() {
  local root
  root=$(mktemp -d)
  gcc -static -O2 -o "$root/pause" "$SRC/images/pause.c"
  strip "$root/pause"
  bash "$SRC/images/mkimage.sh" "$root" localhost/pause:chaos-lab "$IMAGES/pause.tar" '["/pause"]'
  rm -rf "$root"
}
stage pause-image "$(inputs_hash "$SRC/images/pause.c" "$SRC/images/mkimage.sh")" "$IMAGES/pause.tar" -- image_pause

image_coredns() {
  local root
  root=$(mktemp -d)
  cp "$BIN/coredns" "$root/coredns"
  bash "$SRC/images/mkimage.sh" "$root" localhost/coredns:chaos-lab "$IMAGES/coredns.tar" '["/coredns"]'
  rm -rf "$root"
}
stage coredns-image "$(inputs_hash "$BIN/coredns" "$SRC/images/mkimage.sh")" "$IMAGES/coredns.tar" -- image_coredns

# kube-router (NetworkPolicy) and Prometheus with its image.
bash "$SRC/build-extras.sh"

if [ "$lab_image" = 1 ]; then
  bash "$SRC/images/lab-image.sh"
fi
log "build done"
