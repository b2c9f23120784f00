//! The simulator's one source of randomness: proto's SplitMix64 with a few helpers.
//!
//! Invariant: every random choice of a run (node seeds, instances, the network, faults and the
//! workload) is drawn from the one `SimRng` made from the run's seed, in an order fixed by the
//! deterministic event loop, so a seed replays exactly.

use p2pshare_proto::rng::Rng;

/// A seeded generator.
pub struct SimRng(Rng);

impl SimRng {
    /// The generator of one run.
    pub fn new(seed: u64) -> SimRng {
        SimRng(Rng::new(seed ^ 0x5157_5f53_494d_5f31))
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.u64() % (hi - lo + 1)
    }

    /// Uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.next_f64() < p
    }

    /// Uniform float in `lo..hi`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.next_f64()
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}
