//! Arbitrary bytes into the signed discovery decoder (version 2) and its verification: never a
//! panic; what decodes is within `MAX_DATAGRAM`; what verifies (only a genuine datagram of the
//! corpus can) says what it said, and its mark judges itself stale.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::wire::MAX_DATAGRAM;
use p2pshare_proto::wire::signed::{Verdict, decode};

fuzz_target!(|data: &[u8]| {
    let Ok(u) = decode(data) else { return };
    assert!(data.len() <= MAX_DATAGRAM);
    if let Ok(v) = u.verify() {
        assert_eq!(v.key(), u.key());
        assert_eq!(v.announcement().mark, u.mark());
        assert_eq!(Verdict::judge(Some(u.mark()), u.mark()), Verdict::Stale);
    }
});
