#!/usr/bin/env bash
# fuzz.sh [TIME]: runs every fuzz target for TIME (default 10s) and prints,
# per target, how many inputs it tried and how many per second: a fuzzer
# that manages a few executions a second finds nothing, so the rate is
# part of the result. Minimization of new inputs is capped at 200 runs:
# Go's default (60 s per input) spent whole short runs minimizing the
# keystore fuzzer's 10 KiB seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-10s}
targets=(
  "./internal/keystore FuzzDecode"
  "./runtime/pop3 FuzzParseCommand"
  "./runtime/pop3 FuzzSession"
  "./runtime/pop3 FuzzDotWriter"
  "./runtime/smtp FuzzSession"
  "./runtime/imap FuzzLiterals"
  "./runtime/imap FuzzCommands"
  "./runtime/control FuzzHandler"
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "fuzz: $pkg $name for $time"
  for attempt in 1 2; do
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -fuzzminimizetime 200x "$pkg" >"$log" 2>&1; then
      break
    fi
    cat "$log"
    # Go 1.26's coordinator can report its own -fuzztime deadline as a
    # failure ("context deadline exceeded", nothing else, no input written:
    # golang/go#75804, fixed in Go 1.27). That run found nothing; run the
    # target once more. Anything else, or the same twice, is a failure.
    if [[ $attempt == 1 ]] && grep -q '^    context deadline exceeded$' "$log" &&
      ! grep -q 'Failing input written\|panic:\|_test.go:[0-9]' "$log"; then
      echo "fuzz: $pkg $name: the Go fuzz coordinator's deadline race (golang/go#75804), running it again"
      continue
    fi
    echo "fuzz: $pkg $name FAILED" >&2
    exit 1
  done
  # The last progress line: "fuzz: elapsed: 10s, execs: 52204 (4124/sec), ..."
  summary+=("$(python3 - "$pkg" "$name" "$log" <<'PY'
import re, sys
pkg, name, path = sys.argv[1:4]
lines = [l for l in open(path) if l.startswith("fuzz: elapsed:")]
if not lines:
    print(f"{pkg} {name}: no progress line"); sys.exit()
m = re.match(r"fuzz: elapsed: (\S+), execs: (\d+)", lines[-1])
secs, n = 0.0, int(m.group(2))
for v, u in re.findall(r"([\d.]+)([hms])", m.group(1)):
    secs += float(v) * {"h": 3600, "m": 60, "s": 1}[u]
print(f"{pkg:22} {name:18} {n:>10} execs in {m.group(1):>6} {n / max(secs, 1):>9.0f}/s")
PY
)")
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
