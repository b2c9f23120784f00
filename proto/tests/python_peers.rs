//! The node and the original Python peers (issue 16), through the node's public API: a JSON
//! announcement makes a Python peer with its files in `remote_files` (marked, size as an upper
//! bound) and its address in `peers`; it is forgotten after 3½ × 5 s of silence; bad datagrams
//! and entries are counted; we announce to Python peers only while one was heard lately.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare_proto::budget::{PY_EXPIRY, PY_RECENT};
use p2pshare_proto::python::wire::{LegacyAnnounce, LegacyFile};
use p2pshare_proto::{Config, Identity, Input, NetOp, Node, Output, PeerId, sha256};

#[path = "support/epoch.rs"]
mod epoch;

const PY: &str = r#"{"type": "P2P_PEER_DISCOVERY", "port": 10001, "files": {"a.txt": {"total_chunks": 3, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}, "has space.txt": {"total_chunks": 1, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}"#;

fn node(t0: Instant) -> Node {
    let mut cfg = Config::new(7, 42, 10000);
    cfg.announce_to = vec!["10.0.0.255:9999".parse().unwrap()];
    Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], t0).unwrap()
}

/// The JSON datagrams the node sends now.
fn json_sent(n: &mut Node) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(o) = n.poll_output() {
        if let Output::Net(NetOp::Datagram { data, .. }) = o
            && data.first() == Some(&b'{')
        {
            out.push(data);
        }
    }
    out
}

#[test]
fn a_python_peer_is_heard_listed_and_forgotten() {
    let t0 = epoch::test_epoch();
    let mut n = node(t0);
    n.handle_timeout(t0);
    assert!(
        json_sent(&mut n).is_empty(),
        "no JSON before a Python peer is heard"
    );
    let from: SocketAddr = "10.0.0.7:9999".parse().unwrap();
    n.handle_input(
        t0,
        Input::Datagram {
            from,
            data: PY.as_bytes().to_vec(),
        },
    );
    let peers = n.peers();
    assert_eq!(peers.len(), 1);
    assert!(peers[0].python);
    assert_eq!(peers[0].addr, "10.0.0.7:10001".parse().unwrap());
    let files = n.remote_files();
    assert_eq!(files.len(), 1);
    assert!(files[0].python);
    assert_eq!(files[0].names, ["a.txt"]);
    assert_eq!(files[0].size, 3 * 1024);
    assert_eq!(files[0].holders, [peers[0].id]);
    assert_eq!(n.stats().python_files_rejected, 1, "the name with a space");
    while n.poll_output().is_some() {}

    // We now announce to Python peers too, with our marker.
    let mut sent = Vec::new();
    while sent.is_empty() {
        let now = n.poll_timeout().unwrap();
        n.handle_timeout(now);
        sent = json_sent(&mut n);
    }
    let ours = LegacyAnnounce::decode(&sent[0]).unwrap();
    assert_eq!(
        (ours.port, ours.origin),
        (10000, Some(Identity::from_secret_bytes(&[1; 32]).key()))
    );

    // Silent past the expiry: gone.
    while n.peers().iter().any(|p| p.python) {
        let t = n.poll_timeout().unwrap();
        assert!(t <= t0 + PY_EXPIRY, "expired late");
        n.handle_timeout(t);
        json_sent(&mut n);
    }
    assert!(n.remote_files().is_empty());
    // And after PY_RECENT of silence no more JSON.
    let late = t0 + PY_RECENT + Duration::from_secs(1);
    n.handle_timeout(late);
    json_sent(&mut n);
    let t = n.poll_timeout().unwrap();
    n.handle_timeout(t);
    assert!(json_sent(&mut n).is_empty());
}

#[test]
fn bad_datagrams_are_counted_and_ours_are_ignored() {
    let t0 = epoch::test_epoch();
    let mut n = node(t0);
    let from: SocketAddr = "10.0.0.7:9999".parse().unwrap();
    for bad in [
        &b"{not json"[..],
        br#"{"type": "P2P_PEER_DISCOVERY", "port": 0}"#,
    ] {
        n.handle_input(
            t0,
            Input::Datagram {
                from,
                data: bad.to_vec(),
            },
        );
    }
    assert_eq!(n.stats().python_datagrams_dropped, 2);
    // Another p2pshare peer's JSON (its origin set) is not a Python peer; nor is our echo.
    for origin in [PeerId([2; 32]), Identity::from_secret_bytes(&[1; 32]).key()] {
        let a = LegacyAnnounce {
            port: 10005,
            files: vec![LegacyFile {
                name: "x".into(),
                total_chunks: 1,
                file_hash: sha256(b"x"),
            }],
            rejected: 0,
            origin: Some(origin),
        };
        n.handle_input(
            t0,
            Input::Datagram {
                from,
                data: a.encode(),
            },
        );
    }
    assert!(n.peers().is_empty());
    assert!(n.remote_files().is_empty());
}

/// What the node asks the runtime to do on `conn` now, in order.
fn ops(n: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

#[test]
fn a_python_request_gets_only_its_answer_and_others_get_our_hello() {
    use p2pshare_proto::python::wire::{decode_reply, encode_reply};
    // Our preamble (transfer protocol 3, no AES): what every native connection starts with.
    const PREAMBLE: &[u8] = b"P2PT\x03\x00";
    use p2pshare_proto::{DiskOp, LocalFile, Manifest, ReadSource};
    let t0 = epoch::test_epoch();
    let mut n = node(t0);
    let file: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let manifest = Manifest::of_bytes(&file);
    n.handle_input(
        t0,
        Input::CatalogChanged {
            files: vec![LocalFile {
                name: "a.txt".into(),
                manifest,
            }],
        },
    );
    ops(&mut n);
    let remote: SocketAddr = "10.0.0.7:40000".parse().unwrap();

    // A Python request, cut in two: no hello, one read of chunk 3 (the last 952 bytes).
    let conn = n.accept(t0, remote).conn().unwrap();
    assert!(
        ops(&mut n).is_empty(),
        "nothing said before the first bytes"
    );
    n.handle_received(t0, conn, b"chu");
    assert!(ops(&mut n).is_empty());
    n.handle_received(t0, conn, b"nk a.txt 3");
    let read = match ops(&mut n).as_slice() {
        [
            Output::Disk(DiskOp::Read {
                read,
                source: ReadSource::Shared(_),
                offset: 2048,
                len: 952,
            }),
        ] => *read,
        other => panic!("{other:?}"),
    };
    n.handle_input(
        t0,
        Input::ReadDone {
            read,
            result: Ok(file[2048..].to_vec()),
        },
    );
    match ops(&mut n).as_slice() {
        [Output::Net(NetOp::Send { conn: c, data })] => {
            assert_eq!(*c, conn);
            assert_eq!(data, &encode_reply(&file[2048..]));
            assert_eq!(decode_reply(data), Ok(&file[2048..]));
        }
        other => panic!("{other:?}"),
    }
    n.handle_input(t0, Input::Flushed { conn });
    assert_eq!(ops(&mut n), [Output::Net(NetOp::Close { conn })]);
    assert_eq!(n.stats().python_chunks_served, 1);

    // A path, an unknown name, a chunk past the end: closed without a byte, counted.
    for bad in [&b"chunk ../a.txt 1"[..], b"chunk b.txt 1", b"chunk a.txt 4"] {
        let conn = n.accept(t0, remote).conn().unwrap();
        n.handle_received(t0, conn, bad);
        assert_eq!(ops(&mut n), [Output::Net(NetOp::Close { conn })], "{bad:?}");
    }
    let s = n.stats();
    assert_eq!(
        (s.python_requests_malformed, s.python_requests_refused),
        (1, 2)
    );

    // Ours: the handshake (our preamble first) starts on the first bytes; a silent client
    // gets our preamble after PY_SNIFF.
    let conn = n.accept(t0, remote).conn().unwrap();
    n.handle_received(t0, conn, PREAMBLE);
    let said = ops(&mut n);
    assert!(
        matches!(said.as_slice(), [Output::Net(NetOp::Send { data, .. }), ..] if data.starts_with(b"P2PT\x03")),
        "{said:?}"
    );
    let conn = n.accept(t0, remote).conn().unwrap();
    assert!(ops(&mut n).is_empty());
    let t = n.poll_timeout().unwrap();
    assert!(t <= t0 + p2pshare_proto::budget::PY_SNIFF);
    n.handle_timeout(t0 + p2pshare_proto::budget::PY_SNIFF);
    let said = ops(&mut n);
    assert!(
        said.iter().any(|o| matches!(o, Output::Net(NetOp::Send { conn: c, data }) if *c == conn && data.starts_with(b"P2PT\x03"))),
        "{said:?}"
    );
    assert!(n.poll_timeout().unwrap() > t0 + p2pshare_proto::budget::PY_SNIFF);
}
