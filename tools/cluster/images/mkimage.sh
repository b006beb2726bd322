#!/usr/bin/env bash
# Packs a root filesystem folder into a one-layer image archive in `docker save` format, which
# `ctr images import` and `docker load` both take. Nothing can be pulled on the test cluster's
# machine, so every image it runs is made this way (or by the private Docker engine).
#
#   mkimage.sh ROOTFS NAME:TAG OUT.tar [ENTRYPOINT-JSON] [CMD-JSON] [USER] [WORKDIR]
#   mkimage.sh rootfs localhost/pause:chaos-lab pause.tar '["/pause"]'
set -euo pipefail
rootfs=$1 ref=$2 out=$3 entry=${4:-null} cmd=${5:-null} user=${6:-} workdir=${7:-/}
[ -d "$rootfs" ] || { echo "mkimage: no folder $rootfs" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Same bytes for the same tree: fixed owner, time and order.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$diff_id"
mv "$work/layer.tar" "$work/$diff_id/layer.tar"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"User":"%s","WorkingDir":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tools/cluster/images/mkimage.sh"}]}' \
  "$entry" "$cmd" "$user" "$workdir" "$diff_id" > "$work/config.json"
config_id=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config_id" "$ref" "$diff_id" > "$work/manifest.json"
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$out.partial" manifest.json "$config_id.json" "$diff_id"
mv "$out.partial" "$out"
echo "mkimage: $ref → $out ($(du -h "$out" | cut -f1))"
