#!/usr/bin/env bash
# End-to-end cost of encryption (issue 28): two builds of p2pshare side by side, e.g. the
# last unencrypted commit against today's. One seeder, one downloader, loopback only
# (--broadcast 127.255.255.255, a private discovery port), a file of SIZE_MIB, ROUNDS rounds,
# the binaries interleaved within each round. Prints per round and binary: the `get`'s wall
# seconds, the downloader's CPU seconds and the seeder's (utime+stime from /proc, before and
# after the get). Caches are kept (warm) unless DROP=1 (root: drops them before each get).
# Usage: bench/e2e-crypto.sh SIZE_MIB ROUNDS NAME=BIN [NAME=BIN ...]
set -euo pipefail
size=$1; rounds=$2; shift 2
work=$(mktemp -d /tmp/p2pshare-e2e.XXXXXX)
trap 'kill "${seeder:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src"
head -c $((size << 20)) /dev/urandom > "$work/src/big.bin"
# The seeder's folder is made once and kept (its cache too): a file changed less than the
# scanner's racy window before a scan is hashed again on the next one, during the transfer.
mkdir -p "$work/a" && cp "$work/src/big.bin" "$work/a/big.bin" && sleep 3
tick=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
dport=47123
for r in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    dport=$((dport + 1))
    rm -rf "$work/b"; mkdir -p "$work/b"
    net=(--broadcast 127.255.255.255 --discovery-port "$dport" --no-web)
    "$bin" "${net[@]}" --shared "$work/a" --port 0 -v serve 2> "$work/seeder.err" &
    seeder=$!
    for _ in $(seq 1 600); do grep -q "(hashed" "$work/seeder.err" 2>/dev/null && break; sleep 0.1; done
    [[ -n ${DROP:-} ]] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
    s0=$(cpu_of "$seeder")
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$work/time" "$bin" "${net[@]}" --shared "$work/b" --port 0 -q get big.bin --timeout 300 > /dev/null
    t1=$(date +%s.%N)
    s1=$(cpu_of "$seeder")
    kill "$seeder"; wait "$seeder" 2>/dev/null || true; seeder=
    cmp -s "$work/src/big.bin" "$work/b/dl_big.bin" || { echo "$name round $r: file differs"; exit 1; }
    read -r u s < "$work/time"
    awk -v n="$name" -v r="$r" -v w="$(echo "$t1 - $t0" | bc)" -v d="$(echo "$u + $s" | bc)" \
        -v sc="$(echo "$s1 - $s0" | bc)" -v m="$size" \
        'BEGIN { printf "%s round %d: %d MiB in %.2f s (%.0f MB/s), downloader CPU %.2f s, seeder CPU %.2f s\n", n, r, m, w, m*1.048576/w, d, sc }'
  done
done
