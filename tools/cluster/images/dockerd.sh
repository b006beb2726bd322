#!/usr/bin/env bash
# The test cluster's private Docker engine: Debian's dockerd (20.10) with its own data root,
# exec root, socket, config file and cgroup parent, all under .tools/cluster/docker. It builds
# the lab image and holds its base image; nothing is pulled (there is no registry) and nothing
# runs on it for long.
#
#   dockerd.sh start    # idempotent; waits until the engine answers (at most 60 s)
#   dockerd.sh stop     # TERM, wait, KILL; leaves no process, mount or cgroup behind
#   dockerd.sh env      # eval "$(dockerd.sh env)" points /usr/bin/docker at it
#   dockerd.sh status
#
# It never touches a system-wide engine: not /var/lib/docker, /run/docker.sock,
# /etc/docker/daemon.json or /etc/docker/key.json. It changes no network setting either: no
# bridge, no iptables rules, no ip_forward, no masquerading; containers get --network none or
# --network host (the build uses host).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

docker_data=$docker_state/data
docker_config=$docker_state/daemon.json
# Containers' cgroups go under a parent of their own (not the default /docker), so that stop
# can find and remove whatever this engine left, and nothing else.
cgroup_parent=/chaos-lab-docker-$repo_hash
# System paths dockerd or containerd create whatever they are told; the ones that did not
# exist before start are listed here, and stop removes them again if they are empty.
created_list=$docker_run/created-system-paths
system_paths=(/run/docker /run/docker/plugins /run/containerd /run/containerd/s)

# alive PID: the process exists and is not a zombie.
alive() {
  local s
  s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)
  [ -n "$s" ] && [ "$s" != Z ]
}

# This engine's cgroups, in each hierarchy (cgroup v1) or the unified one (v2).
cgroup_dirs() {
  local dir
  for dir in /sys/fs/cgroup"$cgroup_parent" /sys/fs/cgroup/*"$cgroup_parent"; do
    [ ! -d "$dir" ] || echo "$dir"
  done
}

record_system_paths() {
  local path
  : >"$created_list"
  for path in "${system_paths[@]}"; do
    [ -e "$path" ] || echo "$path" >>"$created_list"
  done
}

# The pid of the running private dockerd, or nothing.
dockerd_pid() {
  local pid
  pid=$(cat "$docker_pidfile" 2>/dev/null) || return 0
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    echo "$pid"
  fi
}

# wait_gone PID SECONDS: true once the process is gone.
wait_gone() {
  local pid=$1 tries=$(($2 * 10))
  while [ "$tries" -gt 0 ] && alive "$pid"; do
    sleep 0.1
    tries=$((tries - 1))
  done
  ! alive "$pid"
}

# end_process PID NAME: TERM, up to 30 s, then KILL.
end_process() {
  local pid=$1 name=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_gone "$pid" 30; then
    say "$name (pid $pid) did not stop within 30 s of TERM: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "$name (pid $pid) survives KILL"
  fi
  # Until init reaps it, the process lingers as a zombie (and pgrep still lists it).
  local tries=50
  while [ "$tries" -gt 0 ] && [ -e "/proc/$pid" ]; do
    sleep 0.1
    tries=$((tries - 1))
  done
}

# Mount points at or under a folder, deepest first (/proc/self/mountinfo writes a space \040).
mounts_under() {
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m }' \
    /proc/self/mountinfo | sort -r
}

# Whatever this engine leaves when it is killed or crashes: its containerd (which outlives a
# KILLed dockerd), the shims and container processes of that containerd, the mounts under its
# folders, its cgroups, and the system folders it created.
clean_leftovers() {
  local pid cmdline words procs dir mount path
  pid=$(cat "$docker_exec_root/containerd/containerd.pid" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ]; then
    end_process "$pid" "the private dockerd's containerd"
  fi
  # Shims are started with -address <exec root>/containerd/containerd.sock: that path is ours.
  for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}
    pid=${pid%/cmdline}
    words=$({ tr '\0' ' ' <"$cmdline"; } 2>/dev/null || true)
    if [[ $words == *"-address $docker_exec_root/containerd/containerd.sock "* ]]; then
      end_process "$pid" "containerd shim"
    fi
  done
  # Processes still in this engine's cgroups are its containers'.
  for dir in $(cgroup_dirs); do
    procs=$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
    for pid in $procs; do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  for dir in "$docker_state" "$docker_exec_root"; do
    while read -r mount; do
      [ -n "$mount" ] || continue
      umount "$mount" 2>/dev/null || umount --lazy "$mount" || say "cannot unmount $mount"
    done < <(mounts_under "$dir")
  done
  for dir in $(cgroup_dirs); do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  if [ -f "$created_list" ]; then
    # Deepest first; a folder that is not empty belongs to someone else by now.
    while read -r path; do
      rmdir "$path" 2>/dev/null || true
    done < <(sort -r "$created_list")
    rm -f "$created_list"
  fi
  if [ "$docker_exec_root" != "$docker_run" ] && [ -z "$(mounts_under "$docker_exec_root")" ]; then
    rm -rf "$docker_exec_root"
  fi
}

# launch DRIVER: starts dockerd in its own session, and prints its pid.
launch() {
  setsid /usr/sbin/dockerd \
    --config-file "$docker_config" \
    --data-root "$docker_data" \
    --exec-root "$docker_exec_root" \
    --pidfile "$docker_pidfile" \
    --host "$DOCKER_HOST" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$cgroup_parent" \
    --storage-driver "$1" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge=none --userland-proxy=false \
    </dev/null >>"$docker_log" 2>&1 &
  echo $!
}

# How dockerd says that the storage driver it was given does not work here.
graphdriver_failed='error initializing graphdriver|failed to start daemon.*(graphdriver|overlay)'

# wait_ready PID: true once the engine answers, false when dockerd exits or 60 s pass.
wait_ready() {
  local pid=$1 tries=600
  while [ "$tries" -gt 0 ]; do
    dockerd_is_up && return 0
    alive "$pid" || return 1
    sleep 0.1
    tries=$((tries - 1))
  done
  return 1
}

start() {
  local pid driver log_from path
  [ -x /usr/sbin/dockerd ] || die "no /usr/sbin/dockerd: apt-get install -y --no-install-recommends docker.io"
  pid=$(dockerd_pid)
  if [ -n "$pid" ]; then
    wait_ready "$pid" || die "dockerd (pid $pid) runs but does not answer on $DOCKER_HOST; see $docker_log"
    say "already running (pid $pid, $DOCKER_HOST)"
    return 0
  fi
  clean_leftovers
  mkdir -p "$docker_data" "$docker_run" "$docker_exec_root"
  record_system_paths
  # Its own config file, so that a system-wide /etc/docker/daemon.json is not read, and its
  # own identity key (dockerd 20.10 writes /etc/docker/key.json otherwise).
  printf '{\n  "deprecated-key-path": "%s/key.json",\n  "shutdown-timeout": 10\n}\n' \
    "$docker_state" >"$docker_config"
  for driver in overlay2 vfs; do
    log_from=$(($(stat -c %s "$docker_log" 2>/dev/null || echo 0) + 1))
    pid=$(launch "$driver")
    if wait_ready "$pid"; then
      say "running (pid $pid, $DOCKER_HOST, storage driver $driver, log $docker_log)"
      return 0
    fi
    if alive "$pid"; then
      end_process "$pid" dockerd
      clean_leftovers
      tail -n 30 "$docker_log" >&2
      die "dockerd did not answer on $DOCKER_HOST within 60 s (log: $docker_log)"
    fi
    clean_leftovers
    # overlay2 fails on some backing filesystems (overlayfs, some network filesystems): vfs
    # works everywhere, at the price of a full copy per layer.
    if [ "$driver" = overlay2 ] && tail -c "+$log_from" "$docker_log" | grep -qiE "$graphdriver_failed"; then
      say "overlay2 does not work here, falling back to vfs (slower, bigger); dockerd said:"
      tail -c "+$log_from" "$docker_log" | grep -iE "$graphdriver_failed" | tail -n 5 >&2
      mkdir -p "$docker_run" "$docker_exec_root"
      record_system_paths
      continue
    fi
    tail -c "+$log_from" "$docker_log" | tail -n 30 >&2
    die "dockerd exited before answering (storage driver $driver; log: $docker_log)"
  done
}

stop() {
  local pid left
  pid=$(dockerd_pid)
  if [ -n "$pid" ]; then
    # dockerd stops its containers (shutdown-timeout) and its containerd on TERM.
    end_process "$pid" dockerd
  fi
  clean_leftovers
  rm -f "$docker_pidfile"
  left=$(
    running=$(dockerd_pid)
    [ -z "$running" ] || echo "process: dockerd $running"
    for dir in "$docker_state" "$docker_exec_root"; do
      mounts_under "$dir" | sed 's/^/mount: /'
    done
    cgroup_dirs | sed 's/^/cgroup: /'
  )
  [ -z "$left" ] || die "stopped, but left behind:"$'\n'"$left"
  say "stopped${pid:+ (was pid $pid)}; no process, mount or cgroup left"
}

status() {
  local pid
  pid=$(dockerd_pid)
  if [ -n "$pid" ] && dockerd_is_up; then
    say "running (pid $pid, $DOCKER_HOST, storage driver $("$DOCKER" info --format '{{.Driver}}'))"
  elif [ -n "$pid" ]; then
    say "starting or stuck (pid $pid, not answering on $DOCKER_HOST)"
    return 1
  else
    say "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  status) status ;;
  *)
    echo "usage: ${0##*/} start|stop|env|status" >&2
    exit 2
    ;;
esac
