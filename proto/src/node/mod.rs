//! The node: discovery, connections, serving, downloads and the Python side composed behind
//! one sans-IO API.
//!
//! How it is put together (ARCHITECTURE.md draws it): every input enters through
//! [`Node::handle_input`] (or [`Node::handle_received`], [`Node::accept`],
//! [`Node::handle_timeout`]) and is routed once, by what it is about: a datagram to discovery
//! or the Python side, a connection event to what that connection is in the one connection
//! table (`conns`: sniffing its first bytes, a native session, a Python request, a Python
//! chunk), a disk result to its download or read, a command to its download. Every deadline
//! is in the one timer list (`timers`), each with its reason ([`Wake`]). The parts it owns
//! keep their own state behind transitions: `Discovery`, `Session`, `Download`, `Link`, the
//! Python sub-machine (`crate::python`), the catalogs of others.
//!
//! Invariants kept by every method:
//! - every deadline in the machine is visible through [`Node::poll_timeout`]; after
//!   `handle_timeout(now)` it is later than `now`;
//! - a connection id is in one place: its entry in the connection table;
//! - a chunk is written only after it verified against a manifest that verified against its
//!   content id; a download is finished only after every chunk was written;
//! - every name that came from the network passed `check_name` before it is stored;
//! - the output queue is drained by the caller after each call (checked in debug builds), so
//!   it never grows beyond what one input produces.

mod catalogs;
mod config;
mod conns;
mod fetch;
mod io;
mod link;
mod links;
mod serve;
mod swarm;
mod targets;
#[cfg(any(test, feature = "testing"))]
mod testing;
mod timers;
mod verify;
mod views;
mod vouches;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

pub use config::{
    Config, ConfigError, DEFAULT_DISCOVERY_PORT, DEFAULT_INTERVAL, DEFAULT_TRANSFER_PORT,
    MAX_INTERVAL, MIN_INTERVAL, StaticPeer, check_interval,
};
pub use io::{
    Admission, Command, DiskOp, Event, Input, LocalFile, NetOp, Output, ReadId, ReadSource, Source,
};
pub use targets::{Reach, TargetView};
pub use timers::Wake;
#[cfg(any(test, feature = "testing"))]
pub use views::ConnLoad;
pub use views::{DownloadView, FileRef, PeerView, RemoteFile, RemoteView, Stats, Walk};

use crate::discovery::{Discovery, Found};
use crate::download::Download;
use crate::identity::Identity;
use crate::ids::{ContentId, PeerId};
use crate::manifest::Manifest;
use crate::noise::LocalKeys;
use crate::python::{Action, Python};
use crate::rng::KeyRng;
use crate::rng::Rng;
use crate::session::{CloseReason, ConnId, Session};
use crate::wire::signed;

/// A p2pshare peer, without any I/O.
///
/// The methods fall in four groups, as in quinn-proto's `Connection`:
/// - getters (`&self`): [`Node::peers`], [`Node::remote_files`], [`Node::downloads`],
///   [`Node::stats`] — read-only views for the user interface;
/// - `handle_*`: what happened — [`Node::handle_input`] for a datagram, a connection event,
///   received bytes, a disk result, a catalog change or a user [`Command`];
///   [`Node::handle_timeout`] when the deadline from `poll_timeout` passed (spurious extra
///   calls simply do nothing);
/// - commands are inputs too: `Input::Command(Command::Get { content, name })`;
/// - `poll_*`: what the caller must do next — [`Node::poll_output`] until it returns `None`
///   (send, connect, read, write, finish, events), then [`Node::poll_timeout`] for when to call
///   `handle_timeout`.
///
/// After every `handle_*` call the caller drains `poll_output` and re-reads `poll_timeout`.
/// Time only moves forward: pass the current time, never an earlier one than before (an
/// earlier one is treated as the latest seen).
///
/// The whole run loop of a runtime, with the I/O left out:
///
/// ```no_run
/// use std::time::Instant;
/// use p2pshare_proto::{Config, Identity, Input, NetOp, Node, Output};
///
/// let cfg = Config::new(7, 42, 10000);
/// let me = Identity::from_secret_bytes(&[1; 32]); // the folder's key, from its key file
/// let key_seed = [7; 32]; // 32 bytes from the OS's generator
/// let mut node = Node::new(cfg, me, key_seed, Instant::now()).expect("the defaults are valid");
/// loop {
///     while let Some(out) = node.poll_output() {
///         match out {
///             Output::Net(NetOp::Datagram { to, data }) => { /* udp.send_to(&data, to) */ }
///             Output::Net(op) => { /* connect, send, close */ }
///             Output::Disk(op) => { /* read, write, finish: on a disk thread */ }
///             Output::Event(e) => println!("{e:?}"),
///         }
///     }
///     let deadline = node.poll_timeout();
///     // Wait for I/O until `deadline`; then feed what happened:
///     let input: Option<Input> = None; // e.g. Input::Datagram { from, data }
///     match input {
///         Some(input) => node.handle_input(Instant::now(), input),
///         None => node.handle_timeout(Instant::now()),
///     }
/// #   break;
/// }
/// ```
#[derive(Debug)]
pub struct Node {
    cfg: Config,
    /// Who this peer is: its key pair.
    identity: Identity,
    /// Its Noise static key, signed by `identity`: what every handshake proves.
    keys: LocalKeys,
    /// Every handshake's secrets come from here (never from `rng`, whose outputs show).
    key_rng: KeyRng,
    /// Announcements sent by this instance: the `seq` of the next one's mark.
    seq: u64,
    /// How many discovery signatures may be checked, per source address and in all.
    verify: verify::VerifyBudget,
    /// A planted misbehaviour of what it sends (simulator only).
    #[cfg(feature = "bugs")]
    tamper: Option<crate::bugs::Tamper>,
    rng: Rng,
    now: Instant,
    discovery: Discovery,
    /// The original Python program's side: its peers, downloads and requests (issue 16).
    python: Python,
    /// Every connection, as what it is: the one table of them.
    conns: conns::Conns,
    local: BTreeMap<ContentId, LocalEntry>,
    /// `local`'s names, each with its content: a Python request's name is one lookup.
    local_names: BTreeMap<String, ContentId>,
    revision: u64,
    /// Our catalog, encoded in pages (built on first request after a change).
    catalog_pages: Vec<Vec<u8>>,
    remote: catalogs::Catalogs,
    /// Which native contents are a Python peer's file: claims checked against manifests.
    vouches: vouches::Vouches,
    links: BTreeMap<PeerId, link::Link>,
    /// Addresses we dial without having heard them: `--peer`s, links' peers, known peers.
    targets: Vec<targets::Target>,
    downloads: BTreeMap<ContentId, Download>,
    reads: BTreeMap<ReadId, serve::ReadFor>,
    /// The `Have`s waiting to go out, and the chunks we began to serve lately.
    swarm: swarm::Swarm,
    /// Files our downloads placed, shared under the manifest they were verified against until
    /// a scan lists them (no second hashing before they are served).
    adopted: BTreeMap<ContentId, LocalEntry>,
    out: VecDeque<Output>,
    ids: conns::Ids,
    stats: Stats,
    shut_down: bool,
}

#[derive(Debug, Clone)]
struct LocalEntry {
    names: Vec<String>,
    manifest: Manifest,
}

impl Node {
    /// A node of the peer `identity` (its folder's key pair) that starts announcing at `now`,
    /// or why `cfg` cannot run ([`Config::validate`]). `key_seed` seeds every secret the node
    /// makes (its Noise static key, each handshake's ephemeral key): 32 bytes from the
    /// operating system's generator (the simulator derives them from its seed).
    pub fn new(
        cfg: Config,
        identity: Identity,
        key_seed: [u8; 32],
        now: Instant,
    ) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let me = identity.key();
        let mut key_rng = KeyRng::new(key_seed);
        let keys = LocalKeys::new(&identity, &mut key_rng);
        let discovery = Discovery::new(me, cfg.interval, now, cfg.bugs);
        let targets = cfg
            .static_peers
            .iter()
            .take(targets::MAX_TARGETS)
            .map(|&p| targets::Target::new(p.addr, p.key, Found::Static, now))
            .collect();
        Ok(Node {
            rng: Rng::new(cfg.seed),
            now,
            discovery,
            python: Python::new(me),
            conns: conns::Conns::default(),
            local: BTreeMap::new(),
            local_names: BTreeMap::new(),
            revision: 0,
            catalog_pages: Vec::new(),
            remote: catalogs::Catalogs::default(),
            vouches: vouches::Vouches::default(),
            links: BTreeMap::new(),
            targets,
            downloads: BTreeMap::new(),
            reads: BTreeMap::new(),
            swarm: swarm::Swarm::default(),
            adopted: BTreeMap::new(),
            out: VecDeque::new(),
            ids: conns::Ids::default(),
            stats: Stats::default(),
            shut_down: false,
            cfg,
            identity,
            keys,
            key_rng,
            seq: 0,
            verify: verify::VerifyBudget::new(now),
            #[cfg(feature = "bugs")]
            tamper: None,
        })
    }

    /// Plants a misbehaviour: every plaintext this node sends on a native connection passes
    /// through `tamper` before it is sealed (simulator only).
    #[cfg(feature = "bugs")]
    pub fn set_tamper(&mut self, tamper: crate::bugs::Tamper) {
        self.tamper = Some(tamper);
    }

    // ---- getters ----

    /// This peer's id: its public key.
    pub fn peer_id(&self) -> PeerId {
        self.identity.key()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Known peers, by id.
    pub fn peers(&self) -> Vec<PeerView> {
        self.discovery
            .peers()
            .map(|p| PeerView {
                id: p.id,
                addr: p.addr,
                files: self.remote.get(&p.id).map(<[_]>::len),
                last_seen: p.last_seen,
                confirmed: p.is_confirmed(),
                mark: p.mark,
                found: p.found,
                python: false,
            })
            .chain(self.python.peer_views())
            .collect()
    }

    /// Files other peers share, grouped by content (see [`RemoteView::files`]). Costs
    /// O(n log n) over the n catalog entries: a caller on the event loop's thread should take
    /// [`Node::remote_view`] and group it elsewhere.
    pub fn remote_files(&self) -> Vec<RemoteFile> {
        self.remote_view().files()
    }

    /// What [`Node::remote_files`] is built from, taken cheaply: a reference to each peer's
    /// catalog (shared, not copied), our own content ids and the Python peers' files. So the
    /// loop that owns the node pays per peer, not per catalog entry, however big the catalogs
    /// a remote peer sent, and the grouping runs on the thread that asked for the view.
    pub fn remote_view(&self) -> RemoteView {
        RemoteView {
            catalogs: self.remote.shared(),
            local: self.local.keys().copied().collect(),
            // A Python file is listed as the native content whose verified manifest has its
            // hash (and chunk count); a check counts only for the voucher's current catalog
            // (its checks are forgotten when its catalog is replaced).
            python: {
                let local: std::collections::BTreeSet<&crate::ids::Digest> = self
                    .local
                    .values()
                    .map(|e| e.manifest.file_hash())
                    .collect();
                self.python.remote_files(
                    |hash, chunks| self.vouches.native(hash, chunks).next().is_some(),
                    |hash| local.contains(hash),
                )
            },
        }
    }

    /// True when the LAN has Python peers as far as we know: one was heard, or a p2pshare peer
    /// announces to them. They announce only every 5 s, so a one-shot view listens that long.
    pub fn python_around(&self) -> bool {
        self.python.any()
    }

    /// True once the peers have had time to answer our first announcement (each answers a
    /// newcomer within 250 ms): before that, a file may look as if one peer had it when
    /// several do.
    pub fn has_been_answered(&self, now: Instant) -> bool {
        now >= self.discovery.answered_by()
    }

    /// True once the view of the LAN has settled at `now`: the peers have had time to answer
    /// our first announcement, every peer in the table has sent its catalog, and no manifest
    /// asked for to check a peer's claim that its file is a Python peer's is still due. A one-shot
    /// `get` waits for this before it picks a file by name, so that every holder takes part
    /// from the first chunk.
    pub fn is_settled(&self, now: Instant) -> bool {
        self.has_been_answered(now)
            && self.discovery.peers().all(|p| self.remote.contains(&p.id))
            && !self.vouches.pending(now)
    }

    /// Downloads in progress.
    pub fn downloads(&self) -> Vec<DownloadView> {
        self.downloads
            .values()
            .map(|d| DownloadView {
                content: d.content(),
                name: d.name().to_owned(),
                size: d.size(),
                done: d.written_bytes(),
                phase: d.phase(),
                peers: d.usable_peers().count(),
                rejected: d.counters().rejected,
            })
            .chain(self.python.download_views())
            .collect()
    }

    /// Counters of dropped and refused input.
    pub fn stats(&self) -> Stats {
        let drops = self.discovery.drops();
        let py = self.python.stats();
        Stats {
            peers_table_full: drops.table_full,
            peers_per_ip_full: drops.per_ip_full,
            claims_elsewhere: drops.claims_elsewhere,
            peers_unreachable: drops.unreachable,
            catalog_entries_dropped: self.remote.dropped,
            chunks_rejected: self.stats.chunks_rejected + py.chunks_rejected,
            python_datagrams_dropped: py.datagrams_dropped,
            python_files_rejected: py.files_rejected,
            python_peers_full: py.peers_full,
            python_requests_malformed: py.requests_malformed,
            python_requests_refused: py.requests_refused,
            python_chunks_served: py.chunks_served,
            python_files_over_budget: self.python.files_over_budget(),
            python_claims_elsewhere: py.claims_elsewhere,
            python_vouches_believed: self.vouches.believed,
            python_vouches_refuted: self.vouches.refuted,
            python_vouch_checks_over_budget: self.vouches.over_budget,
            ..self.stats.clone()
        }
    }

    /// Our catalog revision (bumped when the shared files change).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    // ---- handle ----

    /// Feeds one thing that happened at `now`. Then drain [`Node::poll_output`].
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        let now = self.advance(now);
        if self.shut_down {
            return;
        }
        // The one router: each input goes to the part that owns what it is about (a connection
        // by what it is in the table, a download by whether it is a Python peer's).
        match input {
            Input::Datagram { from, data } => {
                self.on_datagram(now, crate::addr::canonical(from), &data)
            }
            Input::Connected { conn } => self.on_connected(now, conn),
            Input::ConnectFailed { conn } => {
                self.on_conn_gone(now, conn, CloseReason::ConnectFailed)
            }
            Input::Received { conn, data } => self.on_received(now, conn, &data),
            Input::Flushed { conn } => self.on_conn_flushed(conn),
            Input::Closed { conn } => self.on_conn_gone(now, conn, CloseReason::Remote),
            Input::ReadDone { read, result } => self.on_read_done(now, read, result),
            Input::PartialOpened { content, result } if self.python.downloads(&content) => {
                self.python.partial_opened(now, content, result);
                self.drain_python(now);
            }
            Input::PartialOpened { content, result } => {
                self.on_partial_opened(now, content, result)
            }
            Input::Written {
                content,
                index,
                result,
            } if self.python.downloads(&content) => {
                self.python.written(now, content, index, result);
                self.drain_python(now);
            }
            Input::Written {
                content,
                index,
                result,
            } => self.on_written(content, index, result),
            Input::Finished { content, result } if self.python.downloads(&content) => {
                self.python.finished(now, content, result);
                self.drain_python(now);
            }
            Input::Finished { content, result } => self.on_finished(content, result),
            Input::CatalogChanged { files } => self.on_catalog_changed(now, files),
            Input::Command(Command::Get { content, name }) if self.is_python_content(&content) => {
                self.python.start_download(content, name);
                self.drain_python(now);
            }
            Input::Command(Command::Get { content, name }) => {
                self.start_download(now, content, name)
            }
            Input::Command(Command::Cancel(content)) if self.python.downloads(&content) => {
                self.python.cancel(content);
                self.drain_python(now);
            }
            Input::Command(Command::Cancel(content)) => {
                self.fail_download(content, crate::download::FailReason::Cancelled)
            }
            Input::Command(Command::Hold(content)) => self.hold(content, true),
            Input::Command(Command::Release(content)) => self.hold(content, false),
            Input::Command(Command::Shutdown) => self.shutdown(now),
            Input::Command(Command::AddPeer { addr, key, found }) => {
                self.add_target(now, addr, key, found);
            }
            Input::Allow { keys } => self.cfg.allow = keys,
            Input::AnnounceTo { to } => {
                if to != self.cfg.announce_to {
                    self.cfg.announce_to = to;
                    self.discovery.answer_soon(now);
                }
            }
        }
        self.drain_discovery(now);
    }

    /// Moves the node's clock to `now` (never back) and returns it. `Have`s overdue because the
    /// runtime hands us something before running our timers (its loop was late) go out first,
    /// not only when it next runs them.
    fn advance(&mut self, now: Instant) -> Instant {
        self.assert_drained();
        self.now = self.now.max(now);
        if !self.shut_down {
            self.run_due(self.now, timers::Source::Haves);
        }
        self.now
    }

    /// A TCP connection was accepted from `remote`: the node takes it (and names it), asks the
    /// runtime to hold it for later (its address's share of the connection budget is spent), or
    /// refuses it ([`Admission`]). Then drain [`Node::poll_output`].
    pub fn accept(&mut self, now: Instant, remote: std::net::SocketAddr) -> Admission {
        self.advance(now);
        if self.shut_down {
            return Admission::Refused;
        }
        let admission = self.on_accepted(self.now, crate::addr::canonical(remote));
        self.drain_discovery(self.now);
        admission
    }

    /// The same as `handle_input(now, Input::Received { conn, data })`, for a runtime that
    /// holds the bytes in a buffer of its own: saves copying them into a `Vec` first.
    pub fn handle_received(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let now = self.advance(now);
        if self.shut_down {
            return;
        }
        self.on_received(now, conn, data);
        self.drain_discovery(now);
    }

    /// The calling contract, checked in debug builds: the caller drained `poll_output` after
    /// the previous call, so the queue never holds more than one call's outputs.
    fn assert_drained(&self) {
        debug_assert!(
            self.out.is_empty(),
            "{} outputs were not drained (poll_output) before this call",
            self.out.len()
        );
    }

    // ---- poll ----

    /// The next thing to do, or `None` when there is nothing left for now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---- discovery ----

    /// Our next announcement, signed: its mark is this instance and the count of those before.
    fn announcement(&mut self, bye: bool) -> Vec<u8> {
        let a = signed::Announcement {
            mark: signed::Mark {
                instance: self.cfg.instance,
                seq: self.seq,
            },
            port: self.cfg.transfer_port,
            revision: self.revision,
            bye,
        };
        self.seq += 1;
        signed::encode(&a, &self.identity)
    }

    fn announce(&mut self, bye: bool) {
        let data = self.announcement(bye);
        for &to in &self.cfg.announce_to {
            self.out.push_back(Output::Net(NetOp::Datagram {
                to,
                data: data.clone(),
            }));
        }
        if bye || self.cfg.allow.is_some() {
            // Private sharing offers Python peers nothing: they cannot prove a key.
            return;
        }
        let files = self
            .local
            .values()
            .flat_map(|e| e.names.iter().map(|n| (n.as_str(), &e.manifest)));
        let json = self
            .python
            .announcement(self.now, self.cfg.transfer_port, files);
        if let Some(json) = json {
            // The Python program listens on IPv4 only.
            for &to in self.cfg.announce_to.iter().filter(|to| to.is_ipv4()) {
                self.out.push_back(Output::Net(NetOp::Datagram {
                    to,
                    data: json.clone(),
                }));
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, from: std::net::SocketAddr, data: &[u8]) {
        use crate::wire::DatagramError as E;
        if from.ip().is_unspecified() {
            // Nothing can be dialled there (a host whose address is not ready yet).
            return self.stats.datagrams_unanswerable += 1;
        }
        if crate::python::wire::looks_legacy(data) {
            if from.is_ipv6() {
                // The Python program speaks IPv4 only: JSON over IPv6 is no peer of ours.
                return self.stats.datagrams_foreign += 1;
            }
            let discovery = &self.discovery;
            let native_at = |addr| discovery.peers().any(|p| p.addr == addr);
            let listed_at =
                |peer: &PeerId, ip| discovery.peer(peer).is_some_and(|p| p.addr.ip() == ip);
            self.python
                .handle_datagram(now, from, data, native_at, listed_at);
            return self.drain_python(now);
        }
        let u = match signed::decode(data) {
            Ok(u) => u,
            Err(E::Foreign) => return self.stats.datagrams_foreign += 1,
            // (Version 1, unsigned, is an old p2pshare peer: counted here and ignored.)
            Err(E::UnknownVersion(_)) => return self.stats.datagrams_unknown_version += 1,
            Err(E::TooLong | E::Malformed) => return self.stats.datagrams_malformed += 1,
        };
        if u.key() == self.identity.key() {
            // Our own broadcast's echo (or a copy of it).
            return;
        }
        // Cheapest first: what is not newer than what we believe of that key changes
        // nothing, whoever sent it (a replay, a duplicate, a late or an old instance's).
        let held = self.discovery.held_mark(now, &u.key());
        let stale = signed::Verdict::judge(held, u.mark()) == signed::Verdict::Stale;
        if stale && !self.cfg.bugs.accept_stale_mark() {
            return self.stats.announcements_stale += 1;
        }
        if !self.verify.take(now, from.ip()) {
            return self.stats.datagrams_unverified += 1;
        }
        let Ok(v) = u.verify() else {
            return self.stats.datagrams_forged += 1;
        };
        self.discovery.heard_signed(now, &v, from);
    }

    fn drain_discovery(&mut self, now: Instant) {
        use crate::discovery::Change;
        while let Some(change) = self.discovery.poll_change() {
            match change {
                Change::Found(p) | Change::Restarted(p) => {
                    if let Some(addr) = self.discovery.peer(&p).map(|x| x.addr) {
                        self.out
                            .push_back(Output::Event(Event::PeerFound { peer: p, addr }));
                    }
                    if matches!(change, Change::Restarted(_)) {
                        let instance = self.discovery.peer(&p).map(|x| x.instance);
                        self.drop_peer_connections(now, p, instance);
                        // A new instance: its catalog is wanted now, not after the gap, and
                        // the failures of the old one (dialled while it was down) are not
                        // its own, so they cannot make it count as unreachable.
                        if let Some(link) = self.links.get_mut(&p) {
                            link.restarted();
                        }
                    }
                    self.fetch_catalog(now, p);
                }
                Change::RevisionChanged(p) => self.fetch_catalog(now, p),
                Change::Moved(p) => {
                    // What was learned at the old address was someone else's.
                    let Some(addr) = self.discovery.peer(&p).map(|x| x.addr) else {
                        continue;
                    };
                    self.remote.remove(&p);
                    self.vouches.forget(&p);
                    self.drop_peer_connections_elsewhere(now, p, addr.ip());
                    // Failures at the old address were not its.
                    if let Some(link) = self.links.get_mut(&p) {
                        link.moved();
                    }
                    self.out
                        .push_back(Output::Event(Event::PeerFound { peer: p, addr }));
                    self.fetch_catalog(now, p);
                }
                Change::Rival(p, addr) => self.dial_rival(now, p, addr),
                Change::Lost(p, addr) => {
                    self.out
                        .push_back(Output::Event(Event::PeerLost { peer: p, addr }));
                    self.remote.remove(&p);
                    self.vouches.forget(&p);
                    self.drop_peer_connections(now, p, None);
                    self.links.remove(&p);
                    self.peer_down_downloads(now, p, true);
                }
            }
        }
    }

    fn on_catalog_changed(&mut self, now: Instant, files: Vec<LocalFile>) {
        let mut local: BTreeMap<ContentId, LocalEntry> = BTreeMap::new();
        // A file a download of ours placed stays shared under its verified manifest until the
        // scanner lists it.
        self.adopted
            .retain(|c, _| !files.iter().any(|f| f.manifest.id() == *c));
        for (c, e) in &self.adopted {
            local.insert(*c, e.clone());
        }
        for f in files {
            if crate::name::check_name(&f.name).is_err() {
                self.stats.bad_names += 1;
                continue;
            }
            let e = local.entry(f.manifest.id()).or_insert_with(|| LocalEntry {
                names: Vec::new(),
                manifest: f.manifest,
            });
            if !e.names.contains(&f.name) {
                e.names.push(f.name);
            }
        }
        let same = local.len() == self.local.len()
            && local
                .iter()
                .zip(&self.local)
                .all(|((a, x), (b, y))| a == b && x.names == y.names);
        if same {
            return;
        }
        self.local = local;
        self.index_local();
        self.catalog_revised(now);
    }

    /// Rebuilds `local_names` from `local` (after every change of it).
    fn index_local(&mut self) {
        self.local_names = self
            .local
            .iter()
            .flat_map(|(c, e)| e.names.iter().map(move |n| (n.clone(), *c)))
            .collect();
    }

    fn shutdown(&mut self, now: Instant) {
        self.announce(true);
        let conns: Vec<ConnId> = self.conns.sessions().map(Session::id).collect();
        for c in conns {
            self.end_session(now, c, CloseReason::Shutdown, true);
        }
        let contents: Vec<ContentId> = self.downloads.keys().copied().collect();
        for c in contents {
            self.out
                .push_back(Output::Disk(DiskOp::ClosePartial { content: c }));
        }
        self.downloads.clear();
        // The Python side: the requests being served, the chunk connections, the partial files.
        let serving = self.conns.ids(|c| matches!(c, conns::Conn::PyServe(_)));
        let fetching = self.conns.ids(|c| matches!(c, conns::Conn::PyFetch(_)));
        for conn in serving.into_iter().chain(fetching) {
            self.conns.remove(&conn);
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
        self.python.shutdown();
        self.drain_python(now);
        self.shut_down = true;
    }

    /// Does what the Python side asks (after every call into it): outputs pass on; a chunk
    /// connection to open is named and enters the table; those of a stopped download close.
    fn drain_python(&mut self, now: Instant) {
        while let Some(action) = self.python.poll_action() {
            match action {
                Action::Output(o) => self.out.push_back(o),
                Action::Connect(fetch) => {
                    let conn = self.ids.outbound();
                    let addr = fetch.addr();
                    self.conns.insert(conn, conns::Conn::PyFetch(fetch));
                    self.out
                        .push_back(Output::Net(NetOp::Connect { conn, addr }));
                }
                Action::CloseFetches(content) => {
                    let of = |c: &conns::Conn| matches!(c, conns::Conn::PyFetch(f) if f.content() == content);
                    for conn in self.conns.ids(of) {
                        self.conns.remove(&conn);
                        self.out.push_back(Output::Net(NetOp::Close { conn }));
                    }
                }
                Action::AnnounceSoon => self.discovery.answer_soon(now),
                Action::Vouched(peer) => self.check_vouches(now, peer),
            }
        }
    }

    /// True when `content` is a Python file that no p2pshare peer holds: `get` fetches it with
    /// the Python protocol.
    fn is_python_content(&self, content: &ContentId) -> bool {
        self.python.held(content)
            && !self
                .remote
                .iter()
                .any(|(_, files)| files.iter().any(|f| f.content == *content))
    }
}
