//! Peers on the smol runtime (and one on mio) find each other and exchange a file over
//! loopback only: every config broadcasts to 127.255.255.255, never anywhere else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use p2pshare_host::{Handle, Notice, StartError};
use p2pshare_proto::{ContentId, Event, PeerId};

mod support;

use support::{Start, config};

/// About 3 MiB that differ per `seed` (so two files have two contents).
fn contents(seed: u64) -> Vec<u8> {
    support::contents(seed, 3 * 1024 * 1024 + 12345)
}

/// Waits (bounded) until `h` sees `name` shared by `holder`; returns its content id.
fn wait_for_file(h: &Handle, holder: PeerId, name: &str) -> ContentId {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let snap = h.snapshot().unwrap();
        let found = snap
            .remote
            .iter()
            .find(|f| f.names.iter().any(|n| n == name) && f.holders.contains(&holder));
        if let Some(f) = found {
            return f.content;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} never appeared");
}

/// Waits (bounded) for the end of the download of `content`; returns the bytes it fetched.
fn wait_done(h: &Handle, content: ContentId) -> u64 {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        match h.next_notice(Duration::from_millis(200)).unwrap() {
            Some(Notice::Event(Event::DownloadDone {
                content: c,
                fetched,
                ..
            })) if c == content => return fetched,
            Some(Notice::Event(Event::DownloadFailed {
                content: c, reason, ..
            })) if c == content => panic!("download failed: {reason:?}"),
            _ => {}
        }
    }
    panic!("download did not finish in time");
}

/// Waits (bounded) for `h` to have seen `peer` go.
fn wait_lost(h: &Handle, peer: PeerId, within: Duration) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(Notice::Event(Event::PeerLost { peer: p, .. })) =
            h.next_notice(Duration::from_millis(50)).unwrap()
            && p == peer
        {
            return;
        }
    }
    panic!("peer not lost within {within:?}");
}

struct Peer {
    dir: tempfile::TempDir,
    handle: Handle,
    id: PeerId,
}

/// Starts a peer with `runtime` in a fresh folder holding `file` (name, bytes).
fn peer(runtime: Start, offset: u16, file: Option<(&str, &[u8])>) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    if let Some((name, data)) = file {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let handle = runtime(&config(dir.path(), offset)).unwrap();
    let id = handle.snapshot().unwrap().me;
    Peer { dir, handle, id }
}

/// `to` downloads `name` from `from`, and gets exactly `data`.
fn download(to: &Peer, from: &Peer, name: &str, data: &[u8]) {
    let content = wait_for_file(&to.handle, from.id, name);
    to.handle.get(content, None).unwrap();
    let fetched = wait_done(&to.handle, content);
    assert_eq!(fetched, data.len() as u64);
    let got = std::fs::read(to.dir.path().join(format!("dl_{name}"))).unwrap();
    assert!(got == data, "dl_{name} differs from the original");
}

#[test]
fn smol_peers_exchange_a_file_and_say_goodbye() {
    let data = contents(1);
    let b = peer(p2pshare_smol::start, 0, Some(("big.bin", &data)));
    let a = peer(p2pshare_smol::start, 0, None);
    download(&a, &b, "big.bin", &data);
    // B's goodbye datagram reaches A long before B would expire (3.5 intervals).
    let b_id = b.id;
    b.handle.shutdown();
    wait_lost(&a.handle, b_id, Duration::from_millis(1500));
}

#[test]
fn mio_and_smol_peers_download_from_each_other() {
    let m_data = contents(2);
    let s_data = contents(3);
    let m = peer(p2pshare_mio::start, 1, Some(("from_mio.bin", &m_data)));
    let s = peer(p2pshare_smol::start, 1, Some(("from_smol.bin", &s_data)));
    download(&s, &m, "from_mio.bin", &m_data);
    download(&m, &s, "from_smol.bin", &s_data);
}

#[test]
fn a_taken_transfer_port_is_an_error_from_start() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 2);
    cfg.transfer_port = taken.local_addr().unwrap().port();
    match p2pshare_smol::start(&cfg) {
        Err(StartError::Bind(_)) => {}
        other => panic!("expected a bind error, got {other:?}"),
    }
}
