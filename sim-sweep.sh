#!/usr/bin/env bash
# A release sweep of the simulator over every core: ./sim-sweep.sh N [BASE]
# Runs seeds BASE..BASE+N (BASE defaults to 0), prints every failing seed with its replay line,
# then a summary: seeds, steps, seeds/s, failures. Exits non-zero if any seed failed.
set -euo pipefail
cd "$(dirname "$0")"
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 N [BASE]" >&2
  exit 2
fi
P2PSHARE_SIM_SEEDS="$1" P2PSHARE_SIM_BASE="${2:-0}" \
  cargo test --release -q -p p2pshare-proto --test sim_sweep -- --exact sweep_seeds --nocapture
