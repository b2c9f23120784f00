//! Keys as permissions, through a node: a static peer given with its key must present it
//! (`--peer KEY@HOST:PORT`), and a node with an allow list (`--allow`) serves its catalog,
//! manifests and chunks only to those keys; every other key gets an empty catalog and
//! `NotFound`, counted, and the Python side is offered nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, ManifestBuilder};
use p2pshare_proto::wire::frame::{ErrorCode, Frame, Message};
use p2pshare_proto::{
    Config, ConnId, ContentId, DiskOp, Identity, Input, LocalFile, NetOp, Node, Output, PeerId,
    StaticPeer,
};

#[path = "support/peer.rs"]
mod peer;
use peer::TestPeer;

fn key(secret: u8) -> PeerId {
    Identity::from_secret_bytes(&[secret; 32]).key()
}

/// A node (key of secret 1) sharing one file of two chunks, serving `allow`.
fn sharing(now: Instant, allow: Option<BTreeSet<PeerId>>) -> (Node, ContentId) {
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to = vec!["10.0.0.255:9999".parse().unwrap()];
    cfg.allow = allow;
    let mut n = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], now).unwrap();
    let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
    b.update(&vec![7u8; 2 * MIN_CHUNK_SIZE as usize]);
    let manifest = b.finish().unwrap();
    let id = manifest.id();
    n.handle_input(
        now,
        Input::CatalogChanged {
            files: vec![LocalFile {
                name: "secret.bin".into(),
                manifest,
            }],
        },
    );
    while n.poll_output().is_some() {}
    (n, id)
}

/// What the node answered a peer (key of `secret`) that connected and asked for the catalog,
/// the manifest of `id`, its chunk `index` and swarm news: the frames it sent back, and whether it
/// read a chunk from disk to serve it.
fn ask(n: &mut Node, now: Instant, secret: u8, id: ContentId, index: u32) -> (Vec<Frame>, bool) {
    let from: SocketAddr = format!("10.0.0.{secret}:40000").parse().unwrap();
    let conn = n.accept(now, from).conn().expect("accepted");
    while n.poll_output().is_some() {}
    let mut them = TestPeer::dialer([secret; 32], None);
    let (_, _) = them.handshake(n, now, conn, 5);
    assert!(them.is_open());
    let mut asks = Vec::new();
    for m in [
        Message::CatalogRequest { page: 0 },
        Message::ManifestRequest { content: id },
        Message::ChunkRequest { content: id, index },
        Message::Interested { content: id },
    ] {
        asks.extend(them.seal_msg(&m));
    }
    n.handle_received(now, conn, &asks);
    let (mut frames, mut read) = (Vec::new(), false);
    while let Some(o) = n.poll_output() {
        match o {
            Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                frames.extend(them.receive(&data));
            }
            Output::Disk(DiskOp::Read { .. }) => read = true,
            _ => {}
        }
    }
    (frames, read)
}

fn catalog_files(frames: &[Frame]) -> Option<usize> {
    frames.iter().find_map(|f| match f {
        Frame::Message(Message::Catalog { files, .. }) => Some(files.len()),
        _ => None,
    })
}

fn refusals(frames: &[Frame]) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(
                f,
                Frame::Message(Message::Error {
                    code: ErrorCode::NotFound,
                    ..
                })
            )
        })
        .count()
}

#[test]
fn a_private_peer_serves_only_the_keys_it_allows() {
    let t0 = Instant::now();
    let friend = 2;
    let (mut n, id) = sharing(t0, Some([key(friend)].into()));

    // The friend gets the catalog, the manifest, and its chunk is read to be sent.
    let (frames, read) = ask(&mut n, t0, friend, id, 0);
    assert_eq!(catalog_files(&frames), Some(1), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Message(Message::Manifest { .. })))
    );
    assert!(read, "the friend's chunk is read to be sent");
    assert_eq!(refusals(&frames), 0);
    assert_eq!(n.stats().requests_not_allowed, 0);

    // A stranger (a key of its own, its handshake fine) learns nothing: an empty catalog,
    // NotFound for the manifest and the chunk, no answer to its swarm news; nothing is read.
    let (frames, read) = ask(&mut n, t0, 3, id, 0);
    assert_eq!(catalog_files(&frames), Some(0), "{frames:?}");
    assert_eq!(refusals(&frames), 2, "{frames:?}");
    assert!(!read, "nothing read for a stranger");
    assert!(!frames.iter().any(|f| matches!(
        f,
        Frame::Message(Message::Manifest { .. } | Message::Bitfield { .. }) | Frame::Chunk { .. }
    )));
    assert_eq!(n.stats().requests_not_allowed, 4);

    // Allowing the stranger (a pairing, an edit of the allow file) serves it from then on.
    n.handle_input(
        t0,
        Input::Allow {
            keys: Some([key(friend), key(3)].into()),
        },
    );
    while n.poll_output().is_some() {}
    // (Chunk 1: chunk 0 just went to the friend, and a crowd is spread.)
    let (frames, read) = ask(&mut n, t0, 3, id, 1);
    assert_eq!(catalog_files(&frames), Some(1));
    assert!(read);
    // And no allow list at all serves everyone.
    n.handle_input(t0, Input::Allow { keys: None });
    while n.poll_output().is_some() {}
    let (frames, _) = ask(&mut n, t0, 4, id, 1);
    assert_eq!(catalog_files(&frames), Some(1));
    assert_eq!(n.stats().requests_not_allowed, 4);
}

#[test]
fn a_private_peer_offers_python_peers_nothing() {
    let t0 = Instant::now();
    let (mut n, _) = sharing(t0, Some(BTreeSet::new()));
    // A Python peer is heard, which would make us announce our files to them in JSON.
    let py = br#"{"type": "P2P_PEER_DISCOVERY", "port": 5000, "files": {}}"#;
    n.handle_input(
        t0,
        Input::Datagram {
            from: "10.0.0.9:9999".parse().unwrap(),
            data: py.to_vec(),
        },
    );
    while n.poll_output().is_some() {}
    assert!(n.python_around());
    // Its next announcements are the signed datagram only: no JSON with our names.
    let mut later = t0;
    let mut datagrams = Vec::new();
    for _ in 0..4 {
        later = n.poll_timeout().unwrap().max(later);
        n.handle_timeout(later);
        while let Some(o) = n.poll_output() {
            if let Output::Net(NetOp::Datagram { data, .. }) = o {
                datagrams.push(data);
            }
        }
    }
    assert!(!datagrams.is_empty());
    assert!(
        datagrams.iter().all(|d| d.starts_with(b"P2PS")),
        "only signed presence"
    );
    // A Python request for our file is closed unanswered, and counted.
    let conn = n
        .accept(later, "10.0.0.9:41000".parse().unwrap())
        .conn()
        .unwrap();
    n.handle_received(later, conn, b"chunk secret.bin 0\n");
    let mut closed = false;
    while let Some(o) = n.poll_output() {
        match o {
            Output::Net(NetOp::Close { conn: c }) if c == conn => closed = true,
            Output::Disk(DiskOp::Read { .. }) => panic!("read for a Python peer"),
            _ => {}
        }
    }
    assert!(closed);
    assert_eq!(n.stats().requests_not_allowed, 1);
}

/// Dials the node's static peer and answers as the holder of `secret`: true when the
/// session opened (both hellos), with the node's counters.
fn dial_static(expected: Option<PeerId>, secret: u8) -> (bool, p2pshare_proto::Stats) {
    let t0 = Instant::now();
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    let addr: SocketAddr = "192.168.7.2:10000".parse().unwrap();
    cfg.static_peers = vec![StaticPeer {
        addr,
        key: expected,
    }];
    let mut n = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], t0).unwrap();
    let mut dial: Option<ConnId> = None;
    let mut at = t0;
    for _ in 0..4 {
        while let Some(o) = n.poll_output() {
            if let Output::Net(NetOp::Connect { conn, addr: a }) = o {
                assert_eq!(a, addr);
                dial = Some(conn);
            }
        }
        if dial.is_some() {
            break;
        }
        at = n.poll_timeout().unwrap().max(at);
        n.handle_timeout(at);
    }
    let conn = dial.expect("the static peer is dialled");
    n.handle_input(at, Input::Connected { conn });
    let mut them = TestPeer::acceptor([secret; 32]);
    let (frames, others) = them.handshake(&mut n, at, conn, 7);
    let closed = others
        .iter()
        .any(|o| matches!(o, Output::Net(NetOp::Close { conn: c }) if *c == conn));
    let hello = frames
        .iter()
        .any(|f| matches!(f, Frame::Message(Message::Hello { .. })));
    (hello && !closed, n.stats())
}

#[test]
fn a_static_peer_given_with_a_key_must_present_it() {
    // The right key: the session opens.
    let (open, stats) = dial_static(Some(key(2)), 2);
    assert!(open);
    assert_eq!(stats.handshake_wrong_peer, 0);
    // Another key answers there: closed before we say who we are, and counted.
    let (open, stats) = dial_static(Some(key(2)), 9);
    assert!(!open);
    assert_eq!(stats.handshake_wrong_peer, 1);
    // No key given: whatever key answers is taken (trust on first use).
    let (open, stats) = dial_static(None, 9);
    assert!(open);
    assert_eq!(stats.handshake_wrong_peer, 0);
}
