#!/usr/bin/env bash
# The benchmark: builds release binaries, then prints a table of p2pshare's figures next to a
# reference pipeline and libtorrent measured in the same run. Needs ~8 GiB free in $BENCH_DIR
# (default /tmp/p2pshare-bench). BENCH_RUNS=N (default 5) runs per figure, BENCH_ONLY=one,three,
# four,scan,netns,crowd,lt1,lt3 picks scenarios (crowd: a flash crowd of 6 and 12 behind one
# 100 Mbit/s seeder; lt1, lt3: 1 GiB from 1 and 3 seeders against libtorrent, interleaved, in a
# network namespace that has only `lo`). The namespace scenarios need root (and iproute2); the
# libtorrent ones install python3-libtorrent and mktorrent with apt-get when they are missing,
# and are skipped (with a line saying why) when that is impossible.
set -euo pipefail
cd "$(dirname "$0")"

# Which scenarios want libtorrent: lt1 and lt3, which run by default.
wants_lt() {
    [ -z "${BENCH_ONLY:-}" ] && return 0
    case ",$BENCH_ONLY," in *,lt1,* | *,lt3,*) return 0 ;; esac
    return 1
}

# A python3 that imports libtorrent: Debian's package installs into /usr/bin/python3's
# dist-packages, which a pyenv or venv python3 earlier on PATH does not see.
lt_python() {
    local p
    for p in /usr/bin/python3 python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import libtorrent' >/dev/null 2>&1; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

if wants_lt; then
    if ! lt_python >/dev/null || ! command -v mktorrent >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "bench.sh: installing python3-libtorrent and mktorrent with apt-get" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q python3-libtorrent mktorrent >/dev/null 2>&1 ||
                { apt-get update -q >/dev/null 2>&1 &&
                    apt-get install -y -q python3-libtorrent mktorrent >/dev/null 2>&1; } ||
                echo "bench.sh: apt-get could not install python3-libtorrent and mktorrent" >&2
        fi
    fi
    if py=$(lt_python) && command -v mktorrent >/dev/null 2>&1; then
        export BENCH_LT_PYTHON="$py"
    else
        # The bench binary prints the skipped rows; say here why.
        export BENCH_LT_SKIP="libtorrent or mktorrent missing and not installable here (needs root and apt-get)"
    fi
fi

cargo build --release -q -p p2pshare -p p2pshare-bench
exec target/release/bench "$@"
