//! Random seeds for the node (its RNG seed), taken from the operating system. Keys never come
//! from here (see `keyfile`, which reads `getrandom` and has no fallback).
//!
//! Invariant: never panics and always returns. The bytes come from `/dev/urandom`; if that
//! cannot be read (a chroot without `/dev`, say), they fall back to hashing the time, the process
//! id and a counter with std's randomly keyed `RandomState` — good enough to tell peers apart,
//! not for cryptography (nothing in p2pshare uses these seeds for secrets).

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A random `u64`: call once at start to seed the node's RNG.
pub fn random_u64() -> u64 {
    u64::from_le_bytes(random_bytes::<8>())
}

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if urandom(&mut out).is_err() {
        fallback(&mut out);
    }
    out
}

fn urandom(out: &mut [u8]) -> std::io::Result<()> {
    File::open("/dev/urandom")?.read_exact(out)
}

/// Fills `out` from the time, the pid and a counter, hashed with per-process random keys.
fn fallback(out: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let state = RandomState::new();
    for (i, piece) in out.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        let word = h.finish().to_le_bytes();
        piece.copy_from_slice(&word[..piece.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ() {
        assert_ne!(random_u64(), random_u64());
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
        assert_eq!(random_bytes::<0>(), [0u8; 0]);
    }

    #[test]
    fn fallback_fills_and_differs() {
        let mut a = [0u8; 21];
        let mut b = [0u8; 21];
        fallback(&mut a);
        fallback(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 21]);
    }
}
