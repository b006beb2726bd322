#!/usr/bin/env bash
# `npm run test:cluster`: builds what is missing, starts the test cluster, runs the cluster tier
# of the tests (test/cluster/, through the CLI as a user runs it: doctor, up, run, down with
# --context chaos-lab-test), stops the cluster whatever happened, and exits non-zero on any
# failure. Each stage prints its time. Needs root.
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO"

declare -a stages=()
timed() {
  local name=$1 began status=0
  shift
  began=$(date +%s)
  log "── $name"
  "$@" || status=$?
  stages+=("$(printf '%-8s %5d s%s' "$name" $(($(date +%s) - began)) "$([ $status = 0 ] || echo "  (failed: exit $status)")")")
  return $status
}
report() {
  log "stage times:"
  printf '  %s\n' "${stages[@]}"
}

timed deps bash "$SRC/deps.sh"
timed build bash "$SRC/build.sh"
stopped=0
finish() {
  local status=$?
  if [ "$stopped" = 0 ]; then timed down bash "$SRC/down.sh" || status=1; fi
  report
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM
# A clean start: a cluster left up by hand would keep the images it imported then.
bash "$SRC/down.sh" >/dev/null
timed up bash "$SRC/up.sh"

export KUBECONFIG=$KUBECONFIG_FILE
export CHAOS_LAB_TEST_CLUSTER=$CONTEXT
CHAOS_LAB_IMAGE=$(cat "$IMAGES/chaos-lab.tag")
export CHAOS_LAB_IMAGE
# The load generator is the instrument: on two cores shared with the whole cluster it must not
# wait for CPU (else the run withholds its verdict). With autogroup scheduling the session is what
# the kernel weighs, so the tests' session gets a higher weight while they run.
autogroup_nice=''
if [ -w /proc/self/autogroup ]; then
  autogroup_nice=$(sed -n 's/.* nice \(-\{0,1\}[0-9]*\)$/\1/p' /proc/self/autogroup)
  echo -10 > /proc/self/autogroup 2>/dev/null || autogroup_nice=''
fi
timed tests npx vitest run --project cluster "$@" || tests_status=$?
[ -z "$autogroup_nice" ] || echo "$autogroup_nice" > /proc/self/autogroup
[ "${tests_status:-0}" = 0 ] || exit "$tests_status"
timed down bash "$SRC/down.sh"
stopped=1
# Nothing of the cluster is left: no process, no bridge, no rule, no mount.
leftovers=$(
  pgrep -fa "$BIN/" || true
  ip -br link show "$NODE_BRIDGE" 2>/dev/null || true
  ip -br link show "$POD_BRIDGE" 2>/dev/null || true
  iptables-save 2>/dev/null | grep -E "KUBE-|CNI-|$RULE_COMMENT" || true
  grep -E "$STATE|$RUNDIR" /proc/mounts || true
)
if [ -n "$leftovers" ]; then
  log "down left something behind:"
  echo "$leftovers"
  exit 1
fi
log "down left nothing behind"
