//! Swarming: a download in progress serves the chunks it has verified, says which they are,
//! and learns which chunks the other downloaders of the same file have, so that a crowd
//! fetching one file trades chunks instead of each taking its whole copy from the seeder.
//!
//! The exchange (BitTorrent's bitfield/have): a downloader sends `Interested{content}` on its
//! link to every peer it has one to when its manifest verifies, and to every partial holder
//! its catalogs show; the receiver answers with its `Bitfield` (empty when it neither has nor
//! downloads the file, all set when it shares it whole) and, while it downloads the file
//! itself, records the interest and sends `Have`s on that connection as it verifies chunks,
//! batched every [`HAVE_DELAY`]. A downloader that hears `Interested` for a file it downloads
//! asks back, so two downloaders find each other within a round trip of the later one's start.
//!
//! Invariants: a chunk is served from a partial file only once it is `Written` (verified and
//! on disk) — never while the download finishes (it is refused as busy then), never a chunk
//! merely claimed; a `Have` names only chunks written here; bitfields and haves count only on
//! our own link to the peer (as every answer does), and only within the manifest's chunks.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Node, ReadSource};
use crate::availability::ClaimError;
use crate::download::{Download, Phase};
use crate::ids::{ContentId, PeerId};
use crate::manifest::Manifest;
use crate::session::{ConnId, Session};
use crate::wire::frame::{CatalogEntry, MAX_HAVE_BATCH, Message};

/// How long verified chunks wait to be announced together: a tenth of a second is a small
/// part of a chunk's time on a LAN link, and one `Have` per batch costs little.
pub(super) const HAVE_DELAY: Duration = Duration::from_millis(100);
/// A chunk we began to send to one peer is refused as busy to the others for this long (the
/// "super-seeding" idea, from the seeder's side): a crowd asking one seeder at once then
/// spends its upload on chunks nobody has yet, and takes the others from whoever got them
/// (their `Have` comes within the time one chunk takes on a slow link, plus [`HAVE_DELAY`]).
pub(super) const SPREAD_WINDOW: Duration = Duration::from_secs(2);
/// Chunks remembered for that (a gigabit link sends ~240 chunks of 1 MiB in 2 s).
const SPREAD_MEMORY: usize = 4096;

/// What the node keeps for swarming: the verified chunks waiting to be announced, and the
/// chunks it began to serve lately.
#[derive(Debug, Default)]
pub(super) struct Swarm {
    /// Chunks verified since the last `Have`s went out, per download.
    haves: BTreeMap<ContentId, Vec<u32>>,
    /// When the waiting `Have`s go out: the timer.
    have_due: Option<Instant>,
    /// Since when a verified chunk that a connection follows waits to be announced (for the
    /// invariant that none waits past twice the batching delay).
    unannounced_since: Option<Instant>,
    /// Chunks we began to serve in the last [`SPREAD_WINDOW`], to which connection, and when
    /// (oldest first).
    sent: VecDeque<(Instant, ContentId, u32, ConnId)>,
}

impl Swarm {
    /// When the waiting `Have`s go out, if any wait.
    pub(super) fn have_due(&self) -> Option<Instant> {
        self.have_due
    }

    /// Since when a verified chunk that a connection follows waits to be announced.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn unannounced_since(&self) -> Option<Instant> {
        self.unannounced_since
    }

    /// Forgets the waiting `Have`s of a download that ended.
    pub(super) fn forget(&mut self, content: &ContentId) {
        self.haves.remove(content);
    }
}

/// Where a chunk we were asked for comes from, if we serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Serve {
    /// Read `len` bytes at `offset` of this file.
    Read {
        source: ReadSource,
        offset: u64,
        len: u32,
    },
    /// We neither share nor download it (or not that chunk).
    NotFound,
    /// Past the end of the file.
    BadRequest,
    /// The download is being finished: ask again in a moment.
    Busy,
}

impl Node {
    /// The manifest of `content` we can give others: the shared file's, or that of a download
    /// of ours once it verified.
    pub(super) fn serving_manifest(&self, content: &ContentId) -> Option<&Manifest> {
        match self.local.get(content) {
            Some(e) => Some(&e.manifest),
            None => self.downloads.get(content).and_then(|d| d.manifest()),
        }
    }

    /// Where chunk `index` of `content` is read from to serve it (see the module's rules).
    pub(super) fn serve_source(&self, content: &ContentId, index: u32) -> Serve {
        if let Some(e) = self.local.get(content) {
            return match e.manifest.chunk_range(index) {
                Some((offset, len)) => Serve::Read {
                    source: ReadSource::Shared(*content),
                    offset,
                    len,
                },
                None => Serve::BadRequest,
            };
        }
        let Some(d) = self.downloads.get(content) else {
            return Serve::NotFound;
        };
        let Some((offset, len)) = d.manifest().and_then(|m| m.chunk_range(index)) else {
            return match d.manifest() {
                Some(_) => Serve::BadRequest,
                None => Serve::NotFound,
            };
        };
        let written = d.chunk(index) == Some(&crate::download::ChunkState::Written);
        // (The planted `serve_unverified` bug serves any chunk of the partial file.)
        match d.phase() {
            Phase::Finishing => Serve::Busy,
            Phase::Running if written || self.cfg.bugs.serve_unverified() => Serve::Read {
                source: ReadSource::Partial(*content),
                offset,
                len,
            },
            _ => Serve::NotFound,
        }
    }

    /// Our downloads whose manifest verified, as catalog entries marked partial.
    pub(super) fn partial_entries(&self) -> Vec<CatalogEntry> {
        self.downloads
            .iter()
            .filter(|(c, d)| {
                !self.local.contains_key(c) && matches!(d.phase(), Phase::Opening | Phase::Running)
            })
            .filter_map(|(c, d)| {
                Some(CatalogEntry {
                    name: d.name().to_owned(),
                    size: d.size()?,
                    content: *c,
                    partial: true,
                })
            })
            .collect()
    }

    /// What we list changed (a shared file, a download begun or ended): a new revision, and
    /// the peers hear of it soon.
    pub(super) fn catalog_revised(&mut self, now: Instant) {
        self.revision += 1;
        self.catalog_pages.clear();
        self.discovery.answer_soon(now);
        self.tell_revision();
    }

    /// A peer on `conn` asks which chunks of `content` we have.
    pub(super) fn on_interested(&mut self, now: Instant, conn: ConnId, content: ContentId) {
        if let Some(s) = self.conns.session_mut(&conn) {
            s.note_fetching(content);
        }
        let bits = if let Some(e) = self.local.get(&content) {
            crate::availability::encode_bits(e.manifest.chunk_count(), |_| true)
        } else if let Some(m) = self.downloads.get(&content).and_then(|d| d.manifest()) {
            let d = &self.downloads[&content];
            // (The planted `serve_unverified` bug also claims chunks merely asked for.)
            let early = self.cfg.bugs.serve_unverified();
            let bits = crate::availability::encode_bits(m.chunk_count(), |i| match d.chunk(i) {
                Some(crate::download::ChunkState::Written) => true,
                Some(crate::download::ChunkState::Requested { .. }) => early,
                _ => false,
            });
            if let Some(s) = self.conns.session_mut(&conn) {
                s.add_interest(content);
            }
            // It downloads this file too (else why ask): ask back, so it becomes a holder of
            // ours as we become one of its.
            if let Some(peer) = self.conns.session(&conn).and_then(|s| s.peer()) {
                self.ask_interest(now, content, peer);
            }
            bits
        } else {
            Vec::new()
        };
        if self.over_budget(conn) {
            self.stats.answers_dropped += 1;
            return;
        }
        self.send_msg(conn, &Message::Bitfield { content, bits });
    }

    /// Our download of `content` has a peer on its way to being a holder: ask it (once per
    /// link) which chunks it has. A peer not yet a holder becomes a partial one only when its
    /// answer says it has or downloads the file.
    fn ask_interest(&mut self, now: Instant, content: ContentId, peer: PeerId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        let holder = d.peers().contains_key(&peer);
        if (holder && !d.wants_interest(&peer)) || d.manifest().is_none() {
            return;
        }
        let bits = d.total_chunks().div_ceil(8) as usize;
        let Some(conn) = self.link_conn(&peer) else {
            if holder {
                self.ensure_link(now, peer);
            }
            return;
        };
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        if holder {
            d.interest_sent(&peer);
        } else if !d.ask_prospect(peer) {
            return;
        }
        // Not a request the session waits for: a peer that never answers (another version,
        // a hostile host) leaves the download as it was, and the link is not stalled for it.
        if let Some(s) = self.conns.session_mut(&conn) {
            s.allow_answer(bits + 128);
        }
        self.send_msg(conn, &Message::Interested { content });
    }

    /// The manifest of our download of `content` verified: every peer we have a link to
    /// hears our interest (those that download the file too answer with their chunks).
    pub(super) fn announce_interest(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        let peers: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(p, l)| {
                l.conn().is_some() && (!d.peers().contains_key(p) || d.wants_interest(p))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in peers {
            self.ask_interest(now, content, p);
        }
    }

    /// Tells the holders of `content` not yet told on their current link that we download it
    /// (partial ones answer with what they have).
    pub(super) fn ask_partial_holders(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        let want: Vec<PeerId> = d
            .usable_peers()
            .filter(|p| d.wants_interest(p))
            .copied()
            .collect();
        for p in want {
            self.ask_interest(now, content, p);
        }
    }

    /// A bitfield arrived on `conn`: the answer to our interest, on our own link.
    pub(super) fn on_bitfield(
        &mut self,
        now: Instant,
        conn: ConnId,
        content: ContentId,
        bits: Vec<u8>,
    ) {
        self.on_claim(now, conn, content, false, |d, peer| {
            d.on_bitfield(peer, &bits)
        });
    }

    /// A `Have` arrived on `conn`.
    pub(super) fn on_have(
        &mut self,
        now: Instant,
        conn: ConnId,
        content: ContentId,
        indices: Vec<u32>,
    ) {
        self.on_claim(now, conn, content, true, |d, peer| {
            d.on_have(peer, &indices)
        });
    }

    /// What a peer claims to have of `content` arrived on `conn`: it counts only on our own
    /// link to that peer and for a download of ours (`apply` records it: true when it came
    /// from a holder; `stray` counts a claim from a non-holder as unsolicited); then that
    /// peer is asked for what it has, or everyone after a refused claim banned it.
    fn on_claim(
        &mut self,
        now: Instant,
        conn: ConnId,
        content: ContentId,
        stray: bool,
        apply: impl FnOnce(&mut Download, PeerId) -> Result<bool, ClaimError>,
    ) {
        let Some(peer) = self.conns.session(&conn).and_then(|s| s.peer()) else {
            return;
        };
        if self.links.get(&peer).and_then(|l| l.conn()) != Some(conn) {
            self.stats.frames_unsolicited += 1;
            return;
        }
        let Some(d) = self.downloads.get_mut(&content) else {
            return; // a late one, for a download that ended
        };
        match apply(d, peer) {
            Ok(true) => self.fill(now, content, peer),
            // An empty bitfield (it neither has nor downloads the file), or a `Have` from a
            // peer that is no partial holder of ours.
            Ok(false) => self.stats.frames_unsolicited += u64::from(stray),
            Err(_) => {
                self.stats.claims_refused += 1;
                self.fill_all(now, content);
            }
        }
        self.check_peers_left(content);
    }

    /// Chunk `index` of our download of `content` is verified and on disk: announce it to the
    /// peers that follow this download, with the others of the next [`HAVE_DELAY`].
    pub(super) fn note_verified(&mut self, content: ContentId, index: u32) {
        let now = self.now;
        if self.conns.sessions().any(|s| s.is_interested(&content)) {
            self.swarm.unannounced_since.get_or_insert(now);
        }
        if self.cfg.bugs.never_have() {
            return; // planted bug (simulator only)
        }
        let swarm = &mut self.swarm;
        let batch = swarm.haves.entry(content).or_default();
        batch.push(index);
        if batch.len() >= MAX_HAVE_BATCH {
            self.flush_haves();
        } else if swarm.have_due.is_none() {
            swarm.have_due = Some(now + HAVE_DELAY);
        }
    }

    /// Sends the waiting `Have`s to every connection that follows their download.
    pub(super) fn flush_haves(&mut self) {
        self.swarm.have_due = None;
        self.swarm.unannounced_since = None;
        for (content, indices) in std::mem::take(&mut self.swarm.haves) {
            let conns: Vec<ConnId> = self
                .conns
                .sessions()
                .filter(|s| s.is_interested(&content))
                .map(Session::id)
                .collect();
            for conn in conns {
                if self.over_budget(conn) {
                    self.stats.answers_dropped += 1;
                    continue;
                }
                for batch in indices.chunks(MAX_HAVE_BATCH) {
                    let msg = Message::Have {
                        content,
                        indices: batch.to_vec(),
                    };
                    self.send_msg(conn, &msg);
                }
            }
        }
    }

    /// Chunk `index` of `content` starts on its way to `conn`.
    pub(super) fn note_sent(&mut self, conn: ConnId, content: ContentId, index: u32) {
        let sent = &mut self.swarm.sent;
        if sent.len() >= SPREAD_MEMORY {
            sent.pop_front();
        }
        sent.push_back((self.now, content, index, conn));
    }

    /// True when chunk `index` of `content` began its way, within [`SPREAD_WINDOW`], to
    /// another connection than `conn` whose peer said it downloads that file (so it will
    /// serve the chunk): `conn`'s peer should take it from there.
    pub(super) fn sent_elsewhere(&mut self, conn: ConnId, content: ContentId, index: u32) -> bool {
        let now = self.now;
        let sent = &mut self.swarm.sent;
        while sent.front().is_some_and(|s| s.0 + SPREAD_WINDOW <= now) {
            sent.pop_front();
        }
        sent.iter().any(|&(_, c, i, to)| {
            c == content
                && i == index
                && to != conn
                && self.conns.session(&to).is_some_and(|s| s.is_fetching(&c))
        })
    }
}
