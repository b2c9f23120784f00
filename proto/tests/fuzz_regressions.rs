//! Inputs from the fuzz targets, replayed in `cargo test` so that a regression shows up without
//! fuzzing.
//!
//! Every crash a fuzz target finds becomes a test here, named after its target, with the
//! crashing input. The 10-minute runs of `decode_datagram`, `decode_frames`, `verify` and
//! `node_inputs` found none in the node; `node_inputs` found one in its checks (issue 26: an
//! expiry check applied to a node shut down), pinned below. The other tests pin the edge
//! inputs those targets are built around (limits, truncations, stale ids and answers to work
//! the node no longer wants), each checked the way its target checks it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]
// The harness derives `Arbitrary` under `cfg(fuzzing)`, which only cargo-fuzz sets.
#![allow(unexpected_cfgs)]

mod support {
    pub mod node_harness;
}

use std::time::Instant;

use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, Manifest};
use p2pshare_proto::wire::frame::{self, Frame, FrameDecoder, FrameError, Message, encode_message};
use p2pshare_proto::wire::{Announce, DatagramError, MAX_FRAME_LEN};
use p2pshare_proto::{ContentId, PeerId, sha256};
use support::node_harness::{Harness, Op, OpenHow, Payload, ReadHow, Script};

/// `decode_frames`: the stream fed whole and byte by byte gives the same frames and end.
fn frames_both_ways(stream: &[u8]) -> (Vec<Frame>, Option<FrameError>) {
    let run = |piece: usize| {
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for p in stream.chunks(piece.max(1)) {
            d.push(p);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => got.push(f),
                    Ok(None) => break,
                    Err(e) => return (got, Some(e)),
                }
            }
        }
        (got, None)
    };
    let whole = run(stream.len());
    assert_eq!(run(1), whole);
    whole
}

#[test]
fn decode_frames_length_one_past_the_limit_fails_on_its_prefix() {
    let mut s = Vec::new();
    s.extend(((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
    let bad = FrameError::BadLength(MAX_FRAME_LEN as u32 + 1);
    assert_eq!(frames_both_ways(&s), (Vec::new(), Some(bad)));
}

#[test]
fn decode_frames_chunk_one_byte_short_of_its_header() {
    let mut s = Vec::new();
    s.extend(encode_message(&Message::Ping));
    s.extend(36u32.to_be_bytes());
    s.push(2);
    s.extend([0; 35]);
    assert_eq!(
        frames_both_ways(&s),
        (
            vec![Frame::Message(Message::Ping)],
            Some(FrameError::ShortChunk)
        )
    );
}

#[test]
fn decode_frames_message_with_bytes_after_its_cbor_is_unreadable_not_fatal() {
    let mut ping = encode_message(&Message::Ping);
    ping.push(0);
    let len = (ping.len() - 4) as u32;
    ping[..4].copy_from_slice(&len.to_be_bytes());
    let mut s = Vec::new();
    s.extend(ping);
    s.extend(encode_message(&Message::Pong));
    assert_eq!(
        frames_both_ways(&s),
        (vec![Frame::Unreadable, Frame::Message(Message::Pong)], None)
    );
    assert_eq!(
        frame::decode(&[0, 0, 0, 1, 1]),
        Ok(Some((Frame::Unreadable, 5)))
    );
}

#[test]
fn decode_datagram_trailing_and_truncated_bytes_are_malformed() {
    let a = Announce {
        peer: PeerId([5; 32]),
        instance: u64::MAX,
        port: 0,
        revision: u64::MAX,
        bye: true,
    };
    let d = a.encode();
    assert_eq!(Announce::decode(&d), Ok(a));
    let mut longer = d.clone();
    longer.push(0xf6);
    assert_eq!(Announce::decode(&longer), Err(DatagramError::Malformed));
    for n in 5..d.len() {
        assert_eq!(
            Announce::decode(&d[..n]),
            Err(DatagramError::Malformed),
            "{n}"
        );
    }
    assert_eq!(Announce::decode(b"P2PS"), Err(DatagramError::Foreign));
}

/// The canonical manifest layout with the fields given.
fn manifest_bytes(size: u64, cs: u32, count: u32, hashes: u32) -> Vec<u8> {
    let mut b = b"P2PSMAN1".to_vec();
    b.extend(size.to_be_bytes());
    b.extend(cs.to_be_bytes());
    b.extend(count.to_be_bytes());
    b.extend([0; 32]);
    for i in 0..hashes {
        b.extend(sha256(&i.to_be_bytes()));
    }
    b
}

#[test]
fn verify_counts_and_sizes_at_their_edges() {
    let ok = |b: &[u8]| Manifest::verify_received(&ContentId(sha256(b)), b).is_ok();
    // An empty file has no chunks.
    assert!(ok(&manifest_bytes(0, MIN_CHUNK_SIZE, 0, 0)));
    // One byte more than a chunk needs two.
    let cs = u64::from(MIN_CHUNK_SIZE);
    assert!(ok(&manifest_bytes(cs + 1, MIN_CHUNK_SIZE, 2, 2)));
    assert!(!ok(&manifest_bytes(cs + 1, MIN_CHUNK_SIZE, 1, 1)));
    assert!(!ok(&manifest_bytes(cs, MIN_CHUNK_SIZE, 2, 2)));
    // The count field must match the hashes that follow.
    assert!(!ok(&manifest_bytes(cs + 1, MIN_CHUNK_SIZE, 2, 1)));
    // Chunk sizes out of range, and a count that would overflow a 32-bit multiply.
    assert!(!ok(&manifest_bytes(1, MIN_CHUNK_SIZE - 1, 1, 1)));
    assert!(!ok(&manifest_bytes(u64::MAX, MIN_CHUNK_SIZE, u32::MAX, 0)));
    // The last chunk of a file is exactly what is left.
    let m = Manifest::verify_received(
        &ContentId(sha256(&manifest_bytes(cs + 1, MIN_CHUNK_SIZE, 2, 2))),
        &manifest_bytes(cs + 1, MIN_CHUNK_SIZE, 2, 2),
    )
    .unwrap();
    assert_eq!(m.chunk_range(1), Some((cs, 1)));
    assert!(m.verify_chunk(1, &[]).is_err());
}

/// `node_inputs` (issue 26, found by the checked pump's new expiry check): a node shut down
/// keeps the peers it knew and runs no timers, so its table is not expected to expire; the
/// check applies while it runs. (The crashing input: prologue 10, a static peer, then
/// shutdown, 39.68 s, a timeout.)
#[test]
fn node_inputs_a_node_shut_down_keeps_its_table_and_runs_no_timers() {
    let ops = vec![
        Op::Shutdown,
        Op::Advance(39680),
        Op::Timeout,
        Op::Advance(0),
    ];
    let s = Script {
        static_peer: true,
        ..script(10, ops)
    };
    let h = Harness::run(Instant::now(), &s);
    assert!(!h.node().peers().is_empty(), "the table is kept");
    assert_eq!(h.node().poll_timeout(), None, "no timers after shutdown");
}

fn script(prologue: u8, ops: Vec<Op>) -> Script {
    Script {
        files: Vec::new(),
        static_peer: false,
        prologue,
        ops,
    }
}

#[test]
fn node_inputs_stale_ids_and_unwanted_answers() {
    let ops = vec![
        // Events for connections and reads the node never had.
        Op::Closed(9),
        Op::Connected(9),
        Op::Flushed(9),
        Op::ReadDone {
            read: 0,
            how: ReadHow::Stray(3),
        },
        Op::WrittenStale { file: 0, index: 0 },
        Op::Finished { which: 0, ok: true },
        // The same inbound id twice, then a hello with our own id on it.
        Op::Accept { n: 7, peer: 2 },
        Op::Accept { n: 7, peer: 2 },
        Op::Receive {
            conn: 0,
            payload: Payload::Hello {
                peer: 200,
                instance: 0,
            },
            split: 3,
        },
        // `get` of content nobody has, and `cancel` of what is not downloading.
        Op::Get(3),
        Op::Cancel(0),
        Op::Deadline,
        Op::Deadline,
    ];
    Harness::run(Instant::now(), &script(0, ops));
}

#[test]
fn node_inputs_download_cancelled_with_work_outstanding_then_restarted() {
    let answer = |how| Op::Receive {
        conn: 0,
        payload: Payload::Answer { how },
        split: 0,
    };
    let ops = vec![
        answer(0),
        answer(4), // a corrupt chunk: peer 0 is banned, the download has no peer left
        Op::Written { which: 0, ok: true },
        Op::Get(0),
        Op::Cancel(0),
        Op::Get(0),
        Op::PartialOpened {
            which: 0,
            how: OpenHow::Claim(3 * MIN_CHUNK_SIZE),
        },
        Op::ReadDone {
            read: 0,
            how: ReadHow::Good,
        },
        Op::Written { which: 0, ok: true },
        Op::Finished { which: 0, ok: true },
        Op::Deadline,
        Op::Shutdown,
        Op::Deadline,
    ];
    Harness::run(Instant::now(), &script(2, ops));
}
