#!/usr/bin/env bash
# Handshake time on a link (issue 28): two network namespaces made here and joined by a veth
# (round trip < 0.1 ms), a seeder in one, five `list` one-shots (`--peer`) in the other, and
# tcpdump on the second's end. Prints, per connection, its first packets with payload:
# direction (> dialer to seeder, < back), length, ms after the dialer's SYN. The fifth, >268,
# is the dialer's third Noise message with its sealed hello: the handshake is done.
# Root only. Every peer runs inside the namespaces, which are removed on exit.
# Usage: bench/handshake-time.sh BIN
set -euo pipefail
bin=$1
a=hs$$a; b=hs$$b; work=$(mktemp -d)
pids=
cleanup() {
  [[ -n $pids ]] && kill $pids 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add va netns "$a" type veth peer name vb netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev va; ip -n "$b" addr add 10.77.0.2/24 dev vb
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set va up; ip -n "$b" link set vb up
mkdir -p "$work/s" "$work/d"; head -c 100000 /dev/urandom > "$work/s/f.bin"
ip netns exec "$a" "$bin" --shared "$work/s" --no-web serve 2> "$work/s.err" & pids=$!
for _ in $(seq 1 100); do grep -q "sharing" "$work/s.err" 2>/dev/null && break; sleep 0.1; done
ip netns exec "$b" tcpdump -i vb -w "$work/cap.pcap" -U 'tcp port 10000' 2>/dev/null & pids="$pids $!"
sleep 1
for _ in 1 2 3 4 5; do
  ip netns exec "$b" "$bin" --shared "$work/d" --no-web --peer 10.77.0.1:10000 list > /dev/null 2>&1
done
sleep 1
kill -INT "${pids##* }"; sleep 1
tcpdump -r "$work/cap.pcap" -nn -tt 2>/dev/null | awk '
  { t = $1; src = $3; dst = $5; sub(/:$/, "", dst)
    split(src, s, "."); split(dst, d, ".")
    port = (s[5] == "10000") ? d[5] : s[5]; fromdialer = (s[5] != "10000")
    len = 0; if (match($0, /length [0-9]+/)) len = substr($0, RSTART + 7, RLENGTH - 7) + 0
    if ($0 ~ /Flags \[S\]/) { syn[port] = t; n[port] = 0; order[++c] = port; next }
    if (len > 0 && (port in syn) && ++n[port] <= 5)
      ev[port] = ev[port] sprintf(" %s%d:%.2fms", fromdialer ? ">" : "<", len, (t - syn[port]) * 1000)
  }
  END { for (i = 1; i <= c; i++) print "connection from port " order[i] ":" ev[order[i]] }'
