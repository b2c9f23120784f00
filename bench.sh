#!/usr/bin/env bash
# The benchmark: builds release binaries, then prints a table of p2pshare's figures next to a
# reference pipeline measured in the same run. Needs ~8 GiB free in $BENCH_DIR (default
# /tmp/p2pshare-bench). BENCH_RUNS=N (default 5) runs per figure, BENCH_ONLY=one,three,four,
# scan,netns,crowd picks scenarios (crowd: a flash crowd of 6 and 12 behind one 100 Mbit/s seeder). The namespace scenario needs root (and iproute2).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -q -p p2pshare -p p2pshare-bench
exec target/release/bench "$@"
