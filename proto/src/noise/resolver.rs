//! Where snow gets its primitives: ring for the AEAD and SHA-256 (hardware AES and carry-less
//! multiply where the CPU has them), curve25519-dalek for X25519, and *our* seeded generator for
//! randomness.
//!
//! snow asks its resolver for a random source when it builds a handshake (for the ephemeral
//! key) or generates a key pair. The default would read the OS; this one hands out ChaCha20
//! streams derived from a 32-byte seed the caller drew from its [`crate::rng::KeyRng`], so a
//! simulated node makes the same keys on every replay.
//!
//! Invariant: each `resolve_rng` call on one resolver yields a different stream (stream number
//! = call count), so two keys never come from the same bytes even if snow asks twice.

use std::cell::Cell;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, RingResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// A snow resolver with ring's AEADs and hash, dalek's X25519, and randomness from a seed.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
    streams: Cell<u64>,
}

impl SeededResolver {
    /// A resolver whose random bytes all derive from `seed` (use each seed once).
    pub(crate) fn new(seed: [u8; 32]) -> SeededResolver {
        SeededResolver {
            seed,
            streams: Cell::new(0),
        }
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let stream = self.streams.get();
        self.streams.set(stream.wrapping_add(1));
        let mut rng = ChaCha20Rng::from_seed(self.seed);
        rng.set_stream(stream);
        Some(Box::new(SeededRandom(rng)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        RingResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        RingResolver.resolve_cipher(choice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(r: &SeededResolver) -> [u8; 32] {
        let mut out = [0u8; 32];
        r.resolve_rng()
            .expect("an rng")
            .try_fill_bytes(&mut out)
            .expect("never fails");
        out
    }

    #[test]
    fn same_seed_same_bytes_each_stream_new() {
        let (a, b) = (SeededResolver::new([1; 32]), SeededResolver::new([1; 32]));
        let first = bytes(&a);
        assert_eq!(first, bytes(&b));
        assert_ne!(
            first,
            bytes(&a),
            "a second stream must differ from the first"
        );
        assert_ne!(first, bytes(&SeededResolver::new([2; 32])));
    }
}
