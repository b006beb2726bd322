#!/bin/sh
# fault-sidecar: keeps a tc netem fault in this pod's network namespace on a lease.
#
# It runs as a sidecar container (root, NET_ADMIN, KILL) beside every backend. The runner execs
# `apply` / `renew` / `clear` / `status` / `kill-main` in it; the container's main process is
# `run`, which removes the fault once its lease runs out and when the pod stops. So a runner that
# is killed leaves no qdisc behind: the lease expires inside the pod, with no one outside to ask.
#
#   fault-sidecar apply --for 10s delay 400ms 20ms   # netem on eth0, for the pod's traffic only
#   fault-sidecar renew --for 10s                    # extend the lease of the applied fault
#   fault-sidecar clear                              # remove it now
#   fault-sidecar status                             # one line of JSON: lease and qdisc
#   fault-sidecar kill-main coin                     # SIGKILL the pod's `… services/main.js coin`
#   fault-sidecar run                                # the lease keeper (the container's CMD)
#
# kill-main is a crash, as SIGKILL is in the local lab: the service gets no SIGTERM and drains
# nothing, and the kubelet restarts its container in the same pod (its restartCount counts it).
# It needs the pod to share one PID namespace among its containers (shareProcessNamespace), so
# that the service's process is visible here and is not PID 1 (the pause process is), which
# ignores SIGKILL sent from inside its namespace; and it needs CAP_KILL, the service running as
# another user.
#
# The kubelet's probes are not faulted. netem on eth0 delays (or drops) what the pod sends, and
# the answers to the kubelet's probes go out there too: a 1 s latency would fail readiness (the
# fault would become an outage) and liveness (the kubelet would restart the pods). So the root
# qdisc is an htb whose default class carries netem, and packets to the node's own addresses —
# where the probes come from: HOST_IP (the downward API's status.hostIP) and the pod's default
# gateway (the node's end of a bridge CNI) — go to a class that is never faulted. htb, not prio:
# it is the classful qdisc that even minimal kernels carry.
#
# Exit codes: 0 done; tc's own status when tc fails; 2 bad usage; 3 nothing to renew;
# 4 the state lock could not be taken; 5 no main process to kill; 6 the signal was refused.
#
# Environment: FAULT_DEV (eth0), FAULT_STATE_DIR (/run/fault-sidecar, an emptyDir that
# survives a restart of this container, so a restarted keeper still honours the lease),
# FAULT_POLL_SECONDS (1; how often `run` looks at the lease), FAULT_PROC_DIR (/proc; where
# kill-main looks for processes: a test gives it a directory of its own processes only),
# FAULT_NODE_ADDRESSES (the node's IPv4 addresses, space-separated; default: HOST_IP and the
# default gateway).
#
# POSIX sh plus tc (iproute2), flock (util-linux), date, tr, grep and sed: nothing else is in
# the image's sidecar path, and a shell starts in a millisecond where node would take half a
# second for every exec.

set -u

DEV=${FAULT_DEV:-eth0}
STATE_DIR=${FAULT_STATE_DIR:-/run/fault-sidecar}
POLL_SECONDS=${FAULT_POLL_SECONDS:-1}
PROC_DIR=${FAULT_PROC_DIR:-/proc}
LEASE_FILE="$STATE_DIR/lease"
LOCK_FILE="$STATE_DIR/lock"
MAX_LEASE_SECONDS=3600

PROG=fault-sidecar

die_usage() {
  echo "$PROG: $1" >&2
  echo "usage: $PROG apply --for <duration> <netem args…> | renew --for <duration> | clear | status | kill-main <service> | run" >&2
  exit 2
}

now() {
  date +%s
}

# "10s", "2m" or "10" → seconds, within 1..MAX_LEASE_SECONDS; anything else is a usage error.
parse_duration() {
  raw=$1
  case $raw in
    '' | *[!0-9sm]* | *[sm]*[0-9sm]* | [sm]* | ??????*)
      die_usage "--for $raw is invalid: expected whole seconds or minutes, like 10s or 2m"
      ;;
  esac
  case $raw in
    *m) seconds=$((${raw%m} * 60)) ;;
    *s) seconds=${raw%s} ;;
    *) seconds=$raw ;;
  esac
  if [ "$seconds" -lt 1 ] || [ "$seconds" -gt "$MAX_LEASE_SECONDS" ]; then
    die_usage "--for $raw is out of range: expected 1s to ${MAX_LEASE_SECONDS}s"
  fi
  echo "$seconds"
}

# netem arguments reach tc as separate words; allowing only these characters keeps them from
# being anything but netem parameters (and keeps the JSON of `status` free of escapes).
check_netem_args() {
  [ $# -gt 0 ] || die_usage "apply needs netem parameters, like: delay 400ms 20ms"
  for word in "$@"; do
    case $word in
      '' | *[!A-Za-z0-9.%_-]*)
        die_usage "netem parameter \"$word\" is invalid: expected letters, digits and . % _ - only"
        ;;
    esac
  done
}

ensure_state_dir() {
  mkdir -p "$STATE_DIR" 2>/dev/null || {
    echo "$PROG: cannot create the state directory $STATE_DIR (set FAULT_STATE_DIR to a writable one)" >&2
    exit 4
  }
}

# Serializes apply/renew/clear and the keeper's expiry check, so an expiry never removes a
# fault that was applied or renewed a moment before. flock releases the lock when the holder
# dies, so a killed exec cannot leave the keeper locked out.
take_lock() {
  ensure_state_dir
  exec 9>"$LOCK_FILE"
  flock -w 10 9 || {
    echo "$PROG: the state lock $LOCK_FILE is held by another command for more than 10 s" >&2
    exit 4
  }
}

release_lock() {
  flock -u 9
  exec 9>&-
}

lease_field() {
  [ -f "$LEASE_FILE" ] || return 1
  sed -n "s/^$1=//p" "$LEASE_FILE"
}

write_lease() {
  tmp="$LEASE_FILE.tmp.$$"
  printf 'expires=%s\nnetem=%s\n' "$1" "$2" >"$tmp" && mv -f "$tmp" "$LEASE_FILE"
}

netem_present() {
  tc qdisc show dev "$DEV" 2>/dev/null | grep -q 'qdisc netem'
}

# The htb root this script makes (see the top): its class 1:10 carries netem, 1:20 the node's.
shaping_present() {
  tc qdisc show dev "$DEV" 2>/dev/null | grep -q '^qdisc htb 1: root'
}

# The node's IPv4 addresses, whose traffic is never faulted (see the top).
node_addresses() {
  if [ -n "${FAULT_NODE_ADDRESSES+set}" ]; then
    addresses=$FAULT_NODE_ADDRESSES
  else
    addresses="${HOST_IP:-} $(ip -4 route show default 2>/dev/null | sed -n 's/.* via \([0-9.]*\).*/\1/p')"
  fi
  for address in $addresses; do
    case $address in
      *[!0-9.]*) echo "$PROG: ignoring \"$address\": not an IPv4 address" >&2 ;;
      *) echo "$address" ;;
    esac
  done | sort -u
}

# The htb root with the pod's class (netem goes under it) and the node's class, and a filter for
# each address given. Rates far above any pod's: htb only sorts here, it never shapes.
make_shaping() {
  tc qdisc replace dev "$DEV" root handle 1: htb default 10 &&
    tc class replace dev "$DEV" parent 1: classid 1:10 htb rate 10gbit quantum 60000 &&
    tc class replace dev "$DEV" parent 1: classid 1:20 htb rate 10gbit quantum 60000 || return
  for address in "$@"; do
    tc filter add dev "$DEV" parent 1: protocol ip prio 1 u32 match ip dst "$address/32" flowid 1:20 || return
  done
}

# Removes what apply made (netem, and the htb root it hangs from) if it is there, and the lease.
# Deleting the root qdisc when none was added fails in tc ("handle of zero"), so look first.
remove_fault() {
  if netem_present || shaping_present; then
    out=$(tc qdisc del dev "$DEV" root 2>&1)
    status=$?
    if [ "$status" -ne 0 ]; then
      echo "$PROG: tc qdisc del dev $DEV root failed (exit $status): $out" >&2
      return "$status"
    fi
  fi
  rm -f "$LEASE_FILE"
  return 0
}

hint_for() {
  case $1 in
    *'qdisc kind is unknown'* | *'qdisc not found'*)
      echo "the node's kernel has no sch_netem module: load it on the node (modprobe sch_netem); WSL2 and some VMs lack it"
      ;;
    *'Operation not permitted'*)
      echo "the sidecar needs the NET_ADMIN capability and to run as root"
      ;;
    *'Cannot find device'*)
      echo "no interface $DEV in this pod: set FAULT_DEV"
      ;;
  esac
}

print_status() {
  expires=$(lease_field expires || true)
  netem=$(lease_field netem || true)
  qdisc=$(tc qdisc show dev "$DEV" 2>&1 | head -n 1 | sed 's/\\/\\\\/g; s/"/\\"/g')
  if netem_present; then present=true; else present=false; fi
  if [ -n "$expires" ]; then
    remaining=$((expires - $(now)))
    [ "$remaining" -ge 0 ] || remaining=0
    lease="{\"expiresAt\":$expires,\"remainingSeconds\":$remaining,\"netem\":\"$netem\"}"
  else
    lease=null
  fi
  echo "{\"dev\":\"$DEV\",\"lease\":$lease,\"netemQdisc\":$present,\"qdisc\":\"$qdisc\"}"
}

cmd_apply() {
  if [ "${1:-}" != --for ] || [ $# -lt 2 ]; then die_usage "apply needs --for <duration> first"; fi
  seconds=$(parse_duration "$2") || exit 2
  shift 2
  check_netem_args "$@"
  take_lock
  previous=''
  [ -f "$LEASE_FILE" ] && previous=$(cat "$LEASE_FILE")
  # The lease is written before tc runs: an apply killed halfway still leaves a lease for the
  # keeper to expire, never a qdisc that nothing will remove.
  write_lease "$(($(now) + seconds))" "$*" || exit 4
  step="the htb root for netem on $DEV"
  failure=0
  # shellcheck disable=SC2046 # one word per address
  shaping_present || out=$(make_shaping $(node_addresses) 2>&1) || failure=$?
  if [ "$failure" -eq 0 ]; then
    step="tc qdisc replace dev $DEV parent 1:10 handle 10: netem $*"
    out=$(tc qdisc replace dev "$DEV" parent 1:10 handle 10: netem "$@" 2>&1) || failure=$?
  fi
  if [ "$failure" -ne 0 ]; then
    message="$PROG: $step failed (exit $failure): $out"
    hint=$(hint_for "$out")
    if [ -n "$previous" ]; then
      printf '%s\n' "$previous" >"$LEASE_FILE"
    else
      # Nothing was faulted before: what this apply made goes (netem's replace is atomic, so a
      # fault that was there is left as it was).
      remove_fault >/dev/null 2>&1
      rm -f "$LEASE_FILE"
    fi
    echo "$message" >&2
    [ -z "$hint" ] || echo "$PROG: $hint" >&2
    exit "$failure"
  fi
  print_status
  release_lock
}

cmd_renew() {
  if [ "${1:-}" != --for ] || [ $# -ne 2 ]; then die_usage "renew needs --for <duration>"; fi
  seconds=$(parse_duration "$2") || exit 2
  take_lock
  netem=$(lease_field netem || true)
  if [ -z "$netem" ]; then
    echo "$PROG: nothing to renew: no fault is applied on $DEV (it may have expired)" >&2
    exit 3
  fi
  write_lease "$(($(now) + seconds))" "$netem" || exit 4
  print_status
  release_lock
}

cmd_clear() {
  [ $# -eq 0 ] || die_usage "clear takes no arguments"
  take_lock
  remove_fault || exit $?
  print_status
  release_lock
}

cmd_status() {
  [ $# -eq 0 ] || die_usage "status takes no arguments"
  print_status
}

# The pids whose command line runs services/main.js for the service $1 (the main container's
# `node services/main.js <service>`, the image's compiled entry point; services/main.ts, its
# source run by tsx, as well): the word after it names the service. grep -l picks the
# candidates in one process, so a host with many processes is quick too.
main_pids() {
  grep -lE 'services/main\.[jt]s' "$PROC_DIR"/[0-9]*/cmdline 2>/dev/null | while IFS= read -r file; do
    pid=${file%/cmdline}
    pid=${pid##*/}
    named=$(tr '\0' '\n' 2>/dev/null <"$file" | sed -n '/^\(.*\/\)\{0,1\}services\/main\.[jt]s$/{n;p;q;}')
    if [ "$named" = "$1" ]; then echo "$pid"; fi
  done
}

cmd_kill_main() {
  [ $# -eq 1 ] || die_usage "kill-main needs the service, like: kill-main coin"
  case $1 in
    '' | *[!a-z0-9-]*) die_usage "service \"$1\" is invalid: expected lower-case letters, digits and - only" ;;
  esac
  pids=$(main_pids "$1")
  if [ -z "$pids" ]; then
    echo "$PROG: no \`node … services/main.js $1\` process in this pod's PID namespace ($PROC_DIR): the pod must share one among its containers (shareProcessNamespace: true; redeploy the lab with \`npx chaos-lab up --target kind\`), and $1 must be running (a container that is restarting has no process yet)" >&2
    exit 5
  fi
  for pid in $pids; do
    if [ "$pid" = 1 ]; then
      echo "$PROG: $1 runs as PID 1 of this PID namespace, which ignores SIGKILL sent from inside it: the pod must share one among its containers (shareProcessNamespace: true), so that PID 1 is the pause process" >&2
      exit 5
    fi
  done
  killed=''
  for pid in $pids; do
    if ! out=$(kill -s KILL "$pid" 2>&1); then
      echo "$PROG: kill -s KILL $pid ($1) failed: $out" >&2
      case $out in
        *'not permitted'*) echo "$PROG: the sidecar needs the KILL capability: $1 runs as another user" >&2 ;;
      esac
      exit 6
    fi
    killed="$killed${killed:+,}$pid"
  done
  echo "{\"service\":\"$1\",\"signal\":\"KILL\",\"pids\":[$killed]}"
}

# One look at the lease: remove the fault once the lease has run out. A netem qdisc with no
# lease is a leftover (a keeper restarted after an apply that died), so it goes too.
expire_if_due() {
  take_lock
  expires=$(lease_field expires || true)
  if [ -n "$expires" ]; then
    if [ "$(now)" -gt "$expires" ]; then
      echo "$PROG: lease expired: removing netem $(lease_field netem) from $DEV" >&2
      remove_fault
    fi
  elif netem_present || shaping_present; then
    echo "$PROG: netem on $DEV without a lease: removing it" >&2
    remove_fault
  fi
  release_lock
}

sleeper=''

on_stop() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null
  take_lock
  if [ -f "$LEASE_FILE" ] || netem_present; then
    echo "$PROG: stopping: removing the fault from $DEV" >&2
  fi
  remove_fault
  status=$?
  release_lock
  exit "$status"
}

cmd_run() {
  [ $# -eq 0 ] || die_usage "run takes no arguments"
  trap on_stop TERM INT
  echo "$PROG: keeping leases of netem faults on $DEV (state in $STATE_DIR, every ${POLL_SECONDS}s)" >&2
  while :; do
    expire_if_due
    # A foreground sleep would hold off the TERM trap until it ends; waiting on a background
    # one lets the trap run at once.
    sleep "$POLL_SECONDS" &
    sleeper=$!
    wait "$sleeper"
    sleeper=''
  done
}

command=${1:-}
[ $# -eq 0 ] || shift
case $command in
  apply) cmd_apply "$@" ;;
  renew) cmd_renew "$@" ;;
  clear) cmd_clear "$@" ;;
  status) cmd_status "$@" ;;
  kill-main) cmd_kill_main "$@" ;;
  run) cmd_run "$@" ;;
  '') die_usage "no command given" ;;
  *) die_usage "unknown command \"$command\"" ;;
esac
