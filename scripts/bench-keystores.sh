#!/usr/bin/env bash
# bench-keystores: time creating N keystores (RSA 2048, self-signed, JKS)
# with this provider in one `terraform apply` against N sequential
# `keytool -genkeypair` runs making the same keystores, and print the ratio.
#
#   scripts/bench-keystores.sh            # N=50, RUNS=3, terraform's default -parallelism=10
#   N=20 RUNS=1 PARALLELISM=2 scripts/bench-keystores.sh
#
# It runs `make install` and points terraform at the local mirror
# (TF_CLI_CONFIG_FILE=.build/terraformrc). The apply time is the whole
# `terraform apply` (start-up, refresh, plan, apply). keytool runs as an
# operator runs it, with no JVM tuning flags.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50}
RUNS=${RUNS:-3}
PARALLELISM=${PARALLELISM:-10}
TF=${TF:-$(command -v terraform || command -v tofu || echo "$PWD/.tools/tofu")}
command -v keytool >/dev/null || { echo "bench-keystores: keytool not on PATH" >&2; exit 1; }

make --no-print-directory install >/dev/null
export TF_CLI_CONFIG_FILE=$PWD/.build/terraformrc

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tf" "$work/keytool"
cat >"$work/main.tf" <<HCL
terraform {
  required_providers {
    mailstack = { source = "mailstack/mailstack" }
  }
}

provider "mailstack" {
  state_dir = "$work/state"
}

resource "mailstack_keystore" "k" {
  count    = $N
  path     = "$work/tf/k\${count.index}.jks"
  type     = "JKS"
  password = "changeit"
  alias    = "mykey"
  key {
    algorithm = "RSA"
    rsa_bits  = 2048
  }
  self_signed {
    subject {
      common_name = "k\${count.index}.example.test"
    }
    validity_days = 365
  }
}
HCL

now() { date +%s.%N; }
(cd "$work" && "$TF" init -input=false -no-color >/dev/null)

# Runs alternate the two sides, so that load from other work on the machine
# falls on both alike; each run starts from no keystores and no state.
results=()
for ((r = 1; r <= RUNS; r++)); do
  rm -rf "$work/tf" "$work/keytool" "$work"/terraform.tfstate* "$work/state"
  mkdir -p "$work/tf" "$work/keytool"
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(now)
  (cd "$work" && "$TF" apply -auto-approve -input=false -no-color -parallelism="$PARALLELISM" >"$work/apply.log")
  t1=$(now)
  made=$(find "$work/tf" -name '*.jks' | wc -l)
  [ "$made" -eq "$N" ] || { cat "$work/apply.log"; echo "bench-keystores: apply made $made keystores, want $N" >&2; exit 1; }
  t2=$(now)
  for ((i = 0; i < N; i++)); do
    keytool -genkeypair -noprompt -alias mykey -keyalg RSA -keysize 2048 -validity 365 \
      -dname "CN=k$i.example.test" -keystore "$work/keytool/k$i.jks" -storetype JKS \
      -storepass changeit -keypass changeit >/dev/null 2>&1
  done
  t3=$(now)
  results+=("$t0 $t1 $t2 $t3 $load_before $(cut -d' ' -f1 /proc/loadavg)")
done

python3 - "$N" "$PARALLELISM" "$("$TF" version | head -1)" "${results[@]}" <<'PY'
import os, platform, statistics, sys
n, par, tfv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine:   {os.cpu_count()} cores, {cpu}")
print(f"terraform: {tfv}, -parallelism={par}; N={n} RSA 2048 self-signed JKS keystores")
ratios = []
for i, r in enumerate(sys.argv[4:], 1):
    t0, t1, t2, t3, lb, la = r.split()
    tf, kt = float(t1) - float(t0), float(t3) - float(t2)
    ratios.append(kt / tf)
    print(f"run {i}: one terraform apply {tf:6.2f} s ({tf / n * 1000:4.0f} ms each); "
          f"{n} keytool -genkeypair {kt:6.2f} s ({kt / n * 1000:4.0f} ms each); "
          f"ratio {kt / tf:5.1f}x; load average {lb} -> {la}")
print(f"ratio:     {statistics.median(ratios):.1f}x faster through the provider (median of {len(ratios)}; target 4x)")
PY
