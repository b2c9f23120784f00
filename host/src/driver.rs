//! The runtime-independent half of a running peer: the [`Node`], its disk work, the folder
//! scanner thread, and the channels to the CLI's [`Handle`](crate::Handle).
//!
//! A runtime owns the sockets and the waiting; everything else is here, written once:
//! 1. [`start`] takes the folder lock, starts the scanner and disk threads and builds the node;
//! 2. the runtime feeds socket events with [`Driver::input`], [`Driver::received`] and
//!    [`Driver::accept`], and calls [`Driver::poll_channels`] whenever its waker fired;
//! 3. after each of those it performs every [`NetOp`] from [`Driver::poll_net`] (through
//!    proto's [`perform`] and its [`Network`]), waits until [`Driver::deadline`] at most, and
//!    then calls [`Driver::timeout_if_due`];
//! 4. it stops when [`Driver::is_stopped`].
//!
//! Invariants: disk requests go to the disk thread ([`crate::disk`]), performed in order, and
//! their answers are fed back in [`Driver::poll_channels`], so the runtime only ever sees
//! network work; the node is touched by one thread only (the runtime's); every event reaches
//! the handle's notice channel (dropped silently if the CLI is gone).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare_proto::{
    Admission, Command, ConfigError, ConnId, ContentId, DiskError, Event, Found, Input, LocalFile,
    NetOp, Node, Output, PeerId,
};

use crate::config::PeerConfig;
use crate::disk::{Disk, Job};
use crate::files::SharedFiles;
use crate::handle::{Notice, Request, SharedFile, Snapshot, Taken};
use crate::keyfile::{self, KeyFileError};
use crate::known::Known;
use crate::lock::{FolderLock, LockError};
use crate::outbox::Outbox;
use crate::scan::{Adoption, Scan, ScanError, Scanner};
use crate::seed;
pub use p2pshare_proto::net::{Network, perform};

/// Why a peer could not start.
#[derive(Debug)]
pub enum StartError {
    /// The shared folder is locked by another peer, or cannot be created.
    Lock(LockError),
    /// The shared folder cannot be read.
    Scan(ScanError),
    /// The folder's identity key cannot be read or made.
    Key(KeyFileError),
    /// An allow file cannot be used ([`crate::allow`]).
    Allow(crate::allow::AllowError),
    /// The configuration cannot run (proto's [`Config::validate`](p2pshare_proto::Config::validate)).
    Config(ConfigError),
    /// A listening socket could not be opened, configured or bound (the port is taken?), or
    /// its bound port cannot be read.
    Bind(String),
    /// A thread of the peer could not be spawned (the system is out of threads or memory).
    Thread {
        /// Which thread: `scanner`, `disk`, or the runtime's loop.
        name: &'static str,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The DHT node (`--dht`) could not start: its UDP socket or a thread.
    Dht(std::io::Error),
    /// The runtime's event loop (mio's poll, smol's reactor) could not be created, or refused
    /// to watch a socket or a waker.
    EventLoop {
        /// What was attempted, as in "cannot {what}".
        what: &'static str,
        /// What the OS said.
        error: std::io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Lock(e) => write!(f, "{e}"),
            StartError::Scan(e) => write!(f, "{e}"),
            StartError::Key(e) => write!(f, "{e}"),
            StartError::Allow(e) => write!(f, "{e}"),
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Bind(e) => f.write_str(e),
            StartError::Dht(e) => write!(f, "cannot start the DHT node: {e}"),
            StartError::Thread { name, error } => {
                write!(f, "cannot start the {name} thread: {error}")
            }
            StartError::EventLoop { what, error } => write!(f, "cannot {what}: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The runtime-independent state of a running peer. See the module doc for the calling order.
pub struct Driver {
    node: Node,
    disk: Disk,
    /// The shared files by content: set here after each scan, read by the disk thread, sent
    /// from by the runtime.
    files: SharedFiles,
    requests: Receiver<Request>,
    scans: Receiver<Result<Scan, ScanError>>,
    notices: Outbox,
    shared: Vec<SharedFile>,
    scanned: bool,
    net: VecDeque<NetOp>,
    stopped: bool,
    scanner_stop: Arc<AtomicBool>,
    /// Downloads someone follows besides the notices: their events go there too.
    watchers: Vec<(ContentId, Sender<Event>)>,
    /// Other user interfaces that follow every notice ([`Request::Observe`]).
    observers: Vec<Outbox>,
    /// Follows the LAN interfaces for announcements (no `--broadcast` given, or multicast on
    /// named interfaces): the config, and when to look again.
    interfaces: Option<(PeerConfig, Instant)>,
    /// The IPv6 discovery socket's multicast memberships (none: no IPv6 discovery).
    groups: Option<crate::sockets::Groups>,
    /// Accepted connections the runtime dropped instead of holding them ([`crate::parked`]).
    parked_dropped: u64,
    /// The peers this folder has met ([`crate::known`]).
    known: KnownPeers,
    /// The allowed keys' files, and when to look at them again ([`crate::allow`]).
    allow: (crate::allow::Watch, Instant),
    /// The mainline DHT node (`--dht`, [`crate::dht`]).
    dht: Option<crate::dht::DhtNode>,
    _lock: Option<FolderLock>,
}

/// How often the LAN interfaces are looked at again (one `getifaddrs`).
const INTERFACES_EVERY: Duration = Duration::from_secs(5);
/// How soon a key met for the first time is saved (a few met together make one write).
const KNOWN_SAVE_SOON: Duration = Duration::from_secs(1);
/// How often the last-seen times of the peers still around are saved.
const KNOWN_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The peers this folder has met, and when they are saved next.
struct KnownPeers {
    known: Known,
    /// The shared folder, where the file is saved; `None` for a peer that uses no folder (it
    /// reads the folder's memory, to say who is new, and never writes it).
    dir: Option<std::path::PathBuf>,
    /// Times the file was started afresh (unreadable or damaged).
    resets: u64,
    /// A save soon: a key was met for the first time.
    save_at: Option<Instant>,
    /// The next save of the last-seen times.
    refresh_at: Instant,
}

impl KnownPeers {
    /// A key was met for the first time, or kept: save within [`KNOWN_SAVE_SOON`] (a few
    /// together make one write).
    fn save_soon(&mut self) {
        let soon = Instant::now() + KNOWN_SAVE_SOON;
        self.save_at = Some(self.save_at.map_or(soon, |t| t.min(soon)));
    }
}

/// What [`start`] gives the runtime: the driver for its loop, and the ends of the handle's
/// channels for [`crate::Handle::new`].
pub struct Started {
    /// The driver, to move into the runtime's loop.
    pub driver: Driver,
    /// The request channel's sending end.
    pub requests: Sender<Request>,
    /// The notice channel's receiving end.
    pub notices: Receiver<Notice>,
}

impl Started {
    /// Runs the runtime's loop `run` with the driver on a new thread named `p2pshare-<name>`,
    /// and returns the handle to the running peer. `wake` is the closure given to [`start`],
    /// `port` the bound transfer port.
    pub fn spawn(
        self,
        name: &'static str,
        wake: Arc<dyn Fn() + Send + Sync>,
        port: u16,
        run: impl FnOnce(Driver) + Send + 'static,
    ) -> Result<crate::Handle, StartError> {
        let Started {
            driver,
            requests,
            notices,
        } = self;
        let thread = thread::Builder::new()
            .name(format!("p2pshare-{name}"))
            .spawn(move || run(driver))
            .map_err(|error| StartError::Thread { name, error })?;
        Ok(crate::Handle::new(requests, wake, notices, thread, port))
    }
}

/// Takes the folder, loads its identity key (made on the first start, see [`keyfile`]),
/// starts the scanner, builds the node for a peer whose transfer socket is bound to
/// `transfer_port`. A peer that uses no folder gets a new identity, stored nowhere. `wake` must make the runtime call [`Driver::poll_channels`] soon;
/// it is called from other threads. `groups`: the memberships of the IPv6 discovery socket the
/// runtime reads ([`crate::sockets::discovery6`]), joined here on the interfaces the
/// configuration names and followed as they come and go; `None`: no IPv6 discovery.
pub fn start(
    cfg: &PeerConfig,
    transfer_port: u16,
    wake: Arc<dyn Fn() + Send + Sync>,
    mut groups: Option<crate::sockets::Groups>,
) -> Result<Started, StartError> {
    let (lock, scanner, identity) = if cfg.use_folder {
        let lock = FolderLock::acquire(&cfg.shared).map_err(StartError::Lock)?;
        let identity = keyfile::load_or_create(&lock)
            .map_err(StartError::Key)?
            .identity;
        let scanner = Scanner::new(&cfg.shared).map_err(StartError::Scan)?;
        (Some(lock), Some(scanner), identity)
    } else {
        (None, None, keyfile::ephemeral().map_err(StartError::Key)?)
    };
    let (req_tx, req_rx) = mpsc::channel();
    let (note_tx, note_rx) = mpsc::sync_channel(crate::outbox::NOTICES);
    let (scan_tx, scan_rx) = mpsc::channel();
    let scanner_stop = Arc::new(AtomicBool::new(false));
    let mut adopt_tx = None;
    if let Some(scanner) = scanner {
        let stop = scanner_stop.clone();
        let every = cfg.rescan;
        let wake = wake.clone();
        let (tx, adoptions) = mpsc::channel();
        adopt_tx = Some(tx);
        thread::Builder::new()
            .name("p2pshare-scan".into())
            .spawn(move || scan_loop(scanner, every, (scan_tx, adoptions), wake, stop))
            .map_err(|error| StartError::Thread {
                name: "scanner",
                error,
            })?;
    }
    let files = SharedFiles::new(&cfg.shared);
    let disk =
        Disk::start(files.clone(), wake.clone(), adopt_tx).map_err(|error| StartError::Thread {
            name: "disk",
            error,
        })?;
    let joined = match &mut groups {
        Some(g) => g.follow(&cfg.multicast_interfaces()),
        None => Vec::new(),
    };
    let mut node_cfg = cfg.node_config(instance_now(), seed::random_u64(), transfer_port, &joined);
    if let Some(limit) = crate::fds::raise_limit() {
        crate::fds::fit(&mut node_cfg, limit);
    }
    let key_seed = keyfile::key_seed().map_err(StartError::Key)?;
    let allow = crate::allow::Watch::start(
        cfg.allow.clone(),
        cfg.use_folder.then_some(cfg.shared.as_path()),
        &cfg.allow_files,
    )
    .map_err(StartError::Allow)?;
    node_cfg.allow = allow.allowed();
    let loaded = Known::load(&cfg.shared, unix_now());
    let known = KnownPeers {
        known: loaded.known,
        dir: cfg.use_folder.then(|| cfg.shared.clone()),
        resets: u64::from(loaded.reset.is_some() && cfg.use_folder),
        save_at: None,
        refresh_at: Instant::now() + KNOWN_REFRESH_EVERY,
    };
    // Before the node takes the identity: the DHT node signs our address record with it.
    let dht = match (&cfg.dht, cfg.use_folder) {
        (Some(d), true) => Some(
            crate::dht::DhtNode::start(d, transfer_port, &identity, wake.clone())
                .map_err(StartError::Dht)?,
        ),
        _ => None,
    };
    let me = identity.key();
    let mut node =
        Node::new(node_cfg, identity, key_seed, Instant::now()).map_err(StartError::Config)?;
    // The peers met in earlier runs are looked for where they were last met (issue 29): a
    // peer no broadcast reaches (another subnet, a VPN) comes back with no flag. The node
    // probes only while no connection with a key is open, so the LAN's peers cost at most one
    // kept connection each. Only here, at the start: what this run meets the node keeps in
    // its own view.
    let now = Instant::now();
    for (key, addr) in known.known.to_probe(&me) {
        let probe = Command::AddPeer {
            addr,
            key: Some(key),
            found: Found::Known,
        };
        node.handle_input(now, Input::Command(probe));
    }
    let mut driver = Driver {
        node,
        disk,
        files,
        requests: req_rx,
        scans: scan_rx,
        notices: Outbox::new(note_tx),
        shared: Vec::new(),
        scanned: !cfg.use_folder,
        net: VecDeque::new(),
        stopped: false,
        scanner_stop,
        watchers: Vec::new(),
        observers: Vec::new(),
        parked_dropped: 0,
        known,
        allow: (allow, Instant::now() + crate::allow::WATCH_EVERY),
        dht,
        interfaces: cfg
            .follows_interfaces()
            .then(|| (cfg.clone(), Instant::now() + INTERFACES_EVERY)),
        groups,
        _lock: lock,
    };
    if let (Some(why), true) = (loaded.reset, cfg.use_folder) {
        driver.notify(Notice::Warning(format!("known peers: {why}")));
    }
    driver.process();
    Ok(Started {
        driver,
        requests: req_tx,
        notices: note_rx,
    })
}

/// Seconds since the UNIX epoch (0 for a clock before 1970): the known peers' times.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This start's instance: the time in milliseconds since the UNIX epoch, so that a restart
/// announces a higher instance than the one before it (0 for a clock before 1970).
fn instance_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Scans every `every` until `stop`, sending each scan that changed something (and the first)
/// and taking the downloads the disk thread placed before each scan, so they are not hashed.
fn scan_loop(
    mut scanner: Scanner,
    every: Duration,
    (tx, adoptions): (Sender<Result<Scan, ScanError>>, Receiver<Adoption>),
    wake: Arc<dyn Fn() + Send + Sync>,
    stop: Arc<AtomicBool>,
) {
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(a) = adoptions.try_recv() {
            scanner.adopt(a);
        }
        let result = scanner.scan();
        let report = first || !matches!(&result, Ok(s) if !s.changed);
        first = false;
        if report {
            if tx.send(result).is_err() {
                return;
            }
            wake();
        }
        // Sleep in small steps so shutdown does not wait a whole interval.
        let until = Instant::now() + every;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(Duration::from_millis(50).min(every));
        }
    }
}

impl Driver {
    /// Handles what arrived from the disk thread, the handle and the scanner. Call whenever the
    /// waker fired (calling it more often is harmless).
    pub fn poll_channels(&mut self) {
        self.notices.flush();
        self.observers.iter_mut().for_each(Outbox::flush);
        while let Some(input) = self.disk.try_result() {
            self.node.handle_input(Instant::now(), input);
            self.process();
        }
        loop {
            match self.scans.try_recv() {
                Ok(Ok(scan)) => self.on_scan(scan),
                Ok(Err(e)) => self.notify(Notice::Warning(format!("scan failed: {e}"))),
                Err(_) => break,
            }
        }
        while let Some(r) = self.dht.as_mut().and_then(crate::dht::DhtNode::try_report) {
            self.on_dht(r);
        }
        loop {
            match self.requests.try_recv() {
                Ok(r) => self.on_request(r),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.on_request(Request::Shutdown);
                    break;
                }
            }
        }
    }

    fn on_scan(&mut self, scan: Scan) {
        // Before the node hears of them, so that every read and send it asks for finds them.
        self.files.set_files(&scan.files);
        if let Some(dht) = &mut self.dht {
            dht.set_shared(scan.files.iter().map(|f| f.manifest.id()).collect());
        }
        self.shared = scan
            .files
            .iter()
            .map(|f| SharedFile {
                name: f.name.clone(),
                content: f.manifest.id(),
                size: f.manifest.size(),
            })
            .collect();
        self.scanned = true;
        let files = scan
            .files
            .iter()
            .map(|f| LocalFile {
                name: f.name.clone(),
                manifest: (*f.manifest).clone(),
            })
            .collect();
        self.input(Input::CatalogChanged { files });
        self.notify(Notice::Scanned {
            files: scan.files.len(),
            hashed_files: scan.hashed_files,
            hashed_bytes: scan.hashed_bytes,
        });
        if let Some(e) = scan.cache_error {
            self.notify(Notice::Warning(format!("manifest cache not written: {e}")));
        }
        if scan.left_out > 0 {
            use p2pshare_proto::name::{MAX_PATH_DEPTH, MAX_PATH_LEN, MAX_TREE_ENTRIES};
            self.notify(Notice::Warning(format!(
                "{} entries of the shared folder are not shared: deeper than {MAX_PATH_DEPTH} \
                 levels, a path over {MAX_PATH_LEN} bytes, or past {MAX_TREE_ENTRIES} entries",
                scan.left_out
            )));
        }
    }

    /// A report of the DHT's threads: holders found become targets found by the DHT (only
    /// claims: the handshake and the content check decide; our own address is left out), and
    /// every report but the routing table's size (in the status only) is a notice.
    fn on_dht(&mut self, r: crate::dht::Report) {
        if let crate::dht::Report::Routing(_) = r {
            return;
        }
        // A holder is a claim with no key; a peer's record names where its key (signed by
        // it) can be dialled: each address expects that key.
        let found: Vec<(std::net::SocketAddr, Option<PeerId>)> = match &r {
            crate::dht::Report::Holders { addrs, .. } => addrs.iter().map(|a| (*a, None)).collect(),
            crate::dht::Report::PeerAddrs { key, addrs, .. } => {
                addrs.iter().map(|a| (*a, Some(*key))).collect()
            }
            _ => Vec::new(),
        };
        if !found.is_empty() {
            let now = Instant::now();
            let port = self.node.config().transfer_port;
            let ours: Vec<std::net::IpAddr> = crate::interfaces::assigned()
                .into_iter()
                .map(|a| a.ip)
                .collect();
            for (addr, key) in found {
                if crate::dht::is_own(addr, port, &ours) {
                    continue;
                }
                let add = Command::AddPeer {
                    addr,
                    key,
                    found: Found::Dht,
                };
                self.node.handle_input(now, Input::Command(add));
            }
            self.process();
        }
        self.notify(Notice::Dht(r));
    }

    fn on_request(&mut self, r: Request) {
        match r {
            Request::Get { content, name } => {
                self.input(Input::Command(Command::Get { content, name }))
            }
            Request::GetWatched {
                content,
                name,
                events,
            } => {
                self.watchers.push((content, events));
                self.input(Input::Command(Command::Get { content, name }))
            }
            Request::AddPeer {
                addr,
                key,
                found,
                remember,
            } => {
                if let (true, Some(k)) = (remember, key) {
                    self.known.known.keep(k, addr, unix_now());
                    self.known.save_soon();
                }
                self.input(Input::Command(Command::AddPeer { addr, key, found }))
            }
            Request::Cancel(c) => self.input(Input::Command(Command::Cancel(c))),
            Request::Hold(c) => self.input(Input::Command(Command::Hold(c))),
            Request::Release(c) => self.input(Input::Command(Command::Release(c))),
            Request::Snapshot(tx) => {
                let _ = tx.send(self.take_snapshot());
            }
            Request::State(tx) => {
                let _ = tx.send(self.snapshot_without_files());
            }
            Request::Counters(tx) => {
                let _ = tx.send((self.stats(), self.notices.dropped()));
            }
            Request::Observe(tx) => self.observers.push(Outbox::new(tx)),
            Request::Lookup(content) => {
                if let Some(dht) = &mut self.dht {
                    // Refused by the bounds: a lookup of it is under way or just was.
                    let _ = dht.lookup(content, Instant::now());
                }
            }
            Request::Resolve(key) => {
                if let Some(dht) = &mut self.dht {
                    // Refused likewise.
                    let _ = dht.resolve(key, Instant::now());
                }
            }
            Request::Shutdown => {
                if !self.stopped {
                    // Last: who was still around, written before the loop ends (on this
                    // thread: the disk thread may not outlive it).
                    if let Some((dir, bytes)) = self.known_save(true) {
                        let _ = crate::known::write(&dir, &bytes);
                    }
                    self.input(Input::Command(Command::Shutdown));
                    self.stopped = true;
                    self.scanner_stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// The node's counters, with the runtime's.
    fn stats(&self) -> p2pshare_proto::Stats {
        p2pshare_proto::Stats {
            connections_parked_dropped: self.parked_dropped,
            known_peers_reset: self.known.resets,
            ..self.node.stats()
        }
    }

    /// The runtime dropped an accepted connection instead of holding it for later (its
    /// address's share, or all, of the held ones in use; or held too long).
    pub fn parked_dropped(&mut self) {
        self.parked_dropped += 1;
    }

    /// The peer's state now, but for the grouping of the other peers' files, which the asker
    /// does ([`Taken::finish`]).
    pub fn take_snapshot(&self) -> Taken {
        Taken {
            snapshot: self.snapshot_without_files(),
            remote: self.node.remote_view(),
        }
    }

    fn snapshot_without_files(&self) -> Snapshot {
        Snapshot {
            me: self.node.peer_id(),
            transfer_port: self.node.config().transfer_port,
            new_peers: self.new_peers(),
            peers: self.node.peers(),
            targets: self.node.targets(),
            remote: Vec::new(),
            downloads: self.node.downloads(),
            shared: self.shared.clone(),
            stats: self.stats(),
            notices_dropped: self.notices.dropped(),
            scanned: self.scanned,
            settled: self.node.is_settled(Instant::now()),
            answered: self.node.has_been_answered(Instant::now()),
            python_around: self.node.python_around(),
            allowed: self.node.config().allow.as_ref().map(|a| a.len()),
            dht: self.dht.as_ref().map(crate::dht::DhtNode::status),
        }
    }

    /// Feeds what happened on a socket.
    pub fn input(&mut self, input: Input) {
        self.node.handle_input(Instant::now(), input);
        self.process();
    }

    /// A connection was accepted from `remote`: the node takes it (report its events under the
    /// id), wants it held for later ([`crate::parked`]), or refuses it (drop the socket;
    /// nothing more about it is expected).
    pub fn accept(&mut self, remote: std::net::SocketAddr) -> Admission {
        let admission = self.node.accept(Instant::now(), remote);
        self.process();
        admission
    }

    /// Feeds bytes received on a connection, from the runtime's own buffer.
    pub fn received(&mut self, conn: ConnId, data: &[u8]) {
        self.node.handle_received(Instant::now(), conn, data);
        self.process();
    }

    /// Runs the node's timers if [`Driver::deadline`] has passed (call after every wake-up;
    /// a call before the deadline does nothing).
    pub fn timeout_if_due(&mut self) {
        let now = Instant::now();
        if let Some((cfg, at)) = &mut self.interfaces
            && *at <= now
        {
            *at = now + INTERFACES_EVERY;
            let joined = match &mut self.groups {
                Some(g) => g.follow(&cfg.multicast_interfaces()),
                None => Vec::new(),
            };
            let to = cfg.announce_to(&joined);
            self.node.handle_input(now, Input::AnnounceTo { to });
            self.process();
        }
        if self.node.poll_timeout().is_some_and(|d| d <= now) {
            self.node.handle_timeout(now);
            self.process();
        }
        if self.allow.1 <= now {
            self.allow.1 = now + crate::allow::WATCH_EVERY;
            match self.allow.0.poll() {
                Ok(false) => {}
                Ok(true) => {
                    let keys = self.allow.0.allowed();
                    self.node.handle_input(now, Input::Allow { keys });
                    self.process();
                }
                Err(e) => self.notify(Notice::Warning(format!(
                    "{e}; still serving the keys allowed before"
                ))),
            }
        }
        let k = &self.known;
        if (k.save_at.is_some_and(|t| t <= now) || k.refresh_at <= now)
            && let Some((dir, bytes)) = self.known_save(false)
        {
            self.disk.submit(Job::SaveKnown { dir, bytes });
        }
    }

    /// The native peers listed now that this folder had not met before this run.
    fn new_peers(&self) -> std::collections::BTreeSet<p2pshare_proto::PeerId> {
        self.node
            .peers()
            .into_iter()
            .filter(|p| !p.python && self.known.known.is_new(&p.id))
            .map(|p| p.id)
            .collect()
    }

    /// The known peers' file to write now, if there is a folder to write it in and anything to
    /// say: the peers listed now were seen now. `all` writes even what did not change.
    fn known_save(&mut self, all: bool) -> Option<(std::path::PathBuf, Vec<u8>)> {
        let now = Instant::now();
        let k = &mut self.known;
        k.save_at = None;
        k.refresh_at = now + KNOWN_REFRESH_EVERY;
        let dir = k.dir.clone()?;
        let t = unix_now();
        for p in self.node.peers() {
            if !p.python {
                k.known.seen(&p.id, t);
            }
        }
        k.known.age(t);
        (all || k.known.is_dirty()).then(|| k.known.take_save(&dir))
    }

    /// When to call [`Driver::timeout_if_due`] next.
    pub fn deadline(&self) -> Option<Instant> {
        let interfaces = self.interfaces.as_ref().map(|(_, at)| *at);
        let k = &self.known;
        let known = k.dir.as_ref().map(|_| k.save_at.unwrap_or(k.refresh_at));
        [
            self.node.poll_timeout(),
            interfaces,
            known,
            Some(self.allow.1),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The open shared file with `content`, for a [`Network::send_file`]: from the cache the
    /// disk thread reads through ([`SharedFiles`]), opened now if it is not open (beneath the
    /// folder, never through a symlink, regular files only).
    pub fn shared_file(&self, content: &ContentId) -> Result<Arc<std::fs::File>, DiskError> {
        self.files.open(content).map(|(f, _)| f)
    }

    /// The next network operation to perform (see [`perform`]).
    #[must_use]
    pub fn poll_net(&mut self) -> Option<NetOp> {
        self.net.pop_front()
    }

    /// True once the peer was shut down: perform the remaining [`NetOp`]s, then leave the loop.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Sends a download's events to whoever follows it; forgets the follower after the last
    /// one (or once it is gone).
    fn watch(&mut self, e: &Event) {
        let (content, last) = match e {
            Event::DownloadStarted { content, .. } | Event::Progress { content, .. } => {
                (content, false)
            }
            Event::DownloadDone { content, .. } | Event::DownloadFailed { content, .. } => {
                (content, true)
            }
            _ => return,
        };
        self.watchers
            .retain(|(c, tx)| c != content || (tx.send(e.clone()).is_ok() && !last));
    }

    fn notify(&mut self, n: Notice) {
        for o in &mut self.observers {
            o.send(n.clone());
        }
        self.notices.send(n);
    }

    /// Drains the node: network work is queued for the runtime, disk work goes to the disk
    /// thread (its answers come back through [`Driver::poll_channels`]), events go to the
    /// handle.
    fn process(&mut self) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Net(op) => self.net.push_back(op),
                Output::Disk(op) => self.disk.submit(Job::Node(op)),
                Output::Event(e) => {
                    if let Event::PeerFound { peer, addr } = &e
                        && !p2pshare_proto::python::is_python_peer(peer, *addr)
                        && self.known.known.met(*peer, *addr, unix_now())
                    {
                        self.known.save_soon();
                    }
                    self.watch(&e);
                    self.notify(Notice::Event(e))
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.scanner_stop.store(true, Ordering::Relaxed);
    }
}
