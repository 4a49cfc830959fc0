#!/usr/bin/env bash
# reap.sh COMMAND [ARG...]: runs COMMAND (a go test) with TMPDIR set to a
# folder of its own, and afterwards - passed, failed, killed by its own
# -timeout or interrupted - stops what the tests left behind there, then
# removes the folder. A test binary that panics or hits -timeout skips
# t.Cleanup, and the runtimes the provider starts are detached by design
# (they outlive terraform): without this they would run on.
#
# Left behind means: a network namespace that internal/testutil/netns
# marked in the folder (mailstack-netns-*: its name and the host's root)
# with every process in it; a process whose executable or working folder
# is in the folder or that inherited MAILSTACK_REAP=<the folder> (which
# stays when a script moves TMPDIR, as fuzz.sh does): runtimes,
# supervisors, Pebble, sshd, ssh-agent, unbound, Postfix, PostgreSQL, test
# binaries; a mount in the folder. Each one is printed on stderr: a leak is a
# finding. The exit status is COMMAND's.
set -uo pipefail
# Like /tmp, anyone may write there: tests run PostgreSQL as nobody.
dir=$(mktemp -d "${TMPDIR:-/tmp}/ms.XXXXXX") && chmod 1777 "$dir" || exit 1

# COMMAND runs as a job of its own (so that this shell can still act on
# signals while it runs) and gets the INT, TERM and HUP this shell gets.
set -m
TMPDIR=$dir MAILSTACK_REAP=$dir "$@" </dev/null &
child=$!
set +m
for sig in INT TERM HUP; do
  trap "kill -$sig -- -$child 2>/dev/null" "$sig"
done
# A signal ends wait early: wait again until COMMAND is gone, then once
# more for its status (bash keeps it).
until wait "$child"; ! kill -0 "$child" 2>/dev/null; do :; done
wait "$child"
status=$?
trap '' INT TERM HUP

say() { echo "reap: $*" >&2; }
leaks=0

describe() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || exe="?"
  echo "pid $1 ($exe: $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-200))"
}

for marker in "$dir"/mailstack-netns-*; do
  [ -f "$marker" ] || continue
  read -r ns root <"$marker"
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    say "stopping $(describe "$pid") in network namespace $ns"
    kill -KILL "$pid" 2>/dev/null
    leaks=$((leaks + 1))
  done
  ip netns del "$ns" 2>/dev/null && say "removed network namespace $ns" && leaks=$((leaks + 1))
  [ -z "$root" ] || rmdir "$root" 2>/dev/null
done

# owned lists the processes that belong to this run (two processes per
# look: forks are slow on a loaded machine).
owned() {
  {
    find /proc/[0-9]*/exe /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$dir" -o -lname "$dir/*" \) 2>/dev/null
    grep -lzxF "MAILSTACK_REAP=$dir" /proc/[0-9]*/environ 2>/dev/null
  } | cut -d/ -f3 | sort -un
}

# A polite TERM first (PostgreSQL removes its shared memory, Postfix its
# pid files), KILL for what is still there after 10 seconds. A supervisor
# may start a runtime before it goes: each round looks again.
pids=$(owned)
if [ -n "$pids" ]; then
  for pid in $pids; do
    say "stopping $(describe "$pid")"
    leaks=$((leaks + 1))
  done
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 100); do
    [ -z "$(owned)" ] && break
    sleep 0.1
  done
  for _ in $(seq 50); do
    pids=$(owned)
    [ -z "$pids" ] && break
    for pid in $pids; do say "killing $(describe "$pid")"; done
    kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  [ -z "$(owned)" ] || say "could not stop: $(owned | tr '\n' ' ')"
fi

# Mounts in the folder, deepest first (mountinfo's fifth field).
while read -r mnt; do
  umount -l "$mnt" && say "unmounted $mnt" && leaks=$((leaks + 1))
done < <(awk -v d="$dir/" 'substr($5, 1, length(d)) == d {print $5}' /proc/self/mountinfo | sort -r)

rm -rf "$dir"
((leaks == 0)) || say "left behind by $*: $leaks (each named above)"
exit "$status"
