//! Arbitrary bytes into the three decoders of the Python protocol (announcement, request line,
//! reply): never a panic; what decodes keeps the rules and re-encodes to the same value (an
//! announcement over our 60 KiB send limit to a prefix of its files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::python::wire::{
    LegacyAnnounce, LegacyRequest, MAX_LEGACY_CHUNKS, MAX_LEGACY_FILES, PY_CHUNK, decode_reply,
    encode_reply, is_requestable,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = LegacyAnnounce::decode(data) {
        assert!(a.files.len() <= MAX_LEGACY_FILES);
        for f in &a.files {
            assert!(is_requestable(&f.name));
            assert!(f.total_chunks <= MAX_LEGACY_CHUNKS);
        }
        let again = LegacyAnnounce::decode(&a.encode()).expect("our encoding decodes");
        // Ours is at most 60 KiB: a longer datagram keeps a prefix of its files.
        assert_eq!(again.files[..], a.files[..again.files.len()]);
        assert!(again.files.len() == a.files.len() || data.len() > 45_000);
        assert_eq!((again.port, again.origin), (a.port, a.origin));
    }
    if let Ok(Some(r)) = LegacyRequest::decode(data) {
        assert!(is_requestable(&r.name) && r.index >= 1);
        assert_eq!(LegacyRequest::decode(&r.encode()), Ok(Some(r)));
    }
    if let Ok(body) = decode_reply(data) {
        assert!(body.len() <= PY_CHUNK);
        assert_eq!(encode_reply(body), data);
    }
});
