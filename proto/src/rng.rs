//! The node's sources of randomness, both seeded by the caller: [`Rng`] (SplitMix64) for
//! choices such as timer jitter, and [`KeyRng`] (ChaCha20) for everything secret: identity keys,
//! Noise static and ephemeral keys.
//!
//! Invariant: each sequence depends on its seed alone, so a node built with the same seeds and
//! fed the same inputs makes the same choices and the same keys (which is what lets the
//! simulator replay a run). [`Rng`] is not for cryptography: its outputs show on the wire (as
//! jitter) and SplitMix64 is invertible, so it never makes a key. [`KeyRng`] is a CSPRNG: given
//! a seed of 32 bytes of real entropy (the host reads them from the OS), its outputs are
//! unpredictable and reveal nothing of each other.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// A seeded pseudo-random generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seeded cryptographic generator (ChaCha20) that makes every key and handshake secret.
///
/// Seed it once with 32 bytes of OS entropy (or, in the simulator, bytes derived from the run's
/// seed); draw a fresh [`KeyRng::seed`] for each thing that needs its own stream (a handshake).
pub struct KeyRng(ChaCha20Rng);

impl KeyRng {
    /// A generator whose output is fixed by `seed`; unpredictable iff `seed` is.
    pub fn new(seed: [u8; 32]) -> KeyRng {
        KeyRng(ChaCha20Rng::from_seed(seed))
    }

    /// Fills `dest` with random bytes.
    pub fn fill(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    /// 32 fresh random bytes: the seed of a sub-generator or a secret key.
    pub fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.fill(&mut s);
        s
    }
}

impl std::fmt::Debug for KeyRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the state: it is every future key.
        f.write_str("KeyRng(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rng_is_seeded_and_streams_differ() {
        let (mut a, mut b) = (KeyRng::new([3; 32]), KeyRng::new([3; 32]));
        assert_eq!(a.seed(), b.seed());
        let first = a.seed();
        assert_ne!(first, a.seed());
        assert_ne!(KeyRng::new([4; 32]).seed(), KeyRng::new([3; 32]).seed());
        assert_eq!(format!("{a:?}"), "KeyRng(..)");
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let f = Rng::new(1).next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
