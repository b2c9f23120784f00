#!/usr/bin/env bash
# The whole test suite: what README tells a new user to run, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace --all-targets "$@"
