#!/usr/bin/env bash
# The whole test suite: what README tells a new user to run, and what CI runs.
#
# Every test binary runs even after one fails (--no-fail-fast), and the last line sums up the
# whole run: passed, failed, ignored, and the name of every failure with the binary it is in.
# TEST_LOG=FILE keeps the full output there (./stress-test.sh reads the failure messages in it).
# Arguments replace `--workspace` (e.g. `./test.sh -p p2pshare-proto` runs that crate's tests).
set -uo pipefail
cd "$(dirname "$0")"
log=${TEST_LOG:-$(mktemp)}
[[ -n ${TEST_LOG:-} ]] || trap 'rm -f "$log"' EXIT

# The browser test's one npm package (cli/tests/browser/package-lock.json), installed once; the
# test says what is missing if this cannot run (no npm, no registry).
if [[ ! -d cli/tests/browser/node_modules ]] && command -v npm >/dev/null 2>&1; then
  (cd cli/tests/browser && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "test.sh: npm ci in cli/tests/browser failed; the browser test will say what is missing"
fi

(($# > 0)) || set -- --workspace
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# `Running unittests src/lib.rs (target/debug/deps/p2pshare_proto-0123abcd)` names the binary
# whose results follow; `test NAME ... FAILED` is one failure; `test result:` sums a binary.
awk -v status="$status" '
  /^ *Running / {
    bin = $0
    sub(/.*\(/, "", bin); sub(/\).*/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)
  }
  /^test .* \.\.\. FAILED$/ {
    name = $0; sub(/^test /, "", name); sub(/ \.\.\. FAILED$/, "", name)
    failures = failures (failures == "" ? "" : ", ") bin "::" name
  }
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/) passed += $(i - 1)
      if ($(i) ~ /^failed;?$/) failed += $(i - 1)
      if ($(i) ~ /^ignored;?$/) ignored += $(i - 1)
    }
    binaries++
  }
  END {
    line = sprintf("test.sh: %d passed, %d failed, %d ignored in %d test binaries", passed, failed, ignored, binaries)
    if (failures != "") line = line "; failed: " failures
    else if (status != 0) line = line "; cargo exited " status " before or between tests (a build error? see above)"
    print line
  }
' "$log"
exit "$status"
