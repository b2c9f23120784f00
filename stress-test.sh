#!/usr/bin/env bash
# Flake hunt: ./stress-test.sh [K] [LOAD]
# Builds the suite, then runs ./test.sh K times in a row (default 5) while LOAD busy loops
# (default: one per core) keep every core busy, as a laptop compiling something else would.
# Prints each run's summary line and time, then every test that failed at least once: how many
# runs it failed in, and the message of its first failure. Logs stay in $STRESS_DIR (default
# target/stress). Exits non-zero if any run failed. Extra cargo test arguments: STRESS_ARGS.
set -uo pipefail
cd "$(dirname "$0")"
runs=${1:-5}
load=${2:-$(nproc)}
dir=${STRESS_DIR:-target/stress}
mkdir -p "$dir"
rm -f "$dir"/run-*.log

# shellcheck disable=SC2086
cargo test --workspace --all-targets --no-run ${STRESS_ARGS:-} >/dev/null 2>&1 ||
  { echo "stress-test.sh: the suite does not build" >&2; exit 2; }

spinners=()
stop_load() { for p in "${spinners[@]}"; do kill "$p" 2>/dev/null; done; }
trap stop_load EXIT
for ((i = 0; i < load; i++)); do
  bash -c 'while :; do :; done' &
  spinners+=($!)
done
echo "stress-test.sh: $runs runs with $load busy loops on $(nproc) cores; logs in $dir"

failed_runs=0
for ((r = 1; r <= runs; r++)); do
  start=$SECONDS
  # shellcheck disable=SC2086
  summary=$(TEST_LOG="$dir/run-$r.log" ./test.sh ${STRESS_ARGS:-} 2>/dev/null | tail -n 1)
  status=$? # pipefail: test.sh's status, not tail's
  ((status == 0)) || failed_runs=$((failed_runs + 1))
  echo "run $r: $((SECONDS - start)) s, exit $status: $summary"
done
stop_load

# Every failure, with the runs it failed in and its first message: the lines libtest prints
# under `---- NAME stdout ----` up to the next such block or the `failures:` list.
awk '
  FNR == 1 { run = FILENAME; sub(/.*run-/, "", run); sub(/\.log$/, "", run) }
  /^ *Running / { bin = $0; sub(/.*\(/, "", bin); sub(/\).*/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin) }
  /^---- .* stdout ----$/ {
    name = $0; sub(/^---- /, "", name); sub(/ stdout ----$/, "", name); key = bin "::" name
    if (!(key in runs)) { order[++n] = key; msg[key] = "" }
    runs[key] = runs[key] " " run; grab = (msg[key] == ""); lines = 0; next
  }
  /^failures:$/ || /^test result: / { grab = 0 }
  grab && lines < 12 && $0 != "" { msg[key] = msg[key] "      " $0 "\n"; lines++ }
  END {
    if (n == 0) { print "no test failed"; exit }
    print n " test(s) failed at least once:"
    for (i = 1; i <= n; i++) {
      k = order[i]; c = split(runs[k], a, " ")
      printf "  %s: failed in %d run(s) (%s)\n%s", k, c, substr(runs[k], 2), msg[k]
    }
  }
' "$dir"/run-*.log
echo "stress-test.sh: $failed_runs of $runs runs failed"
((failed_runs == 0))
