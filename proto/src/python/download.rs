//! One download from original Python peers: which 1 KiB chunk to ask whom, what to write.
//!
//! A Python file has no manifest: only its chunk count and its whole-file SHA-256. Each chunk
//! comes over a connection of its own with a hash the sender computed (which proves only that
//! the bytes were not damaged on the way); the whole file is checked against the announced
//! SHA-256 before it is renamed into place (by the disk, `DiskOp::Finish`).
//!
//! Rules:
//! - chunks are asked lowest index first, each holder at most [`PY_CONNS_PER_PEER`] at once,
//!   the download at most [`PY_CONNS_PER_DOWNLOAD`], the holder with the fewest in flight
//!   first, and never further ahead of the written prefix than [`PY_WINDOW_CHUNKS`];
//! - a failed attempt (refused, closed early, too slow) gives the chunk back and counts
//!   against its holder, which is dropped after [`PY_MAX_FAILURES`]; a reply that breaks the
//!   protocol (bad hash line, hash mismatch, wrong length) bans its sender for this file at
//!   once; a chunk that failed at a holder is next asked of another one if there is one;
//! - chunks are written in order only, so the partial file is always a prefix of the file:
//!   a resumed download keeps the complete chunks of that prefix (they are checked with the
//!   whole file at the end);
//! - when the whole file does not match, the bytes are from several holders or an earlier
//!   run and nobody can be blamed: every chunk is fetched again from one holder alone (the
//!   one that delivered most); if that one's file does not match either, it lied: it is
//!   banned and the next holder is tried alone.
//!
//! Invariant (checked by [`PyDownload::check_invariants`]): every chunk is in exactly one
//! state; the in-flight counts of the holders add up to the chunks in flight; the chunks
//! handed to the disk are exactly the prefix `0..handed`, and only ready chunks wait in memory,
//! at most [`PY_WINDOW_CHUNKS`] of them. State is kept only for the window past the prefix
//! (chunks in flight, ready): its memory is bounded by what was received and asked for, never
//! by the announced `total_chunks` (a claim: issue 27, item 6, 16,777,216 of them made one
//! `get` allocate 512 MiB up front).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::wire::PY_CHUNK;
use crate::budget::{PY_CONNS_PER_DOWNLOAD, PY_CONNS_PER_PEER, PY_MAX_FAILURES};
use crate::ids::{ContentId, Digest};

/// Chunks fetched ahead of the written prefix at most: the memory one slow chunk can make
/// the others wait in (256 KiB).
pub(crate) const PY_WINDOW_CHUNKS: u32 = 256;

/// What a holder did for this file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holder {
    /// Connections open to it for this file.
    pub(crate) in_flight: usize,
    /// Failed attempts in a row.
    pub(crate) failures: u32,
    /// No longer asked (failed too often, lied, or left).
    pub(crate) banned: bool,
    /// Chunks it delivered that passed their transport hash.
    pub(crate) delivered: u32,
    /// Their bytes.
    pub(crate) bytes: u64,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The chunk's bytes, with a matching transport hash.
    Chunk(Vec<u8>),
    /// Could not connect, was closed before a reply, or took too long: may be busy.
    Failed,
    /// Broke the protocol: a bad hash line, a mismatch, or a chunk of the wrong length.
    Lied,
}

/// Where the download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyPhase {
    /// Waiting for the partial file to open.
    Opening,
    /// Fetching chunks.
    Running,
    /// Every chunk written: the whole file is being checked and placed.
    Finishing,
}

/// One download from Python peers.
#[derive(Debug)]
pub(crate) struct PyDownload {
    content: ContentId,
    name: String,
    file_hash: Digest,
    total: u32,
    /// Chunks asked for, each of one holder (all within the window).
    flying: BTreeMap<u32, SocketAddr>,
    /// Chunks received and checked, waiting for the prefix to reach them.
    ready: BTreeMap<u32, Vec<u8>>,
    /// Chunks `0..handed` are handed to the disk, in order.
    handed: u32,
    /// Of those, confirmed written.
    written: u32,
    /// Chunks kept from an earlier run.
    reused: u32,
    /// Length of the last chunk, once known.
    last_len: Option<usize>,
    holders: BTreeMap<SocketAddr, Holder>,
    /// A chunk that failed at a holder is asked of another one next.
    avoid: BTreeMap<u32, SocketAddr>,
    /// After a whole-file mismatch: only this holder is asked.
    solo: Option<SocketAddr>,
    phase: PyPhase,
    rejected: u32,
}

impl PyDownload {
    /// A download of the Python file `content` (`total` chunks, SHA-256 `file_hash`) saved as
    /// `name`, from `holders`. Then open the partial file and call [`PyDownload::opened`].
    pub(crate) fn new(
        content: ContentId,
        name: String,
        file_hash: Digest,
        total: u32,
        holders: impl IntoIterator<Item = SocketAddr>,
    ) -> PyDownload {
        PyDownload {
            content,
            name,
            file_hash,
            total,
            flying: BTreeMap::new(),
            ready: BTreeMap::new(),
            handed: 0,
            written: 0,
            reused: 0,
            last_len: None,
            holders: holders
                .into_iter()
                .map(|a| (a, Holder::default()))
                .collect(),
            avoid: BTreeMap::new(),
            solo: None,
            phase: PyPhase::Opening,
            rejected: 0,
        }
    }

    /// Its content id.
    pub(crate) fn content(&self) -> ContentId {
        self.content
    }

    /// The name it is saved under.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The announced whole-file SHA-256.
    pub(crate) fn file_hash(&self) -> &Digest {
        &self.file_hash
    }

    /// Chunks in the file.
    pub(crate) fn total(&self) -> u32 {
        self.total
    }

    /// Where it is.
    pub(crate) fn phase(&self) -> PyPhase {
        self.phase
    }

    /// The largest the file can be (what the partial file is opened with).
    pub(crate) fn max_size(&self) -> u64 {
        u64::from(self.total) * PY_CHUNK as u64
    }

    /// The file's size, once the last chunk is known (or the file is empty).
    pub(crate) fn size(&self) -> Option<u64> {
        if self.total == 0 {
            return Some(0);
        }
        self.last_len
            .map(|l| u64::from(self.total - 1) * PY_CHUNK as u64 + l as u64)
    }

    /// Bytes confirmed on disk.
    pub(crate) fn written_bytes(&self) -> u64 {
        let full = u64::from(self.written) * PY_CHUNK as u64;
        match self.size() {
            Some(s) => full.min(s),
            None => full,
        }
    }

    /// Chunks confirmed on disk.
    pub(crate) fn written_chunks(&self) -> u32 {
        self.written
    }

    /// Chunks kept from an earlier run.
    pub(crate) fn reused(&self) -> u32 {
        self.reused
    }

    /// Chunks rejected (protocol broken by their sender).
    pub(crate) fn rejected(&self) -> u32 {
        self.rejected
    }

    /// Every holder and what it did.
    pub(crate) fn holders(&self) -> &BTreeMap<SocketAddr, Holder> {
        &self.holders
    }

    /// Chunks asked for and not yet answered: each has a connection of its own.
    pub(crate) fn in_flight(&self) -> usize {
        self.holders.values().map(|h| h.in_flight).sum()
    }

    /// Holders that may still be asked.
    pub(crate) fn usable(&self) -> usize {
        self.holders
            .iter()
            .filter(|(a, h)| !h.banned && self.solo.is_none_or(|s| s == **a))
            .count()
    }

    /// A Python peer announced the file (again): it is a holder.
    pub(crate) fn add_holder(&mut self, addr: SocketAddr) {
        self.holders.entry(addr).or_default();
    }

    /// A holder went silent past its expiry: it is no longer asked.
    pub(crate) fn remove_holder(&mut self, addr: SocketAddr) {
        if let Some(h) = self.holders.get_mut(&addr) {
            h.banned = true;
        }
    }

    /// The partial file is open with `len` bytes from an earlier run: its complete chunks are
    /// kept (a prefix, as chunks are written in order). Returns true when that is the whole
    /// file (then finish it).
    pub(crate) fn opened(&mut self, len: u64) -> bool {
        let chunk = PY_CHUNK as u64;
        let full = (len / chunk).min(u64::from(self.total)) as u32;
        let mut keep = full;
        if self.total > 0 && full < self.total && len > u64::from(self.total - 1) * chunk {
            // The last, short chunk is there too.
            keep = self.total;
            self.last_len = Some((len - u64::from(self.total - 1) * chunk) as usize);
        } else if full == self.total && self.total > 0 {
            self.last_len = Some(PY_CHUNK);
        }
        self.handed = keep;
        self.written = keep;
        self.reused = keep;
        self.phase = PyPhase::Running;
        self.is_complete()
    }

    fn is_complete(&self) -> bool {
        self.written == self.total
    }

    /// The next chunk to ask and whom, if the budgets allow one more: call until `None`,
    /// opening one connection for each.
    pub(crate) fn next_request(&mut self) -> Option<(SocketAddr, u32)> {
        if self.phase != PyPhase::Running {
            return None;
        }
        let in_flight: usize = self.holders.values().map(|h| h.in_flight).sum();
        if in_flight >= PY_CONNS_PER_DOWNLOAD {
            return None;
        }
        let end = self.handed.saturating_add(PY_WINDOW_CHUNKS).min(self.total);
        let index = (self.handed..end)
            .find(|i| !self.flying.contains_key(i) && !self.ready.contains_key(i))?;
        let avoid = self.avoid.get(&index).copied();
        let solo = self.solo;
        let pick = self
            .holders
            .iter()
            .filter(|(a, h)| {
                !h.banned && h.in_flight < PY_CONNS_PER_PEER && solo.is_none_or(|s| s == **a)
            })
            .min_by_key(|(a, h)| (Some(**a) == avoid, h.in_flight, h.failures, **a))
            .map(|(a, _)| *a)?;
        if let Some(h) = self.holders.get_mut(&pick) {
            h.in_flight += 1;
        }
        self.flying.insert(index, pick);
        Some((pick, index))
    }

    /// The attempt for chunk `index` at `from` ended with `result`. Returns the chunks now
    /// ready to be written, in order (`(index, offset, bytes)`), and whether the sender lied.
    pub(crate) fn on_attempt(
        &mut self,
        from: SocketAddr,
        index: u32,
        result: Attempt,
    ) -> (Vec<(u32, u64, Vec<u8>)>, bool) {
        if self.flying.get(&index) != Some(&from) {
            return (Vec::new(), false);
        }
        self.flying.remove(&index);
        if let Some(h) = self.holders.get_mut(&from) {
            h.in_flight = h.in_flight.saturating_sub(1);
        }
        let result = match result {
            Attempt::Chunk(data) if !self.fits(index, data.len()) => Attempt::Lied,
            r => r,
        };
        let Some(h) = self.holders.get_mut(&from) else {
            // Holders are never removed, only banned; kept total for safety.
            return (Vec::new(), false);
        };
        match result {
            Attempt::Chunk(data) => {
                h.failures = 0;
                h.delivered += 1;
                h.bytes += data.len() as u64;
                if index + 1 == self.total {
                    self.last_len = Some(data.len());
                }
                self.ready.insert(index, data);
                self.avoid.remove(&index);
                (self.take_writes(), false)
            }
            Attempt::Failed => {
                h.failures += 1;
                if h.failures >= PY_MAX_FAILURES {
                    h.banned = true;
                }
                self.avoid.insert(index, from);
                (Vec::new(), false)
            }
            Attempt::Lied => {
                h.banned = true;
                self.rejected += 1;
                self.avoid.insert(index, from);
                (Vec::new(), true)
            }
        }
    }

    /// True when `len` bytes is a possible length for chunk `index`: 1 KiB, or for the last
    /// one 1 to 1024 bytes.
    fn fits(&self, index: u32, len: usize) -> bool {
        if index + 1 == self.total {
            (1..=PY_CHUNK).contains(&len)
        } else {
            len == PY_CHUNK
        }
    }

    fn take_writes(&mut self) -> Vec<(u32, u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(data) = self.ready.remove(&self.handed) {
            let i = self.handed;
            out.push((i, u64::from(i) * PY_CHUNK as u64, data));
            self.handed += 1;
        }
        out
    }

    /// Chunk `index` is written. Returns true when every chunk is (then finish the file).
    pub(crate) fn on_written(&mut self, index: u32) -> bool {
        if index == self.written && index < self.handed {
            self.written += 1;
        }
        if self.is_complete() && self.phase == PyPhase::Running {
            self.phase = PyPhase::Finishing;
            return true;
        }
        false
    }

    /// Moves to finishing right after [`PyDownload::opened`] found the whole file there.
    pub(crate) fn begin_finish(&mut self) {
        self.phase = PyPhase::Finishing;
    }

    /// The whole file did not match its SHA-256. Returns false when nobody is left to try
    /// (the download fails); else every chunk is fetched again from one holder alone.
    pub(crate) fn on_mismatch(&mut self) -> bool {
        // Bytes from one holder alone, none kept from before: that holder lied.
        let contributors: Vec<SocketAddr> = self
            .holders
            .iter()
            .filter(|(_, h)| h.delivered > 0)
            .map(|(a, _)| *a)
            .collect();
        if self.reused == 0
            && let [only] = contributors.as_slice()
            && let Some(h) = self.holders.get_mut(only)
        {
            h.banned = true;
            self.rejected += 1;
        }
        self.solo = self
            .holders
            .iter()
            .filter(|(_, h)| !h.banned)
            .max_by_key(|(a, h)| (h.delivered, std::cmp::Reverse(**a)))
            .map(|(a, _)| *a);
        for h in self.holders.values_mut() {
            h.delivered = 0;
            h.bytes = 0;
        }
        // Finishing, every chunk was handed to the disk: none is in flight.
        self.flying.clear();
        self.ready.clear();
        self.avoid.clear();
        self.handed = 0;
        self.written = 0;
        self.reused = 0;
        self.last_len = None;
        self.phase = PyPhase::Running;
        self.solo.is_some() && self.total > 0
    }

    /// Checks the invariant of the module doc; the error says what broke.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let counted: usize = self.holders.values().map(|h| h.in_flight).sum();
        if self.flying.len() != counted {
            return Err(format!(
                "{} chunks in flight, holders count {counted}",
                self.flying.len()
            ));
        }
        let window = self.handed..self.handed.saturating_add(PY_WINDOW_CHUNKS).min(self.total);
        for i in self.flying.keys().chain(self.ready.keys()) {
            if !window.contains(i) {
                return Err(format!("chunk {i} outside the window {window:?}"));
            }
        }
        if self.flying.keys().any(|i| self.ready.contains_key(i)) {
            return Err("a chunk both in flight and ready".into());
        }
        if self.ready.len() > PY_WINDOW_CHUNKS as usize || self.written > self.handed {
            return Err("ready chunks over the window, or written past handed".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 10000))
    }

    #[test]
    fn fetches_spreads_retries_and_writes_in_order() {
        let mut d = PyDownload::new(ContentId([1; 32]), "f".into(), [0; 32], 40, [a(1), a(2)]);
        assert!(!d.opened(0));
        let mut asked = Vec::new();
        while let Some(r) = d.next_request() {
            asked.push(r);
        }
        assert_eq!(asked.len(), 2 * PY_CONNS_PER_PEER, "bounded per peer");
        d.check_invariants().unwrap();
        // Chunk 1 arrives before chunk 0: nothing is written yet.
        let (w, _) = d.on_attempt(asked[1].0, asked[1].1, Attempt::Chunk(vec![1; 1024]));
        assert!(w.is_empty());
        // Chunk 0's holder lies: banned; the chunk goes to the other one next.
        let (w, lied) = d.on_attempt(asked[0].0, 0, Attempt::Chunk(vec![1; 10]));
        assert!(w.is_empty() && lied);
        assert!(d.holders()[&asked[0].0].banned);
        let (who, idx) = d.next_request().unwrap();
        assert_eq!((idx, who == asked[0].0), (0, false));
        let (w, _) = d.on_attempt(who, 0, Attempt::Chunk(vec![0; 1024]));
        assert_eq!(w.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        d.check_invariants().unwrap();
    }

    #[test]
    fn state_is_the_window_whatever_total_chunks_claims() {
        // Issue 27, item 6: 16,777,216 claimed chunks allocated 32 bytes each up front.
        let mut d = PyDownload::new(ContentId([1; 32]), "f".into(), [0; 32], 1 << 24, [a(1)]);
        assert!(!d.opened(0));
        while d.next_request().is_some() {}
        assert_eq!(
            d.flying.len(),
            PY_CONNS_PER_PEER,
            "one holder's share in flight"
        );
        // Chunks arrive out of order: only the window past the prefix waits in memory.
        let asked: Vec<u32> = d.flying.keys().copied().collect();
        for &i in asked.iter().skip(1) {
            let (w, _) = d.on_attempt(a(1), i, Attempt::Chunk(vec![0; 1024]));
            assert!(w.is_empty());
        }
        assert_eq!((d.flying.len(), d.ready.len()), (1, PY_CONNS_PER_PEER - 1));
        let (w, _) = d.on_attempt(a(1), 0, Attempt::Chunk(vec![0; 1024]));
        assert_eq!(w.len(), PY_CONNS_PER_PEER);
        assert!(d.ready.is_empty() && d.flying.is_empty());
        d.check_invariants().unwrap();
        assert_eq!(d.max_size(), (1u64 << 24) * 1024);
    }

    #[test]
    fn resumes_a_prefix_and_isolates_a_liar_after_a_mismatch() {
        let mut d = PyDownload::new(ContentId([1; 32]), "f".into(), [0; 32], 3, [a(1), a(2)]);
        assert!(!d.opened(1024 + 5), "one complete chunk kept");
        assert_eq!(d.reused(), 1);
        let mut done = false;
        while !done {
            let (who, i) = d.next_request().unwrap();
            let len = if i == 2 { 7 } else { 1024 };
            for (idx, _, _) in d.on_attempt(who, i, Attempt::Chunk(vec![0; len])).0 {
                done = d.on_written(idx);
            }
        }
        assert_eq!(d.size(), Some(2048 + 7));
        // The file did not match: everything again, from one holder alone.
        assert!(d.on_mismatch());
        assert_eq!(d.usable(), 1);
        d.check_invariants().unwrap();
    }
}
