//! The original Python program's protocol (issue 16), as one sub-machine the node owns:
//! hearing the Python peers' JSON announcements (`peers`), announcing our files to them,
//! downloading their files over one connection per 1 KiB chunk (`download`, `fetch`),
//! serving them chunks (`serve`), and the codecs ([`wire`]).
//!
//! Shaped like `Discovery`: the node hands it what happened (`handle_*`, the disk results and
//! commands of its downloads, the bytes of its connections), runs its timer
//! (`Python::poll_timeout`, `Python::handle_timeout`: silent Python peers expire), and
//! drains what it asks for (`Python::poll_action`): outputs to pass on, chunk connections to
//! open (the node names them and keeps them in its one connection table), and connections to
//! close. The records of its connections (`Fetch`, `Serve`, `Sniff`) live in that table;
//! their deadlines are the node's timers.
//!
//! Invariants: a Python datagram is decoded only within its hard limit and every entry that
//! breaks a rule is counted; the JSON announcement is sent only while a Python peer was heard
//! within [`PY_RECENT`](crate::budget::PY_RECENT); a Python file is listed once, as a native
//! content, only when that content's own manifest, fetched and verified against its content id,
//! has the file's SHA-256 (a p2pshare peer's JSON claims only start that check:
//! `node::vouches`); the tables a remote grows are budgeted by address from the first entry
//! and indexed (`peers`); the state of a download is its window, whatever `total_chunks` it was
//! told; a chunk is written only after its transport hash matched and its length
//! fits; a file appears only after the disk checked the whole file's SHA-256 against the
//! announced one (`DiskOp::Finish`); the chunk connections of a download are exactly its chunks
//! in flight (`PyDownload::in_flight`).

pub(crate) mod download;
pub(crate) mod fetch;
pub(crate) mod peers;
pub(crate) mod serve;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub(crate) use fetch::{Ended, Fetch};
pub(crate) use serve::{FirstBytes, Request, Serve, Sniff};

use crate::disk::{DiskError, FinishError};
use crate::download::{FailReason, Phase};
use crate::ids::{ContentId, Digest, PeerId};
use crate::manifest::Manifest;
use crate::node::{DiskOp, DownloadView, Event, Output, PeerView, RemoteFile, Source};
use download::{PyDownload, PyPhase};
use peers::{Heard, PythonPeers, peer_id_of};
use wire::{LegacyAnnounce, LegacyFile, PY_CHUNK};

/// True when `peer` is the id the node gives the Python peer at `addr` (derived from the
/// address, not a key): an [`Event::PeerFound`](crate::Event) of such a peer proves no key,
/// so the host does not remember it among the peers it met.
pub fn is_python_peer(peer: &PeerId, addr: SocketAddr) -> bool {
    peer_id_of(addr) == *peer
}

/// Chunks written between two progress events.
const PROGRESS_EVERY: u32 = 1024;

/// What the sub-machine asks of the node, in order ([`Python::poll_action`]).
#[derive(Debug)]
pub(crate) enum Action {
    /// Pass this on to the runtime.
    Output(Output),
    /// Open a chunk connection: the node names it, keeps it in its table and asks the runtime
    /// to connect.
    Connect(Fetch),
    /// Close every chunk connection of this download (it stopped).
    CloseFetches(ContentId),
    /// The first Python peer in a while was heard: our next announcement should come soon.
    AnnounceSoon,
    /// The p2pshare peer sent its JSON announcement from where it is listed: check its claims
    /// (`Python::vouches_of`) against its verified manifests.
    Vouched(PeerId),
}

/// What to do with a Python request connection after its bytes ([`Python::serve_received`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServeStep {
    /// Nothing yet.
    Wait,
    /// Read this range of the shared file with this content, and send it as the reply.
    Read {
        /// The shared file.
        content: ContentId,
        /// Where the chunk starts.
        offset: u64,
        /// Its length.
        len: u32,
    },
    /// Close it (malformed, or a name or chunk we do not have).
    Close,
}

/// Counters of what the Python side dropped, refused or did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PyStats {
    /// Datagrams that did not decode.
    pub(crate) datagrams_dropped: u64,
    /// File entries dropped from announcements.
    pub(crate) files_rejected: u64,
    /// New peers ignored for a full table.
    pub(crate) peers_full: u64,
    /// Requests closed as malformed (or too slow).
    pub(crate) requests_malformed: u64,
    /// Requests closed unanswered.
    pub(crate) requests_refused: u64,
    /// Chunks served.
    pub(crate) chunks_served: u64,
    /// Chunks rejected (a lie about a chunk, or a whole file that did not match).
    pub(crate) chunks_rejected: u64,
    /// JSON announcements naming a p2pshare peer the node does not list at their address.
    pub(crate) claims_elsewhere: u64,
}

/// The Python side of a node.
#[derive(Debug)]
pub(crate) struct Python {
    /// Our peer id: our own JSON announcements carry it.
    me: PeerId,
    peers: PythonPeers,
    downloads: BTreeMap<ContentId, PyDownload>,
    actions: VecDeque<Action>,
    stats: PyStats,
}

impl Python {
    /// The Python side of the node with id `me`.
    pub(crate) fn new(me: PeerId) -> Python {
        Python {
            me,
            peers: PythonPeers::default(),
            downloads: BTreeMap::new(),
            actions: VecDeque::new(),
            stats: PyStats::default(),
        }
    }

    // ---- getters ----

    /// Its counters.
    pub(crate) fn stats(&self) -> PyStats {
        self.stats
    }

    /// File entries dropped from Python announcements for their address's share.
    pub(crate) fn files_over_budget(&self) -> u64 {
        self.peers.over_budget
    }

    /// True when the LAN has Python peers as far as we know: one was heard, or a p2pshare
    /// peer announces to them.
    pub(crate) fn any(&self) -> bool {
        self.peers.any()
    }

    /// True while a download of `content` runs here.
    pub(crate) fn downloads(&self, content: &ContentId) -> bool {
        self.downloads.contains_key(content)
    }

    /// True when some Python peer holds `content`.
    pub(crate) fn held(&self, content: &ContentId) -> bool {
        self.peers.has_content(content)
    }

    /// What the p2pshare peer `peer` claims of its names in its JSON announcement (from the
    /// address it is listed at): each name and the file hash it gave it, for the hashes some
    /// Python peer lists. Claims only: the node checks them against verified manifests.
    pub(crate) fn vouches_of(&self, peer: &PeerId) -> Vec<(String, Digest)> {
        self.peers.vouches_of(peer)
    }

    /// The Python peers, for the node's peer view.
    pub(crate) fn peer_views(&self) -> impl Iterator<Item = PeerView> + '_ {
        self.peers.peers().map(|p| PeerView {
            id: p.id,
            addr: p.addr,
            files: Some(p.files.len()),
            last_seen: p.last_seen,
            confirmed: false,
            mark: None,
            found: crate::discovery::Found::Broadcast,
            python: true,
        })
    }

    /// The Python peers' files: one entry per (SHA-256, chunk count), size shown as its upper
    /// bound (`total_chunks` × 1 KiB); files for which `native(hash, total_chunks)` is true
    /// (a p2pshare peer holds the same bytes, as a verified manifest showed) are left out: they
    /// are listed, and fetched, as the native content. `local` says whether we share a file
    /// with that SHA-256. Built from the index of contents: O(n log n) over the n entries.
    pub(crate) fn remote_files(
        &self,
        native: impl Fn(&Digest, u64) -> bool,
        local: impl Fn(&Digest) -> bool,
    ) -> Vec<RemoteFile> {
        let mut out = Vec::new();
        for content in self.peers.contents() {
            let entries = self.peers.entries(content);
            let Some((_, first)) = entries.first() else {
                continue;
            };
            if native(&first.file_hash, first.total_chunks) {
                continue;
            }
            let mut names: Vec<String> = entries.iter().map(|(_, f)| f.name.clone()).collect();
            names.sort_unstable();
            names.dedup();
            let mut holders: Vec<PeerId> = entries.iter().map(|(p, _)| *p).collect();
            holders.sort_unstable();
            holders.dedup();
            out.push(RemoteFile {
                content: *content,
                size: first.total_chunks.saturating_mul(PY_CHUNK as u64),
                names,
                holders,
                local: local(&first.file_hash),
                python: true,
            });
        }
        out
    }

    /// The downloads, for the node's download view.
    pub(crate) fn download_views(&self) -> impl Iterator<Item = DownloadView> + '_ {
        self.downloads.values().map(|d| DownloadView {
            content: d.content(),
            name: d.name().to_owned(),
            size: d.size().or(Some(d.max_size())),
            done: d.written_bytes(),
            phase: match d.phase() {
                PyPhase::Opening => Phase::Opening,
                PyPhase::Running => Phase::Running,
                PyPhase::Finishing => Phase::Finishing,
            },
            peers: d.usable(),
            rejected: d.rejected(),
        })
    }

    /// Checks every download's invariant; the error says which broke.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.downloads
            .values()
            .try_for_each(PyDownload::check_invariants)
    }

    /// Our JSON announcement for Python peers, if one was heard lately: the `files` we share
    /// (names they can ask for, as many as fit), marked with our id so that p2pshare peers
    /// know it is ours.
    pub(crate) fn announcement<'a>(
        &self,
        now: Instant,
        port: u16,
        files: impl Iterator<Item = (&'a str, &'a Manifest)>,
    ) -> Option<Vec<u8>> {
        if !self.peers.heard_recently(now) {
            return None;
        }
        let mut files: Vec<LegacyFile> = files
            .map(|(name, m)| LegacyFile {
                name: name.to_owned(),
                total_chunks: wire::chunks_for(m.size()),
                file_hash: *m.file_hash(),
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let a = LegacyAnnounce {
            port,
            files,
            rejected: 0,
            origin: Some(self.me),
        };
        Some(a.encode())
    }

    // ---- handle ----

    /// A datagram that looks like JSON arrived from `from`: a Python peer's announcement, or a
    /// p2pshare peer's for them. `native_at` says whether a p2pshare peer is listed at an
    /// address (an announcement from there without our marker is still heard natively);
    /// `listed_at(peer, ip)` whether the p2pshare peer `peer` is listed at `ip` (only then is
    /// a JSON announcement carrying its id taken as its).
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
        native_at: impl Fn(SocketAddr) -> bool,
        listed_at: impl Fn(&PeerId, std::net::IpAddr) -> bool,
    ) {
        // The same bytes as its peer's last datagram: that peer, refreshed, without decoding.
        let digest = crate::ids::sha256(data);
        if let Some((_, addr)) = self.peers.heard_again(now, from, &digest) {
            return self.holders_heard(now, addr);
        }
        // Entries past the address's share are not even checked.
        let peers = &self.peers;
        let room = |port, origin: Option<&PeerId>| match origin {
            Some(_) => wire::MAX_LEGACY_FILES,
            None => peers.room_for(from.ip(), port),
        };
        let a = match LegacyAnnounce::decode_within(data, room) {
            Ok((a, past)) => {
                self.peers.over_budget += past as u64;
                a
            }
            Err(_) => {
                self.stats.datagrams_dropped += 1;
                return;
            }
        };
        self.stats.files_rejected += u64::from(a.rejected);
        if a.origin == Some(self.me) {
            return;
        }
        // A p2pshare peer without the origin key (none of ours) is still heard natively.
        let addr = SocketAddr::new(from.ip(), a.port);
        if a.origin.is_none() && native_at(addr) {
            return;
        }
        let was_recent = self.peers.heard_recently(now);
        match self.peers.heard(now, from, a, listed_at) {
            Heard::New(peer) => {
                self.peers.remember(addr, digest);
                self.emit(Event::PeerFound { peer, addr });
                self.holders_heard(now, addr);
            }
            Heard::Again(_) => {
                self.peers.remember(addr, digest);
                self.holders_heard(now, addr);
            }
            Heard::Native(peer, _) => self.actions.push_back(Action::Vouched(peer)),
            Heard::Elsewhere => self.stats.claims_elsewhere += 1,
            Heard::Full => self.stats.peers_full += 1,
        }
        for p in self.peers.take_evicted() {
            self.emit(Event::PeerLost {
                peer: p.id,
                addr: p.addr,
            });
            self.holder_lost(now, p.addr);
        }
        for peer in self.peers.take_recheck() {
            self.actions.push_back(Action::Vouched(peer));
        }
        if !was_recent && self.peers.heard_recently(now) {
            // The first Python peer in a while: it hears of us at the next announcement, soon.
            self.actions.push_back(Action::AnnounceSoon);
        }
    }

    /// Starts downloading the Python file `content`, saved under `asked` if that is a valid
    /// name, else under the first holder's name for it.
    pub(crate) fn start_download(&mut self, content: ContentId, asked: Option<String>) {
        if self.downloads.contains_key(&content) {
            return;
        }
        let holders = self.peers.holders(&content);
        let Some((_, first)) = holders.first() else {
            return;
        };
        let name = asked
            .filter(|n| crate::name::check_name(n).is_ok())
            .unwrap_or_else(|| first.name.clone());
        let (file_hash, total) = (first.file_hash, first.total_chunks);
        // Bounded by MAX_LEGACY_CHUNKS (2^24) on decoding.
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        let addrs: Vec<SocketAddr> = holders.iter().map(|(a, _)| *a).collect();
        let d = PyDownload::new(content, name.clone(), file_hash, total, addrs);
        self.actions
            .push_back(Action::Output(Output::Disk(DiskOp::OpenPartial {
                content,
                name,
                size: d.max_size(),
            })));
        self.downloads.insert(content, d);
    }

    /// The user cancelled the download of `content`.
    pub(crate) fn cancel(&mut self, content: ContentId) {
        self.fail(content, FailReason::Cancelled);
    }

    /// The partial file of `content` opened (with `Ok(bytes)` from an earlier run) or not.
    pub(crate) fn partial_opened(
        &mut self,
        now: Instant,
        content: ContentId,
        result: Result<u64, DiskError>,
    ) {
        let len = match result {
            Ok(len) => len,
            Err(e) => return self.fail(content, FailReason::Disk(e)),
        };
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        let complete = d.opened(len);
        if complete {
            d.begin_finish();
        }
        let (name, size) = (d.name().to_owned(), d.max_size());
        self.emit(Event::DownloadStarted {
            content,
            name,
            size,
        });
        self.finish_or_pump(now, content, complete);
    }

    /// Chunk `index` of `content` was written (or not).
    pub(crate) fn written(
        &mut self,
        now: Instant,
        content: ContentId,
        index: u32,
        result: Result<(), DiskError>,
    ) {
        if let Err(e) = result {
            return self.fail(content, FailReason::Disk(e));
        }
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        let all = d.on_written(index);
        let (done, total) = (d.written_bytes(), d.size().unwrap_or(d.max_size()));
        let peers = d.holders().values().filter(|h| h.in_flight > 0).count();
        // One progress event per MiB (a native chunk's worth), not per 1 KiB chunk.
        if all || d.written_chunks().is_multiple_of(PROGRESS_EVERY) {
            self.emit(Event::Progress {
                content,
                done,
                total,
                peers,
            });
        }
        self.finish_or_pump(now, content, all);
    }

    /// The finish of `content` is done: the file is in place, or the whole file did not
    /// match (then every chunk is fetched again from one holder alone, while one is left).
    pub(crate) fn finished(
        &mut self,
        now: Instant,
        content: ContentId,
        result: Result<String, FinishError>,
    ) {
        match result {
            Ok(file) => {
                let Some(d) = self.downloads.remove(&content) else {
                    return;
                };
                let sources = d
                    .holders()
                    .iter()
                    .filter(|(_, h)| h.delivered > 0)
                    .map(|(a, h)| Source {
                        peer: peer_id_of(*a),
                        addr: Some(*a),
                        chunks: h.delivered,
                        bytes: h.bytes,
                    })
                    .collect();
                let fetched = d.holders().values().map(|h| h.bytes).sum();
                self.emit(Event::DownloadDone {
                    content,
                    file,
                    size: d.size().unwrap_or(0),
                    file_hash: *d.file_hash(),
                    fetched,
                    reused: d.reused(),
                    rejected: d.rejected(),
                    sources,
                });
            }
            Err(FinishError::HashMismatch) => {
                let retry = self
                    .downloads
                    .get_mut(&content)
                    .is_some_and(PyDownload::on_mismatch);
                if retry {
                    self.stats.chunks_rejected += 1;
                    self.pump(now, content);
                } else {
                    self.fail(content, FailReason::Finish(FinishError::HashMismatch));
                }
            }
            Err(e) => self.fail(content, FailReason::Finish(e)),
        }
    }

    /// A chunk connection ended (the node took it out of its table, and closed it if it was
    /// the node's to close): its chunk is written, or asked again (elsewhere if it can be).
    pub(crate) fn fetch_ended(&mut self, now: Instant, fetch: &Fetch, ended: Ended) {
        let content = fetch.content();
        let attempt = fetch.attempt(ended);
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        let (writes, lied) = d.on_attempt(fetch.addr(), fetch.index(), attempt);
        if lied {
            self.stats.chunks_rejected += 1;
            self.emit(Event::ChunkRejected {
                content,
                peer: peer_id_of(fetch.addr()),
                index: fetch.index(),
            });
        }
        for (index, offset, data) in writes {
            self.actions
                .push_back(Action::Output(Output::Disk(DiskOp::Write {
                    content,
                    index,
                    offset,
                    data,
                })));
        }
        self.pump(now, content);
    }

    /// Bytes arrived on a Python request connection: what to do. `find` gives the content and
    /// size of the file we share under a name.
    pub(crate) fn serve_received(
        &mut self,
        serve: &mut Serve,
        data: &[u8],
        find: impl Fn(&str) -> Option<(ContentId, u64)>,
    ) -> ServeStep {
        let req = match serve.received(data) {
            Request::Wait => return ServeStep::Wait,
            Request::Malformed => {
                self.stats.requests_malformed += 1;
                return ServeStep::Close;
            }
            Request::Ask(req) => req,
        };
        // The index counts from 1 (the decoder refuses 0).
        let offset = (req.index - 1).checked_mul(PY_CHUNK as u64);
        match (find(&req.name), offset) {
            (Some((content, size)), Some(offset)) if offset < size => ServeStep::Read {
                content,
                offset,
                len: (size - offset).min(PY_CHUNK as u64) as u32,
            },
            _ => {
                self.stats.requests_refused += 1;
                ServeStep::Close
            }
        }
    }

    /// A request connection timed out before a whole request came.
    pub(crate) fn serve_timed_out(&mut self) {
        self.stats.requests_malformed += 1;
    }

    /// A chunk was read for a request: its reply, to send before closing.
    pub(crate) fn reply(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.stats.chunks_served += 1;
        wire::encode_reply(chunk)
    }

    /// Shutdown: every partial file is closed (kept for resume).
    pub(crate) fn shutdown(&mut self) {
        for content in std::mem::take(&mut self.downloads).into_keys() {
            self.actions
                .push_back(Action::Output(Output::Disk(DiskOp::ClosePartial {
                    content,
                })));
        }
    }

    // ---- timers and what to do ----

    /// When [`Python::handle_timeout`] has work: the first Python peer to expire.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.peers.poll_timeout()
    }

    /// Forgets the Python peers silent past their expiry: they are lost, and no longer asked.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for p in self.peers.handle_timeout(now) {
            self.emit(Event::PeerLost {
                peer: p.id,
                addr: p.addr,
            });
            self.holder_lost(now, p.addr);
        }
    }

    /// The next thing the node must do for the Python side, oldest first.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- inside ----

    fn emit(&mut self, e: Event) {
        self.actions.push_back(Action::Output(Output::Event(e)));
    }

    /// A Python peer announced (again): it holds the files it lists, for the downloads of
    /// them; a download waiting for holders goes on.
    fn holders_heard(&mut self, now: Instant, addr: SocketAddr) {
        let contents: Vec<ContentId> = self.downloads.keys().copied().collect();
        for content in contents {
            if self.peers.holds(addr, &content)
                && let Some(d) = self.downloads.get_mut(&content)
            {
                d.add_holder(addr);
                self.pump(now, content);
            }
        }
    }

    /// A Python peer was forgotten: no longer asked.
    fn holder_lost(&mut self, now: Instant, addr: SocketAddr) {
        let contents: Vec<ContentId> = self.downloads.keys().copied().collect();
        for content in contents {
            if let Some(d) = self.downloads.get_mut(&content) {
                d.remove_holder(addr);
            }
            self.pump(now, content);
        }
    }

    /// Finishes the download of `content` when every chunk is written (`complete`), else asks
    /// for more.
    fn finish_or_pump(&mut self, now: Instant, content: ContentId, complete: bool) {
        if complete {
            self.finish(content);
        } else {
            self.pump(now, content);
        }
    }

    fn finish(&mut self, content: ContentId) {
        let Some(d) = self.downloads.get(&content) else {
            return;
        };
        self.actions
            .push_back(Action::Output(Output::Disk(DiskOp::Finish {
                content,
                name: d.name().to_owned(),
                size: d.size().unwrap_or(0),
                file_hash: *d.file_hash(),
                manifest: None,
            })));
    }

    /// Opens connections for as many chunks as the budgets allow; fails the download when
    /// nobody is left to ask.
    fn pump(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.downloads.get_mut(&content) else {
            return;
        };
        if d.phase() != PyPhase::Running {
            return;
        }
        // Each holder is asked under the name it lists the file as (one it no longer lists:
        // under the download's name).
        let names: BTreeMap<SocketAddr, String> = self
            .peers
            .holders(&content)
            .into_iter()
            .map(|(a, f)| (a, f.name.clone()))
            .collect();
        while let Some((addr, index)) = d.next_request() {
            let asked = names
                .get(&addr)
                .cloned()
                .unwrap_or_else(|| d.name().to_owned());
            let fetch = Fetch::new(content, addr, index, asked, now);
            self.actions.push_back(Action::Connect(fetch));
        }
        // Its chunk connections are its chunks in flight.
        if d.in_flight() == 0 && d.usable() == 0 {
            let reason = FailReason::NoPeers {
                have: d.written_chunks(),
                total: d.total(),
            };
            self.fail(content, reason);
        }
    }

    fn fail(&mut self, content: ContentId, reason: FailReason) {
        let Some(d) = self.downloads.remove(&content) else {
            return;
        };
        self.actions.push_back(Action::CloseFetches(content));
        self.actions
            .push_back(Action::Output(Output::Disk(DiskOp::ClosePartial {
                content,
            })));
        self.emit(Event::DownloadFailed {
            content,
            name: d.name().to_owned(),
            reason,
        });
    }
}
