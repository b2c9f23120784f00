//! The chunk scheduler of one download: which chunk to ask which peer for, and what to do
//! when answers, failures and disk results come back.
//!
//! Invariant (checked by [`Download::check_invariants`], and by the simulator after every
//! step): every chunk is in exactly one [`ChunkState`] at any time, and the bookkeeping sets
//! agree with it: `missing` holds exactly the `Missing` chunks, `requested` exactly the
//! `Requested` ones, and a peer's in-flight set holds exactly the chunks whose `Requested.from`
//! names that peer.
//!
//! Rules:
//! - a manifest is trusted only after it hashed to the content id (see [`crate::manifest`]);
//! - chunks are requested from every usable holder at once; each peer has a window of requests
//!   in flight that grows with its measured rate (2 to `max_window`), so faster peers get more;
//! - holders are complete (they share the whole file) or partial (they download it too, and
//!   serve only the chunks they verified: [`crate::availability`] holds their claims); a
//!   partial holder is asked only for chunks it claims; with no partial holder, chunks go
//!   lowest index first (so the whole-file hash keeps up with the written prefix); with any,
//!   rarest first among the partial holders' claims, ties in an order shuffled per download,
//!   and a complete holder is asked only for chunks no *counted* claim covers (but for the
//!   last `TAIL_CHUNKS`): a crowd behind one seeder spends its upload about once;
//! - every claim costs the claimant, not us. A partial holder's claims count (keep complete
//!   holders off those chunks) only while it keeps up: not paused, and not owing a chunk for
//!   longer than [`CLAIM_PATIENCE`]; so a download never waits only on claimants while a
//!   complete holder has room. A `Busy`, a repeated `Taken` of one chunk and a stall (its
//!   requests lost with it) are strikes against the claims (the refused claim is dropped; a
//!   first `Taken` is the crowd's normal "get it from the one I just sent it to": the chunk
//!   is not asked of it for [`BUSY_BACKOFF`], its claim stays); after [`MAX_CLAIM_STRIKES`]
//!   strikes with no verified chunk from it in between, the claimant is not believed for this
//!   content (its bitfields, haves and partial listings are ignored until the download ends;
//!   a complete listing still makes it a holder);
//! - `Busy` from any holder pauses it (nothing asked of it for [`BUSY_BACKOFF`], doubling per
//!   pause up to [`MAX_PAUSE`], until it delivers a verified chunk; after
//!   [`MAX_BARREN_PAUSES`] pauses with none it is banned for the download), and so do
//!   [`MAX_REFUSAL_RUN`] refusals in a row; a chunk refused as `Taken` by a complete holder (it
//!   just sent it to another downloader) goes back to the pool and is not asked of that holder
//!   for [`BUSY_BACKOFF`];
//! - a chunk failing its hash bans the peer for this download; its chunks go back to the pool;
//! - a peer that fails, stalls or closes gives its chunks back ([`Download::peer_down`]);
//! - endgame: when no chunk is missing, an idle peer may duplicate the oldest outstanding
//!   request of another peer (at most two owners a chunk); the first verified copy wins;
//! - resume: chunks already in the partial file are re-read and re-verified (`Checking`), never
//!   trusted; only those that pass count as written.
//!
//! - progress, not liveness: while a peer has chunks in flight it must deliver one verified
//!   chunk within `stall + 2 × chunk size / its rate` of the previous one (or of the first
//!   request; before it delivered anything its rate counts as [`MIN_PEER_RATE`]), and a
//!   manifest request must be answered within `3 × stall`; past that deadline the peer loses
//!   its requests as if it had failed ([`Download::expire`]), whatever else it sends — pings or
//!   a byte now and then keep a connection open, not a chunk.
//!
//! Liveness (with the node's side in `node/fetch.rs`): a holder is banned only for its own
//! fault — a corrupt chunk, a bad manifest, a "not found" from a complete holder, a claim past
//! the manifest, [`MAX_STRIKES`] failures in a row with a request of ours outstanding, or
//! [`MAX_BARREN_PAUSES`] pauses for refusing with no verified chunk between them — and
//! while any holder not banned for this download is in the peer table that is complete, or
//! partial and claiming a chunk still missing here (for [`STRANDED_GRACE`] after the last such
//! one, any partial holder), the download goes on: the manifest is asked of the open holder with the
//! fewest failures while links open to every other holder, and a holder that fails hands its
//! manifest request and its chunks to the others at once. Every request has a deadline (the
//! session's stall timeout for silence, [`Download::expire`] for no delivery), so with one honest holder reachable the download makes progress
//! within `stall × (MAX_STRIKES × failing holders + 1)`, and it fails with
//! [`FailReason::NoPeers`] only when no usable holder is left. The simulator checks this after
//! the faults heal (its `Liveness` and `Stuck` checks); the planted `one_manifest_source` bug
//! breaks it and is caught.
//!
//! A flash crowd (N downloaders started together behind one seeder of uplink U, downloaders'
//! links faster than U): after one round trip every downloader knows the others as partial
//! holders, so the seeder is asked for chunks nobody claims and refuses as `Taken` (once per
//! chunk and asker) what it just sent to another downloader; it sends about one copy, and the
//! last downloader is done about `size / U` plus the time a chunk takes to cross the crowd
//! after it (measured by `cli/tests/swarm.rs` and `BENCH_ONLY=crowd ./bench.sh`; the figures
//! are in BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::availability::{Availability, ClaimError, Need};
use crate::bugs::Bugs;
use crate::disk::{DiskError, FinishError};
use crate::ids::{ContentId, PeerId};
use crate::manifest::Manifest;

/// Re-verification reads in flight at once during resume.
const MAX_CHECKS_IN_FLIGHT: u32 = 4;
/// Initial window of a peer before its rate is known.
const INITIAL_WINDOW: u32 = 4;
/// Smallest window.
const MIN_WINDOW: u32 = 2;
/// The window aims to cover this much time of a peer's measured rate.
const WINDOW_TIME: Duration = Duration::from_millis(250);
/// Failures in a row (a stall, a reset, a close) with requests outstanding and no verified
/// chunk in between, after which a peer is no longer asked for this file.
pub const MAX_STRIKES: u32 = 3;
/// The rate a peer is assumed to have before it delivered a chunk (bytes/s): slow enough for
/// a bad Wi-Fi link, fast enough that a peer dripping bytes loses its chunks within a minute.
pub const MIN_PEER_RATE: f64 = 64.0 * 1024.0;
/// How long a download whose only holders left are partial ones that claim nothing it needs
/// waits for one of them to say it has more (their `Have`s come within a tenth of a second
/// of a verified chunk) before it stops with [`FailReason::NoPeers`].
pub const STRANDED_GRACE: Duration = Duration::from_secs(5);
/// Missing chunks below which a complete holder is asked even for chunks partial holders
/// claim (see `pick_missing`).
const TAIL_CHUNKS: usize = 4;
/// How long a chunk a peer refused as taken is not asked of that peer again (long enough for
/// the peer that got it instead to announce it, short enough to cost little if it does not),
/// and the first pause of a peer that answered busy.
pub const BUSY_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause of a peer that keeps answering busy (each pause in a row doubles, from
/// [`BUSY_BACKOFF`]): a holder that refuses everything costs one round of refusals per 8 s.
pub const MAX_PAUSE: Duration = Duration::from_secs(8);
/// Pauses in a row, with no verified chunk from the holder in between, after which it is
/// banned for the download ([`Ban::Refusing`]): about 40 s of refusals at the longest pauses.
pub const MAX_BARREN_PAUSES: u32 = 8;
/// Refusals in a row, with no verified chunk in between, after which a holder is paused as if
/// it had answered busy: a holder that says `Taken` to everything is asked about one window
/// of chunks per pause, not every chunk of the file at the speed of the link (a seeder
/// spreading a crowd says it for a few chunks in a row at most).
pub const MAX_REFUSAL_RUN: u32 = 16;
/// Strikes against a partial holder's claims (a `Busy`, a repeated `Taken`, a request lost in
/// a stall), with no verified chunk from it in between, after which it is not believed for
/// this content: twice the initial window, so a claimant that answers everything busy is let
/// go after three rounds (4 requests, then 2 and 2 as its window halves; 1.5 s of pauses),
/// and an honest one that finishes its own download while we ask (it says busy then) at worst
/// loses its partial claims, which its complete listing replaces.
pub const MAX_CLAIM_STRIKES: u32 = 8;
/// How long a partial holder may owe a chunk (since its last delivery, or since it was asked
/// when it had nothing in flight) before its claims stop counting: half a second is a 1 MiB
/// chunk on a 20 Mbit/s link, and on a LAN a claimant that keeps up delivers well within it.
/// Past it, complete holders are asked for what it claims.
pub const CLAIM_PATIENCE: Duration = Duration::from_millis(500);
/// Claimants not believed per download, at most (a host minting ids is bounded by the peer
/// table's cap per address; past this, a new liar costs its strikes again).
const MAX_DISBELIEVED: usize = 4 * crate::availability::MAX_PARTIAL_HOLDERS;

/// The state of one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkState {
    /// Not on disk, not asked for.
    Missing,
    /// On disk from an earlier run, being re-verified.
    Checking,
    /// Asked of one peer (or two, in endgame) at `since`.
    Requested {
        /// The peers asked.
        from: Vec<PeerId>,
        /// When it was first asked for.
        since: Instant,
    },
    /// Verified, being written.
    Writing,
    /// Verified and on disk.
    Written,
}

/// Where a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fetching the manifest from a holder.
    Manifest,
    /// Manifest verified; the partial file is being opened.
    Opening,
    /// Fetching and checking chunks.
    Running,
    /// Every chunk written; the whole file is being verified and renamed.
    Finishing,
}

/// Why a download stopped without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// No usable peer holds the file any more.
    NoPeers {
        /// Chunks already verified on disk (kept for resume).
        have: u32,
        /// Chunks in the file.
        total: u32,
    },
    /// Disk trouble while writing.
    Disk(DiskError),
    /// The whole-file check or the rename failed.
    Finish(FinishError),
    /// The user cancelled.
    Cancelled,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::NoPeers { have, total } => write!(
                f,
                "no peer has this file any more ({have} of {total} chunks kept; `get` it again to resume)"
            ),
            FailReason::Disk(e) => write!(f, "writing failed: {e} (partial file kept)"),
            FailReason::Finish(e) => write!(f, "final check failed: {e}"),
            FailReason::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Why a peer is no longer asked for this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ban {
    /// It sent a chunk that failed its hash.
    Corrupt,
    /// It sent a manifest that did not match the content id.
    BadManifest,
    /// It said it does not have the file (its catalog lied or is stale).
    NotFound,
    /// It failed [`MAX_STRIKES`] times in a row with requests outstanding (e.g. it never
    /// answers).
    Unresponsive,
    /// As a partial holder it claimed chunks the manifest does not have.
    BadClaim,
    /// It refused so long, [`MAX_BARREN_PAUSES`] pauses with no verified chunk in between,
    /// that it is no source: a holder that says `Busy` or `Taken` to everything would keep a
    /// download it alone holds waiting forever.
    Refusing,
}

/// What a refusal of one of our chunk requests cost the peer that refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not about a chunk asked of it (a late answer, say): nothing changes.
    Unsolicited,
    /// The chunk went back to the pool (the peer may be paused, or not asked for it for a
    /// moment: a first `Taken`, what an honest claimant of a crowd says once per chunk and
    /// asker).
    Released,
    /// The chunk went back, the partial holder's claim on it was dropped, and the refusal was
    /// a strike against it (`Busy`, a repeated `Taken`).
    Struck,
    /// ... and that strike was its last: it is no longer believed for this content.
    Disbelieved,
    /// The peer is no longer a holder (a "not found": its catalog lied or is stale).
    Dropped,
}

/// What became of a received chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Verified: write `data` at `offset`.
    Accepted {
        /// Byte offset in the file.
        offset: u64,
        /// The verified bytes.
        data: Vec<u8>,
    },
    /// Failed its hash: the peer is banned for this file.
    Rejected,
    /// Not asked of this peer, or already verified: dropped.
    Unsolicited,
}

/// One peer's part in a download.
#[derive(Debug, Clone, Default)]
pub struct PeerPart {
    /// Chunks asked of it and not yet answered.
    pub inflight: BTreeSet<u32>,
    /// How many it may have in flight.
    pub window: u32,
    /// Set when it is no longer asked.
    pub banned: Option<Ban>,
    /// Verified chunks it delivered.
    pub chunks: u32,
    /// Verified bytes it delivered.
    pub bytes: u64,
    /// Failures in a row with requests outstanding (see [`MAX_STRIKES`]).
    pub strikes: u32,
    first_request: Option<Instant>,
    /// While chunks are in flight: since when it owes us the next one (its last delivery or
    /// the first request after it had none in flight).
    progress_at: Option<Instant>,
    /// Its rate at its last delivery (bytes/s).
    rate: f64,
    /// A partial holder: we asked it which chunks it has, on the link we have now.
    interest_sent: bool,
    /// Chunks it refused as taken, not asked of it again before the time given (a seeder
    /// spreading a crowd's requests says taken for a chunk it just sent to another).
    busy: BTreeMap<u32, Instant>,
    /// Not asked anything before this (it answered busy).
    paused_until: Option<Instant>,
    /// Pauses since its last verified chunk (each doubles the next).
    pauses: u32,
    /// Refusals in a row since its last verified chunk.
    refusals: u32,
    /// As a partial holder: strikes against its claims since its last verified chunk.
    pub claim_strikes: u32,
    /// As a partial holder: chunks it refused as taken (a second `Taken` of one is a strike);
    /// bounded, like the seeder's own record.
    taken: BTreeSet<u32>,
}

impl PeerPart {
    fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| t > now)
    }
}

/// Statistics of a download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Chunks that failed their hash.
    pub rejected: u32,
    /// Chunks received that were not needed (endgame losers, stale answers).
    pub unsolicited: u32,
    /// Chunks found valid in the partial file at resume.
    pub reused: u32,
    /// Partial holders' claims dropped for a refusal or a stall.
    pub claims_dropped: u32,
    /// Claimants no longer believed for this content.
    pub disbelieved: u32,
    /// Bytes fetched over the network and accepted.
    pub fetched_bytes: u64,
}

/// What became of a received manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestVerdict {
    /// It hashed to the content id: next, open the partial file.
    Accepted,
    /// It did not: the sender is banned; ask another holder.
    Rejected,
    /// Not the answer to our manifest request: dropped.
    Unsolicited,
}

/// One download's scheduler. Its fields are private: the node moves it only through its
/// transitions, so the invariants above hold wherever it is used.
#[derive(Debug)]
pub struct Download {
    content: ContentId,
    /// The name it is saved under (`dl_<name>`).
    name: String,
    phase: Phase,
    /// Set once verified.
    manifest: Option<Manifest>,
    /// The peer asked for the manifest, while waiting for its answer.
    manifest_from: Option<PeerId>,
    /// When the manifest was asked of it.
    manifest_since: Option<Instant>,
    chunks: Vec<ChunkState>,
    missing: BTreeSet<u32>,
    requested: BTreeSet<u32>,
    to_check: VecDeque<u32>,
    checks_in_flight: u32,
    written: u32,
    written_bytes: u64,
    /// Bytes of verified chunks handed to the disk and not yet written.
    writing_bytes: u64,
    peers: BTreeMap<PeerId, PeerPart>,
    /// What the partial holders among `peers` claim to have.
    avail: Availability,
    /// Peers not (yet) holders that we asked which chunks they have: each is asked once, so
    /// that `Interested` arriving in a loop makes us ask back once, not in a loop.
    prospects: BTreeSet<PeerId>,
    /// Partial holders not believed for this content (see [`MAX_CLAIM_STRIKES`]).
    disbelieved: BTreeSet<PeerId>,
    /// Since when no holder left has anything this download needs (only partial ones that
    /// claim nothing missing): it stops after [`STRANDED_GRACE`].
    stranded_since: Option<Instant>,
    max_window: u32,
    /// Not to be put in place yet, even when complete ([`Download::set_held`]).
    held: bool,
    counters: Counters,
    bugs: Bugs,
}

impl Download {
    /// A download of `content`, saved as `dl_<name>`, from `holders`; `bugs` plants bugs
    /// (simulator tests only; `Bugs::default()` elsewhere).
    pub fn new(
        content: ContentId,
        name: String,
        holders: impl IntoIterator<Item = PeerId>,
        max_window: u32,
        bugs: Bugs,
    ) -> Download {
        let mut d = Download {
            content,
            name,
            phase: Phase::Manifest,
            manifest: None,
            manifest_from: None,
            manifest_since: None,
            chunks: Vec::new(),
            missing: BTreeSet::new(),
            requested: BTreeSet::new(),
            to_check: VecDeque::new(),
            checks_in_flight: 0,
            written: 0,
            written_bytes: 0,
            writing_bytes: 0,
            peers: BTreeMap::new(),
            avail: Availability::default(),
            prospects: BTreeSet::new(),
            disbelieved: BTreeSet::new(),
            stranded_since: None,
            max_window: max_window.max(MIN_WINDOW),
            held: false,
            counters: Counters::default(),
            bugs,
        };
        for p in holders {
            d.add_holder(p);
        }
        d
    }

    /// Holds the download back from finishing (`true`) even once complete, or lets it finish
    /// (`false`): while held, [`Download::begin_finish`] gives nothing.
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    /// The same download, with chunks of equal rarity taken in an order shuffled by `salt`
    /// (a node passes a random one; 0 keeps lowest index first). Call right after `new`.
    pub fn salted(mut self, salt: u64) -> Download {
        // Chunks of equal rarity: a per-download shuffle, so that a crowd fetching one file
        // from one seeder asks it for different chunks.
        self.avail.set_salt(salt);
        self
    }

    // ---- getters ----

    /// What is downloaded.
    pub fn content(&self) -> ContentId {
        self.content
    }

    /// The name it is saved under (`dl_<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The manifest, once verified.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The peer asked for the manifest, while its answer is awaited.
    pub fn manifest_from(&self) -> Option<PeerId> {
        self.manifest_from
    }

    /// Statistics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Chunks in the file (0 before the manifest is known).
    pub fn total_chunks(&self) -> u32 {
        self.manifest.as_ref().map_or(0, Manifest::chunk_count)
    }

    // ---- transitions ----

    /// A peer that lists this content in its catalog as a whole file (a partial holder that
    /// does is complete from now on).
    pub fn add_holder(&mut self, peer: PeerId) {
        self.avail.remove(&peer);
        self.peers.entry(peer).or_insert_with(|| PeerPart {
            window: INITIAL_WINDOW,
            ..PeerPart::default()
        });
    }

    /// A peer that is downloading this content too (its catalog lists it as partial, or it
    /// answered our interest with a bitfield): asked only for the chunks it claims. A peer
    /// already known is left as it is. False when the table of partial holders is full, or
    /// the peer is not believed for this content.
    pub fn add_partial_holder(&mut self, peer: PeerId) -> bool {
        if self.peers.contains_key(&peer) {
            return true;
        }
        if self.disbelieved.contains(&peer) || !self.avail.add(peer) {
            return false;
        }
        self.peers.insert(
            peer,
            PeerPart {
                window: INITIAL_WINDOW,
                ..PeerPart::default()
            },
        );
        true
    }

    /// True when `peer` is a partial holder.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_partial(&self, peer: &PeerId) -> bool {
        self.avail.is_partial(peer)
    }

    /// True when `peer` is a holder not yet told (on its current link) that we download the
    /// file: the caller sends `Interested` and calls [`Download::interest_sent`]. A partial
    /// holder answers with the chunks it has; a complete one learns that we will have (and
    /// serve) what it sends us, so it may point others to us (`Taken`).
    pub fn wants_interest(&self, peer: &PeerId) -> bool {
        self.manifest.is_some()
            && self
                .peers
                .get(peer)
                .is_some_and(|p| p.banned.is_none() && !p.interest_sent)
    }

    /// Records that `peer`, not a holder, is asked which chunks it has; false when it was
    /// asked before (or [`crate::availability::MAX_PARTIAL_HOLDERS`] times 4 peers were).
    pub fn ask_prospect(&mut self, peer: PeerId) -> bool {
        if self.prospects.len() >= 4 * crate::availability::MAX_PARTIAL_HOLDERS {
            return false;
        }
        self.prospects.insert(peer)
    }

    /// `Interested` went to `peer` on its current link.
    pub fn interest_sent(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.interest_sent = true;
        }
    }

    /// `peer` answered our interest with its bitfield: an empty one means it neither has nor
    /// downloads the file, and one from a claimant not believed for this content is ignored
    /// (false is returned, nothing changes); otherwise it becomes a partial holder (or,
    /// claiming every chunk, a complete one) and true is returned. A bitfield that does not
    /// fit the manifest bans it. Costs the bitfield's length.
    pub fn on_bitfield(&mut self, peer: PeerId, bits: &[u8]) -> Result<bool, ClaimError> {
        if bits.is_empty() || (self.disbelieved.contains(&peer) && !self.peers.contains_key(&peer))
        {
            return Ok(false);
        }
        if self.manifest.is_none() {
            return Err(ClaimError::BadIndex);
        }
        if !self.add_partial_holder(peer) {
            return Err(ClaimError::Untracked);
        }
        // This bitfield answers our interest on the current link.
        self.interest_sent(&peer);
        if !self.avail.is_partial(&peer) {
            return Ok(true); // a complete holder: it has it all anyway
        }
        if let Err(e) = self.avail.set_bitfield(&peer, bits) {
            self.ban(peer, Ban::BadClaim);
            return Err(e);
        }
        self.complete_if_all(peer);
        Ok(true)
    }

    /// `peer` says it verified `indices` since. A claim past the end bans it; one from a
    /// peer that is not a partial holder of this download is ignored (false). Costs the
    /// indices (times the log of the chunk count), never a walk of the file's chunks.
    pub fn on_have(&mut self, peer: PeerId, indices: &[u32]) -> Result<bool, ClaimError> {
        if !self.avail.is_partial(&peer) {
            return Ok(false);
        }
        if let Err(e) = self.avail.set_have(&peer, indices) {
            self.ban(peer, Ban::BadClaim);
            return Err(e);
        }
        self.complete_if_all(peer);
        Ok(true)
    }

    fn complete_if_all(&mut self, peer: PeerId) {
        if self.avail.claims_all(&peer) {
            self.avail.remove(&peer);
        }
    }

    /// True when `peer` could give this download something now: not banned, and a complete
    /// holder, or a partial one claiming a chunk not yet verified here (before the manifest
    /// is known, any holder: partial ones serve manifests too). One lookup.
    pub fn is_useful(&self, peer: &PeerId) -> bool {
        if self.peers.get(peer).is_none_or(|p| p.banned.is_some()) {
            return false;
        }
        if !self.avail.is_partial(peer) || self.manifest.is_none() {
            return true;
        }
        self.avail.claims_needed(peer)
    }

    /// Decides, at `now`, whether the download must stop for want of holders: `useful` says
    /// whether a holder in the peer table could give it something ([`Download::is_useful`]),
    /// `usable` whether any unbanned holder is in the table at all. With none usable it stops
    /// at once; with only partial ones that claim nothing it needs, after [`STRANDED_GRACE`].
    pub fn stranded(&mut self, now: Instant, useful: bool, usable: bool) -> bool {
        if useful {
            self.stranded_since = None;
            return false;
        }
        if !usable {
            return true;
        }
        let since = *self.stranded_since.get_or_insert(now);
        now >= since + STRANDED_GRACE
    }

    /// Peers that may still be asked.
    pub fn usable_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.banned.is_none())
            .map(|(id, _)| id)
    }

    /// Every peer's part.
    pub fn peers(&self) -> &BTreeMap<PeerId, PeerPart> {
        &self.peers
    }

    /// The manifest request went to `peer`. Only one is in flight at a time: false (and
    /// nothing changes) when one already is, or the manifest is known.
    pub fn manifest_asked(&mut self, now: Instant, peer: PeerId) -> bool {
        if self.phase != Phase::Manifest || self.manifest_from.is_some() {
            return false;
        }
        self.manifest_from = Some(peer);
        self.manifest_since = Some(now);
        true
    }

    /// When the manifest request must be answered by.
    fn manifest_deadline(&self, stall: Duration) -> Option<Instant> {
        self.manifest_from
            .and(self.manifest_since)
            .map(|t| t + stall * 3)
    }

    /// When `p` must deliver its next chunk by, while it has chunks in flight.
    fn chunk_deadline(&self, p: &PeerPart, stall: Duration) -> Option<Instant> {
        let chunk = self.manifest.as_ref()?.chunk_size();
        let per_chunk = f64::from(chunk) / p.rate.max(MIN_PEER_RATE);
        Some(p.progress_at? + stall + Duration::from_secs_f64(2.0 * per_chunk))
    }

    /// When the next request deadline falls (see the module's rules), for a session stall
    /// timeout of `stall`.
    pub fn deadline(&self, stall: Duration) -> Option<Instant> {
        if self.bugs.no_request_deadline() {
            return None; // planted bug (simulator only)
        }
        let peers = self
            .peers
            .values()
            .filter_map(|p| self.chunk_deadline(p, stall));
        let stranded = self
            .stranded_since
            .filter(|_| self.phase != Phase::Finishing)
            .map(|t| t + STRANDED_GRACE);
        // A chunk refused as taken may be asked of that peer again then; a paused peer may
        // be asked again, and its claims count again.
        let busy = self
            .peers
            .values()
            .filter(|p| p.banned.is_none())
            .flat_map(|p| p.busy.values().copied().chain(p.paused_until));
        // A counted claimant that owes a chunk stops counting then.
        let patience = self
            .peers
            .iter()
            .filter(|(id, _)| self.avail.is_counted(id))
            .filter_map(|(_, p)| Some(p.progress_at? + CLAIM_PATIENCE));
        self.manifest_deadline(stall)
            .into_iter()
            .chain(peers)
            .chain(stranded)
            .chain(busy)
            .chain(patience)
            .min()
    }

    /// Which claimants count at `now` (see [`CLAIM_PATIENCE`]), and their pauses that ended
    /// (a complete holder's end in [`Download::expire`]). At most
    /// [`crate::availability::MAX_PARTIAL_HOLDERS`] steps, whatever the number of holders.
    fn recount(&mut self, now: Instant) {
        let partial: Vec<PeerId> = self.avail.partial_holders().copied().collect();
        for id in partial {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if p.paused_until.is_some_and(|t| t <= now) {
                p.paused_until = None;
            }
            let overdue = p.progress_at.is_some_and(|t| now >= t + CLAIM_PATIENCE);
            self.avail
                .set_counted(&id, p.paused_until.is_none() && !overdue);
        }
    }

    /// Takes their requests from the peers past their deadline at `now`, as if they had
    /// failed ([`Download::peer_down`]); returns them, and whether the manifest must be asked
    /// of someone else.
    pub fn expire(&mut self, now: Instant, stall: Duration) -> (Vec<PeerId>, bool) {
        for p in self.peers.values_mut() {
            p.busy.retain(|_, until| *until > now);
            if p.paused_until.is_some_and(|t| t <= now) {
                p.paused_until = None;
            }
        }
        self.recount(now);
        let mut late: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| self.chunk_deadline(p, stall).is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        if let Some(p) = self.manifest_from
            && self.manifest_deadline(stall).is_some_and(|t| t <= now)
            && !late.contains(&p)
        {
            late.push(p);
        }
        let mut manifest_lost = false;
        for p in &late {
            manifest_lost |= self.peer_down(p);
            if let Some(part) = self.peers.get_mut(p) {
                part.progress_at = None;
                part.window = MIN_WINDOW;
            }
        }
        self.recount(now);
        (late, manifest_lost)
    }

    /// A manifest arrived from `peer`: accepted only from the peer asked, and only if it hashes
    /// to the content id (see [`Manifest::verify_received`]); a bad one bans its sender.
    pub fn on_manifest(&mut self, peer: PeerId, bytes: &[u8]) -> ManifestVerdict {
        if self.phase != Phase::Manifest || self.manifest_from != Some(peer) {
            return ManifestVerdict::Unsolicited;
        }
        self.manifest_from = None;
        match Manifest::verify_received(&self.content, bytes) {
            Ok(m) => {
                self.avail.size(m.chunk_count());
                self.manifest = Some(m);
                self.phase = Phase::Opening;
                ManifestVerdict::Accepted
            }
            Err(_) => {
                self.ban(peer, Ban::BadManifest);
                ManifestVerdict::Rejected
            }
        }
    }

    /// `peer` answered our manifest request with "not found": a complete holder is banned, a
    /// partial one is no longer a holder. True when it was the peer asked (then ask another).
    pub fn manifest_refused(&mut self, peer: PeerId) -> bool {
        if self.manifest_from != Some(peer) {
            return false;
        }
        if self.avail.is_partial(&peer) {
            // A partial holder whose download stopped since its catalog said so.
            self.remove_peer(&peer);
        } else {
            self.ban(peer, Ban::NotFound);
        }
        true
    }

    /// The partial file is open with `existing` bytes already in it: chunks that lie wholly
    /// inside are re-verified, the rest fetched.
    pub fn opened(&mut self, existing: u64) {
        let Some(m) = &self.manifest else { return };
        if self.phase != Phase::Opening {
            return;
        }
        self.chunks = Vec::with_capacity(m.chunk_count() as usize);
        for i in 0..m.chunk_count() {
            let fits = m
                .chunk_range(i)
                .is_some_and(|(off, len)| off + u64::from(len) <= existing);
            if fits {
                self.chunks.push(ChunkState::Checking);
                self.to_check.push_back(i);
            } else {
                self.chunks.push(ChunkState::Missing);
                self.missing.insert(i);
                self.avail.set_need(i, Need::Missing);
            }
        }
        self.phase = Phase::Running;
    }

    /// The next chunk of the partial file to re-read for verification, with its range.
    pub fn next_check(&mut self) -> Option<(u32, u64, u32)> {
        if self.checks_in_flight >= MAX_CHECKS_IN_FLIGHT {
            return None;
        }
        let i = self.to_check.pop_front()?;
        let (off, len) = self.manifest.as_ref()?.chunk_range(i)?;
        self.checks_in_flight += 1;
        Some((i, off, len))
    }

    /// The bytes re-read from the partial file for chunk `index` (or the read failed).
    pub fn check_done(&mut self, index: u32, data: Result<Vec<u8>, DiskError>) {
        if self.chunks.get(index as usize) != Some(&ChunkState::Checking) {
            return;
        }
        self.checks_in_flight = self.checks_in_flight.saturating_sub(1);
        let ok = match (&self.manifest, data) {
            (Some(m), Ok(d)) => m.verify_chunk(index, &d).is_ok(),
            _ => false,
        };
        if ok {
            self.counters.reused += 1;
            self.mark_written(index);
        } else {
            self.chunks[index as usize] = ChunkState::Missing;
            self.missing.insert(index);
            self.avail.set_need(index, Need::Missing);
        }
    }

    fn mark_written(&mut self, index: u32) {
        self.chunks[index as usize] = ChunkState::Written;
        self.written += 1;
        if let Some((_, len)) = self.manifest.as_ref().and_then(|m| m.chunk_range(index)) {
            self.written_bytes += u64::from(len);
        }
    }

    /// Picks the next chunk to ask `peer` for, if its window has room, and marks it requested.
    pub fn next_request(&mut self, now: Instant, peer: PeerId) -> Option<u32> {
        let budget = crate::budget::WRITE_BUDGET_PER_DOWNLOAD;
        if self.phase != Phase::Running || self.writing_bytes >= budget {
            return None;
        }
        self.recount(now);
        let part = self.peers.get(&peer)?;
        if part.banned.is_some() || part.inflight.len() as u32 >= part.window || part.paused(now) {
            return None;
        }
        if let Some(part) = self.peers.get_mut(&peer) {
            part.busy.retain(|_, until| *until > now);
        }
        let index = match self.pick_missing(&peer) {
            // A new chunk only while the budget has room for it; the endgame's duplicates
            // (below) add nothing that is held: each chunk is kept once, whoever sends it.
            Some(_) if self.pipeline_bytes() >= budget => return None,
            Some(i) => {
                self.missing.remove(&i);
                self.chunks[i as usize] = ChunkState::Requested {
                    from: vec![peer],
                    since: now,
                };
                self.requested.insert(i);
                self.avail.set_need(i, Need::Requested);
                i
            }
            // Chunks are missing, none of them claimed by this partial holder: nothing for it.
            None if !self.missing.is_empty() => return None,
            None => {
                // Endgame: duplicate the oldest request held by someone else.
                let mut best: Option<(Instant, u32)> = None;
                for &i in &self.requested {
                    if let ChunkState::Requested { from, since } = &self.chunks[i as usize]
                        && from.len() < 2
                        && !from.contains(&peer)
                        && self.avail.has(&peer, i)
                        && best.is_none_or(|(t, _)| *since < t)
                    {
                        best = Some((*since, i));
                    }
                }
                let (_, i) = best?;
                if let ChunkState::Requested { from, .. } = &mut self.chunks[i as usize] {
                    from.push(peer);
                }
                i
            }
        };
        let part = self.peers.get_mut(&peer)?;
        part.inflight.insert(index);
        part.first_request.get_or_insert(now);
        part.progress_at.get_or_insert(now);
        Some(index)
    }

    /// The missing chunk to ask `peer` for (see [`Availability::pick`]): with no partial
    /// holder, the lowest missing index (the whole-file hash, taken over the written prefix,
    /// keeps up with the download); with some, among those it has, the rarest among the
    /// counted claims, ties in this download's own shuffled order; a complete holder only
    /// what no counted claim covers, but for the last few chunks (a tail waits on nobody).
    /// Never a chunk this peer refused as taken a moment ago.
    fn pick_missing(&mut self, peer: &PeerId) -> Option<u32> {
        let busy = self.peers.get(peer).map(|p| &p.busy);
        let skip = |i: u32| busy.is_some_and(|b| b.contains_key(&i));
        if !self.avail.any_partial() {
            return self.missing.iter().copied().find(|&i| !skip(i));
        }
        let tail = self.missing.len() <= TAIL_CHUNKS;
        self.avail.pick(peer, tail, skip)
    }

    /// Removes `peer` from the owners of chunk `index`; back to `Missing` if it was the last.
    fn release(&mut self, peer: &PeerId, index: u32) {
        if let Some(part) = self.peers.get_mut(peer) {
            part.inflight.remove(&index);
            if part.inflight.is_empty() {
                part.progress_at = None;
            }
        }
        if let Some(ChunkState::Requested { from, .. }) = self.chunks.get_mut(index as usize) {
            from.retain(|p| p != peer);
            if from.is_empty() {
                self.chunks[index as usize] = ChunkState::Missing;
                self.requested.remove(&index);
                self.missing.insert(index);
                self.avail.set_need(index, Need::Missing);
            }
        }
    }

    /// A chunk arrived from `peer`: verify it against the manifest.
    pub fn on_chunk(&mut self, now: Instant, peer: PeerId, index: u32, data: Vec<u8>) -> Received {
        let asked = self
            .peers
            .get(&peer)
            .is_some_and(|p| p.inflight.contains(&index));
        if !asked {
            self.counters.unsolicited += 1;
            return Received::Unsolicited;
        }
        let Some(m) = &self.manifest else {
            return Received::Unsolicited;
        };
        let verdict = m.verify_chunk(index, &data);
        let verdict = if self.bugs.skip_chunk_hash() {
            Ok(())
        } else {
            verdict
        };
        let Some((offset, len)) = m.chunk_range(index) else {
            return Received::Unsolicited;
        };
        if verdict.is_err() {
            self.counters.rejected += 1;
            self.ban(peer, Ban::Corrupt);
            return Received::Rejected;
        }
        // The first verified copy wins; every owner lets go.
        if let ChunkState::Requested { from, .. } = &self.chunks[index as usize] {
            for p in from.clone() {
                if let Some(part) = self.peers.get_mut(&p) {
                    part.inflight.remove(&index);
                    if part.inflight.is_empty() {
                        part.progress_at = None;
                    }
                }
            }
        }
        self.requested.remove(&index);
        self.chunks[index as usize] = ChunkState::Writing;
        self.avail.set_need(index, Need::Had);
        self.writing_bytes += u64::from(len);
        self.counters.fetched_bytes += u64::from(len);
        let max_window = self.max_window;
        if let Some(part) = self.peers.get_mut(&peer) {
            part.strikes = 0;
            part.claim_strikes = 0;
            part.refusals = 0;
            part.pauses = 0;
            part.chunks += 1;
            part.bytes += u64::from(len);
            let elapsed = part
                .first_request
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
                .max(Duration::from_millis(1));
            let rate = part.bytes as f64 / elapsed.as_secs_f64();
            part.rate = rate;
            if !part.inflight.is_empty() {
                part.progress_at = Some(now);
            }
            let want = 1.0 + rate * WINDOW_TIME.as_secs_f64() / f64::from(m.chunk_size());
            part.window = (want as u32).clamp(MIN_WINDOW, max_window);
        }
        self.recount(now);
        Received::Accepted { offset, data }
    }

    /// The peer answered our request for chunk `index` with an error at `now`. `busy`: the
    /// chunk goes back to the pool, the peer's window shrinks and it is paused (see
    /// [`BUSY_BACKOFF`]); a partial holder's claim on the chunk is dropped and it takes a
    /// strike. Any other refusal makes a partial holder no holder at all (its own download
    /// stopped, or it claimed what it does not serve: its catalog or its answer to our
    /// interest must make it one again) and bans a complete one for this file (its catalog
    /// lied). An error about a chunk not asked of this peer (a late answer to an earlier
    /// download of the same file, say) is unsolicited: nothing changes.
    pub fn chunk_refused(&mut self, now: Instant, peer: PeerId, index: u32, busy: bool) -> Refused {
        if !self.asked(&peer, index) {
            return Refused::Unsolicited;
        }
        if !busy {
            if self.avail.is_partial(&peer) {
                self.remove_peer(&peer);
            } else {
                self.ban(peer, Ban::NotFound);
            }
            return Refused::Dropped;
        }
        self.release(&peer, index);
        if let Some(part) = self.peers.get_mut(&peer) {
            part.window = (part.window / 2).max(MIN_WINDOW);
        }
        if self.bugs.no_claim_strike() && self.avail.is_partial(&peer) {
            return Refused::Released; // planted bug (simulator only): refusals cost nothing
        }
        self.pause(now, &peer);
        let verdict = self.strike_claim(&peer, index);
        self.recount(now);
        verdict
    }

    /// `peer` answered our request for chunk `index` with "taken" at `now`: it just sent
    /// that chunk to another downloader, from whom we should get it. The chunk goes back to
    /// the pool and is not asked of that peer again for [`BUSY_BACKOFF`] (its window stays: it
    /// is not overloaded); a second `Taken` of the same chunk from a partial holder is a
    /// strike that drops its claim (an honest holder says it once per chunk and asker).
    /// [`MAX_REFUSAL_RUN`] refusals in a row pause the peer.
    pub fn chunk_taken(&mut self, now: Instant, peer: PeerId, index: u32) -> Refused {
        if !self.asked(&peer, index) {
            return Refused::Unsolicited;
        }
        self.release(&peer, index);
        let partial = self.avail.is_partial(&peer);
        if partial && self.bugs.no_claim_strike() {
            // Planted bug (simulator only): refusals cost nothing.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.busy.insert(index, now + BUSY_BACKOFF);
            }
            return Refused::Released;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return Refused::Released;
        };
        let run = p.refusals + 1 >= MAX_REFUSAL_RUN;
        // A first `Taken` of a chunk from a claimant is the crowd's normal hint: its claim
        // stays, the chunk is not asked of it for a moment. A second one is a strike.
        let again = partial && {
            if p.taken.len() >= 4096 {
                p.taken.clear();
            }
            !p.taken.insert(index)
        };
        if !again {
            p.busy.insert(index, now + BUSY_BACKOFF);
        }
        if run {
            self.pause(now, &peer);
        } else if let Some(p) = self.peers.get_mut(&peer) {
            p.refusals += 1;
        }
        let verdict = if again {
            self.strike_claim(&peer, index)
        } else {
            Refused::Released
        };
        self.recount(now);
        verdict
    }

    /// True when chunk `index` is in flight to `peer`.
    fn asked(&self, peer: &PeerId, index: u32) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.inflight.contains(&index))
    }

    /// `peer` refused (it answered busy, or refused too often in a row): not asked anything
    /// for its pause, which doubles with every pause since its last verified chunk. A refusal
    /// of a request sent before the pause began does not lengthen it.
    fn pause(&mut self, now: Instant, peer: &PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.refusals += 1;
        if p.paused(now) {
            return;
        }
        let pause = BUSY_BACKOFF
            .saturating_mul(1 << p.pauses.min(5))
            .min(MAX_PAUSE);
        p.pauses += 1;
        p.paused_until = Some(now + pause);
        if p.pauses >= MAX_BARREN_PAUSES {
            // Refusals cost the refuser: past this, it is no source for this download.
            self.ban(*peer, Ban::Refusing);
        }
    }

    /// Partial holder `peer` did not honour its claim on chunk `index`: the claim is dropped,
    /// and the strike counts toward [`MAX_CLAIM_STRIKES`], past which the claimant is not
    /// believed for this content. A complete holder's refusal costs it no claim.
    fn strike_claim(&mut self, peer: &PeerId, index: u32) -> Refused {
        if !self.avail.is_partial(peer) {
            return Refused::Released;
        }
        if self.avail.drop_claim(peer, index) {
            self.counters.claims_dropped += 1;
        }
        self.strike_claims(peer, 1);
        if self.peers.contains_key(peer) {
            Refused::Struck
        } else {
            Refused::Disbelieved
        }
    }

    /// `n` strikes against partial holder `peer`'s claims; at [`MAX_CLAIM_STRIKES`] it is
    /// removed from this download (its chunks go back to the pool) and its later claims are
    /// ignored.
    fn strike_claims(&mut self, peer: &PeerId, n: u32) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.claim_strikes += n;
        if p.claim_strikes < MAX_CLAIM_STRIKES || !self.avail.is_partial(peer) {
            return;
        }
        let inflight: Vec<u32> = p.inflight.iter().copied().collect();
        for i in inflight {
            self.release(peer, i);
        }
        if self.manifest_from == Some(*peer) {
            self.manifest_from = None;
        }
        self.peers.remove(peer);
        self.avail.remove(peer);
        if self.disbelieved.len() < MAX_DISBELIEVED {
            self.disbelieved.insert(*peer);
        }
        self.counters.disbelieved += 1;
    }

    /// The result of writing chunk `index`. A failure stops the download.
    pub fn written(&mut self, index: u32, result: Result<(), DiskError>) -> Result<(), FailReason> {
        if self.chunks.get(index as usize) != Some(&ChunkState::Writing) {
            return Ok(());
        }
        if let Some((_, len)) = self.manifest.as_ref().and_then(|m| m.chunk_range(index)) {
            self.writing_bytes = self.writing_bytes.saturating_sub(u64::from(len));
        }
        match result {
            Ok(()) => {
                self.mark_written(index);
                Ok(())
            }
            Err(e) => {
                self.chunks[index as usize] = ChunkState::Missing;
                self.missing.insert(index);
                self.avail.set_need(index, Need::Missing);
                Err(FailReason::Disk(e))
            }
        }
    }

    /// The peer failed, stalled, closed or went away: its chunks go back to the pool, and a
    /// manifest request it held is abandoned. It stays a holder and may be asked again once it
    /// is reachable, unless it failed with requests outstanding [`MAX_STRIKES`] times in a
    /// row: then it is banned as unresponsive. True when the manifest must be asked of
    /// someone else.
    pub fn peer_down(&mut self, peer: &PeerId) -> bool {
        let inflight: Vec<u32> = self
            .peers
            .get(peer)
            .map(|p| p.inflight.iter().copied().collect())
            .unwrap_or_default();
        let manifest_lost = self.manifest_from == Some(*peer);
        let asked = !inflight.is_empty() || manifest_lost;
        if let Some(part) = self.peers.get_mut(peer) {
            part.interest_sent = false;
        }
        // What it claimed is asked again on its next link; meanwhile it counts for nothing.
        let claimed = inflight
            .iter()
            .filter(|&&i| self.avail.has(peer, i))
            .count() as u32;
        let partial = self.avail.is_partial(peer);
        self.avail.clear(peer);
        if let Some(part) = self.peers.get_mut(peer).filter(|_| asked) {
            part.strikes += 1;
            if part.strikes >= MAX_STRIKES && part.banned.is_none() {
                part.banned = Some(Ban::Unresponsive);
            }
        }
        if manifest_lost {
            self.manifest_from = None;
        }
        if !self.bugs.keep_chunks_of_dead_peers() {
            for i in inflight {
                self.release(peer, i);
            }
        }
        // Each claimed chunk it held when it failed is a strike against its claims.
        if partial
            && claimed > 0
            && !self.bugs.no_claim_strike()
            && !self.bugs.keep_chunks_of_dead_peers()
        {
            self.counters.claims_dropped += claimed;
            self.strike_claims(peer, claimed);
        }
        manifest_lost
    }

    /// The peer expired from the peer table: forget it entirely. True when the manifest must
    /// be asked of someone else.
    pub fn remove_peer(&mut self, peer: &PeerId) -> bool {
        let manifest_lost = self.peer_down(peer);
        if !self.bugs.keep_chunks_of_dead_peers() {
            self.peers.remove(peer);
            self.avail.remove(peer);
        }
        manifest_lost
    }

    /// Stops asking `peer` for this file. A manifest request it held is abandoned; the node's
    /// callers that can ban such a peer (`manifest_refused`, `on_manifest`) report that, and a
    /// chunk refusal cannot happen before the manifest is known.
    pub fn ban(&mut self, peer: PeerId, why: Ban) {
        self.peer_down(&peer);
        if let Some(part) = self.peers.get_mut(&peer) {
            part.banned = Some(why);
        }
    }

    /// Every chunk is written: the download moves to `Finishing`, and the caller asks for the
    /// whole-file check and rename with what this returns (the name, size and file hash).
    /// `None` (and nothing changes) while chunks are missing.
    pub fn begin_finish(&mut self) -> Option<(String, u64, crate::ids::Digest)> {
        if self.held {
            return None;
        }
        let early = self.bugs.finish_early()
            && self.phase == Phase::Running
            && self.written * 2 >= self.total_chunks();
        if !(self.is_complete() || early) {
            return None;
        }
        let m = self.manifest.as_ref()?;
        self.phase = Phase::Finishing;
        Some((self.name.clone(), m.size(), *m.file_hash()))
    }

    /// True when every chunk is written (and the download is ready to finish).
    pub fn is_complete(&self) -> bool {
        self.phase == Phase::Running && self.written as usize == self.chunks.len()
    }

    /// Bytes of verified chunks handed to the disk and not yet written.
    #[cfg(any(test, feature = "testing"))]
    pub fn writing_bytes(&self) -> u64 {
        self.writing_bytes
    }

    /// Bytes this download may still have to hold: chunks asked for and not yet received
    /// (each counted at the full chunk size), and verified chunks not yet written. What is
    /// asked for arrives whether or not the disk keeps up, so it counts as held already.
    pub fn pipeline_bytes(&self) -> u64 {
        let chunk = self
            .manifest
            .as_ref()
            .map_or(0, |m| u64::from(m.chunk_size()));
        self.writing_bytes + self.requested.len() as u64 * chunk
    }

    /// Chunks verified on disk.
    pub fn written_chunks(&self) -> u32 {
        self.written
    }

    /// Bytes verified on disk.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// The file size, once the manifest is known.
    pub fn size(&self) -> Option<u64> {
        self.manifest.as_ref().map(Manifest::size)
    }

    /// The state of chunk `index`.
    pub fn chunk(&self, index: u32) -> Option<&ChunkState> {
        self.chunks.get(index as usize)
    }

    /// Verified bytes on disk, the file size, and how many peers have requests in flight;
    /// `None` before the manifest is known.
    pub fn progress(&self) -> Option<(u64, u64, usize)> {
        let total = self.size()?;
        let busy = self.peers.values().filter(|p| !p.inflight.is_empty());
        Some((self.written_bytes, total, busy.count()))
    }

    /// Chunks in flight across all peers.
    #[cfg(any(test, feature = "testing"))]
    pub fn inflight(&self) -> usize {
        self.requested.len()
    }

    /// Requests in flight to `peer`.
    pub fn inflight_to(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.inflight.len())
    }

    /// Checks the module invariant; the error says which chunk breaks it.
    #[cfg(any(test, feature = "testing"))]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut written = 0;
        for (i, st) in self.chunks.iter().enumerate() {
            let i = i as u32;
            let in_missing = self.missing.contains(&i);
            let in_requested = self.requested.contains(&i);
            let owners: Vec<&PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.inflight.contains(&i))
                .map(|(id, _)| id)
                .collect();
            let ok = match st {
                ChunkState::Missing => in_missing && !in_requested && owners.is_empty(),
                ChunkState::Requested { from, .. } => {
                    !in_missing
                        && in_requested
                        && !from.is_empty()
                        && owners.len() == from.len()
                        && from.iter().all(|p| owners.contains(&p))
                }
                ChunkState::Checking | ChunkState::Writing | ChunkState::Written => {
                    !in_missing && !in_requested && owners.is_empty()
                }
            };
            if !ok {
                return Err(format!(
                    "chunk {i} is {st:?} but missing={in_missing} requested={in_requested} owners={owners:?}"
                ));
            }
            if *st == ChunkState::Written {
                written += 1;
            }
        }
        if written != self.written {
            return Err(format!(
                "{written} chunks written but counter says {}",
                self.written
            ));
        }
        if self
            .missing
            .iter()
            .chain(&self.requested)
            .any(|&i| i as usize >= self.chunks.len())
        {
            return Err("a chunk index past the end is tracked".into());
        }
        let writing: u64 = (0..self.chunks.len() as u32)
            .filter(|&i| self.chunks[i as usize] == ChunkState::Writing)
            .filter_map(|i| self.manifest.as_ref()?.chunk_range(i))
            .map(|(_, len)| u64::from(len))
            .sum();
        if writing != self.writing_bytes {
            return Err(format!(
                "{writing} bytes being written but counter says {}",
                self.writing_bytes
            ));
        }
        self.avail.check()?;
        for (id, p) in &self.peers {
            let keeps = self.bugs.keep_chunks_of_dead_peers();
            if p.inflight.is_empty() != p.progress_at.is_none() && !keeps {
                return Err(format!(
                    "peer {id:?} has {} chunks in flight but deadline clock {:?}",
                    p.inflight.len(),
                    p.progress_at
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{MIN_CHUNK_SIZE, ManifestBuilder};

    fn file(chunks: u32) -> (Vec<u8>, Manifest) {
        file_of(chunks, MIN_CHUNK_SIZE)
    }

    fn file_of(chunks: u32, chunk_size: u32) -> (Vec<u8>, Manifest) {
        let data: Vec<u8> = (0..chunks as usize * chunk_size as usize)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut b = ManifestBuilder::new(chunk_size);
        b.update(&data);
        (data, b.finish().unwrap())
    }

    fn chunk(data: &[u8], m: &Manifest, i: u32) -> Vec<u8> {
        let (off, len) = m.chunk_range(i).unwrap();
        data[off as usize..off as usize + len as usize].to_vec()
    }

    const A: PeerId = PeerId([1; 32]);
    const B: PeerId = PeerId([2; 32]);

    fn running(chunks: u32) -> (Vec<u8>, Download, Instant) {
        running_with(chunks, MIN_CHUNK_SIZE, &[A, B], 8)
    }

    /// A download of `chunks` chunks of `chunk_size` from `peers` (the first gave the
    /// manifest), with windows of at most `max_window`, its partial file open.
    fn running_with(
        chunks: u32,
        chunk_size: u32,
        peers: &[PeerId],
        max_window: u32,
    ) -> (Vec<u8>, Download, Instant) {
        let now = crate::test_epoch();
        let (data, m) = file_of(chunks, chunk_size);
        let mut d = Download::new(
            m.id(),
            "f".into(),
            peers.iter().copied(),
            max_window,
            Bugs::default(),
        );
        assert!(d.manifest_asked(now, peers[0]));
        assert_eq!(
            d.on_manifest(peers[0], &m.encode()),
            ManifestVerdict::Accepted
        );
        d.opened(0);
        (data, d, now)
    }

    #[test]
    fn a_held_download_finishes_only_once_released() {
        let (data, mut d, t0) = running(3);
        let m = d.manifest().unwrap().clone();
        d.set_held(true);
        let asked: Vec<u32> = std::iter::from_fn(|| d.next_request(t0, A)).collect();
        assert_eq!(asked.len(), 3, "held, it still downloads");
        for i in asked {
            assert!(matches!(
                d.on_chunk(t0, A, i, chunk(&data, &m, i)),
                Received::Accepted { .. }
            ));
            d.written(i, Ok(())).unwrap();
        }
        assert!(d.is_complete());
        assert_eq!(d.begin_finish(), None, "held: not put in place");
        assert_eq!(d.phase(), Phase::Running);
        d.set_held(false);
        assert_eq!(
            d.begin_finish(),
            Some(("f".into(), m.size(), *m.file_hash()))
        );
        assert_eq!(d.phase(), Phase::Finishing);
    }

    #[test]
    fn a_holder_that_delivers_nothing_loses_its_chunks_at_its_deadline() {
        let (data, mut d, t0) = running(10);
        let stall = Duration::from_secs(5);
        let a: Vec<u32> = std::iter::from_fn(|| d.next_request(t0, A)).collect();
        let b: Vec<u32> = std::iter::from_fn(|| d.next_request(t0, B)).collect();
        // Before any delivery, a chunk is owed within stall + 2 chunks at MIN_PEER_RATE.
        let first =
            t0 + stall + Duration::from_secs_f64(2.0 * f64::from(MIN_CHUNK_SIZE) / MIN_PEER_RATE);
        assert_eq!(d.deadline(stall), Some(first));
        // B delivers every chunk it was asked, fast: its clock restarts, at its own rate.
        let t1 = t0 + Duration::from_millis(100);
        for &i in &b {
            assert!(matches!(
                d.on_chunk(t1, B, i, chunk(&data, &d.manifest().unwrap().clone(), i)),
                Received::Accepted { .. }
            ));
        }
        assert_eq!(
            d.deadline(stall),
            Some(first),
            "A still owes its first chunk"
        );
        assert_eq!(
            d.expire(first - Duration::from_millis(1), stall),
            (vec![], false)
        );
        // A sent nothing by its deadline (pings and single bytes do not count): it loses them.
        assert_eq!(d.expire(first, stall), (vec![A], false));
        assert!(d.peers()[&A].inflight.is_empty());
        assert_eq!(d.peers()[&A].strikes, 1);
        for i in a {
            assert_eq!(d.chunk(i), Some(&ChunkState::Missing));
        }
        d.check_invariants().unwrap();
        assert_eq!(d.deadline(stall), None, "nothing in flight, nothing owed");
    }

    #[test]
    fn a_slow_disk_holds_back_requests_not_memory() {
        use crate::budget::WRITE_BUDGET_PER_DOWNLOAD;
        let cs = 1u32 << 20;
        let (data, mut d, now) = running_with(24, cs, &[A], 64);
        let m = d.manifest().unwrap().clone();
        // The disk writes nothing: chunks are asked and accepted until the write budget is
        // full, and then no more are asked.
        let mut accepted = 0u64;
        while let Some(i) = d.next_request(now, A) {
            assert!(matches!(
                d.on_chunk(now, A, i, chunk(&data, &m, i)),
                Received::Accepted { .. }
            ));
            accepted += u64::from(cs);
            d.check_invariants().unwrap();
        }
        assert_eq!(accepted, WRITE_BUDGET_PER_DOWNLOAD);
        assert_eq!(d.writing_bytes(), WRITE_BUDGET_PER_DOWNLOAD);
        // One write done: asking resumes, until what is asked for and what is being written
        // fill the budget again.
        d.written(0, Ok(())).unwrap();
        let i = d.next_request(now, A).unwrap();
        assert!(matches!(
            d.on_chunk(now, A, i, chunk(&data, &m, i)),
            Received::Accepted { .. }
        ));
        assert!(d.next_request(now, A).is_none());
        d.check_invariants().unwrap();
    }

    #[test]
    fn requests_in_flight_share_the_write_budget_across_peers() {
        use crate::budget::WRITE_BUDGET_PER_DOWNLOAD;
        let peers: Vec<PeerId> = (1..=4u8).map(|k| PeerId([k; 32])).collect();
        let (data, mut d, now) = running_with(48, 1 << 20, &peers, 64);
        let m = d.manifest().unwrap().clone();
        // Every peer's window grows as it delivers; whatever the windows, what is asked for
        // and not yet written stays within one budget, not one per peer.
        let mut asked = Vec::new();
        for _ in 0..20 {
            for &p in &peers {
                while let Some(i) = d.next_request(now, p) {
                    asked.push((p, i));
                }
            }
            assert!(d.pipeline_bytes() <= WRITE_BUDGET_PER_DOWNLOAD);
            // Half of what was asked arrives and is written; the rest stays in flight.
            for (p, i) in std::mem::take(&mut asked).into_iter().step_by(2) {
                if let Received::Accepted { .. } = d.on_chunk(now, p, i, chunk(&data, &m, i)) {
                    d.written(i, Ok(())).unwrap();
                }
            }
            d.check_invariants().unwrap();
        }
        let in_flight = d.pipeline_bytes();
        assert!(in_flight > 0 && in_flight <= WRITE_BUDGET_PER_DOWNLOAD);
    }

    #[test]
    fn spreads_over_peers_and_completes() {
        let (data, mut d, now) = running(10);
        let mut asked = Vec::new();
        for p in [A, B] {
            while let Some(i) = d.next_request(now, p) {
                asked.push((p, i));
            }
        }
        assert_eq!(asked.len(), 8, "two windows of four");
        d.check_invariants().unwrap();
        let m = d.manifest().cloned().unwrap();
        let mut rounds = 0;
        while !d.is_complete() {
            rounds += 1;
            assert!(rounds < 100);
            for (p, i) in std::mem::take(&mut asked) {
                if let Received::Accepted { .. } = d.on_chunk(now, p, i, chunk(&data, &m, i)) {
                    d.written(i, Ok(())).unwrap();
                }
                d.check_invariants().unwrap();
            }
            for p in [A, B] {
                while let Some(i) = d.next_request(now, p) {
                    asked.push((p, i));
                }
            }
        }
        assert!(d.peers()[&A].chunks > 0 && d.peers()[&B].chunks > 0);
        assert_eq!(d.written_bytes(), data.len() as u64);
    }

    #[test]
    fn corrupt_chunk_bans_peer_and_chunk_is_refetched() {
        let (data, mut d, now) = running(4);
        let m = d.manifest().cloned().unwrap();
        let i = d.next_request(now, A).unwrap();
        let mut bad = chunk(&data, &m, i);
        bad[0] ^= 0xff;
        assert_eq!(d.on_chunk(now, A, i, bad), Received::Rejected);
        assert_eq!(d.peers()[&A].banned, Some(Ban::Corrupt));
        assert_eq!(d.chunk(i), Some(&ChunkState::Missing));
        assert_eq!(d.next_request(now, A), None, "banned peer is not asked");
        assert_eq!(d.next_request(now, B), Some(i), "refetched elsewhere");
        d.check_invariants().unwrap();
        assert_eq!(d.counters().rejected, 1);
    }

    #[test]
    fn dead_peer_gives_chunks_back() {
        let (_, mut d, now) = running(4);
        while d.next_request(now, A).is_some() {}
        assert_eq!(d.inflight(), 4);
        d.peer_down(&A);
        d.check_invariants().unwrap();
        assert_eq!(d.inflight(), 0);
        assert_eq!(d.next_request(now, B), Some(0));
    }

    #[test]
    fn a_peer_failing_again_and_again_with_requests_outstanding_is_banned() {
        let (data, mut d, now) = running(8);
        let m = d.manifest().cloned().unwrap();
        for _ in 0..MAX_STRIKES - 1 {
            assert!(d.next_request(now, A).is_some());
            d.peer_down(&A);
            assert_eq!(d.peers()[&A].banned, None);
        }
        // A verified chunk clears the strikes.
        let i = d.next_request(now, A).unwrap();
        assert!(matches!(
            d.on_chunk(now, A, i, chunk(&data, &m, i)),
            Received::Accepted { .. }
        ));
        for _ in 0..MAX_STRIKES {
            assert_eq!(d.peers()[&A].banned, None);
            assert!(d.next_request(now, A).is_some());
            d.peer_down(&A);
        }
        assert_eq!(d.peers()[&A].banned, Some(Ban::Unresponsive));
        // Failing with nothing outstanding is no strike.
        d.peer_down(&B);
        d.peer_down(&B);
        d.peer_down(&B);
        assert_eq!(d.peers()[&B].banned, None);
        d.check_invariants().unwrap();
    }

    #[test]
    fn endgame_duplicates_and_first_copy_wins() {
        let (data, mut d, now) = running(2);
        let m = d.manifest().cloned().unwrap();
        assert_eq!(d.next_request(now, A), Some(0));
        assert_eq!(d.next_request(now, A), Some(1));
        // Nothing missing: B duplicates the oldest of A's.
        assert_eq!(d.next_request(now, B), Some(0));
        assert_eq!(d.next_request(now, B), Some(1));
        assert_eq!(d.next_request(now, B), None, "at most two owners");
        d.check_invariants().unwrap();
        assert!(matches!(
            d.on_chunk(now, B, 0, chunk(&data, &m, 0)),
            Received::Accepted { .. }
        ));
        d.check_invariants().unwrap();
        assert_eq!(
            d.on_chunk(now, A, 0, chunk(&data, &m, 0)),
            Received::Unsolicited
        );
        assert!(!d.peers()[&A].inflight.contains(&0));
    }

    #[test]
    fn resume_reverifies_existing_chunks() {
        let (data, m) = file(4);
        let mut d = Download::new(m.id(), "f".into(), [A], 8, Bugs::default());
        assert!(d.manifest_asked(crate::test_epoch(), A));
        assert_eq!(d.on_manifest(A, &m.encode()), ManifestVerdict::Accepted);
        d.opened(2 * u64::from(MIN_CHUNK_SIZE) + 5);
        assert_eq!(d.chunk(0), Some(&ChunkState::Checking));
        assert_eq!(d.chunk(1), Some(&ChunkState::Checking));
        assert_eq!(d.chunk(2), Some(&ChunkState::Missing));
        let (i0, ..) = d.next_check().unwrap();
        let (i1, ..) = d.next_check().unwrap();
        d.check_done(i0, Ok(chunk(&data, &m, i0)));
        d.check_done(i1, Ok(vec![0; MIN_CHUNK_SIZE as usize])); // garbage on disk
        assert_eq!(d.chunk(0), Some(&ChunkState::Written));
        assert_eq!(d.chunk(1), Some(&ChunkState::Missing));
        assert_eq!(d.counters().reused, 1);
        d.check_invariants().unwrap();
    }

    #[test]
    fn a_manifest_counts_only_from_the_peer_asked_and_a_lost_request_is_asked_again() {
        let (_, m) = file(3);
        let mut d = Download::new(m.id(), "f".into(), [A, B], 8, Bugs::default());
        assert!(d.manifest_asked(crate::test_epoch(), A));
        assert!(
            !d.manifest_asked(crate::test_epoch(), B),
            "one manifest request at a time"
        );
        assert_eq!(d.on_manifest(B, &m.encode()), ManifestVerdict::Unsolicited);
        assert!(d.peer_down(&A), "A held the request: ask someone else");
        assert_eq!(d.peers()[&A].strikes, 1);
        assert_eq!(d.manifest_from(), None);
        assert!(d.manifest_asked(crate::test_epoch(), B));
        let mut bad = m.encode();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(d.on_manifest(B, &bad), ManifestVerdict::Rejected);
        assert_eq!(d.peers()[&B].banned, Some(Ban::BadManifest));
        assert!(d.manifest_asked(crate::test_epoch(), A));
        assert!(d.manifest_refused(A));
        assert_eq!(d.peers()[&A].banned, Some(Ban::NotFound));
        assert_eq!(d.usable_peers().count(), 0);
        assert_eq!(d.begin_finish(), None);
    }

    const L: PeerId = PeerId([7; 32]);
    const P: PeerId = PeerId([8; 32]);

    /// A download of `chunks` 16 KiB chunks from complete holder A (salt 0: lowest index
    /// first among equals), with partial holder L claiming every chunk but the last.
    fn with_liar(chunks: u32) -> (Vec<u8>, Download, Instant) {
        let (data, mut d, t0) = running_with(chunks, MIN_CHUNK_SIZE, &[A], 8);
        assert!(d.add_partial_holder(L));
        let bits = crate::availability::encode_bits(chunks, |i| i + 1 < chunks);
        assert_eq!(d.on_bitfield(L, &bits), Ok(true));
        (data, d, t0)
    }

    fn ask_all(d: &mut Download, now: Instant, p: PeerId) -> Vec<u32> {
        std::iter::from_fn(|| d.next_request(now, p)).collect()
    }

    /// Issue 27, item 1: a partial holder that claims every chunk but the last and answers
    /// every request with `Busy`. Before, the seeder was asked only for the last chunk, and
    /// the liar again at once after each refusal, for ever.
    #[test]
    fn a_claimant_that_answers_busy_is_paused_struck_and_then_not_believed() {
        let (data, mut d, t0) = with_liar(16);
        let m = d.manifest().unwrap().clone();
        // Believed at first: the seeder is asked only for what nobody claims.
        assert_eq!(ask_all(&mut d, t0, A), vec![15]);
        let lied = ask_all(&mut d, t0, L);
        assert_eq!(lied, vec![0, 1, 2, 3]);
        // Each refusal drops that claim and is a strike; the first pauses the liar, whose
        // claims then shield nothing: the seeder takes what it claimed.
        for &i in &lied {
            assert_eq!(d.chunk_refused(t0, L, i, true), Refused::Struck);
        }
        assert_eq!(d.peers()[&L].claim_strikes, 4);
        assert_eq!(d.counters().claims_dropped, 4);
        assert_eq!(d.next_request(t0, L), None, "paused");
        assert_eq!(ask_all(&mut d, t0, A), vec![0, 1, 2]);
        d.check_invariants().unwrap();
        // Each pause ends; the liar (its window halved) refuses again: at MAX_CLAIM_STRIKES
        // strikes it is not believed. Three rounds, 1.5 s.
        let mut now = t0;
        let mut refused = 4;
        let mut last = Refused::Struck;
        for round in 0.. {
            assert!(round < 3, "still believed after {refused} refusals");
            now = d.peers()[&L].paused_until.unwrap();
            assert!(d.deadline(Duration::from_secs(5)).is_some_and(|t| t <= now));
            d.expire(now, Duration::from_secs(5));
            for i in ask_all(&mut d, now, L) {
                last = d.chunk_refused(now, L, i, true);
                refused += 1;
            }
            if last == Refused::Disbelieved {
                break;
            }
        }
        assert_eq!(refused, MAX_CLAIM_STRIKES);
        assert_eq!(now - t0, BUSY_BACKOFF * 3);
        let t1 = now;
        assert!(!d.peers().contains_key(&L) && !d.is_partial(&L));
        assert_eq!(d.counters().disbelieved, 1);
        // Its claims are ignored from now on, whatever it says.
        assert!(!d.add_partial_holder(L));
        let bits = crate::availability::encode_bits(16, |_| true);
        assert_eq!(d.on_bitfield(L, &bits), Ok(false));
        assert_eq!(d.on_have(L, &[1]), Ok(false));
        d.check_invariants().unwrap();
        // The seeder finishes the file.
        let mut rounds = 0;
        while !d.is_complete() {
            rounds += 1;
            assert!(rounds < 100);
            for i in d.peers()[&A].inflight.clone() {
                if let Received::Accepted { .. } = d.on_chunk(t1, A, i, chunk(&data, &m, i)) {
                    d.written(i, Ok(())).unwrap();
                }
            }
            ask_all(&mut d, t1, A);
        }
        // A complete listing still makes it a holder (its own download finished).
        d.add_holder(L);
        assert!(d.peers().contains_key(&L) && !d.is_partial(&L));
    }

    #[test]
    fn a_second_taken_of_one_chunk_is_a_strike_and_refusals_in_a_row_pause() {
        let (_, mut d, t0) = with_liar(40);
        let asked = ask_all(&mut d, t0, L);
        assert_eq!(asked, vec![0, 1, 2, 3]);
        // A first `Taken` (what an honest claimant of a crowd says once per chunk and asker):
        // not asked for that chunk for a moment; its claim stays; no strike, no pause.
        for &i in &asked {
            assert_eq!(d.chunk_taken(t0, L, i), Refused::Released);
        }
        assert_eq!(d.peers()[&L].claim_strikes, 0);
        assert!(d.avail.has(&L, 0));
        let next = ask_all(&mut d, t0, L);
        assert_eq!(next, vec![4, 5, 6, 7], "not 0 to 3 again at once");
        for &i in &next {
            d.chunk_taken(t0, L, i);
        }
        // Past the backoff it is asked for chunk 0 again and says `Taken` again: a strike,
        // and the claim goes.
        let t1 = t0 + BUSY_BACKOFF;
        d.expire(t1, Duration::from_secs(5));
        let again = ask_all(&mut d, t1, L);
        assert_eq!(again[0], 0, "{again:?}");
        assert_eq!(d.chunk_taken(t1, L, 0), Refused::Struck);
        assert_eq!(d.peers()[&L].claim_strikes, 1);
        assert!(!d.avail.has(&L, 0));
        // The others again: at MAX_CLAIM_STRIKES repeated `Taken`s it is not believed, after
        // 16 refusals in all (not one per claimed chunk and round trip, for ever).
        let mut refused = asked.len() + next.len() + 1;
        for &i in &again[1..] {
            d.chunk_taken(t1, L, i);
            refused += 1;
        }
        while let Some(i) = d.next_request(t1, L) {
            d.chunk_taken(t1, L, i);
            refused += 1;
        }
        assert_eq!(refused, 16);
        assert!(!d.peers().contains_key(&L));
        assert_eq!(d.counters().disbelieved, 1);
        d.check_invariants().unwrap();
    }

    #[test]
    fn refusals_in_a_row_pause_a_holder() {
        // A complete holder that says `Taken` to every chunk: MAX_REFUSAL_RUN of them, then a
        // pause, not every chunk of the file at link speed.
        let (_, mut d, t0) = running_with(100, MIN_CHUNK_SIZE, &[A], 8);
        let mut refused = 0;
        while let Some(i) = d.next_request(t0, A) {
            assert_eq!(d.chunk_taken(t0, A, i), Refused::Released);
            refused += 1;
        }
        assert_eq!(refused, MAX_REFUSAL_RUN);
        assert!(d.peers()[&A].paused(t0));
        d.check_invariants().unwrap();
    }

    #[test]
    fn a_holder_that_only_refuses_is_banned_after_its_barren_pauses() {
        // Its only holder says `Taken` to everything, pause after pause: the download must not
        // wait for it forever.
        let (_, mut d, mut now) = running_with(100, MIN_CHUNK_SIZE, &[A], 8);
        let mut pauses = 0;
        let mut rounds = 0;
        while d.peers()[&A].banned.is_none() {
            let asked: Vec<u32> = std::iter::from_fn(|| d.next_request(now, A)).collect();
            assert!(!asked.is_empty(), "asked again once its pause is over");
            for i in asked {
                d.chunk_taken(now, A, i);
            }
            if d.peers()[&A].paused(now) {
                pauses += 1;
            }
            rounds += 1;
            assert!(rounds <= 4 * MAX_BARREN_PAUSES, "banned long before");
            now += MAX_PAUSE;
            d.expire(now, Duration::from_secs(5));
        }
        assert_eq!(pauses, MAX_BARREN_PAUSES);
        assert_eq!(d.peers()[&A].banned, Some(Ban::Refusing));
        assert_eq!(
            d.usable_peers().count(),
            0,
            "no source left: the node fails it"
        );
        d.check_invariants().unwrap();
    }

    #[test]
    fn a_claimant_that_stalls_stops_counting_and_the_seeder_takes_its_claims() {
        let (_, mut d, t0) = with_liar(16);
        let stall = Duration::from_secs(5);
        assert_eq!(ask_all(&mut d, t0, A), vec![15]);
        assert_eq!(ask_all(&mut d, t0, L).len(), 4);
        // It answers nothing: its claims count for CLAIM_PATIENCE, not longer.
        let t1 = t0 + CLAIM_PATIENCE;
        assert_eq!(d.deadline(stall), Some(t1));
        assert_eq!(
            d.expire(t1 - Duration::from_millis(1), stall),
            (vec![], false)
        );
        assert!(d.next_request(t1 - Duration::from_millis(1), A).is_none());
        assert_eq!(d.expire(t1, stall), (vec![], false));
        assert_eq!(ask_all(&mut d, t1, A), vec![4, 5, 6]);
        // The session's stall gives its chunks back: each was a strike against its claims.
        d.peer_down(&L);
        assert_eq!(d.peers()[&L].claim_strikes, 4);
        assert_eq!(d.counters().claims_dropped, 4);
        d.check_invariants().unwrap();
    }

    /// The flash crowd's rule stays: while a claimant delivers, the seeder is asked only for
    /// what nobody claims (and for the tail).
    #[test]
    fn a_claimant_that_keeps_up_keeps_the_seeder_on_unclaimed_chunks() {
        let (data, mut d, t0) = running_with(12, MIN_CHUNK_SIZE, &[A], 8);
        let m = d.manifest().unwrap().clone();
        assert!(d.add_partial_holder(P));
        let bits = crate::availability::encode_bits(12, |i| i < 8);
        assert_eq!(d.on_bitfield(P, &bits), Ok(true));
        let mut now = t0;
        for _ in 0..3 {
            for i in ask_all(&mut d, now, A) {
                assert!(
                    i >= 8 || d.missing.len() <= TAIL_CHUNKS,
                    "seeder asked for {i}"
                );
            }
            now += Duration::from_millis(100);
            for i in d.peers()[&P].inflight.clone() {
                assert!(matches!(
                    d.on_chunk(now, P, i, chunk(&data, &m, i)),
                    Received::Accepted { .. }
                ));
                d.written(i, Ok(())).unwrap();
            }
            ask_all(&mut d, now, P);
            d.check_invariants().unwrap();
        }
        assert!(d.peers()[&P].chunks >= 8);
    }

    #[test]
    fn a_busy_holder_is_paused_longer_each_time_until_it_delivers() {
        let (data, mut d, t0) = running(8);
        let m = d.manifest().unwrap().clone();
        let mut now = t0;
        let mut pauses = Vec::new();
        for _ in 0..6 {
            let i = d.next_request(now, A).expect("asked after its pause");
            assert_eq!(d.chunk_refused(now, A, i, true), Refused::Released);
            let until = d.peers()[&A].paused_until.unwrap();
            pauses.push(until - now);
            assert_eq!(d.next_request(now, A), None);
            now = until;
        }
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 8000, 8000]);
        // A verified chunk ends the run: the next pause is short again.
        let i = d.next_request(now, A).unwrap();
        assert!(matches!(
            d.on_chunk(now, A, i, chunk(&data, &m, i)),
            Received::Accepted { .. }
        ));
        let j = d.next_request(now, A).unwrap();
        d.chunk_refused(now, A, j, true);
        assert_eq!(d.peers()[&A].paused_until, Some(now + BUSY_BACKOFF));
        d.check_invariants().unwrap();
    }

    /// Issue 27, item 5: what a one-index `Have` costs does not grow with the file (it walked
    /// every chunk twice: ~99 µs at 131,072 chunks).
    #[test]
    fn a_have_costs_the_same_for_a_small_and_a_huge_file() {
        let cost = |chunks: u32| {
            // A manifest of that many chunks, made up (no 2 GiB of data to hash).
            let mut bytes = b"P2PSMAN1".to_vec();
            bytes.extend((u64::from(chunks) * u64::from(MIN_CHUNK_SIZE)).to_be_bytes());
            bytes.extend(MIN_CHUNK_SIZE.to_be_bytes());
            bytes.extend(chunks.to_be_bytes());
            bytes.extend(vec![0u8; 32 * (1 + chunks as usize)]);
            let m = Manifest::decode(&bytes).unwrap();
            let t0 = crate::test_epoch();
            let mut d = Download::new(m.id(), "f".into(), [A], 8, Bugs::default());
            assert!(d.manifest_asked(t0, A));
            assert_eq!(d.on_manifest(A, &bytes), ManifestVerdict::Accepted);
            d.opened(0);
            for k in 0..4u8 {
                let p = PeerId([20 + k; 32]);
                assert!(d.add_partial_holder(p));
                let bits = crate::availability::encode_bits(chunks, |i| i % 4 != u32::from(k));
                d.on_bitfield(p, &bits).unwrap();
            }
            ask_all(&mut d, t0, A);
            let p = PeerId([20; 32]);
            let before = d.avail.ops();
            for i in (0..chunks).step_by(4).take(1000) {
                assert_eq!(d.on_have(p, &[i]), Ok(true));
                assert!(d.is_useful(&p));
            }
            (d.avail.ops() - before) as f64 / 1000.0
        };
        let (small, huge) = (cost(4_096), cost(131_072));
        assert!(
            small <= 4.0 && huge <= 4.0,
            "{small} and {huge} steps a Have"
        );
    }

    #[test]
    fn window_grows_for_fast_peers() {
        let (data, mut d, t0) = running(64);
        let m = d.manifest().cloned().unwrap();
        let i = d.next_request(t0, A).unwrap();
        // 16 KiB in 1 ms = 16 MB/s: 0.25 s of that is many chunks: window hits the max.
        d.on_chunk(t0 + Duration::from_millis(1), A, i, chunk(&data, &m, i));
        assert_eq!(d.peers()[&A].window, 8);
        let j = d.next_request(t0, B).unwrap();
        // 16 KiB in 10 s: slow: minimum window.
        d.on_chunk(t0 + Duration::from_secs(10), B, j, chunk(&data, &m, j));
        assert_eq!(d.peers()[&B].window, MIN_WINDOW);
    }
}
