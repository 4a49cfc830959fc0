#!/usr/bin/env bash
# reap-check.sh: proves scripts/reap.sh. It runs TestAccLeftRunning, which
# starts a server (supervisor and runtime) through the real provider and a
# remote host (sshd in a network namespace), and waits to be killed by its
# own -timeout, so no cleanup of the test runs; then it checks that reap.sh
# named and stopped every one of those processes, removed the namespace,
# and left no process of the run behind. A -timeout that fires before the
# servers are up proves nothing: the run is repeated with four times the
# timeout until it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "reap-check: skipped: the remote host's network namespace needs root"
  exit 0
fi
base=$(mktemp -d)
started=$base/started log=$base/log
cleanup() {
  # Should reap.sh have failed, the check leaves nothing behind either.
  if [ -f "$started" ]; then
    while read -r kind what; do
      case $kind in
      pid) kill -KILL "$what" 2>/dev/null || true ;;
      netns) ip netns del "$what" 2>/dev/null || true ;;
      esac
    done <"$started"
  fi
  rm -rf "$base"
}
trap cleanup EXIT
fail() {
  cat "$log"
  echo "reap-check: FAILED: $*" >&2
  exit 1
}

for timeout in 30s 120s 480s; do
  echo "reap-check: TestAccLeftRunning with -timeout $timeout"
  if TMPDIR=$base TF_ACC=1 TF_ACC_TERRAFORM_PATH=${TF:-$(command -v terraform || command -v tofu)} \
    MAILSTACK_REAP_CHECK=$started scripts/reap.sh \
    go test -count=1 -run '^TestAccLeftRunning$' -timeout "$timeout" ./provider >"$log" 2>&1; then
    fail "the test passed: it should have been killed by its -timeout"
  fi
  grep -q "^panic: test timed out after $timeout" "$log" || fail "the test failed before its -timeout"
  [ -f "$started" ] && break
done
[ -f "$started" ] || fail "the servers never came up before the -timeout"

while read -r kind what; do
  case $kind in
  pid)
    grep -q "^reap: .*pid $what " "$log" || fail "reap.sh did not name pid $what"
    # Gone, or a new process that has nothing to do with this run.
    if exe=$(readlink "/proc/$what/exe" 2>/dev/null) && [[ $exe == "$base"/* || $exe == /tmp/mailstack-host-* ]]; then
      fail "pid $what ($exe) still runs"
    fi
    ;;
  netns)
    grep -q "^reap: removed network namespace $what\$" "$log" || fail "reap.sh did not name network namespace $what"
    ! ip netns list | grep -qw "$what" || fail "network namespace $what is still there"
    ;;
  esac
done <"$started"
left=$({
  find /proc/[0-9]*/exe /proc/[0-9]*/cwd -maxdepth 0 -lname "$base/*" 2>/dev/null
  grep -lzF "MAILSTACK_REAP=$base/" /proc/[0-9]*/environ 2>/dev/null
} || true)
[ -z "$left" ] || fail "processes of the run are left: $left"
[ -z "$(find "$base" -mindepth 1 -maxdepth 1 ! -name started ! -name log)" ] || fail "reap.sh left files in $base: $(ls "$base")"
grep '^reap: ' "$log"
echo "reap-check: ok: what a test killed by its -timeout left running (pids $(awk '$1 == "pid" {printf "%s ", $2}' "$started")and network namespace $(awk '$1 == "netns" {print $2}' "$started")) is gone"
