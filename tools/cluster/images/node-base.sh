#!/usr/bin/env bash
# Makes a local STAND-IN for the official node:<NODE_VERSION>-bookworm-slim image, which the
# Dockerfile builds FROM, in the private Docker engine. Nothing can be pulled on the test
# cluster's machine, so the image is put together from what is here:
#
#   - Debian bookworm, minbase variant, from Debian's mirror (debootstrap; cached in
#     .tools/cluster/rootfs/node-bookworm until its stamp file is removed), slimmed as
#     debian:bookworm-slim is (no docs, man pages or locales);
#   - the Node.js that runs the tests on this machine (node, npm and corepack), laid out as the
#     official image has them: /usr/local/bin/node, /usr/local/lib/node_modules/{npm,corepack}
#     and /usr/local/bin/{npm,npx,corepack} symlinks;
#   - the official image's `node` user (uid/gid 1000, /home/node), its docker-entrypoint.sh,
#     ENTRYPOINT and CMD ["node"].
#
# It is NOT the official image: no yarn, another Node.js build (Debian's or NodeSource's, not
# nodejs.org's), another patch release perhaps. It carries the label dev.chaos-lab.stand-in=true
# so that nobody mistakes it for the real one.
#
#   node-base.sh     # NODE_VERSION from the Dockerfile's ARG NODE_VERSION=
#
# DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "$#" -eq 0 ] || die "usage: ${0##*/} (no arguments)"

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=$state/rootfs/node-bookworm
base_stamp=$state/rootfs/node-bookworm.stamp
tree=$state/rootfs/node-image

node_version=$(sed -n 's/^ARG NODE_VERSION=\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$repo/Dockerfile" | head -n 1)
[ -n "$node_version" ] || die "no 'ARG NODE_VERSION=<major>.<minor>' line in $repo/Dockerfile"
tag=node:$node_version-bookworm-slim

node_bin=$(command -v node) || die "no node on PATH: the stand-in takes this machine's Node.js"
node_bin=$(readlink -f "$node_bin")
node_prefix=$(dirname "$(dirname "$node_bin")")
node_full=$("$node_bin" -v)
node_full=${node_full#v}
if [ "${node_full%.*}" != "$node_version" ]; then
  die "this machine's node ($node_bin) is $node_full, but the Dockerfile asks for node $node_version" \
    "(ARG NODE_VERSION): the stand-in image carries this machine's Node.js, so install Node.js" \
    "$node_version (e.g. NodeSource's node_${node_version%%.*}.x) or change ARG NODE_VERSION"
fi
npm_dir=$node_prefix/lib/node_modules/npm
corepack_dir=$node_prefix/lib/node_modules/corepack
[ -f "$npm_dir/bin/npm-cli.js" ] || die "no npm beside $node_bin (looked in $npm_dir)"

# Where this machine reaches the npm registry through a TLS-intercepting proxy, npm trusts the
# proxy's CA through npm's cafile (or NODE_EXTRA_CA_CERTS): without it `npm ci` in the
# Dockerfile fails with SELF_SIGNED_CERT_IN_CHAIN. The stand-in then carries that bundle for
# npm only (the global npmrc: node itself and the services do not read it). The official
# image has neither file.
npm_ca=$("$node_bin" "$npm_dir/bin/npm-cli.js" config get cafile 2>/dev/null || true)
[ -f "$npm_ca" ] || npm_ca=${NODE_EXTRA_CA_CERTS:-}
[ -f "$npm_ca" ] || npm_ca=

# What the image is made of: when it changes (this script, Node.js, npm, the CA bundle), the
# image is made again; when it does not, there is nothing to do.
recipe=$(
  {
    cat "${BASH_SOURCE[0]}" "$node_bin" "$npm_dir/package.json"
    [ -z "$npm_ca" ] || cat "$npm_ca"
  } | sha256sum | cut -c1-16
)

# Unmounts whatever debootstrap left mounted in a tree (it mounts /proc and /sys while it
# installs, and a failed run leaves them).
unmount_under() {
  local mount
  while read -r mount; do
    [ -n "$mount" ] || continue
    umount "$mount" 2>/dev/null || umount --lazy "$mount"
  done < <(awk -v p="$1" '{ if ($5 == p || index($5, p "/") == 1) print $5 }' /proc/self/mountinfo | sort -r)
}

debootstrap_base() {
  command -v debootstrap >/dev/null || die "no debootstrap: apt-get install -y --no-install-recommends debootstrap"
  unmount_under "$base"
  rm -rf "$base"
  mkdir -p "$base"
  debootstrap --variant=minbase bookworm "$base" "$mirror" >"$state/rootfs/debootstrap.log" 2>&1 || {
    unmount_under "$base"
    tail -n 30 "$state/rootfs/debootstrap.log" >&2
    die "debootstrap failed (log: $state/rootfs/debootstrap.log)"
  }
  unmount_under "$base"
  # As debian:bookworm-slim: dpkg leaves out docs, man pages and locales, apt keeps no caches
  # or package lists, and all three suites are in the sources.
  mkdir -p "$base/etc/dpkg/dpkg.cfg.d" "$base/etc/apt/apt.conf.d" "$base/etc/apt/sources.list.d"
  cat >"$base/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$base/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$base/etc/apt/apt.conf.d/docker-no-languages"
  rm -f "$base/etc/apt/sources.list"
  cat >"$base/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$base/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$base/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$base"/usr/share/{info,linda,man,locale}/* "$base"/usr/share/lintian/overrides/*
  rm -rf "$base"/var/lib/apt/lists/* "$base"/var/cache/apt/*.bin "$base"/var/cache/apt/archives/*.deb
  # The engine provides these per container; the image has none (as the official ones).
  rm -f "$base/etc/hostname" "$base/etc/resolv.conf"
  printf 'debootstrap --variant=minbase bookworm %s\nmade %s\n' "$mirror" "$(date -u +%FT%TZ)" >"$base_stamp"
  say "bookworm minbase: $(du -sh "$base" | cut -f1)"
}

# in_tree COMMAND…: runs a command in the tree with a clean environment, as a container would.
in_tree() { env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$tree" "$@"; }

assemble() {
  rm -rf "$tree"
  cp -a "$base" "$tree"
  install -D -m 0755 "$node_bin" "$tree/usr/local/bin/node"
  mkdir -p "$tree/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$tree/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tree/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tree/usr/local/bin/npx"
  if [ -f "$corepack_dir/dist/corepack.js" ]; then
    cp -a "$corepack_dir" "$tree/usr/local/lib/node_modules/corepack"
    ln -s ../lib/node_modules/corepack/dist/corepack.js "$tree/usr/local/bin/corepack"
  fi
  if [ -n "$npm_ca" ]; then
    install -D -m 0644 "$npm_ca" "$tree/usr/local/etc/npm-ca.crt"
    echo "cafile=/usr/local/etc/npm-ca.crt" >"$tree/usr/local/etc/npmrc"
    say "npm in the stand-in trusts this machine's CA bundle $npm_ca (as npm here does)"
  fi
  # The official image's user and entrypoint, word for word.
  in_tree groupadd --gid 1000 node
  in_tree useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  cat >"$tree/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
EOF
  chmod 0755 "$tree/usr/local/bin/docker-entrypoint.sh"
  # The binary must run on bookworm's libraries, not only on this machine's.
  local inside
  inside=$(in_tree node -e 'process.stdout.write(process.version)')
  [ "$inside" = "v$node_full" ] || die "node in the stand-in says '$inside', expected v$node_full"
  say "node $inside and npm $(in_tree npm -v) run in the tree"
}

import_image() {
  tar --numeric-owner -C "$tree" -c . |
    "$DOCKER" import \
      --message "stand-in for $tag: debootstrap bookworm minbase + this machine's Node.js $node_full (tools/cluster/images/node-base.sh)" \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV NODE_VERSION=$node_full" \
      --change "LABEL dev.chaos-lab.stand-in=true dev.chaos-lab.stand-in-for=$tag dev.chaos-lab.made-by=tools/cluster/images/node-base.sh dev.chaos-lab.npm-ca=${npm_ca:-none} dev.chaos-lab.recipe=$recipe" \
      --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
      --change 'CMD ["node"]' \
      - "$tag" >/dev/null
  rm -rf "$tree"
  say "$tag: $("$DOCKER" image inspect --format '{{.Id}} {{.Size}}' "$tag" |
    awk '{ printf "%s, %.0f MB", substr($1, 8, 12), $2 / 1e6 }') (a stand-in, labelled dev.chaos-lab.stand-in=true)"
}

[ "$(id -u)" -eq 0 ] || die "debootstrap and chroot need root"
use_private_dockerd
made=$("$DOCKER" image inspect --format '{{index .Config.Labels "dev.chaos-lab.recipe"}}' "$tag" 2>/dev/null || true)
if [ "$made" = "$recipe" ]; then
  say "$tag: the stand-in is up to date (recipe $recipe)"
  exit 0
fi
if [ -f "$base_stamp" ] && [ -d "$base/usr" ]; then
  say "bookworm minbase: cached in $base (remove $base_stamp to make it again)"
else
  timed "debootstrap bookworm minbase" debootstrap_base
fi
timed "install Node.js $node_full" assemble
timed "docker import $tag" import_image
