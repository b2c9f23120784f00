//! Which chunks the partial holders of one download have, and how rare each chunk is among
//! them (BitTorrent's have/bitfield, in our vocabulary).
//!
//! A holder is either complete (it lists the file in its catalog as a whole file: it has every
//! chunk, and is not tracked here) or partial (it is downloading the file too, and serves the
//! chunks it has verified). A partial holder's claims come from the network and are untrusted:
//! they are bounded by the manifest (an index past the last chunk, or a bitfield of the wrong
//! length, is refused as a whole), and a claim it does not honour costs it (the download bans a
//! holder that refuses a chunk it claimed). At most [`MAX_PARTIAL_HOLDERS`] are tracked.
//!
//! Invariant (checked by [`Availability::check`]): `count[i]` is the number of tracked partial
//! holders that claimed chunk `i`, and every tracked bit set is below the chunk count.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::PeerId;

/// Partial holders tracked per download: a swarm of this many peers trading chunks keeps every
/// link busy, and a host announcing many ids cannot make one download hold megabytes of
/// bitfields (at most 16 KiB each).
pub const MAX_PARTIAL_HOLDERS: usize = 64;

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// A bitfield whose length is not one bit per chunk (rounded up to bytes), or with bits
    /// set past the last chunk.
    BadBitfield,
    /// A chunk index past the last chunk.
    BadIndex,
    /// The peer is not tracked (not a partial holder, or the table is full).
    Untracked,
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimError::BadBitfield => "a bitfield that does not fit the manifest",
            ClaimError::BadIndex => "a chunk index past the end of the file",
            ClaimError::Untracked => "a claim from a peer that is not a partial holder",
        })
    }
}

impl std::error::Error for ClaimError {}

/// The bytes of a bitfield of `chunks` chunks with the chunks `has` says set.
pub fn encode_bits(chunks: u32, has: impl Fn(u32) -> bool) -> Vec<u8> {
    let mut bits = vec![0u8; chunks.div_ceil(8) as usize];
    for i in 0..chunks {
        if has(i) {
            bits[(i / 8) as usize] |= 1 << (i % 8);
        }
    }
    bits
}

/// The chunks claimed by the partial holders of one download.
#[derive(Debug, Clone, Default)]
pub struct Availability {
    chunks: u32,
    /// Per partial holder, one bit per chunk (64 a word).
    peers: BTreeMap<PeerId, Vec<u64>>,
    /// Per chunk, how many partial holders claim it.
    count: Vec<u32>,
}

impl Availability {
    /// Sizes the table for a file of `chunks` chunks: call once the manifest is verified
    /// (claims before that are refused as [`ClaimError::BadIndex`]). Claims already recorded
    /// are kept where they fit.
    pub fn size(&mut self, chunks: u32) {
        self.chunks = chunks;
        self.count = vec![0; chunks as usize];
        let words = chunks.div_ceil(64) as usize;
        for bits in self.peers.values_mut() {
            bits.resize(words, 0);
            if let Some(last) = bits.last_mut()
                && !chunks.is_multiple_of(64)
            {
                *last &= (1u64 << (chunks % 64)) - 1;
            }
        }
        for bits in self.peers.values() {
            for (i, c) in self.count.iter_mut().enumerate() {
                *c += u32::from(bits[i / 64] >> (i % 64) & 1 == 1);
            }
        }
    }

    /// Tracks `peer` as a partial holder (claiming nothing yet). False when the table is full
    /// (the peer is then not a holder of this download); true if it already was tracked.
    pub fn add(&mut self, peer: PeerId) -> bool {
        if self.peers.contains_key(&peer) {
            return true;
        }
        if self.peers.len() >= MAX_PARTIAL_HOLDERS {
            return false;
        }
        self.peers
            .insert(peer, vec![0; self.chunks.div_ceil(64) as usize]);
        true
    }

    /// Stops tracking `peer` (it left, or it now has the whole file).
    pub fn remove(&mut self, peer: &PeerId) {
        if let Some(bits) = self.peers.remove(peer) {
            for (i, c) in self.count.iter_mut().enumerate() {
                *c -= u32::from(bits[i / 64] >> (i % 64) & 1 == 1);
            }
        }
    }

    /// Forgets what `peer` claimed but keeps it a partial holder: its link is gone (what it
    /// has is asked again on the next one) or it is no longer asked.
    pub fn clear(&mut self, peer: &PeerId) {
        if let Some(bits) = self.peers.get_mut(peer) {
            for (i, c) in self.count.iter_mut().enumerate() {
                *c -= u32::from(bits[i / 64] >> (i % 64) & 1 == 1);
            }
            bits.iter_mut().for_each(|w| *w = 0);
        }
    }

    /// True when `peer` is tracked as a partial holder.
    pub fn is_partial(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// True when any partial holder is tracked.
    pub fn any_partial(&self) -> bool {
        !self.peers.is_empty()
    }

    /// True when `peer` may be asked for chunk `index`: a complete holder always, a partial
    /// one when it claimed it.
    pub fn has(&self, peer: &PeerId, index: u32) -> bool {
        match self.peers.get(peer) {
            None => true,
            Some(bits) => bits
                .get((index / 64) as usize)
                .is_some_and(|w| w >> (index % 64) & 1 == 1),
        }
    }

    /// How many partial holders claim chunk `index`.
    pub fn rarity(&self, index: u32) -> u32 {
        self.count.get(index as usize).copied().unwrap_or(0)
    }

    /// Records `peer`'s whole bitfield (added to what it claimed before).
    pub fn set_bitfield(&mut self, peer: &PeerId, bytes: &[u8]) -> Result<(), ClaimError> {
        if bytes.len() != self.chunks.div_ceil(8) as usize {
            return Err(ClaimError::BadBitfield);
        }
        let past_end = bytes.last().is_some_and(|b| {
            let used = self.chunks % 8;
            used != 0 && b >> used != 0
        });
        if past_end {
            return Err(ClaimError::BadBitfield);
        }
        if !self.peers.contains_key(peer) {
            return Err(ClaimError::Untracked);
        }
        let claimed: Vec<u32> = (0..self.chunks)
            .filter(|&i| bytes[(i / 8) as usize] >> (i % 8) & 1 == 1)
            .collect();
        self.set_have(peer, &claimed)
    }

    /// Records chunks `peer` says it has verified since.
    pub fn set_have(&mut self, peer: &PeerId, indices: &[u32]) -> Result<(), ClaimError> {
        if indices.iter().any(|&i| i >= self.chunks) {
            return Err(ClaimError::BadIndex);
        }
        let bits = self.peers.get_mut(peer).ok_or(ClaimError::Untracked)?;
        for &i in indices {
            let (w, b) = ((i / 64) as usize, i % 64);
            if bits[w] >> b & 1 == 0 {
                bits[w] |= 1 << b;
                self.count[i as usize] += 1;
            }
        }
        Ok(())
    }

    /// True when `peer` claims every chunk (it is as good as a complete holder).
    pub fn claims_all(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|bits| {
            (0..self.chunks).all(|i| bits[(i / 64) as usize] >> (i % 64) & 1 == 1)
        })
    }

    /// Checks the module invariant.
    pub fn check(&self) -> Result<(), String> {
        if self.count.len() != self.chunks as usize && !self.count.is_empty() {
            return Err("availability counts not sized to the file".into());
        }
        for (i, &c) in self.count.iter().enumerate() {
            let n = self
                .peers
                .values()
                .filter(|bits| bits[i / 64] >> (i % 64) & 1 == 1)
                .count() as u32;
            if n != c {
                return Err(format!(
                    "chunk {i} claimed by {n} partial holders, count {c}"
                ));
            }
        }
        if self.peers.len() > MAX_PARTIAL_HOLDERS {
            return Err("more partial holders than the budget".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: u8) -> PeerId {
        PeerId([k; 32])
    }

    #[test]
    fn claims_are_counted_and_bounded_by_the_manifest() {
        let mut a = Availability::default();
        assert!(a.add(peer(1)));
        a.size(10);
        assert_eq!(a.set_have(&peer(1), &[10]), Err(ClaimError::BadIndex));
        assert_eq!(
            a.set_bitfield(&peer(1), &[0xff]),
            Err(ClaimError::BadBitfield)
        );
        assert_eq!(
            a.set_bitfield(&peer(1), &[0xff, 0x04]),
            Err(ClaimError::BadBitfield)
        );
        a.set_bitfield(&peer(1), &encode_bits(10, |i| i % 2 == 0))
            .unwrap();
        assert!(a.has(&peer(1), 4) && !a.has(&peer(1), 5));
        assert!(a.has(&peer(9), 5), "an untracked peer is a complete holder");
        assert!(a.add(peer(2)));
        a.set_have(&peer(2), &[4, 5]).unwrap();
        assert_eq!((a.rarity(4), a.rarity(5), a.rarity(7)), (2, 1, 0));
        a.check().unwrap();
        a.remove(&peer(1));
        assert_eq!((a.rarity(4), a.rarity(5)), (1, 1));
        a.check().unwrap();
        assert_eq!(a.set_have(&peer(1), &[1]), Err(ClaimError::Untracked));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut a = Availability::default();
        a.size(8);
        for k in 0..MAX_PARTIAL_HOLDERS {
            assert!(a.add(PeerId([k as u8; 32])));
        }
        assert!(!a.add(PeerId([0xee; 32])));
        a.check().unwrap();
    }

    #[test]
    fn claims_all_once_every_bit_is_set() {
        let mut a = Availability::default();
        a.size(3);
        a.add(peer(1));
        a.set_have(&peer(1), &[0, 2]).unwrap();
        assert!(!a.claims_all(&peer(1)));
        a.set_have(&peer(1), &[1]).unwrap();
        assert!(a.claims_all(&peer(1)));
    }
}
