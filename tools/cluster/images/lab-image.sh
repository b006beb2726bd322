#!/usr/bin/env bash
# Builds the lab image (the repository's Dockerfile) in the private Docker engine and saves it
# for the test cluster, which imports it into its containerd:
#
#   .tools/cluster/images/chaos-lab.tar   `docker save` of chaos-lab:<first 12 hex of the id>
#   .tools/cluster/images/chaos-lab.tag   that tag, one line
#
# Starts the private engine if it is not running (and then stops it at the end), makes the
# node base image's stand-in if it is missing or out of date (node-base.sh), and builds with the classic
# builder: this engine has no BuildKit, nor has colima's or a distro's docker. The build uses
# the host's network because the engine has no bridge, and the Dockerfile's RUN steps need
# Debian's mirror and the npm registry. The tag names the image id, so an unchanged image
# is not saved again.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "$#" -eq 0 ] || die "usage: ${0##*/} (no arguments)"

out=$state/images
tar_file=$out/chaos-lab.tar
tag_file=$out/chaos-lab.tag

# The build context is the repository: without .dockerignore it would carry node_modules and
# .tools (gigabytes of rootfs, Docker data and Go caches).
[ -f "$repo/.dockerignore" ] || die "no $repo/.dockerignore: the build context would be the whole repository"
node_version=$(sed -n 's/^ARG NODE_VERSION=\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$repo/Dockerfile" | head -n 1)
[ -n "$node_version" ] || die "no 'ARG NODE_VERSION=<major>.<minor>' line in $repo/Dockerfile"
base_image=node:$node_version-bookworm-slim

build() {
  DOCKER_BUILDKIT=0 "$DOCKER" build --network host --tag chaos-lab:dev "$repo"
}

save() {
  mkdir -p "$out"
  "$DOCKER" save --output "$tar_file.partial" "$tag"
  chmod 0644 "$tar_file.partial" # docker save makes it 0600, unlike the cluster's other images
  mv "$tar_file.partial" "$tar_file"
  echo "$tag" >"$tag_file"
}

use_private_dockerd
# Makes the stand-in when it is missing or its recipe changed; otherwise says it is up to date.
timed "the $base_image stand-in" bash "$repo/tools/cluster/images/node-base.sh"
timed "docker build chaos-lab:dev" build
id=$("$DOCKER" image inspect --format '{{.Id}}' chaos-lab:dev)
id=${id#sha256:}
tag=chaos-lab:${id:0:12}
"$DOCKER" tag chaos-lab:dev "$tag"
previous=$(cat "$tag_file" 2>/dev/null || true)
if [ "$previous" = "$tag" ] && [ -f "$tar_file" ]; then
  say "$tag: unchanged, $tar_file is up to date"
else
  timed "docker save $tag" save
  # The previous build's tag only keeps an old image alive in the engine.
  if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then
    "$DOCKER" rmi "$previous" >/dev/null 2>&1 || true
  fi
fi
size=$("$DOCKER" image inspect --format '{{.Size}}' "$tag")
say "$tag: image $((size / 1000000)) MB, archive $(du -h "$tar_file" | cut -f1) in $tar_file"
