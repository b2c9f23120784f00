//! Arbitrary bytes into the discovery decoder: never a panic; a datagram that decodes
//! re-encodes (within `MAX_DATAGRAM`) to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::wire::{Announce, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Announce::decode(data) {
        assert!(data.len() <= MAX_DATAGRAM);
        let again = a.encode();
        assert!(again.len() <= MAX_DATAGRAM);
        assert_eq!(Announce::decode(&again), Ok(a));
    }
});
