#!/usr/bin/env python3
"""The benchmark's libtorrent peer: seeds or downloads one torrent, on 127.x addresses only.

    lt_driver.py seed TORRENT DIR IP:PORT
    lt_driver.py get TORRENT DIR IP:PORT PEER_IP:PORT...

`seed` checks DIR's copy of the torrent's file, prints `seeding` on stderr once it is complete,
and then serves until it is killed. `get` downloads into DIR from the peers named (given
directly: no tracker, DHT, local peer discovery, UPnP or NAT-PMP), prints `done SECONDS` on
stdout (from adding the torrent to the last piece passing its hash check), then fsyncs what it
downloaded and its folder (which libtorrent itself never does, and p2pshare does before it calls
a download done), prints `synced SECONDS` (from the same start) and exits 0; it exits 1 on a
timeout or error. Both speak TCP only (uTP off) and listen and connect from IP only.
Everything else is libtorrent's default, as a user would get it: the default disk I/O (which
does not fsync), caches and connection limits.
"""

import os
import sys
import time

import libtorrent as lt

TIMEOUT_S = 900


def addr(s):
    """'127.0.0.2:6881' -> ('127.0.0.2', 6881); only 127.x is allowed."""
    host, _, port = s.rpartition(":")
    if not host.startswith("127."):
        sys.exit(f"lt_driver: {s}: only 127.x addresses are allowed")
    return host, int(port)


def session(listen):
    host, port = listen
    return lt.session(
        {
            "listen_interfaces": f"{host}:{port}",
            "outgoing_interfaces": host,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_tcp": True,
            "enable_incoming_tcp": True,
            "alert_mask": lt.alert.category_t.status_notification
            | lt.alert.category_t.error_notification,
        }
    )


def add(ses, torrent, save_path):
    ti = lt.torrent_info(torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    atp.trackers = []
    h = ses.add_torrent(atp)
    # The torrent may name a dummy announce URL: never contact it.
    h.replace_trackers([])
    return h


def complete(h):
    st = h.status()
    return st.is_seeding or st.state == lt.torrent_status.seeding


def wait_complete(ses, h, deadline):
    while not complete(h):
        if time.monotonic() > deadline:
            return False
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            if isinstance(a, lt.torrent_error_alert):
                sys.exit(f"lt_driver: {a.message()}")
    return True


def sync_tree(top):
    """fsyncs every regular file below `top`, then each folder, as p2pshare's download does."""
    for root, dirs, files in os.walk(top):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def main(argv):
    if len(argv) < 4 or argv[0] not in ("seed", "get") or (argv[0] == "get") != (len(argv) > 4):
        sys.exit(__doc__)
    mode, torrent, save_path, listen = argv[0], argv[1], argv[2], addr(argv[3])
    peers = [addr(p) for p in argv[4:]]
    ses = session(listen)
    start = time.monotonic()
    h = add(ses, torrent, save_path)
    for p in peers:
        h.connect_peer(p)
    if not wait_complete(ses, h, start + TIMEOUT_S):
        print(f"lt_driver: not complete after {TIMEOUT_S} s: {h.status().progress:.3f}", file=sys.stderr)
        return 1
    secs = time.monotonic() - start
    if mode == "get":
        print(f"done {secs:.4f}", flush=True)
        sync_tree(save_path)
        print(f"synced {time.monotonic() - start:.4f}", flush=True)
        return 0
    print(f"seeding after a {secs:.2f} s check", file=sys.stderr, flush=True)
    while True:
        ses.wait_for_alert(1000)
        ses.pop_alerts()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
