#!/usr/bin/env bash
# Builds k6 v2.2.0 from the Go module proxy into .tools/bin/k6 (git-ignored), or reuses the one already there.
#
# tools/k6/go.mod pins k6 and every module it needs (`tool go.k6.io/k6/v2`), and go.sum holds the checksum of
# each of them, so the build downloads exactly those versions and verifies them without asking the checksum
# database. To move to another k6 version: change K6_VERSION and the require line, then in tools/k6 run
# `go mod tidy`.
set -euo pipefail

K6_VERSION=v2.2.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.tools/bin/k6"

if [ -x "$bin" ]; then
  found="$("$bin" version 2>/dev/null | head -n 1 || true)"
  case "$found" in
  "k6 $K6_VERSION "*)
    echo "k6 $K6_VERSION is already in .tools/bin/k6; reusing it"
    exit 0
    ;;
  esac
  echo "found ${found:-a k6 that does not run} in .tools/bin/k6; building k6 $K6_VERSION in its place"
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<EOF
tools/k6/install.sh: Go was not found on PATH, and it is needed to build k6 $K6_VERSION.
  Install Go 1.25 or newer (https://go.dev/doc/install) and run this again,
  or install k6 v2 itself instead: https://grafana.com/docs/k6/latest/set-up/install-k6/
EOF
  exit 1
fi

# Go's default GOPROXY falls back to `direct` (the modules' own repositories) when the proxy lacks something;
# where only the proxy is reachable that fallback just fails later with a less helpful message. A GOPROXY of
# your own (environment or `go env -w`) is kept.
if [ -z "${GOPROXY:-}" ] && [ "$(go env GOPROXY)" = "https://proxy.golang.org,direct" ]; then
  export GOPROXY=https://proxy.golang.org
fi

echo "building k6 $K6_VERSION from the Go module proxy (1–5 minutes, more on a busy machine)…"
mkdir -p "$(dirname "$bin")"
partial="$bin.partial.$$"
trap 'rm -f "$partial"' EXIT
# -mod=readonly: go.mod and go.sum are the whole truth; a GOFLAGS=-mod=mod in your environment must not let
# the build pick other versions.
(cd "$here" && go build -mod=readonly -trimpath -o "$partial" go.k6.io/k6/v2)
mv "$partial" "$bin"
echo "built $("$bin" version | head -n 1) into .tools/bin/k6"
