//! Which chunks the partial holders of one download claim, how rare each chunk is among them,
//! and the order in which the missing chunks are picked (BitTorrent's have/bitfield and its
//! piece picker, in our vocabulary).
//!
//! A holder is either complete (it lists the file in its catalog as a whole file: it has every
//! chunk, and is not tracked here) or partial (it is downloading the file too, and serves the
//! chunks it has verified). A partial holder's claims come from the network and are untrusted:
//! they are bounded by the manifest (an index past the last chunk, or a bitfield of the wrong
//! length, is refused as a whole), a claim it does not honour is dropped (the download decides
//! when: see [`crate::download`]), and its claims *count* — make a chunk rare, and keep
//! complete holders from being asked for it — only while the download says the claimant keeps
//! up ([`Availability::set_counted`]). At most [`MAX_PARTIAL_HOLDERS`] are tracked.
//!
//! Every claimant costs its own messages, never a table scan: the work of a `Have` is
//! proportional to the indices it carries (times the log of the file's chunk count), and a
//! chunk changing state costs at most one step per tracked claimant. Nothing here walks every
//! chunk except [`Availability::size`] and [`Availability::set_bitfield`] (once per manifest,
//! and per bitfield received, whose own length is the chunk count) and
//! [`Availability::check`]. [`Availability::ops`] counts the steps, for the tests that bound
//! them.
//!
//! Invariants (checked by [`Availability::check`]): `count[i]` is the number of tracked
//! *counted* partial holders that claim chunk `i`; every tracked bit set is below the chunk
//! count; each claimant's `set`, `open` and `needed` are the number of its claims, of its
//! claims on missing chunks and of its claims on chunks missing or requested; the pick order
//! holds exactly the missing chunks, each under its current count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::ids::PeerId;

/// Partial holders tracked per download: a swarm of this many peers trading chunks keeps every
/// link busy, and a host announcing many ids cannot make one download hold megabytes of
/// bitfields (at most 16 KiB each).
pub const MAX_PARTIAL_HOLDERS: usize = 64;

/// Entries of the pick order (past the chunks nobody claims) a partial holder's pick looks
/// through for a chunk the holder claims before it falls back to the first claimed missing
/// chunk by index: the rarest-first order is kept for the claimants that claim the rare chunks
/// (in a crowd, all of them), and a claimant whose claims lie far down the order costs one
/// pass over a bitmap, 64 chunks a step, not a walk of the order.
pub const PICK_LOOKAHEAD: usize = 256;

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

/// Where a chunk stands, as far as picking goes (the download's own states, folded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Not on disk and not asked for: it may be picked.
    Missing,
    /// Asked for: still needed, not to be picked again (but by the endgame).
    Requested,
    /// Verified (or being re-verified, or written): nobody needs to give it.
    Had,
}

/// One partial holder's claims.
#[derive(Debug, Clone, Default)]
struct Claims {
    /// One bit per chunk (64 a word).
    bits: Vec<u64>,
    /// Bits set.
    set: u32,
    /// Of those, chunks missing here.
    open: u32,
    /// Of those, chunks missing or requested here.
    needed: u32,
    /// Its claims count in `count` (it keeps up).
    counted: bool,
}

impl Claims {
    fn has(&self, i: u32) -> bool {
        self.bits
            .get((i / 64) as usize)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
}

/// A 64-bit word's set bits, lowest first.
fn ones(mut w: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        if w == 0 {
            return None;
        }
        let b = w.trailing_zeros();
        w &= w - 1;
        Some(b)
    })
}

fn bit(bits: &[u64], i: u32) -> bool {
    bits.get((i / 64) as usize)
        .is_some_and(|w| w >> (i % 64) & 1 == 1)
}

fn set_bit(bits: &mut [u64], i: u32, on: bool) {
    if let Some(w) = bits.get_mut((i / 64) as usize) {
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
}

/// The claims of the partial holders of one download, and the pick order of its missing
/// chunks. See the module doc.
#[derive(Debug, Clone, Default)]
pub struct Availability {
    chunks: u32,
    peers: BTreeMap<PeerId, Claims>,
    /// Per chunk, how many counted partial holders claim it.
    count: Vec<u32>,
    /// Chunks missing here (may be picked).
    missing: Vec<u64>,
    /// Chunks missing or requested here.
    needed: Vec<u64>,
    /// The missing chunks by (count, place in this download's shuffled order, index).
    order: BTreeSet<(u32, u64, u32)>,
    /// Orders chunks of equal rarity (0: by index).
    salt: u64,
    /// Steps taken so far (claims recorded, counts moved, order entries looked at).
    ops: u64,
}

impl Availability {
    /// Chunks of equal rarity are taken in an order shuffled by `salt` (0: lowest index
    /// first). Call before [`Availability::size`].
    pub fn set_salt(&mut self, salt: u64) {
        self.salt = salt;
    }

    /// Sizes the table for a file of `chunks` chunks: call once the manifest is verified
    /// (claims before that are refused as [`ClaimError::BadIndex`]). Claims already recorded
    /// are kept where they fit; no chunk is missing until [`Availability::set_need`] says so.
    pub fn size(&mut self, chunks: u32) {
        self.chunks = chunks;
        let words = chunks.div_ceil(64) as usize;
        self.count = vec![0; chunks as usize];
        self.missing = vec![0; words];
        self.needed = vec![0; words];
        self.order.clear();
        for c in self.peers.values_mut() {
            c.bits.resize(words, 0);
            if let Some(last) = c.bits.last_mut()
                && !chunks.is_multiple_of(64)
            {
                *last &= (1u64 << (chunks % 64)) - 1;
            }
            c.set = c.bits.iter().map(|w| w.count_ones()).sum();
            c.open = 0;
            c.needed = 0;
            if c.counted {
                for (k, &w) in c.bits.iter().enumerate() {
                    for b in ones(w) {
                        self.count[k * 64 + b as usize] += 1;
                    }
                }
            }
        }
    }

    /// Steps taken so far: claims recorded, counts moved, order entries and bitmap words
    /// looked at. Tests bound the work of one message with it.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    fn key(&self, i: u32) -> (u32, u64, u32) {
        (
            self.count.get(i as usize).copied().unwrap_or(0),
            shuffle(self.salt, i),
            i,
        )
    }

    /// Moves chunk `i` from count `from` to its current count in the order (if missing).
    fn reorder(&mut self, i: u32, from: u32) {
        if bit(&self.missing, i) {
            self.order.remove(&(from, shuffle(self.salt, i), i));
            let k = self.key(i);
            self.order.insert(k);
            self.ops += 1;
        }
    }

    /// Chunk `i` now stands at `need` here: call on every change of the download's state of
    /// a chunk (and for each chunk once the partial file is open).
    pub fn set_need(&mut self, i: u32, need: Need) {
        if i >= self.chunks {
            return;
        }
        let (was_missing, was_needed) = (bit(&self.missing, i), bit(&self.needed, i));
        let (missing, needed) = match need {
            Need::Missing => (true, true),
            Need::Requested => (false, true),
            Need::Had => (false, false),
        };
        if (was_missing, was_needed) == (missing, needed) {
            return;
        }
        set_bit(&mut self.missing, i, missing);
        set_bit(&mut self.needed, i, needed);
        if was_missing != missing {
            let k = self.key(i);
            if missing {
                self.order.insert(k);
            } else {
                self.order.remove(&k);
            }
        }
        for c in self.peers.values_mut().filter(|c| c.has(i)) {
            match (was_missing, missing) {
                (false, true) => c.open += 1,
                (true, false) => c.open -= 1,
                _ => {}
            }
            match (was_needed, needed) {
                (false, true) => c.needed += 1,
                (true, false) => c.needed -= 1,
                _ => {}
            }
        }
        self.ops += 1 + self.peers.len() as u64;
    }

    /// Tracks `peer` as a partial holder (claiming nothing yet, counted). False when the table
    /// is full (the peer is then not a holder of this download); true if it already was
    /// tracked.
    pub fn add(&mut self, peer: PeerId) -> bool {
        if self.peers.contains_key(&peer) {
            return true;
        }
        if self.peers.len() >= MAX_PARTIAL_HOLDERS {
            return false;
        }
        let claims = Claims {
            bits: vec![0; self.chunks.div_ceil(64) as usize],
            counted: true,
            ..Claims::default()
        };
        self.peers.insert(peer, claims);
        true
    }

    /// Stops tracking `peer` (it left, it now has the whole file, or it is not believed).
    pub fn remove(&mut self, peer: &PeerId) {
        self.clear(peer);
        self.peers.remove(peer);
    }

    /// Forgets what `peer` claimed but keeps it a partial holder: its link is gone (what it
    /// has is asked again on the next one) or it is no longer asked.
    pub fn clear(&mut self, peer: &PeerId) {
        let Some(c) = self.peers.get_mut(peer) else {
            return;
        };
        let counted = c.counted;
        let bits = std::mem::take(&mut c.bits);
        c.bits = vec![0; bits.len()];
        c.set = 0;
        c.open = 0;
        c.needed = 0;
        if counted {
            self.uncount(&bits);
        }
    }

    /// Takes the claims in `bits` (of a counted claimant) out of the counts.
    fn uncount(&mut self, bits: &[u64]) {
        for (k, &w) in bits.iter().enumerate() {
            for b in ones(w) {
                let i = k as u32 * 64 + b;
                if (i as usize) < self.count.len() {
                    self.count[i as usize] -= 1;
                    self.reorder(i, self.count[i as usize] + 1);
                }
            }
            self.ops += 1;
        }
    }

    /// Puts the claims in `bits` (of a claimant now counted) into the counts.
    fn recount(&mut self, bits: &[u64]) {
        for (k, &w) in bits.iter().enumerate() {
            for b in ones(w) {
                let i = k as u32 * 64 + b;
                if (i as usize) < self.count.len() {
                    self.count[i as usize] += 1;
                    self.reorder(i, self.count[i as usize] - 1);
                }
            }
            self.ops += 1;
        }
    }

    /// Whether `peer`'s claims count (make chunks rare, keep complete holders from being asked
    /// for them): the download counts a claimant only while it keeps up. Costs one step per
    /// claim when it changes, nothing otherwise.
    pub fn set_counted(&mut self, peer: &PeerId, counted: bool) {
        let Some(c) = self.peers.get_mut(peer) else {
            return;
        };
        if c.counted == counted {
            return;
        }
        c.counted = counted;
        let bits = c.bits.clone();
        if counted {
            self.recount(&bits);
        } else {
            self.uncount(&bits);
        }
    }

    /// True when `peer` is tracked and its claims count.
    pub fn is_counted(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|c| c.counted)
    }

    /// True when `peer` is tracked as a partial holder.
    pub fn is_partial(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// True when any partial holder is tracked.
    pub fn any_partial(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The tracked partial holders.
    pub fn partial_holders(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// True when `peer` may be asked for chunk `index`: a complete holder always, a partial
    /// one when it claimed it.
    pub fn has(&self, peer: &PeerId, index: u32) -> bool {
        match self.peers.get(peer) {
            None => true,
            Some(c) => c.has(index),
        }
    }

    /// How many counted partial holders claim chunk `index`.
    pub fn rarity(&self, index: u32) -> u32 {
        self.count.get(index as usize).copied().unwrap_or(0)
    }

    /// True when `peer` could give a chunk still missing or requested here: a complete holder
    /// always, a partial one when it claims one. One lookup.
    pub fn claims_needed(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_none_or(|c| c.needed > 0)
    }

    /// Records `peer`'s whole bitfield (added to what it claimed before). Costs the length of
    /// the bitfield, which the claimant sent.
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
        let claimed: Vec<u32> = bytes
            .iter()
            .enumerate()
            .flat_map(|(k, &b)| ones(u64::from(b)).map(move |x| k as u32 * 8 + x))
            .collect();
        self.ops += bytes.len().div_ceil(8) as u64;
        self.set_have(peer, &claimed)
    }

    /// Records chunks `peer` says it has verified since. Costs one step per index (and the
    /// log of the chunk count for a missing chunk whose rarity moves).
    pub fn set_have(&mut self, peer: &PeerId, indices: &[u32]) -> Result<(), ClaimError> {
        if indices.iter().any(|&i| i >= self.chunks) {
            return Err(ClaimError::BadIndex);
        }
        let Some(c) = self.peers.get_mut(peer) else {
            return Err(ClaimError::Untracked);
        };
        let counted = c.counted;
        let mut moved = Vec::new();
        for &i in indices {
            if c.has(i) {
                continue;
            }
            set_bit(&mut c.bits, i, true);
            c.set += 1;
            c.open += u32::from(bit(&self.missing, i));
            c.needed += u32::from(bit(&self.needed, i));
            if counted {
                moved.push(i);
            }
        }
        self.ops += indices.len() as u64;
        for i in moved {
            self.count[i as usize] += 1;
            self.reorder(i, self.count[i as usize] - 1);
        }
        Ok(())
    }

    /// Drops `peer`'s claim on chunk `index` (it did not honour it). False when it had none.
    pub fn drop_claim(&mut self, peer: &PeerId, index: u32) -> bool {
        let Some(c) = self.peers.get_mut(peer) else {
            return false;
        };
        if !c.has(index) {
            return false;
        }
        set_bit(&mut c.bits, index, false);
        c.set -= 1;
        c.open -= u32::from(bit(&self.missing, index));
        c.needed -= u32::from(bit(&self.needed, index));
        if c.counted {
            self.count[index as usize] -= 1;
            self.reorder(index, self.count[index as usize] + 1);
        }
        self.ops += 1;
        true
    }

    /// True when `peer` claims every chunk (it is as good as a complete holder). One lookup.
    pub fn claims_all(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|c| self.chunks > 0 && c.set == self.chunks)
    }

    /// The missing chunk to ask `peer` for, among those `skip` does not rule out (chunks it
    /// refused a moment ago). A partial holder: the first of the pick order it claims within
    /// [`PICK_LOOKAHEAD`] entries, else the lowest missing index it claims. A complete holder
    /// (not tracked): with no partial holder at all, the lowest missing index (the whole-file
    /// hash follows the written prefix); else the first chunk of the order no counted claimant
    /// claims (rare chunks first, ties shuffled per download), or, with `tail` (the last few
    /// missing chunks), any. Costs the entries looked at: the chunks `skip` rules out, at
    /// most [`PICK_LOOKAHEAD`], or one pass over the missing bitmap.
    pub fn pick(&mut self, peer: &PeerId, tail: bool, skip: impl Fn(u32) -> bool) -> Option<u32> {
        let (found, steps) = self.pick_counting(peer, tail, &skip);
        self.ops += steps;
        found
    }

    fn pick_counting(
        &self,
        peer: &PeerId,
        tail: bool,
        skip: &impl Fn(u32) -> bool,
    ) -> (Option<u32>, u64) {
        let mut seen = 0u64;
        let Some(c) = self.peers.get(peer) else {
            if self.peers.is_empty() {
                return self.first_missing(None, skip);
            }
            let found = self
                .order
                .iter()
                .inspect(|_| seen += 1)
                .take_while(|&&(n, ..)| tail || n == 0)
                .map(|&(.., i)| i)
                .find(|&i| !skip(i));
            return (found, seen);
        };
        if c.open == 0 {
            return (None, 1);
        }
        // A counted claimant's claims are claimed at least once: the chunks nobody claims
        // (however many) are skipped in one step.
        let from = (u32::from(c.counted), 0, 0);
        let found = self
            .order
            .range(from..)
            .take(PICK_LOOKAHEAD)
            .inspect(|_| seen += 1)
            .map(|&(.., i)| i)
            .find(|&i| c.has(i) && !skip(i));
        match found {
            Some(i) => (Some(i), seen),
            None => {
                let (found, steps) = self.first_missing(Some(&c.bits), skip);
                (found, seen + steps)
            }
        }
    }

    /// The lowest missing chunk (that `within` claims, if given) that `skip` does not rule
    /// out, and the bitmap words looked at.
    fn first_missing(
        &self,
        within: Option<&[u64]>,
        skip: &impl Fn(u32) -> bool,
    ) -> (Option<u32>, u64) {
        for (k, &w) in self.missing.iter().enumerate() {
            let w = within.map_or(w, |b| w & b.get(k).copied().unwrap_or(0));
            if let Some(i) = ones(w).map(|b| k as u32 * 64 + b).find(|&i| !skip(i)) {
                return (Some(i), k as u64 + 1);
            }
        }
        (None, self.missing.len() as u64)
    }

    /// Checks the module invariant (walks everything: for tests and the simulator).
    pub fn check(&self) -> Result<(), String> {
        if self.count.len() != self.chunks as usize && !self.count.is_empty() {
            return Err("availability counts not sized to the file".into());
        }
        for (i, &n) in self.count.iter().enumerate() {
            let i = i as u32;
            let claimed = self
                .peers
                .values()
                .filter(|c| c.counted && c.has(i))
                .count() as u32;
            if claimed != n {
                return Err(format!(
                    "chunk {i} claimed by {claimed} counted partial holders, count {n}"
                ));
            }
        }
        for (p, c) in &self.peers {
            let all = (0..self.chunks).filter(|&i| c.has(i));
            let set = all.clone().count() as u32;
            let open = all.clone().filter(|&i| bit(&self.missing, i)).count() as u32;
            let needed = all.filter(|&i| bit(&self.needed, i)).count() as u32;
            if (set, open, needed) != (c.set, c.open, c.needed) {
                return Err(format!(
                    "claims of {p:?}: {set}/{open}/{needed} set/open/needed, recorded {}/{}/{}",
                    c.set, c.open, c.needed
                ));
            }
            let past = c
                .bits
                .iter()
                .enumerate()
                .any(|(k, &w)| ones(w).any(|b| k as u32 * 64 + b >= self.chunks));
            if past {
                return Err(format!("{p:?} claims a chunk past the end"));
            }
        }
        let missing: Vec<u32> = (0..self.chunks)
            .filter(|&i| bit(&self.missing, i))
            .collect();
        let ordered: BTreeSet<(u32, u64, u32)> = missing.iter().map(|&i| self.key(i)).collect();
        if ordered != self.order {
            return Err("the pick order does not hold exactly the missing chunks".into());
        }
        if (0..self.chunks).any(|i| bit(&self.missing, i) && !bit(&self.needed, i)) {
            return Err("a missing chunk is not needed".into());
        }
        if self.peers.len() > MAX_PARTIAL_HOLDERS {
            return Err("more partial holders than the budget".into());
        }
        Ok(())
    }
}

/// A chunk's place in the shuffled order of a download with `salt` (0: its index).
pub fn shuffle(salt: u64, index: u32) -> u64 {
    if salt == 0 {
        return u64::from(index);
    }
    // splitmix64 of the pair: a fixed permutation per salt, no state to keep.
    let mut z = salt ^ u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: u8) -> PeerId {
        PeerId([k; 32])
    }

    /// A table of `chunks` chunks, all missing.
    fn sized(chunks: u32) -> Availability {
        let mut a = Availability::default();
        a.size(chunks);
        for i in 0..chunks {
            a.set_need(i, Need::Missing);
        }
        a
    }

    #[test]
    fn claims_are_counted_and_bounded_by_the_manifest() {
        let mut a = Availability::default();
        assert!(a.add(peer(1)));
        a.size(10);
        for i in 0..10 {
            a.set_need(i, Need::Missing);
        }
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
        let mut a = sized(8);
        for k in 0..MAX_PARTIAL_HOLDERS {
            assert!(a.add(PeerId([k as u8; 32])));
        }
        assert!(!a.add(PeerId([0xee; 32])));
        a.check().unwrap();
    }

    #[test]
    fn claims_all_once_every_bit_is_set() {
        let mut a = sized(3);
        a.add(peer(1));
        a.set_have(&peer(1), &[0, 2]).unwrap();
        assert!(!a.claims_all(&peer(1)));
        a.set_have(&peer(1), &[1]).unwrap();
        assert!(a.claims_all(&peer(1)));
        a.drop_claim(&peer(1), 1);
        assert!(!a.claims_all(&peer(1)));
        a.check().unwrap();
    }

    #[test]
    fn an_uncounted_claimant_shields_nothing_and_is_still_asked_for_its_claims() {
        let mut a = sized(8);
        a.add(peer(1));
        a.set_have(&peer(1), &[0, 1, 2, 3, 4, 5, 6]).unwrap();
        // Counted: a complete holder is asked only for what nobody claims.
        assert_eq!(a.pick(&peer(9), false, |_| false), Some(7));
        assert_eq!(a.pick(&peer(9), false, |i| i == 7), None);
        a.set_counted(&peer(1), false);
        a.check().unwrap();
        assert_eq!(a.rarity(3), 0);
        assert_eq!(a.pick(&peer(9), false, |i| i == 7), Some(0));
        assert_eq!(a.pick(&peer(1), false, |i| i == 0), Some(1));
        a.set_counted(&peer(1), true);
        assert_eq!(a.rarity(3), 1);
        a.check().unwrap();
    }

    #[test]
    fn the_pick_follows_rarity_and_state() {
        let mut a = sized(6);
        a.add(peer(1));
        a.add(peer(2));
        a.set_have(&peer(1), &[1, 2, 3]).unwrap();
        a.set_have(&peer(2), &[2, 3]).unwrap();
        // Rarest first among what the claimant has; lowest index among equals (salt 0).
        assert_eq!(a.pick(&peer(1), false, |_| false), Some(1));
        assert_eq!(a.pick(&peer(2), false, |_| false), Some(2));
        a.set_need(2, Need::Requested);
        assert_eq!(a.pick(&peer(2), false, |_| false), Some(3));
        a.set_need(3, Need::Had);
        assert_eq!(a.pick(&peer(2), false, |_| false), None);
        assert!(a.claims_needed(&peer(2)), "chunk 2 is still in flight");
        a.set_need(2, Need::Had);
        assert!(!a.claims_needed(&peer(2)));
        // A complete holder: the unclaimed ones; with the tail, any.
        assert_eq!(a.pick(&peer(9), false, |i| i == 0), Some(4));
        assert_eq!(a.pick(&peer(9), true, |i| i != 1), Some(1));
        a.check().unwrap();
    }

    #[test]
    fn a_claimant_is_asked_for_its_rarest_claim_past_any_number_of_unclaimed_chunks() {
        let mut a = sized(10_000);
        a.add(peer(1));
        a.add(peer(2));
        a.set_have(&peer(1), &[100, 9_000]).unwrap();
        a.set_have(&peer(2), &[100]).unwrap();
        let before = a.ops();
        assert_eq!(a.pick(&peer(1), false, |_| false), Some(9_000));
        assert!(a.ops() - before <= 4, "{}", a.ops() - before);
        // Not counted (it stalls): its claims are no rarer than unclaimed chunks; its first
        // claim by index, one pass over the bitmap.
        a.set_counted(&peer(1), false);
        assert_eq!(a.pick(&peer(1), false, |_| false), Some(100));
    }

    /// Issue 27, item 5: a `Have` of one index costs a few steps, whatever the file's size
    /// (at 131,072 chunks it cost a scan of every chunk: ~99 µs).
    #[test]
    fn a_have_costs_its_indices_not_the_file() {
        let chunks = 131_072;
        let mut a = sized(chunks);
        for k in 1..=8 {
            a.add(peer(k));
            let bits = encode_bits(chunks, |i| (i + u32::from(k)) % 3 != 0);
            a.set_bitfield(&peer(k), &bits).unwrap();
        }
        for i in (0..chunks).step_by(5) {
            a.set_need(i, Need::Requested);
        }
        let before = a.ops();
        for i in (0..chunks).step_by(3) {
            a.set_have(&peer(1), &[i]).unwrap();
            assert!(a.claims_needed(&peer(1)));
            assert!(!a.claims_all(&peer(1)) || i + 3 >= chunks);
        }
        let per_have = (a.ops() - before) as f64 / f64::from(chunks / 3);
        assert!(per_have <= 4.0, "{per_have} steps per one-index Have");
        // A chunk changing state costs one step per claimant.
        let before = a.ops();
        a.set_need(1, Need::Requested);
        assert!(a.ops() - before <= 1 + 8, "{}", a.ops() - before);
        // A partial holder's pick looks at most PICK_LOOKAHEAD entries of the order, or the
        // bitmap once (2,048 words here), never every chunk one by one.
        let before = a.ops();
        a.add(peer(20));
        a.set_have(&peer(20), &[chunks - 1]).unwrap();
        assert_eq!(a.pick(&peer(20), false, |_| false), Some(chunks - 1));
        let spent = a.ops() - before;
        assert!(
            spent <= (PICK_LOOKAHEAD + chunks as usize / 64 + 4) as u64,
            "{spent}"
        );
    }
}
