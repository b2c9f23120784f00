//! Property tests of the Python-protocol codecs (`python::wire`, issue 16):
//! - every announcement of valid files round-trips through encode/decode, and what does not
//!   fit in `LEGACY_SEND_LIMIT` is left out from the end, never cut in the middle;
//! - every request line round-trips, and each of its prefixes asks for more bytes;
//! - every reply round-trips, and a changed byte is refused;
//! - arbitrary bytes into the three decoders never panic, and what decodes keeps the rules
//!   (requestable names, 64-hex hashes, bounded counts) and re-encodes to the same value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use p2pshare_proto::PeerId;
use p2pshare_proto::python::wire::{
    LEGACY_SEND_LIMIT, LegacyAnnounce, LegacyFile, LegacyRequest, MAX_LEGACY_CHUNKS,
    MAX_LEGACY_FILES, MAX_REPLY, PY_CHUNK, ReplyError, decode_reply, encode_reply, is_requestable,
};
use proptest::prelude::*;

/// Names a Python peer can ask for, with some non-ASCII and JSON-escaped characters.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_\"é€😀-][a-zA-Z0-9._\"é€😀-]{0,40}"
        .prop_filter("requestable", |n| is_requestable(n))
}

fn file() -> impl Strategy<Value = LegacyFile> {
    (name(), 0..=MAX_LEGACY_CHUNKS, any::<[u8; 32]>()).prop_map(
        |(name, total_chunks, file_hash)| LegacyFile {
            name,
            total_chunks,
            file_hash,
        },
    )
}

fn announce(max: usize) -> impl Strategy<Value = LegacyAnnounce> {
    (
        1..=u16::MAX,
        prop::collection::btree_map(name(), file(), 0..max),
        prop::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(port, m, origin)| {
            LegacyAnnounce {
                port,
                origin: origin.map(PeerId),
                // Distinct names, sorted: what decode yields.
                files: m
                    .into_iter()
                    .map(|(name, f)| LegacyFile { name, ..f })
                    .collect(),
                rejected: 0,
            }
        })
}

fn check_decoded(a: &LegacyAnnounce) {
    assert!(a.files.len() <= MAX_LEGACY_FILES);
    for f in &a.files {
        assert!(is_requestable(&f.name), "{:?}", f.name);
        assert!(f.total_chunks <= MAX_LEGACY_CHUNKS);
    }
    assert!(a.files.windows(2).all(|w| w[0].name < w[1].name));
}

proptest! {
    #[test]
    fn every_announce_round_trips(a in announce(30)) {
        let d = a.encode();
        prop_assert!(d.len() <= LEGACY_SEND_LIMIT);
        prop_assert_eq!(LegacyAnnounce::decode(&d), Ok(a));
    }

    #[test]
    fn every_request_round_trips(name in name(), index in 1..=u64::MAX) {
        let r = LegacyRequest { name, index };
        let line = r.encode();
        prop_assert_eq!(LegacyRequest::decode(&line), Ok(Some(r.clone())));
        // Every prefix up to the index is still a request arriving.
        let digits = index.to_string().len();
        for cut in 0..line.len() - digits {
            prop_assert_eq!(LegacyRequest::decode(&line[..cut]), Ok(None), "cut {}", cut);
        }
    }

    #[test]
    fn every_reply_round_trips(chunk in prop::collection::vec(any::<u8>(), 0..=PY_CHUNK), flip in any::<prop::sample::Index>()) {
        let r = encode_reply(&chunk);
        prop_assert!(r.len() <= MAX_REPLY);
        prop_assert_eq!(decode_reply(&r), Ok(&chunk[..]));
        let mut bad = r.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 0x20;
        prop_assert!(decode_reply(&bad).is_err());
        if i >= 64 {
            prop_assert_eq!(decode_reply(&bad), Err(ReplyError::Mismatch));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(a) = LegacyAnnounce::decode(&data) {
            check_decoded(&a);
            prop_assert_eq!(LegacyAnnounce::decode(&a.encode()), Ok(LegacyAnnounce { rejected: 0, ..a }));
        }
        if let Ok(Some(r)) = LegacyRequest::decode(&data) {
            prop_assert!(is_requestable(&r.name) && r.index >= 1);
            prop_assert_eq!(LegacyRequest::decode(&r.encode()), Ok(Some(r)));
        }
        if let Ok(body) = decode_reply(&data) {
            prop_assert!(body.len() <= PY_CHUNK);
            prop_assert_eq!(encode_reply(body), data);
        }
    }

    #[test]
    fn json_shaped_garbage_never_panics(
        port in any::<i64>(),
        entries in prop::collection::vec((any::<String>(), any::<i64>(), "[0-9a-fA-F]{0,66}"), 0..8),
    ) {
        let files: Vec<String> = entries
            .iter()
            .map(|(n, c, h)| format!("{}: {{\"total_chunks\": {c}, \"filehash\": \"{h}\"}}", serde_json::to_string(n).unwrap()))
            .collect();
        let text = format!("{{\"type\": \"P2P_PEER_DISCOVERY\", \"port\": {port}, \"files\": {{{}}}}}", files.join(", "));
        if let Ok(a) = LegacyAnnounce::decode(text.as_bytes()) {
            check_decoded(&a);
            prop_assert!(a.files.len() + a.rejected as usize <= entries.len());
        }
    }
}

proptest! {
    // Hundreds of files per case: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_big_announce_keeps_a_prefix(a in announce(900)) {
        let d = a.encode();
        prop_assert!(d.len() <= LEGACY_SEND_LIMIT);
        let back = LegacyAnnounce::decode(&d).unwrap();
        prop_assert_eq!(&back.files[..], &a.files[..back.files.len()]);
        prop_assert_eq!(back.rejected, 0);
    }
}
