# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared by the image scripts of the test cluster (sourced, not run): where things live, the
# private Docker engine's CLI, and a timer for each step.
#
# Every path comes from the repository root; all state is under the git-ignored
# .tools/cluster/. The Docker CLI is Debian's /usr/bin/docker (the engine is 20.10): another
# client on PATH may be newer and want BuildKit, and DOCKER_HOST always names the private
# engine, never a system-wide one.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
state=$repo/.tools/cluster
docker_state=$state/docker
docker_run=$docker_state/run
docker_pidfile=$docker_run/dockerd.pid
docker_log=$docker_state/dockerd.log
repo_hash=$(printf '%s' "$repo" | sha256sum | cut -c1-12)

# A unix socket path holds at most 107 bytes (sun_path is 108 with the NUL). dockerd puts its
# own socket and its containerd's under the exec root, the longest being
# <exec root>/containerd/containerd-debug.sock (+33 bytes); 40 bytes are kept for them. A
# checkout deep enough to leave less moves the whole exec root (and so the socket) to a short
# path under /run, named by a hash of the repository path so that two checkouts never share it.
if [ $((${#docker_run} + 40)) -le 107 ]; then
  docker_exec_root=$docker_run
else
  docker_exec_root=/run/chaos-lab-docker-$repo_hash
fi
docker_socket=$docker_exec_root/docker.sock
export DOCKER_HOST=unix://$docker_socket
DOCKER=/usr/bin/docker

say() { echo "${0##*/}: $*"; }
die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# Microseconds since the epoch (EPOCHREALTIME's separator follows the locale).
now_us() { local t=${EPOCHREALTIME//[.,]/}; echo "$((10#$t))"; }

# timed LABEL COMMAND…: runs the command and prints how long it took.
timed() {
  local label=$1 start
  shift
  start=$(now_us)
  say "$label …"
  "$@"
  local tenths=$((($(now_us) - start) / 100000))
  say "$label: $((tenths / 10)).$((tenths % 10)) s"
}

# dockerd_is_up: the private engine answers.
dockerd_is_up() { "$DOCKER" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# use_private_dockerd: starts the private engine unless it already runs, and stops it when the
# calling script exits only if this call started it.
use_private_dockerd() {
  if dockerd_is_up; then
    return 0
  fi
  timed "start the private dockerd" bash "$repo/tools/cluster/images/dockerd.sh" start
  trap 'bash "$repo/tools/cluster/images/dockerd.sh" stop' EXIT
}
