#!/usr/bin/env bash
# Builds the test cluster's extras into .tools/cluster/ (git-ignored), each only when it is missing
# or its inputs changed (a stamp with their hash lies next to each output):
#   bin/kube-router           NetworkPolicy enforcement (--run-firewall only), pinned by
#                             tools/cluster/kube-router/go.mod
#   bin/prometheus            Prometheus, pinned by tools/cluster/prometheus/go.mod to the version
#                             of the chart's image (charts/prometheus.ts)
#   images/prometheus.tar     a local stand-in for that image (nothing can be pulled here)
#
#   tools/cluster/build-extras.sh [kube-router] [prometheus]     (no argument: both)
#
# Called by build.sh; CHAOS_LAB_GO_P sets go build's -p (default 2), as there.
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kube-router prometheus)
for t in "${targets[@]}"; do
  case $t in
    kube-router | prometheus) ;;
    *) die "unknown argument $t (expected kube-router and/or prometheus)" ;;
  esac
done
command -v go >/dev/null || die "Go is needed to build the test cluster (https://go.dev/dl/, or Debian's golang)"
mkdir -p "$BIN" "$IMAGES"
# Static binaries; the go.mod/go.sum in the repository are the pins, never rewritten here.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off
GO_P=${CHAOS_LAB_GO_P:-2}
GOVERSION=$(go env GOVERSION)
# One build at a time (a second one waits): both would write the same files.
exec 9>"$TOOLS/build-extras.lock"
flock 9
tmp_dirs=()
trap 'rm -rf "${tmp_dirs[@]}"' EXIT

# digest WORD FILE…: the hash of the files' content and WORD (the build's recipe).
digest() { { cat "${@:2}"; echo "$1"; } | sha256sum | cut -c1-16; }
# fresh OUTPUT HASH: whether OUTPUT exists and its stamp (OUTPUT.stamp) holds HASH.
fresh() { [ -e "$1" ] && [ "$(cat "$1.stamp" 2>/dev/null)" = "$2" ]; }
# stamp OUTPUT HASH: records that OUTPUT was built from inputs with HASH.
stamp() { echo "$2" > "$1.stamp"; }
# modfield DIR FORMAT MODULE: a field of a module in DIR's build list (go list -m -f).
modfield() { (cd "$1" && go list -m -f "$2" "$3"); }

# --- kube-router ------------------------------------------------------------------------------
# v2.1.0, the version the reference cluster enforced NetworkPolicies with. Its go.mod is not
# tidy on purpose: see the comment there.
build_kube_router() {
  local dir=$SRC/kube-router out=$BIN/kube-router
  local mod=github.com/cloudnativelabs/kube-router/v2
  local recipe="trimpath -s -w $GOVERSION"
  local hash
  hash=$(digest "$recipe" "$dir/go.mod" "$dir/go.sum")
  if fresh "$out" "$hash"; then log "kube-router: up to date"; return 0; fi
  local began version date
  began=$(date +%s)
  log "kube-router: building…"
  version=$(modfield "$dir" '{{.Version}}' "$mod")
  date=$(modfield "$dir" '{{.Time.Format "2006-01-02T15:04:05Z"}}' "$mod")
  (cd "$dir" && nice -n 10 go build -p "$GO_P" -trimpath \
    -ldflags "-s -w -X $mod/pkg/version.Version=$version -X $mod/pkg/version.BuildDate=$date" \
    -o "$out.partial" "$mod/cmd/kube-router")
  mv "$out.partial" "$out"
  stamp "$out" "$hash"
  log "kube-router: built in $(($(date +%s) - began)) s ($("$out" --version 2>&1 | sed -n 1p))"
}

# --- Prometheus -------------------------------------------------------------------------------
# Prometheus 3.x is published as the Go module version v0.3MM.P (3.5.0 → v0.305.0). Its plugins
# package registers all 24 service discoveries (AWS, Azure, GCE… SDKs: a third of the source to
# compile) and 3.5.0 has no build tags to leave them out, nor may `go build -overlay` replace a
# file in the module cache. So the build uses a copy of the module in .tools/cluster/src/, whose
# plugins/plugins.go is tools/cluster/prometheus/sd/plugins.go (kubernetes; file and http stay),
# through a go.work there that replaces the module with the copy; everything else comes from
# the pinned go.mod/go.sum. `go build` straight from tools/cluster/prometheus builds the full one.
# Tag netgo as upstream's .promu.yml; not builtinassets: the module has no web/ui/static, so the
# web UI answers with errors; the API, /metrics, /-/ready and /-/healthy work.
PROM_TAGS=netgo
build_prometheus() {
  local dir=$SRC/prometheus out=$BIN/prometheus src=$TOOLS/src
  local mod=github.com/prometheus/prometheus
  local recipe="tags=$PROM_TAGS trimpath -s -w $GOVERSION"
  local hash
  hash=$(digest "$recipe" "$dir/go.mod" "$dir/go.sum" "$dir/sd/plugins.go")
  if fresh "$out" "$hash"; then log "prometheus: up to date"; return 0; fi
  local began moddir version date gover
  began=$(date +%s)
  log "prometheus: building…"
  # go mod download checks the module against go.sum.
  (cd "$dir" && go mod download "$mod")
  moddir=$(modfield "$dir" '{{.Dir}}' "$mod")
  version=$(cat "$moddir/VERSION")
  date=$(modfield "$dir" '{{.Time.Format "20060102-15:04:05"}}' "$mod")
  gover=$(cd "$dir" && go mod edit -print | awk '$1 == "go" { print $2 }')
  mkdir -p "$src"
  rm -rf "$src/prometheus"
  cp -R "$moddir" "$src/prometheus"
  chmod -R u+w "$src/prometheus"
  grep -v '^//go:build ignore$' "$dir/sd/plugins.go" > "$src/prometheus/plugins/plugins.go"
  rm -f "$src/prometheus.go.work.sum"
  cat > "$src/prometheus.go.work" <<EOF
go $gover

use $(realpath --relative-to="$src" "$dir")

replace $mod $(modfield "$dir" '{{.Version}}' "$mod") => ./prometheus
EOF
  local v=github.com/prometheus/common/version
  (cd "$dir" && GOWORK=$src/prometheus.go.work nice -n 10 go build -p "$GO_P" -trimpath -tags "$PROM_TAGS" \
    -ldflags "-s -w -X $v.Version=$version -X $v.Revision=$(modfield "$dir" '{{.Version}}' "$mod") -X $v.Branch=chaos-lab -X $v.BuildUser=chaos-lab -X $v.BuildDate=$date" \
    -o "$out.partial" "$mod/cmd/prometheus")
  mv "$out.partial" "$out"
  stamp "$out" "$hash"
  log "prometheus: built in $(($(date +%s) - began)) s ($("$out" --version 2>&1 | sed -n 1p))"
}

# The image: a local stand-in for the chart's prom/prometheus:vX.Y.Z, laid out as upstream's
# Dockerfile as far as the chart needs it (no promtool, no busybox; the image's config is
# upstream's example). Tagged exactly as the kubelet asks for it (containerd names
# prom/prometheus:v3.5.0 docker.io/prom/prometheus:v3.5.0), so that the chart runs unchanged.
# mkimage.sh writes no labels (read: org.opencontainers.image.description "local build
# stand-in, tools/cluster/build-extras.sh") and gives every file to root: /prometheus, owned by
# nobody upstream, is world-writable here instead (the chart mounts an emptyDir there anyway).
image_prometheus() {
  local out=$IMAGES/prometheus.tar version ref hash
  version=$("$BIN/prometheus" --version 2>/dev/null | awk 'NR == 1 { print $3 }')
  ref=docker.io/prom/prometheus:v$version
  grep -q "'prom/prometheus:v$version'" "$REPO/charts/prometheus.ts" ||
    die "charts/prometheus.ts does not use prom/prometheus:v$version: pin tools/cluster/prometheus/go.mod to the chart's version"
  hash=$(digest "$ref" "$BIN/prometheus.stamp" "$SRC/images/mkimage.sh" "$0")
  if fresh "$out" "$hash"; then log "prometheus-image: up to date ($ref)"; return 0; fi
  local began root moddir
  began=$(date +%s)
  moddir=$(modfield "$SRC/prometheus" '{{.Dir}}' github.com/prometheus/prometheus)
  root=$(mktemp -d)
  tmp_dirs+=("$root")
  mkdir -p "$root/bin" "$root/etc/prometheus" "$root/prometheus"
  cp "$BIN/prometheus" "$root/bin/prometheus"
  cp "$moddir/documentation/examples/prometheus.yml" "$root/etc/prometheus/prometheus.yml"
  cp "$moddir/LICENSE" "$moddir/NOTICE" "$root/"
  printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
  chmod 0755 "$root" "$root/bin" "$root/etc" "$root/etc/prometheus" "$root/bin/prometheus"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/prometheus/prometheus.yml" "$root/LICENSE" "$root/NOTICE"
  chmod 0777 "$root/prometheus"
  bash "$SRC/images/mkimage.sh" "$root" "$ref" "$out" '["/bin/prometheus"]' \
    '["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"]' nobody /prometheus
  rm -rf "$root"
  stamp "$out" "$hash"
  log "prometheus-image: built in $(($(date +%s) - began)) s ($ref, $(du -h "$out" | cut -f1))"
}

for t in "${targets[@]}"; do
  case $t in
    kube-router) build_kube_router ;;
    prometheus)
      build_prometheus
      image_prometheus
      ;;
  esac
done
