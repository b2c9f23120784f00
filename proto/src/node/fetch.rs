//! Fetching: catalogs from other peers, and downloads (manifest, chunks, disk results, finish).
//!
//! Invariants: an answer (catalog, manifest, chunk, error) counts only on our own link to the
//! peer it is from, for a request of ours in flight there; a manifest becomes trusted only
//! through `Manifest::verify_received`; a chunk is written only after `Download::on_chunk`
//! verified it; `Finish` is emitted once, after every chunk is written; a download with no
//! usable peer left stops with `FailReason::NoPeers`.

use std::collections::BTreeMap;
use std::time::Instant;

use super::catalogs::PageVerdict;
use super::{DiskOp, Event, Node, Output, ReadSource, Source};
use crate::disk::{DiskError, FinishError};
use crate::download::{Download, FailReason, ManifestVerdict, Phase, Received, Refused};
use crate::ids::{ContentId, PeerId};
use crate::session::{ConnId, Session};
use crate::wire::frame::{CatalogEntry, ErrorCode, Message};

/// An answer to one of our requests about a download.
#[derive(Debug)]
pub(super) enum Answer {
    /// The manifest.
    Manifest(Vec<u8>),
    /// A chunk.
    Chunk { index: u32, data: Vec<u8> },
    /// An error: about chunk `index`, or about the manifest when `None`.
    Refused { code: ErrorCode, index: Option<u32> },
}

impl Node {
    fn session_peer(&self, conn: ConnId) -> Option<PeerId> {
        self.conns.session(&conn).and_then(Session::peer)
    }

    /// True when a download of `content` runs and is in `phase`.
    fn in_phase(&self, content: &ContentId, phase: Phase) -> bool {
        self.downloads
            .get(content)
            .is_some_and(|d| d.phase() == phase)
    }

    /// An answer about `content` arrived on `conn`: one request of ours there is answered.
    /// The peer that sent it and the download it is for, if both are known.
    ///
    /// Our requests go out only on our own link to a peer, so an answer on any other
    /// connection — an inbound one whose hello merely claims that peer's id — is unsolicited:
    /// counted and dropped, never credited to the peer (nor held against it).
    pub(super) fn answer(
        &mut self,
        conn: ConnId,
        content: &ContentId,
    ) -> Option<(PeerId, &mut Download)> {
        let peer = self.conns.session(&conn)?.peer()?;
        // (The planted `answers_from_any_conn` bug skips this check.)
        if self.links.get(&peer).and_then(|l| l.conn()) != Some(conn)
            && !self.cfg.bugs.answers_from_any_conn()
        {
            self.stats.frames_unsolicited += 1;
            return None;
        }
        self.conns.session_mut(&conn)?.request_done();
        Some((peer, self.downloads.get_mut(content)?))
    }

    /// A catalog page arrived on `conn`: it counts only as the answer to the page asked for
    /// on our link to that peer.
    pub(super) fn on_catalog(
        &mut self,
        now: Instant,
        conn: ConnId,
        revision: u64,
        page: u32,
        pages: u32,
        files: Vec<CatalogEntry>,
    ) {
        let Some(peer) = self.session_peer(conn) else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if !link.catalog_answered(conn, page) {
            self.stats.frames_unsolicited += 1;
            return;
        }
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        s.request_done();
        let ip = s.remote().ip();
        let bad = &mut self.stats.bad_names;
        match self
            .remote
            .add_page(peer, ip, revision, page, pages, files, bad)
        {
            PageVerdict::Next(next) => return self.request_catalog_page(now, peer, conn, next),
            PageVerdict::Restart => return self.request_catalog_page(now, peer, conn, 0),
            PageVerdict::Done => {
                if let Some(link) = self.links.get_mut(&peer) {
                    link.catalog_fetched(now);
                }
                // Its JSON's claims can be checked now that its names have contents; what
                // was verified of its previous catalog counts no more (a view lists a Python
                // file as native only through a check of the voucher's current catalog).
                self.vouches.forget(&peer);
                self.check_vouches(now, peer);
            }
        }
        // Per content we download: whether this peer has it whole (any entry not marked
        // partial). Only those: a catalog of a hundred thousand entries costs no map of them.
        let entries = self.remote.get(&peer).unwrap_or_default();
        let files = entries.len();
        let mut contents: BTreeMap<ContentId, bool> = BTreeMap::new();
        for f in entries {
            if self.downloads.contains_key(&f.content) {
                *contents.entry(f.content).or_default() |= !f.partial;
            }
        }
        self.emit(Event::CatalogUpdated { peer, files });
        for (c, whole) in contents {
            if let Some(d) = self.downloads.get_mut(&c) {
                if whole {
                    d.add_holder(peer);
                } else if !d.add_partial_holder(peer) {
                    continue;
                }
                self.peer_ready_one(now, c, peer);
            }
        }
        // Another revision may have been announced meanwhile.
        if self.links.get(&peer).is_some_and(|l| l.catalog_wanted()) {
            self.fetch_catalog(now, peer);
        }
    }

    /// Starts downloading `content`, saved under `asked` if it is a valid name, else under
    /// the name most holders list it under (ties: the first in order), so that no single
    /// peer's catalog picks the name.
    pub(super) fn start_download(
        &mut self,
        now: Instant,
        content: ContentId,
        asked: Option<String>,
    ) {
        if self.downloads.contains_key(&content) {
            return;
        }
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        let mut holders = Vec::new();
        let mut partial = Vec::new();
        for (peer, files) in self.remote.iter() {
            let mine = || files.iter().filter(|f| f.content == content);
            let whole = mine().any(|f| !f.partial);
            let mut names: Vec<&str> = mine().map(|f| f.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                continue;
            }
            for n in names {
                *votes.entry(n).or_default() += 1;
            }
            if self.discovery.peer(peer).is_some() {
                if whole {
                    holders.push(*peer);
                } else {
                    partial.push(*peer);
                }
            }
        }
        let popular = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, _)| (*n).to_owned());
        let name = asked
            .filter(|n| crate::name::check_name(n).is_ok())
            .or(popular)
            .unwrap_or_else(|| content.short());
        if holders.is_empty() && partial.is_empty() {
            self.emit(Event::DownloadFailed {
                content,
                name,
                reason: FailReason::NoPeers { have: 0, total: 0 },
            });
            return;
        }
        let salt = self.rng.next_u64() | 1;
        let mut d =
            Download::new(content, name, holders, self.cfg.max_window, self.cfg.bugs).salted(salt);
        for p in partial {
            d.add_partial_holder(p);
        }
        self.downloads.insert(content, d);
        self.request_manifest(now, content);
    }

    fn request_manifest(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        if d.phase() != Phase::Manifest || d.manifest_from().is_some() {
            return;
        }
        // Every usable holder gets a link, so that the next one is ready when the one asked
        // fails; the one asked is the open one that failed least often so far.
        let mut peers: Vec<(u32, PeerId)> = d
            .usable_peers()
            .map(|p| (d.peers().get(p).map_or(0, |x| x.strikes), *p))
            .collect();
        if self.cfg.bugs.one_manifest_source() {
            let first = d.peers().keys().next().copied();
            peers.retain(|(_, p)| Some(*p) == first);
            if peers.is_empty() {
                let reason = FailReason::NoPeers { have: 0, total: 0 };
                self.fail_download(content, reason);
                return;
            }
        }
        let mut best: Option<(u32, PeerId, ConnId)> = None;
        for &(strikes, p) in &peers {
            match self.link_conn(&p) {
                Some(conn) => {
                    if best.is_none_or(|(s, ..)| strikes < s) {
                        best = Some((strikes, p, conn));
                    }
                }
                None => self.ensure_link(now, p),
            }
        }
        if let Some((_, p, conn)) = best {
            if !self
                .downloads
                .get_mut(&content)
                .is_some_and(|d| d.manifest_asked(now, p))
            {
                return;
            }
            if let Some(s) = self.conns.session_mut(&conn) {
                s.request_sent(now, crate::manifest::MAX_MANIFEST_BYTES + 256);
            }
            self.send_msg(conn, &Message::ManifestRequest { content });
            return;
        }
        self.check_peers_left(content);
    }

    /// An answer to one of our requests about `content` arrived on `conn`: it counts only if
    /// that connection's peer was asked (each download checks that it was, and by whom).
    pub(super) fn on_answer(&mut self, now: Instant, conn: ConnId, content: ContentId, a: Answer) {
        let Some((peer, d)) = self.answer(conn, &content) else {
            return;
        };
        match a {
            Answer::Manifest(bytes) => {
                let verdict = d.on_manifest(peer, &bytes);
                self.on_manifest_verdict(now, content, verdict);
            }
            Answer::Refused { code, index } => {
                let ask_manifest = match index {
                    Some(i) => {
                        let verdict = match code {
                            ErrorCode::Taken => d.chunk_taken(now, peer, i),
                            _ => d.chunk_refused(now, peer, i, code == ErrorCode::Busy),
                        };
                        match verdict {
                            Refused::Unsolicited => self.stats.frames_unsolicited += 1,
                            Refused::Struck => self.stats.claim_strikes += 1,
                            Refused::Disbelieved => {
                                self.stats.claim_strikes += 1;
                                self.stats.claimants_disbelieved += 1;
                            }
                            Refused::Released | Refused::Dropped => {}
                        }
                        false
                    }
                    None => d.manifest_refused(peer),
                };
                if ask_manifest {
                    self.request_manifest(now, content);
                }
                self.fill_all(now, content);
                self.check_peers_left(content);
            }
            Answer::Chunk { index, data } => {
                let verdict = d.on_chunk(now, peer, index, data);
                self.on_chunk_verdict(now, content, peer, index, verdict);
            }
        }
    }

    fn on_manifest_verdict(&mut self, now: Instant, content: ContentId, verdict: ManifestVerdict) {
        match verdict {
            ManifestVerdict::Accepted => {
                let Some(d) = self.downloads.get(&content) else {
                    return;
                };
                let name = d.name().to_owned();
                let size = d.size().unwrap_or(0);
                self.emit(Event::DownloadStarted {
                    content,
                    name: name.clone(),
                    size,
                });
                self.out.push_back(Output::Disk(DiskOp::OpenPartial {
                    content,
                    name,
                    size,
                }));
                // Listed as partial from now on; the other downloaders hear of us.
                self.catalog_revised(now);
                self.announce_interest(now, content);
            }
            ManifestVerdict::Rejected => self.request_manifest(now, content),
            ManifestVerdict::Unsolicited => {}
        }
    }

    fn on_chunk_verdict(
        &mut self,
        now: Instant,
        content: ContentId,
        peer: PeerId,
        index: u32,
        verdict: Received,
    ) {
        match verdict {
            Received::Accepted { offset, data } => {
                self.out.push_back(Output::Disk(DiskOp::Write {
                    content,
                    index,
                    offset,
                    data,
                }));
                self.fill(now, content, peer);
            }
            Received::Rejected => {
                self.stats.chunks_rejected += 1;
                self.emit(Event::ChunkRejected {
                    content,
                    peer,
                    index,
                });
                self.fill_all(now, content);
                self.check_peers_left(content);
            }
            Received::Unsolicited => self.fill(now, content, peer),
        }
    }

    pub(super) fn on_partial_opened(
        &mut self,
        now: Instant,
        content: ContentId,
        result: Result<u64, DiskError>,
    ) {
        if !self.in_phase(&content, Phase::Opening) {
            return;
        }
        match result {
            Ok(existing) => {
                if let Some(d) = self.downloads.get_mut(&content) {
                    d.opened(existing);
                }
                self.pump_checks(content);
                self.fill_all(now, content);
                self.maybe_finish(content);
            }
            Err(e) => self.fail_download(content, FailReason::Disk(e)),
        }
    }

    fn pump_checks(&mut self, content: ContentId) {
        while let Some((index, offset, len)) = self
            .downloads
            .get_mut(&content)
            .and_then(Download::next_check)
        {
            let read = self.ids.read();
            self.reads
                .insert(read, super::serve::ReadFor::Check { content, index });
            self.out.push_back(Output::Disk(DiskOp::Read {
                read,
                source: ReadSource::Partial(content),
                offset,
                len,
            }));
        }
    }

    pub(super) fn on_check_done(
        &mut self,
        now: Instant,
        content: ContentId,
        index: u32,
        result: Result<Vec<u8>, DiskError>,
    ) {
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        d.check_done(index, result);
        if d.chunk(index) == Some(&crate::download::ChunkState::Written) {
            self.note_verified(content, index);
        }
        self.pump_checks(content);
        self.fill_all(now, content);
        self.progress(content);
        self.maybe_finish(content);
    }

    pub(super) fn on_written(
        &mut self,
        content: ContentId,
        index: u32,
        result: Result<(), DiskError>,
    ) {
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        if let Err(reason) = d.written(index, result) {
            self.fail_download(content, reason);
            return;
        }
        if d.chunk(index) == Some(&crate::download::ChunkState::Written) {
            self.note_verified(content, index);
        }
        self.progress(content);
        self.maybe_finish(content);
        // The disk caught up a little: downloads held back by a write budget ask again.
        let now = self.now;
        let running: Vec<ContentId> = self.downloads.keys().copied().collect();
        for c in running {
            self.fill_all(now, c);
        }
    }

    fn progress(&mut self, content: ContentId) {
        let progress = self.downloads.get(&content).and_then(Download::progress);
        if let Some((done, total, peers)) = progress {
            self.emit(Event::Progress {
                content,
                done,
                total,
                peers,
            });
        }
    }

    /// Holds a download back from being put in place, or releases it (and finishes it if it
    /// is complete).
    pub(super) fn hold(&mut self, content: ContentId, held: bool) {
        if let Some(d) = self.downloads.get_mut(&content) {
            d.set_held(held);
            self.maybe_finish(content);
        }
    }

    fn maybe_finish(&mut self, content: ContentId) {
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        if let Some((name, size, file_hash)) = d.begin_finish() {
            let manifest = d.manifest().cloned().map(std::sync::Arc::new);
            self.out.push_back(Output::Disk(DiskOp::Finish {
                content,
                name,
                size,
                file_hash,
                manifest,
            }));
        }
    }

    pub(super) fn on_finished(&mut self, content: ContentId, result: Result<String, FinishError>) {
        if !self.in_phase(&content, Phase::Finishing) {
            return;
        }
        match result {
            Ok(file) => {
                let Some(d) = self.downloads.remove(&content) else {
                    return;
                };
                let Some(m) = d.manifest() else { return };
                // Shared at once under the manifest it was verified against.
                let entry = super::LocalEntry {
                    names: vec![file.clone()],
                    manifest: m.clone(),
                };
                self.adopted.insert(content, entry.clone());
                self.local
                    .entry(content)
                    .and_modify(|e| {
                        if !e.names.contains(&file) {
                            e.names.push(file.clone());
                        }
                    })
                    .or_insert(entry);
                self.index_local();
                let now = self.now;
                self.catalog_revised(now);
                let sources = d
                    .peers()
                    .iter()
                    .filter(|(_, p)| p.chunks > 0)
                    .map(|(id, p)| Source {
                        peer: *id,
                        addr: self.discovery.peer(id).map(|x| x.addr),
                        chunks: p.chunks,
                        bytes: p.bytes,
                    })
                    .collect();
                self.emit(Event::DownloadDone {
                    content,
                    file,
                    size: m.size(),
                    file_hash: *m.file_hash(),
                    fetched: d.counters().fetched_bytes,
                    reused: d.counters().reused,
                    rejected: d.counters().rejected,
                    sources,
                });
            }
            Err(e) => self.fail_download(content, FailReason::Finish(e)),
        }
    }

    pub(super) fn fail_download(&mut self, content: ContentId, reason: FailReason) {
        let Some(d) = self.downloads.remove(&content) else {
            return;
        };
        if d.phase() != Phase::Manifest {
            self.out
                .push_back(Output::Disk(DiskOp::ClosePartial { content }));
            // It was listed as partial.
            let now = self.now;
            self.catalog_revised(now);
        }
        self.swarm.forget(&content);
        self.emit(Event::DownloadFailed {
            content,
            name: d.name().to_owned(),
            reason,
        });
    }

    /// Stops the download when no usable holder is left in the peer table.
    pub(super) fn check_peers_left(&mut self, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        if d.phase() == Phase::Finishing {
            return;
        }
        let known = |p: &&PeerId| self.discovery.peer(p).is_some();
        let usable = d.usable_peers().any(|p| known(&p));
        let useful = d.usable_peers().filter(known).any(|p| d.is_useful(p));
        let now = self.now;
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        if d.stranded(now, useful, usable) {
            let have = d.written_chunks();
            let total = d.total_chunks();
            self.fail_download(content, FailReason::NoPeers { have, total });
        }
    }

    /// Asks `peer` for as many chunks of `content` as its window allows.
    pub(super) fn fill(&mut self, now: Instant, content: ContentId, peer: PeerId) {
        self.fill_up_to(now, content, peer, usize::MAX);
    }

    /// Asks `peer` for at most `max` chunks of `content`, as its window allows; how many.
    fn fill_up_to(&mut self, now: Instant, content: ContentId, peer: PeerId, max: usize) -> usize {
        let Some(conn) = self.link_conn(&peer) else {
            self.ensure_link(now, peer);
            return 0;
        };
        if self
            .downloads
            .get(&content)
            .is_some_and(|d| d.wants_interest(&peer))
        {
            self.ask_partial_holders(now, content);
        }
        let writing: u64 = self.downloads.values().map(Download::pipeline_bytes).sum();
        if writing >= crate::budget::WRITE_BUDGET {
            return 0;
        }
        let chunk = self
            .downloads
            .get(&content)
            .and_then(|d| d.manifest())
            .map_or(0, |m| m.chunk_size() as usize);
        let mut asked = 0;
        while asked < max
            && let Some(index) = self
                .downloads
                .get_mut(&content)
                .and_then(|d| d.next_request(now, peer))
        {
            if let Some(s) = self.conns.session_mut(&conn) {
                s.request_sent(now, chunk + crate::wire::CHUNK_FRAME_OVERHEAD);
            }
            self.send_msg(conn, &Message::ChunkRequest { content, index });
            asked += 1;
        }
        asked
    }

    pub(super) fn fill_all(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        if d.phase() != Phase::Running {
            return;
        }
        // One chunk at a time, to the holder with the fewest requests in flight: what the
        // write budget has room for is shared among the holders (a faster one empties its
        // window sooner, and so gets more), instead of going to whichever is first.
        let mut peers: Vec<PeerId> = d.usable_peers().copied().collect();
        loop {
            let Some(d) = self.downloads.get(&content) else {
                return;
            };
            peers.sort_by_key(|p| d.inflight_to(p));
            let mut asked = false;
            for &p in &peers {
                if self.fill_up_to(now, content, p, 1) > 0 {
                    asked = true;
                    break;
                }
            }
            if !asked {
                break;
            }
        }
    }

    fn peer_ready_one(&mut self, now: Instant, content: ContentId, peer: PeerId) {
        match self.downloads.get(&content).map(Download::phase) {
            Some(Phase::Manifest) => self.request_manifest(now, content),
            Some(Phase::Running) => self.fill(now, content, peer),
            _ => {}
        }
    }

    /// Our link to `peer` opened: downloads may use it.
    pub(super) fn peer_ready_downloads(&mut self, now: Instant, peer: PeerId) {
        let contents: Vec<ContentId> = self
            .downloads
            .iter()
            .filter(|(_, d)| d.usable_peers().any(|p| *p == peer))
            .map(|(c, _)| *c)
            .collect();
        for c in contents {
            self.peer_ready_one(now, c, peer);
        }
    }

    /// The deadline of download `c` passed: takes their requests from the holders past their
    /// deadlines (they deliver nothing, whatever else they send) and asks the others.
    pub(super) fn download_late(&mut self, now: Instant, c: ContentId) {
        let stall = self.cfg.timeouts.stall;
        let Some(d) = self.downloads.get_mut(&c) else {
            return;
        };
        let (late, ask_manifest) = d.expire(now, stall);
        self.stats.requests_expired += late.len() as u64;
        if ask_manifest {
            self.request_manifest(now, c);
        }
        self.fill_all(now, c);
        self.check_peers_left(c);
    }

    /// `peer` can no longer be asked for now (its link failed or closed), or for good
    /// (`gone`: it left the peer table): in every download its chunks go back to the pool and
    /// are asked of the others, a manifest request it held is asked of another holder, and a
    /// download with no usable holder left stops.
    pub(super) fn peer_down_downloads(&mut self, now: Instant, peer: PeerId, gone: bool) {
        let contents: Vec<ContentId> = self.downloads.keys().copied().collect();
        for c in contents {
            let Some(d) = self.downloads.get_mut(&c) else {
                continue;
            };
            let ask_manifest = if gone {
                d.remove_peer(&peer)
            } else {
                d.peer_down(&peer)
            };
            if ask_manifest {
                self.request_manifest(now, c);
            }
            self.fill_all(now, c);
            // It may have been banned as unresponsive.
            self.check_peers_left(c);
        }
    }
}
