#!/usr/bin/env bash
# The Debian packages the test cluster needs, installed when missing (as root): etcd, containerd,
# runc and the CNI plugins run the node; iptables, ipset and conntrack serve kube-proxy and
# kube-router; Docker's engine (classic builder) and debootstrap make the lab's image; gcc
# compiles the pause program; openssl makes the certificates.
set -euo pipefail
packages=(etcd-server containerd runc containernetworking-plugins iptables ipset conntrack iproute2
  docker.io debootstrap gcc libc6-dev openssl curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: every package is installed"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "deps: run as root to install ${missing[*]}" >&2; exit 1; }
echo "deps: installing ${missing[*]} from Debian"
apt-get update -qq
# The packages' own service start-ups are not wanted: the cluster starts its daemons itself.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed"
