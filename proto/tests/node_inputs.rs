//! "No input sequence panics": random scripts of inputs (real and garbage datagrams, accepted
//! and connected sessions carrying valid and random frames, closes, read/write/open/finish
//! results, catalog changes and commands), with time only moving forward, into one `Node`.
//!
//! The runtime around the node is `support/node_harness.rs` (shared with the `node_inputs` fuzz
//! target); after every input it checks the node's invariants, that `poll_timeout()` after
//! `handle_timeout(now)` is later than `now`, that every `Write` carries a chunk that verifies
//! against its manifest, that `Finish` comes only once the partial file is complete, and that
//! outputs and buffers stay bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]
// The harness derives `Arbitrary` under `cfg(fuzzing)`, which only cargo-fuzz sets.
#![allow(unexpected_cfgs)]

mod support {
    pub mod node_harness;
}

use std::time::Instant;

use proptest::prelude::*;
use support::node_harness::{FileSpec, Harness, Op, OpenHow, Payload, ReadHow, Script};

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Payload::Raw),
        1 => Just(Payload::Preamble),
        4 => (any::<u8>(), 0..3u8).prop_map(|(peer, instance)| Payload::Hello { peer, instance }),
        1 => Just(Payload::Ping),
        1 => Just(Payload::Pong),
        1 => any::<u8>().prop_map(|page| Payload::CatalogRequest { page }),
        2 => (any::<u8>(), any::<bool>())
            .prop_flat_map(|(files, bad_name)| (Just(files), Just(bad_name), 0..3u8, 0..3u8))
            .prop_map(|(files, bad_name, page, pages)| Payload::Catalog {
                files,
                bad_name,
                page,
                pages
            }),
        1 => (0..4u8).prop_map(|file| Payload::ManifestRequest { file }),
        1 => (0..4u8, any::<bool>()).prop_map(|(file, tamper)| Payload::Manifest { file, tamper }),
        1 => (0..4u8, 0..5u8).prop_map(|(file, index)| Payload::ChunkRequest { file, index }),
        2 => (0..4u8, 0..5u8, any::<bool>())
            .prop_map(|(file, index, corrupt)| Payload::Chunk { file, index, corrupt }),
        1 => (any::<u8>(), 0..4u8, prop::option::of(0..5u8))
            .prop_map(|(code, file, index)| Payload::Error { code, file, index }),
        1 => (0..4u8).prop_map(|file| Payload::Interested { file }),
        1 => (0..4u8, any::<u8>(), any::<u8>())
            .prop_map(|(file, bits, len_skew)| Payload::Bitfield { file, bits, len_skew }),
        1 => (0..4u8, prop::collection::vec(0..9u8, 0..4))
            .prop_map(|(file, indices)| Payload::Have { file, indices }),
        10 => (0..8u8).prop_map(|how| Payload::Answer { how }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3000u16).prop_map(Op::Advance),
        2 => Just(Op::Deadline),
        1 => Just(Op::Timeout),
        4 => (any::<u8>(), 0..3u8, 0..3u8, prop::bool::weighted(0.1)).prop_map(
            |(peer, instance, revision, bye)| Op::Announce { peer, instance, revision, bye }
        ),
        1 => Just(Op::Echo),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Op::RawDatagram),
        2 => (0..4u8, any::<u8>()).prop_map(|(n, peer)| Op::Accept { n, peer }),
        1 => (any::<u8>(), 0..3u8, any::<u8>(), any::<bool>())
            .prop_map(|(peer, instance, port, bye)| Op::Claim { peer, instance, port, bye }),
        4 => any::<u8>().prop_map(Op::Connected),
        1 => any::<u8>().prop_map(Op::ConnectFailed),
        1 => any::<u8>().prop_map(Op::Closed),
        3 => any::<u8>().prop_map(Op::Flushed),
        20 => (any::<u8>(), payload(), prop_oneof![3 => Just(0u8), 1 => any::<u8>()])
            .prop_map(|(conn, payload, split)| Op::Receive { conn, payload, split }),
        4 => (
            any::<u8>(),
            prop_oneof![
                6 => Just(ReadHow::Good),
                1 => Just(ReadHow::Short),
                1 => Just(ReadHow::Corrupt),
                1 => Just(ReadHow::Fail),
                1 => any::<u8>().prop_map(ReadHow::Stray),
            ]
        )
            .prop_map(|(read, how)| Op::ReadDone { read, how }),
        2 => (
            any::<u8>(),
            prop_oneof![
                4 => Just(OpenHow::Existing),
                1 => any::<u32>().prop_map(|n| OpenHow::Claim(n % 70_000)),
                1 => Just(OpenHow::Fail),
            ]
        )
            .prop_map(|(which, how)| Op::PartialOpened { which, how }),
        6 => (any::<u8>(), prop::bool::weighted(0.9)).prop_map(|(which, ok)| Op::Written { which, ok }),
        1 => (0..4u8, 0..5u8).prop_map(|(file, index)| Op::WrittenStale { file, index }),
        1 => (any::<u8>(), prop::bool::weighted(0.8)).prop_map(|(which, ok)| Op::Finished { which, ok }),
        1 => any::<u8>().prop_map(Op::Share),
        2 => (0..4u8).prop_map(Op::Get),
        1 => (0..4u8).prop_map(Op::Cancel),
        1 => any::<u8>().prop_map(Op::Allow),
        1 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(at, key, found)| Op::AddPeer { at, key, found }),
        1 => prop::bool::weighted(0.02).prop_map(|stop| if stop { Op::Shutdown } else { Op::Timeout }),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        prop::collection::vec(
            (any::<u8>(), any::<u32>()).prop_map(|(seed, len)| FileSpec { seed, len }),
            0..4,
        ),
        prop::bool::weighted(0.2),
        0..8u8,
        prop::collection::vec(op(), 0..200),
    )
        .prop_map(|(files, static_peer, prologue, ops)| Script {
            files,
            static_peer,
            prologue,
            ops,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_input_sequence_panics(s in script()) {
        Harness::run(Instant::now(), &s);
    }
}

/// A scripted happy path through the same harness: from the prologue that has the node
/// downloading (discovery, handshake, catalog, manifest, partial file open), three chunks
/// cut into 7-byte pieces, their writes and the finish. Shows the harness reaches the deep
/// states the random scripts mix.
#[test]
fn scripted_download_reaches_finish() {
    let mut ops = Vec::new();
    for _ in 0..3 {
        ops.push(Op::Receive {
            conn: 0,
            payload: Payload::Answer { how: 0 },
            split: 7,
        });
        ops.push(Op::Written { which: 0, ok: true });
    }
    ops.push(Op::Finished { which: 0, ok: true });
    let s = Script {
        files: Vec::new(),
        static_peer: false,
        prologue: 2,
        ops,
    };
    let h = Harness::run(Instant::now(), &s);
    assert_eq!(h.counts.get("write"), Some(&3), "{:?}", h.counts);
    assert_eq!(h.counts.get("finish"), Some(&1), "{:?}", h.counts);
}

/// The prologues the scripts (and the fuzz target) start from reach what they promise.
#[test]
fn prologues_reach_their_states() {
    let run = |prologue, ops| {
        let s = Script {
            files: Vec::new(),
            static_peer: false,
            prologue,
            ops,
        };
        Harness::run(Instant::now(), &s).counts
    };
    let c = run(1, Vec::new());
    assert!(c.get("event").is_some_and(|&n| n >= 2), "{c:?}");
    let c = run(2, Vec::new());
    assert_eq!(c.get("open_partial"), Some(&1), "{c:?}");
    let answer = Op::Receive {
        conn: 0,
        payload: Payload::Answer { how: 0 },
        split: 0,
    };
    let c = run(2, vec![answer.clone(), answer]);
    assert_eq!(c.get("write"), Some(&2), "{c:?}");
    let ask = Op::Receive {
        conn: 1,
        payload: Payload::ChunkRequest { file: 0, index: 1 },
        split: 0,
    };
    let c = run(
        3,
        vec![
            ask,
            Op::ReadDone {
                read: 0,
                how: ReadHow::Good,
            },
        ],
    );
    assert_eq!(c.get("read"), Some(&1), "{c:?}");
}

/// Serving on an encrypted connection, with either suite (prologue bit 2 sets our AES flag;
/// the remote ends alternate): chunk requests become reads, bounded by the serve window while
/// nothing is flushed; a flush makes room for the rest; the remote end opens every sealed
/// chunk (the harness panics on a record that does not open or a stream that does not frame).
#[test]
fn serving_reads_within_the_window_and_seals_what_it_sends() {
    for prologue in [3, 3 | 4] {
        let ask = |index| Op::Receive {
            conn: 1,
            payload: Payload::ChunkRequest { file: 0, index },
            split: 0,
        };
        let mut ops: Vec<Op> = [0, 1, 2, 0, 1, 2].into_iter().map(ask).collect();
        let s = Script {
            files: Vec::new(),
            static_peer: false,
            prologue,
            ops: ops.clone(),
        };
        let h = Harness::run(Instant::now(), &s);
        let window = u64::from(h.node().config().serve_window);
        assert_eq!(h.counts.get("read"), Some(&window), "{:?}", h.counts);
        let done = Op::ReadDone {
            read: 0,
            how: ReadHow::Good,
        };
        ops.extend(std::iter::repeat_n(done.clone(), window as usize));
        ops.push(Op::Flushed(1));
        ops.extend(std::iter::repeat_n(done, 6 - window as usize));
        let s = Script { ops, ..s };
        let h = Harness::run(Instant::now(), &s);
        assert_eq!(h.counts.get("read"), Some(&6), "{:?}", h.counts);
        assert_eq!(h.node().stats().chunks_served, 6);
    }
}
