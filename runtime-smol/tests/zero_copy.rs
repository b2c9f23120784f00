//! Zero-copy serving (`sendfile(2)`) against the buffer path, on both runtimes, over loopback
//! only (every config broadcasts to 127.255.255.255): both serve byte-identical files, the
//! counters show which path served, and a shared file that shrank after the scan breaks the
//! connection (counted), never the peer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use p2pshare_host::{Handle, Notice, PeerConfig};
use p2pshare_proto::{ContentId, Event, PeerId, Stats};

mod support;

use support::Start;

/// A loopback-only config sharing `dir`, serving zero-copy or not; its discovery ports lie
/// apart from those of `loopback.rs` (offsets below 10).
fn config(dir: &Path, offset: u16, zero_copy: bool) -> PeerConfig {
    let mut cfg = support::config(dir, 10 + offset);
    cfg.zero_copy = zero_copy;
    cfg
}

/// About 5 MiB that differ per `seed`, not a whole number of chunks.
fn contents(seed: u64) -> Vec<u8> {
    support::contents(seed, 5 * 1024 * 1024 + 4321)
}

struct Peer {
    dir: tempfile::TempDir,
    handle: Handle,
    id: PeerId,
}

fn peer(runtime: Start, cfg: impl FnOnce(&Path) -> PeerConfig, file: Option<&[u8]>) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    if let Some(data) = file {
        std::fs::write(dir.path().join("big.bin"), data).unwrap();
    }
    let handle = runtime(&cfg(dir.path())).unwrap();
    let id = handle.snapshot().unwrap().me;
    Peer { dir, handle, id }
}

/// Waits (bounded) until `h` sees `big.bin` shared by `holder`; returns its content id.
fn wait_for_file(h: &Handle, holder: PeerId) -> ContentId {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let snap = h.snapshot().unwrap();
        let found = snap
            .remote
            .iter()
            .find(|f| f.names.iter().any(|n| n == "big.bin") && f.holders.contains(&holder));
        if let Some(f) = found {
            return f.content;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("big.bin never appeared");
}

/// Downloads `big.bin` from a fresh seeder of `runtime` serving zero-copy or not; returns the
/// downloaded bytes and the seeder's counters.
fn serve_once(runtime: Start, offset: u16, zero_copy: bool, data: &[u8]) -> (Vec<u8>, Stats) {
    let seeder = peer(runtime, |d| config(d, offset, zero_copy), Some(data));
    // The downloader always runs the default (its own serving does not matter here).
    let getter = peer(runtime, |d| config(d, offset, true), None);
    let content = wait_for_file(&getter.handle, seeder.id);
    getter.handle.get(content, None).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < until, "download did not finish in time");
        match getter
            .handle
            .next_notice(Duration::from_millis(200))
            .unwrap()
        {
            Some(Notice::Event(Event::DownloadDone { content: c, .. })) if c == content => break,
            Some(Notice::Event(Event::DownloadFailed {
                content: c, reason, ..
            })) if c == content => panic!("download failed: {reason:?}"),
            _ => {}
        }
    }
    let got = std::fs::read(getter.dir.path().join("dl_big.bin")).unwrap();
    let stats = seeder.handle.snapshot().unwrap().stats;
    (got, stats)
}

fn both_paths_serve_the_same_bytes(runtime: Start, offset: u16) {
    let data = contents(u64::from(offset) + 7);
    let (by_sendfile, zc) = serve_once(runtime, offset, true, &data);
    let (by_buffer, buf) = serve_once(runtime, offset + 1, false, &data);
    assert!(
        by_sendfile == data,
        "the zero-copy download differs from the original"
    );
    assert!(
        by_buffer == by_sendfile,
        "the two paths gave different files"
    );
    assert!(zc.chunks_served > 0 && buf.chunks_served > 0);
    assert_eq!(
        zc.chunks_sent_zero_copy, zc.chunks_served,
        "every chunk of a shared file goes zero-copy"
    );
    assert_eq!(
        buf.chunks_sent_zero_copy, 0,
        "zero_copy off reads every chunk"
    );
    assert_eq!((zc.zero_copy_broken, buf.zero_copy_broken), (0, 0));
}

#[test]
fn mio_serves_identical_bytes_by_sendfile_and_by_buffer() {
    both_paths_serve_the_same_bytes(p2pshare_mio::start, 0);
}

#[test]
fn smol_serves_identical_bytes_by_sendfile_and_by_buffer() {
    both_paths_serve_the_same_bytes(p2pshare_smol::start, 2);
}

/// The seeder's file is cut to 1 MiB after its scan (and its next scan is far away): the
/// chunks past the cut come short after their header went out, so the seeder closes those
/// connections and counts them, and keeps running.
fn a_file_shrunk_after_the_scan_breaks_the_stream(runtime: Start, offset: u16) {
    let data = contents(u64::from(offset) + 11);
    let seeder = peer(
        runtime,
        |d| {
            let mut c = config(d, offset, true);
            c.rescan = Duration::from_secs(600);
            c
        },
        Some(&data),
    );
    let getter = peer(runtime, |d| config(d, offset, true), None);
    let content = wait_for_file(&getter.handle, seeder.id);
    std::fs::OpenOptions::new()
        .write(true)
        .open(seeder.dir.path().join("big.bin"))
        .and_then(|f| f.set_len(1 << 20))
        .unwrap();
    getter.handle.get(content, None).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let s = seeder.handle.snapshot().unwrap().stats;
        if s.zero_copy_broken > 0 {
            break s;
        }
        assert!(Instant::now() < until, "no broken stream counted: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(stats.chunks_sent_zero_copy > 0);
    // The download cannot complete: nothing past the cut exists any more.
    assert!(!getter.dir.path().join("dl_big.bin").exists());
    // The seeder still answers.
    assert!(seeder.handle.snapshot().is_ok());
}

#[test]
fn mio_closes_a_connection_whose_file_shrank() {
    a_file_shrunk_after_the_scan_breaks_the_stream(p2pshare_mio::start, 4);
}

#[test]
fn smol_closes_a_connection_whose_file_shrank() {
    a_file_shrunk_after_the_scan_breaks_the_stream(p2pshare_smol::start, 5);
}
