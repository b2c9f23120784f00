//! The budget of signature verifications: how many discovery datagrams the node checks, per
//! source address and in all, before it spends an Ed25519 verification (50–100 µs) on one.
//!
//! Each source IP has a bucket of [`PER_IP_BURST`] tokens refilled at [`PER_IP_RATE`] a
//! second, and the node one of [`NODE_BURST`] refilled at [`NODE_RATE`] a second; a
//! verification takes one token from both. An honest peer announces every few seconds (and
//! answers a newcomer at most every 250 ms), far inside its address's bucket; a host that
//! floods bad signatures empties only its own bucket (its datagrams are then dropped
//! unverified, counted), and the node's cap bounds what many flooding addresses together may
//! cost (about a fifth of a core). Stale marks are dropped before the budget is asked.
//!
//! Invariants: at most [`MAX_SOURCES`] addresses are tracked (a full bucket is the same as no
//! entry, so full ones are forgotten first; past that, a new address waits for room);
//! tokens never exceed the burst; no clock is read (time comes in).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// Verifications one source address may burst.
pub(super) const PER_IP_BURST: u32 = 40;
/// Verifications a second one source address earns.
pub(super) const PER_IP_RATE: u32 = 20;
/// Verifications the node may burst.
pub(super) const NODE_BURST: u32 = 2_000;
/// Verifications a second the node does at most.
pub(super) const NODE_RATE: u32 = 2_000;
/// Source addresses tracked at once.
pub(super) const MAX_SOURCES: usize = 4096;

/// Tokens, in millionths, and when they were last refilled.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    micros: u64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32, at: Instant) -> Bucket {
        Bucket {
            micros: u64::from(burst) * 1_000_000,
            at,
        }
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let dt = now.saturating_duration_since(self.at);
        let earned = dt.as_micros().saturating_mul(u128::from(rate));
        let cap = u64::from(burst) * 1_000_000;
        self.micros = (u128::from(self.micros) + earned).min(u128::from(cap)) as u64;
        self.at = self.at.max(now);
    }

    fn is_full(&self, burst: u32) -> bool {
        self.micros >= u64::from(burst) * 1_000_000
    }
}

/// The verification budget; see the module doc.
#[derive(Debug)]
pub(super) struct VerifyBudget {
    sources: BTreeMap<IpAddr, Bucket>,
    node: Bucket,
}

impl VerifyBudget {
    /// A full budget at `now`.
    pub(super) fn new(now: Instant) -> VerifyBudget {
        VerifyBudget {
            sources: BTreeMap::new(),
            node: Bucket::full(NODE_BURST, now),
        }
    }

    /// True (and one token taken from `from`'s bucket and the node's) when a datagram from
    /// `from` may be verified at `now`.
    pub(super) fn take(&mut self, now: Instant, from: IpAddr) -> bool {
        self.node.refill(now, NODE_RATE, NODE_BURST);
        if self.node.micros < 1_000_000 {
            return false;
        }
        if !self.sources.contains_key(&from) && self.sources.len() >= MAX_SOURCES {
            // Full buckets hold nothing worth keeping.
            self.sources.retain(|_, b| {
                b.refill(now, PER_IP_RATE, PER_IP_BURST);
                !b.is_full(PER_IP_BURST)
            });
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let b = self
            .sources
            .entry(from)
            .or_insert_with(|| Bucket::full(PER_IP_BURST, now));
        b.refill(now, PER_IP_RATE, PER_IP_BURST);
        if b.micros < 1_000_000 {
            return false;
        }
        b.micros -= 1_000_000;
        self.node.micros -= 1_000_000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flooding_address_spends_only_its_own_budget() {
        let t0 = crate::test_epoch();
        let mut b = VerifyBudget::new(t0);
        let flooder: IpAddr = "10.0.0.66".parse().unwrap();
        let honest: IpAddr = "10.0.0.2".parse().unwrap();
        let taken = (0..10_000).filter(|_| b.take(t0, flooder)).count();
        assert_eq!(taken, PER_IP_BURST as usize);
        assert!(b.take(t0, honest), "another address is not starved");
        // A second later the flooder has earned its rate again, no more.
        let t1 = t0 + Duration::from_secs(1);
        let taken = (0..10_000).filter(|_| b.take(t1, flooder)).count();
        assert_eq!(taken, PER_IP_RATE as usize);
    }

    #[test]
    fn many_addresses_together_are_capped_by_the_node_budget() {
        let t0 = crate::test_epoch();
        let mut b = VerifyBudget::new(t0);
        let mut taken = 0;
        for i in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            taken += (0..PER_IP_BURST).filter(|_| b.take(t0, ip)).count();
        }
        assert_eq!(taken, NODE_BURST as usize);
        let t1 = t0 + Duration::from_millis(500);
        let ip = IpAddr::from(std::net::Ipv4Addr::new(10, 9, 9, 9));
        assert!(b.take(t1, ip), "the node budget refills");
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let t0 = crate::test_epoch();
        let mut b = VerifyBudget::new(t0);
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            b.take(t0 + Duration::from_secs(u64::from(i)), ip);
        }
        assert!(b.sources.len() <= MAX_SOURCES);
    }
}
