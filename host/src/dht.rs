//! The BitTorrent mainline DHT beside the node (`--dht`, issue 30): who holds a content
//! anywhere, not only on the LAN.
//!
//! With `--dht` a peer runs one mainline DHT node ([`mainline`], BEP 5) and
//! - announces each content it shares under [`content_key`] (our own domain tag, so our keys
//!   never name a BitTorrent swarm) with its transfer port, again every
//!   [`REANNOUNCE_EVERY`], at most [`ANNOUNCES_PER_HOUR`] announces an hour
//!   ([`Schedule`]);
//! - looks a content up when asked ([`DhtNode::lookup`]: a `get` found no holder on the LAN),
//!   at most [`LOOKUPS_PER_MINUTE`] lookups a minute, one per content per
//!   [`LOOKUP_AGAIN_AFTER`], and takes at most [`MAX_HOLDERS`] addresses from each;
//! - publishes where it can be dialled ([`crate::addr_record`]) as a BEP 44 mutable item
//!   signed with the folder's own key, salted with [`addr_record::SALT`]: at the start, when
//!   the addresses change (looked at every [`HEALTH_EVERY`]) and every [`REPUBLISH_EVERY`],
//!   at most [`PUTS_PER_HOUR`] puts an hour ([`RecordSchedule`]);
//! - looks a peer's record up by its key alone when asked ([`DhtNode::resolve`]: a link's
//!   peer does not answer where the link says, or the link gives no address), within the
//!   same bounds as a content's lookup, and takes at most [`MAX_HOLDERS`] addresses from it.
//!
//! Invariants: the event loop never waits on the DHT. The DHT node runs on threads of its own
//! (mainline's actor, our announcer, our record thread, our lookup thread); the driver hands
//! them work through channels that never block it and takes their [`Report`]s in
//! `poll_channels` (a report wakes the loop). An address the DHT gives is only a claim: the
//! driver hands it to the node as a target found by the DHT (`Found::Dht`), and the handshake
//! and the content id check decide, as for any peer; an address a peer's record gives is
//! dialled expecting that peer's key. Names and files never go into the DHT: only the derived
//! keys, (by the protocol) our address and transfer port, and our record: our public key and
//! the addresses we can be dialled at. A node started with [`DhtConfig::bootstrap`] empty
//! talks to the public DHT: tests always give local nodes. On the public DHT our record leaves
//! out, and a resolve drops, every address that is not [`worth_dialling_addr`]; on a private
//! DHT they stay (the tests' peers are on loopback).

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id, MutableItem, ServerSettings, SigningKey};
use p2pshare_proto::{ContentId, Identity, PeerId};
use sha2::{Digest, Sha256};

use crate::addr_record;

/// The domain tag hashed before a content id into its DHT key: our keys are ours alone.
pub const CONTENT_DOMAIN: &[u8] = b"p2pshare-content-v1";
/// How often a shared content is announced again: storing nodes forget an announce after
/// about half an hour (BEP 5's clients do), so this keeps it findable.
pub const REANNOUNCE_EVERY: Duration = Duration::from_secs(30 * 60);
/// The most announces an hour (each one a `get_peers` walk of a few dozen requests, then an
/// `announce_peer` to the closest nodes): 360, one every 10 s on average, so a peer keeps
/// [`REANNOUNCE_EVERY`]'s period for up to 180 contents; with more, each is announced in
/// turn, the oldest first, and the rest wait their turn.
pub const ANNOUNCES_PER_HOUR: u32 = 360;
/// Announces that may go at once when the budget was unused (the start, new files).
pub const ANNOUNCE_BURST: u32 = 16;
/// A failed announce (no DHT node answered yet) is tried again this much later.
pub const ANNOUNCE_RETRY: Duration = Duration::from_secs(30);
/// How often the routing table's size is read for `status` (first a second after the start:
/// the bootstrap's answers are in by then on a LAN).
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// How often our address record is put again when nothing changed: BEP 44's storing nodes
/// drop an item after about two hours, so this keeps it there with room for a lost put.
pub const REPUBLISH_EVERY: Duration = Duration::from_secs(30 * 60);
/// The most puts of our address record an hour (each a `get` walk to the closest nodes, then
/// a `put` to them): the two [`REPUBLISH_EVERY`] asks for, and room for address changes; a
/// host whose addresses flap publishes its latest set within this.
pub const PUTS_PER_HOUR: u32 = 12;
/// Puts that may go at once when the budget was unused.
pub const PUT_BURST: u32 = 3;
/// A failed put (no DHT node answered yet) is tried again this much later.
pub const PUT_RETRY: Duration = Duration::from_secs(30);
/// The most holder addresses taken from one lookup.
pub const MAX_HOLDERS: usize = 16;
/// The most lookups a minute (a lookup is one `get_peers` walk).
pub const LOOKUPS_PER_MINUTE: u32 = 6;
/// One content is looked up again only this much later.
pub const LOOKUP_AGAIN_AFTER: Duration = Duration::from_secs(30);
/// Lookups waiting for the lookup thread, at most (more are refused).
const LOOKUP_QUEUE: usize = 4;
/// What the DHT node may store for others (it may become a server node after a while): a few
/// hundred keys, small lists, few values; a megabyte or two at most.
const STORE_KEYS: usize = 500;
const STORE_PEERS_PER_KEY: usize = 50;
const STORE_VALUES: usize = 100;

/// The DHT key a content is announced and looked up under: the first 20 bytes of
/// SHA-256([`CONTENT_DOMAIN`] ‖ content id).
pub fn content_key(content: &ContentId) -> [u8; 20] {
    let mut h = Sha256::new();
    h.update(CONTENT_DOMAIN);
    h.update(content.0);
    let digest = h.finalize();
    let mut key = [0; 20];
    key.copy_from_slice(&digest[..20]);
    key
}

/// How the DHT node is configured (`--dht`, `--dht-bootstrap`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhtConfig {
    /// The nodes to join the DHT through; empty: the crate's public bootstrap nodes (never in
    /// a test).
    pub bootstrap: Vec<SocketAddrV4>,
}

/// A `--dht-bootstrap HOST:PORT`: its IPv4 addresses (mainline's DHT is IPv4 here).
pub fn parse_bootstrap(s: &str) -> Result<Vec<SocketAddrV4>, String> {
    let addrs = s
        .to_socket_addrs()
        .map_err(|e| format!("--dht-bootstrap {s}: {e}"))?;
    let v4: Vec<SocketAddrV4> = addrs
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(a),
            SocketAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Err(format!(
            "--dht-bootstrap {s}: no IPv4 address (the DHT is IPv4)"
        ));
    }
    Ok(v4)
}

/// True when `addr` is this peer's own transfer address: our port on one of `ours` (this
/// machine's addresses), on loopback or unspecified. A lookup of a content we share names us
/// among its holders; dialling ourselves would only end in the handshake refusing our own key.
/// Another peer on this machine listens on another port, so it is not us.
pub fn is_own(addr: SocketAddr, transfer_port: u16, ours: &[std::net::IpAddr]) -> bool {
    let ip = addr.ip().to_canonical();
    addr.port() == transfer_port && (ip.is_loopback() || ip.is_unspecified() || ours.contains(&ip))
}

/// [`worth_dialling`] for either family: on the public DHT (`public`) an IPv6 address on
/// loopback, link-local (fe80::/10), unique local (fc00::/7) or documentation (2001:db8::/32)
/// space is left out too; unspecified, multicast and port 0 never are worth it. An IPv4-mapped
/// IPv6 address is judged as IPv4.
pub fn worth_dialling_addr(addr: SocketAddr, public: bool) -> bool {
    match addr {
        SocketAddr::V4(a) => worth_dialling(a, public),
        SocketAddr::V6(a) => {
            let ip = a.ip();
            if let Some(v4) = ip.to_ipv4_mapped() {
                return worth_dialling(SocketAddrV4::new(v4, a.port()), public);
            }
            let seg = ip.segments();
            let never = ip.is_unspecified() || ip.is_multicast() || a.port() == 0;
            let local = ip.is_loopback()
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] == 0x2001 && seg[1] == 0x0db8);
            !(never || (public && local))
        }
    }
}

/// True for a holder address worth dialling: on the public DHT (`public`), never one of this
/// machine's or of a private network (loopback, private, link-local, shared, unspecified,
/// broadcast, multicast), so a hostile DHT node cannot turn a lookup into dials of services
/// on our side of the NAT; on a private DHT (`--dht-bootstrap`), any but the unspecified,
/// broadcast and multicast ones and port 0.
pub fn worth_dialling(addr: SocketAddrV4, public: bool) -> bool {
    let ip = addr.ip();
    let never = ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || addr.port() == 0;
    let local = ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_documentation()
        // 100.64.0.0/10, carrier-grade NAT's shared space.
        || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64);
    !(never || (public && local))
}

/// What the DHT threads tell the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A lookup found these holders (new ones of this lookup), `after` its start.
    Holders {
        /// What was looked up.
        content: ContentId,
        /// Where they say they serve it.
        addrs: Vec<SocketAddr>,
        /// Since the lookup started.
        after: Duration,
    },
    /// A lookup ended.
    LookupDone {
        /// What was looked up.
        content: ContentId,
        /// Holders it found in all.
        holders: usize,
        /// How long it took.
        took: Duration,
    },
    /// A shared content was announced.
    Announced {
        /// Which.
        content: ContentId,
        /// How long the announce took.
        took: Duration,
    },
    /// An announce failed (tried again [`ANNOUNCE_RETRY`] later).
    AnnounceFailed {
        /// Which.
        content: ContentId,
        /// What mainline said.
        error: String,
    },
    /// The DHT node's routing table holds this many nodes now (read every 5 s).
    Routing(usize),
    /// Our address record was put.
    Published {
        /// Its sequence number.
        seq: i64,
        /// How many addresses it holds.
        addrs: usize,
        /// The record's length (the item's value), in bytes.
        bytes: usize,
        /// How long the put took.
        took: Duration,
    },
    /// A put of our address record failed (tried again [`PUT_RETRY`] later).
    PublishFailed {
        /// What mainline said.
        error: String,
    },
    /// A peer's record (signed by its key, newer than any this resolve saw before) named these
    /// addresses (new ones of this resolve), `after` its start.
    PeerAddrs {
        /// Whose.
        key: PeerId,
        /// The record's sequence number.
        seq: i64,
        /// Where it says it can be dialled.
        addrs: Vec<SocketAddr>,
        /// Since the resolve started.
        after: Duration,
    },
    /// A record signed by the key, but not one of ours (see [`addr_record::RecordError`]).
    BadRecord {
        /// Whose.
        key: PeerId,
        /// What is wrong with it.
        error: addr_record::RecordError,
    },
    /// A resolve ended.
    ResolveDone {
        /// Whose record was looked up.
        key: PeerId,
        /// The newest record's sequence number, if one was found.
        seq: Option<i64>,
        /// Addresses it gave in all.
        addrs: usize,
        /// How long it took.
        took: Duration,
    },
}

/// What the DHT node did so far: `status` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhtStatus {
    /// The DHT node's UDP address.
    pub local: Option<SocketAddrV4>,
    /// Nodes in its routing table (as last read; 0 before the first reading, or when no DHT
    /// node answers).
    pub routing: usize,
    /// Contents shared now (each announced in turn).
    pub shared: usize,
    /// Announces that succeeded.
    pub announced: u64,
    /// Announces that failed.
    pub announce_failures: u64,
    /// Seconds since the last successful announce, when there was one (as of the snapshot).
    pub last_announce: Option<Duration>,
    /// Lookups started.
    pub lookups: u64,
    /// Lookups refused by the bounds (too soon for that content, too many a minute, queue full).
    pub lookups_refused: u64,
    /// Holder addresses the lookups gave.
    pub holders_found: u64,
    /// Our address record as last put, if it was.
    pub record: Option<RecordStatus>,
    /// Puts of our address record that succeeded.
    pub record_puts: u64,
    /// Puts of our address record that failed.
    pub record_failures: u64,
    /// Peers' records looked up (within the lookups' bounds: counted in `lookups` too).
    pub resolves: u64,
    /// Addresses peers' records gave.
    pub peer_addrs_found: u64,
}

/// Our address record as last put: `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordStatus {
    /// Its sequence number (unix seconds when it was made, or one past the last).
    pub seq: i64,
    /// How many addresses it holds.
    pub addrs: usize,
    /// Its length in bytes.
    pub bytes: usize,
    /// How long ago it was put (as of the snapshot).
    pub ago: Duration,
}

/// A token bucket: `cap` tokens at most, refilled at `per_sec`.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    cap: f64,
    per_sec: f64,
    at: Instant,
}

impl Bucket {
    fn full(cap: u32, per_hour: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(cap),
            cap: f64::from(cap),
            per_sec: f64::from(per_hour) / 3600.0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.cap);
        self.at = self.at.max(now);
    }

    /// Takes a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token is there.
    fn next_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / self.per_sec)
    }
}

/// What [`Schedule::next`] says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Announce this content now (the budget's token is taken, the content marked).
    Announce(ContentId),
    /// Nothing now: look again at this time.
    Wait(Instant),
    /// Nothing to announce until the shared contents change.
    Idle,
}

/// When each shared content is announced: a content never announced first (in the order it
/// came), then the one announced longest ago once [`REANNOUNCE_EVERY`] has passed, within
/// [`ANNOUNCES_PER_HOUR`] (a bucket of [`ANNOUNCE_BURST`]). Pure: time comes in as arguments.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The shared contents, and when each was last announced (or tried, for a failure: then
    /// set so that it is due [`ANNOUNCE_RETRY`] later).
    shared: HashMap<ContentId, Option<Instant>>,
    /// New contents in the order they came.
    order: Vec<ContentId>,
    bucket: Bucket,
}

impl Schedule {
    /// An empty schedule with a full budget at `now`.
    pub fn new(now: Instant) -> Schedule {
        Schedule {
            shared: HashMap::new(),
            order: Vec::new(),
            bucket: Bucket::full(ANNOUNCE_BURST, ANNOUNCES_PER_HOUR, now),
        }
    }

    /// The contents shared now: new ones are due at once, gone ones are forgotten.
    pub fn set_shared(&mut self, contents: impl IntoIterator<Item = ContentId>) {
        let now: BTreeSet<ContentId> = contents.into_iter().collect();
        self.shared.retain(|c, _| now.contains(c));
        self.order.retain(|c| now.contains(c));
        for c in now {
            if let std::collections::hash_map::Entry::Vacant(e) = self.shared.entry(c) {
                e.insert(None);
                self.order.push(c);
            }
        }
    }

    /// Contents shared now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True when nothing is shared.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty()
    }

    /// The content due first, and since when it is due.
    fn due(&self) -> Option<(ContentId, Option<Instant>)> {
        if let Some(c) = self
            .order
            .iter()
            .find(|c| self.shared.get(c) == Some(&None))
        {
            return Some((*c, None));
        }
        self.shared
            .iter()
            .filter_map(|(c, at)| at.map(|at| (*c, at + REANNOUNCE_EVERY)))
            .min_by_key(|(c, at)| (*at, *c))
            .map(|(c, at)| (c, Some(at)))
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        let Some((c, due)) = self.due() else {
            return Next::Idle;
        };
        if let Some(at) = due.filter(|at| *at > now) {
            return Next::Wait(at);
        }
        if !self.bucket.take(now) {
            return Next::Wait(self.bucket.next_at(now));
        }
        self.shared.insert(c, Some(now));
        Next::Announce(c)
    }

    /// The announce of `content` begun at `at` failed: it is due again [`ANNOUNCE_RETRY`]
    /// later.
    pub fn failed(&mut self, content: &ContentId, at: Instant) {
        if let Some(t) = self.shared.get_mut(content) {
            let back = REANNOUNCE_EVERY.saturating_sub(ANNOUNCE_RETRY);
            *t = Some(at.checked_sub(back).unwrap_or(at));
        }
    }
}

/// When our address record is put: at once, whenever the addresses differ from the ones last
/// put, and again [`REPUBLISH_EVERY`]; a failed put again [`PUT_RETRY`] later; all within
/// [`PUTS_PER_HOUR`] (a bucket of [`PUT_BURST`]). Its sequence numbers are the unix time in
/// seconds, or one past the last if that is not later: they grow across restarts (with a
/// clock that does not go back) and within a run. Pure: both clocks come in as arguments.
#[derive(Debug, Clone)]
pub struct RecordSchedule {
    /// The addresses last put, and when.
    published: Option<(Vec<SocketAddr>, Instant)>,
    /// The last sequence number given out.
    seq: Option<i64>,
    /// No put before this (a put failed).
    retry_at: Option<Instant>,
    bucket: Bucket,
}

impl RecordSchedule {
    /// Nothing put yet, a full budget at `now`.
    pub fn new(now: Instant) -> RecordSchedule {
        RecordSchedule {
            published: None,
            seq: None,
            retry_at: None,
            bucket: Bucket::full(PUT_BURST, PUTS_PER_HOUR, now),
        }
    }

    /// Whether to put a record of `addrs` now (`unix`: seconds since the epoch): its sequence
    /// number if so (the budget's token is taken). Nothing while there is no address.
    pub fn due(&mut self, addrs: &[SocketAddr], now: Instant, unix: u64) -> Option<i64> {
        if addrs.is_empty() || self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        let wanted = match &self.published {
            None => true,
            Some((last, at)) => last != addrs || now >= *at + REPUBLISH_EVERY,
        };
        if !wanted || !self.bucket.take(now) {
            return None;
        }
        let unix = i64::try_from(unix).unwrap_or(i64::MAX);
        let seq = match self.seq {
            Some(last) if last >= unix => last.saturating_add(1),
            _ => unix,
        };
        self.seq = Some(seq);
        Some(seq)
    }

    /// A record of ours with sequence number `seq` is in the DHT (read back after a put was
    /// refused as not the most recent: a clock that went back, a record put by a copy of this
    /// folder elsewhere): the next put's number is above it, and it may go at once (within
    /// the budget): why the last one failed is known and mended.
    pub fn seen(&mut self, seq: i64) {
        self.seq = Some(self.seq.map_or(seq, |s| s.max(seq)));
        self.retry_at = None;
    }

    /// The put of `addrs` begun at `at` ended, `ok` or not.
    pub fn done(&mut self, addrs: &[SocketAddr], ok: bool, at: Instant) {
        if ok {
            self.published = Some((addrs.to_vec(), at));
            self.retry_at = None;
        } else {
            self.retry_at = Some(at + PUT_RETRY);
        }
    }
}

/// What the lookup thread looks up: a content's holders, or a peer's address record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lookup {
    Holders(ContentId),
    Peer(PeerId),
}

/// Why a lookup was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// That content was looked up less than [`LOOKUP_AGAIN_AFTER`] ago.
    TooSoon,
    /// [`LOOKUPS_PER_MINUTE`] are used up, or the lookup queue is full.
    Busy,
}

/// The bounds on lookups (of holders and of peers' records together): per content or key, and
/// per minute. Pure.
#[derive(Debug, Clone)]
struct LookupBounds {
    last: HashMap<Lookup, Instant>,
    bucket: Bucket,
}

impl LookupBounds {
    fn new(now: Instant) -> LookupBounds {
        LookupBounds {
            last: HashMap::new(),
            bucket: Bucket::full(LOOKUPS_PER_MINUTE, LOOKUPS_PER_MINUTE * 60, now),
        }
    }

    fn admit(&mut self, what: Lookup, now: Instant) -> Result<(), Refused> {
        self.last
            .retain(|_, at| now.saturating_duration_since(*at) < LOOKUP_AGAIN_AFTER);
        if self.last.contains_key(&what) {
            return Err(Refused::TooSoon);
        }
        if !self.bucket.take(now) {
            return Err(Refused::Busy);
        }
        self.last.insert(what, now);
        Ok(())
    }
}

/// A running DHT node and the threads that use it. Dropping it stops our threads (after the
/// request each is in, if any) and then mainline's.
pub struct DhtNode {
    shared: Sender<Vec<ContentId>>,
    lookups: SyncSender<Lookup>,
    reports: Receiver<Report>,
    /// Never sent on: dropping it ends the record thread.
    _record_stop: Sender<()>,
    bounds: LookupBounds,
    status: DhtStatus,
    last_announce: Option<Instant>,
    last_put: Option<Instant>,
}

impl DhtNode {
    /// Starts a DHT node joining through `cfg`'s bootstrap nodes, announcing at transfer port
    /// `port` and publishing our address record signed by `identity`; `wake` is called (from
    /// the DHT's threads) whenever a [`Report`] is waiting. Fails when its UDP socket cannot
    /// be bound or a thread cannot start.
    pub fn start(
        cfg: &DhtConfig,
        port: u16,
        identity: &Identity,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<DhtNode, std::io::Error> {
        let mut builder = Dht::builder();
        if !cfg.bootstrap.is_empty() {
            builder.bootstrap(&cfg.bootstrap);
        }
        builder.server_settings(ServerSettings {
            max_info_hashes: STORE_KEYS,
            max_peers_per_info_hash: STORE_PEERS_PER_KEY,
            max_immutable_values: STORE_VALUES,
            max_mutable_values: STORE_VALUES,
            ..ServerSettings::default()
        });
        let dht = builder.build()?.as_async();
        let local = futures_lite::future::block_on(dht.info()).local_addr();
        let (report_tx, reports) = mpsc::channel();
        let (shared, shared_rx) = mpsc::channel();
        let (lookups, lookup_rx) = mpsc::sync_channel(LOOKUP_QUEUE);
        {
            let (dht, reports, wake) = (dht.clone(), report_tx.clone(), wake.clone());
            thread::Builder::new()
                .name("p2pshare-dht-announce".into())
                .spawn(move || announce_loop(&dht, port, &shared_rx, &reports, &*wake))?;
        }
        let public = cfg.bootstrap.is_empty();
        let (record_stop, stop_rx) = mpsc::channel();
        {
            let (dht, reports, wake) = (dht.clone(), report_tx.clone(), wake.clone());
            let signer = SigningKey::from_bytes(&identity.secret_bytes());
            thread::Builder::new()
                .name("p2pshare-dht-record".into())
                .spawn(move || {
                    record_loop(&dht, &signer, port, public, &stop_rx, &reports, &*wake)
                })?;
        }
        thread::Builder::new()
            .name("p2pshare-dht-lookup".into())
            .spawn(move || lookup_loop(&dht, public, &lookup_rx, &report_tx, &*wake))?;
        let now = Instant::now();
        Ok(DhtNode {
            shared,
            lookups,
            reports,
            _record_stop: record_stop,
            bounds: LookupBounds::new(now),
            status: DhtStatus {
                local: Some(local),
                ..DhtStatus::default()
            },
            last_announce: None,
            last_put: None,
        })
    }

    /// The contents shared now (after each scan): announced as [`Schedule`] says.
    pub fn set_shared(&mut self, contents: Vec<ContentId>) {
        self.status.shared = contents.len();
        let _ = self.shared.send(contents);
    }

    /// Looks `content`'s holders up, within the bounds; they come as [`Report::Holders`].
    pub fn lookup(&mut self, content: ContentId, now: Instant) -> Result<(), Refused> {
        self.ask(Lookup::Holders(content), now)
    }

    /// Looks `key`'s address record up, within the same bounds as [`DhtNode::lookup`]; its
    /// addresses come as [`Report::PeerAddrs`].
    pub fn resolve(&mut self, key: PeerId, now: Instant) -> Result<(), Refused> {
        let r = self.ask(Lookup::Peer(key), now);
        if r.is_ok() {
            self.status.resolves += 1;
        }
        r
    }

    fn ask(&mut self, what: Lookup, now: Instant) -> Result<(), Refused> {
        let admitted = self.bounds.admit(what, now).and_then(|()| {
            self.lookups.try_send(what).map_err(|e| match e {
                TrySendError::Full(_) | TrySendError::Disconnected(_) => Refused::Busy,
            })
        });
        match admitted {
            Ok(()) => self.status.lookups += 1,
            Err(_) => self.status.lookups_refused += 1,
        }
        admitted
    }

    /// The next report of the DHT's threads, if one is waiting (counted into the status).
    pub fn try_report(&mut self) -> Option<Report> {
        let r = self.reports.try_recv().ok()?;
        match &r {
            Report::Holders { addrs, .. } => self.status.holders_found += addrs.len() as u64,
            Report::Announced { .. } => {
                self.status.announced += 1;
                self.last_announce = Some(Instant::now());
            }
            Report::AnnounceFailed { .. } => self.status.announce_failures += 1,
            Report::Routing(n) => self.status.routing = *n,
            Report::Published {
                seq, addrs, bytes, ..
            } => {
                self.status.record_puts += 1;
                self.last_put = Some(Instant::now());
                self.status.record = Some(RecordStatus {
                    seq: *seq,
                    addrs: *addrs,
                    bytes: *bytes,
                    ago: Duration::ZERO,
                });
            }
            Report::PublishFailed { .. } => self.status.record_failures += 1,
            Report::PeerAddrs { addrs, .. } => {
                self.status.peer_addrs_found += addrs.len() as u64;
            }
            Report::LookupDone { .. } | Report::BadRecord { .. } | Report::ResolveDone { .. } => {}
        }
        Some(r)
    }

    /// What the DHT node did so far.
    pub fn status(&self) -> DhtStatus {
        let mut record = self.status.record;
        if let (Some(r), Some(at)) = (&mut record, self.last_put) {
            r.ago = at.elapsed();
        }
        DhtStatus {
            last_announce: self.last_announce.map(|t| t.elapsed()),
            record,
            ..self.status.clone()
        }
    }
}

/// The announcer thread: announces what [`Schedule`] says, taking the shared contents from
/// `shared` between announces, and reads the routing table's size every [`HEALTH_EVERY`]; ends
/// when the [`DhtNode`] is dropped.
fn announce_loop(
    dht: &AsyncDht,
    port: u16,
    shared: &Receiver<Vec<ContentId>>,
    reports: &Sender<Report>,
    wake: &(dyn Fn() + Send + Sync),
) {
    let mut schedule = Schedule::new(Instant::now());
    let mut health_at = Instant::now() + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if health_at <= now {
            health_at = now + HEALTH_EVERY;
            let n = futures_lite::future::block_on(dht.to_bootstrap()).len();
            if reports.send(Report::Routing(n)).is_err() {
                return;
            }
            wake();
        }
        let wait = match schedule.next(now) {
            Next::Announce(content) => {
                let key = Id::from(content_key(&content));
                let r = futures_lite::future::block_on(dht.announce_peer(key, Some(port)));
                let report = match r {
                    Ok(_) => Report::Announced {
                        content,
                        took: now.elapsed(),
                    },
                    Err(e) => {
                        schedule.failed(&content, now);
                        Report::AnnounceFailed {
                            content,
                            error: e.to_string(),
                        }
                    }
                };
                if reports.send(report).is_err() {
                    return;
                }
                wake();
                Duration::ZERO
            }
            Next::Wait(at) => at.min(health_at).saturating_duration_since(now),
            Next::Idle => health_at.saturating_duration_since(now),
        };
        match shared.recv_timeout(wait) {
            Ok(contents) => schedule.set_shared(contents),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // The newest list only.
        while let Ok(contents) = shared.try_recv() {
            schedule.set_shared(contents);
        }
    }
}

/// Where this host can be dialled at transfer port `port`: the addresses a link names
/// ([`crate::interfaces::link_ips`]), each [`worth_dialling_addr`] (`public`: the public DHT),
/// at most [`addr_record::MAX_ADDRS`].
pub fn our_addrs(port: u16, public: bool) -> Vec<SocketAddr> {
    let (ips, _) = crate::interfaces::link_ips();
    let addrs: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .filter(|a| worth_dialling_addr(*a, public))
        .collect();
    addr_record::normalize(&addrs)
}

/// The record thread: every [`HEALTH_EVERY`] reads our addresses ([`our_addrs`], one
/// `getifaddrs`) and puts our record when [`RecordSchedule`] says so; ends when the
/// [`DhtNode`] is dropped (`stop` disconnects).
fn record_loop(
    dht: &AsyncDht,
    signer: &SigningKey,
    port: u16,
    public: bool,
    stop: &Receiver<()>,
    reports: &Sender<Report>,
    wake: &(dyn Fn() + Send + Sync),
) {
    let mut schedule = RecordSchedule::new(Instant::now());
    loop {
        let addrs = our_addrs(port, public);
        let now = Instant::now();
        if let Some(seq) = schedule.due(&addrs, now, crate::driver::unix_now()) {
            let value = addr_record::encode(&addrs);
            let item = MutableItem::new(signer.clone(), &value, seq, Some(addr_record::SALT));
            let r = futures_lite::future::block_on(dht.put_mutable(item, None));
            schedule.done(&addrs, r.is_ok(), now);
            if let Err(mainline::errors::PutMutableError::Concurrency(_)) = &r {
                // A storing node holds a newer record of ours: the next put goes above it.
                let key = signer.verifying_key().to_bytes();
                let newest = futures_lite::future::block_on(
                    dht.get_mutable_most_recent(&key, Some(addr_record::SALT)),
                );
                if let Some(item) = newest.filter(|i| i.key() == &key) {
                    schedule.seen(item.seq());
                }
            }
            let report = match r {
                Ok(_) => Report::Published {
                    seq,
                    addrs: addrs.len(),
                    bytes: value.len(),
                    took: now.elapsed(),
                },
                Err(e) => Report::PublishFailed {
                    error: e.to_string(),
                },
            };
            if reports.send(report).is_err() {
                return;
            }
            wake();
        }
        if let Err(RecvTimeoutError::Disconnected) = stop.recv_timeout(HEALTH_EVERY) {
            return;
        }
    }
}

/// The lookup thread: one lookup at a time, each holder batch reported as it comes, at most
/// [`MAX_HOLDERS`] addresses a lookup, each [`worth_dialling`] (`public`: the public DHT);
/// a peer's record likewise ([`resolve`]); ends when the [`DhtNode`] is dropped.
fn lookup_loop(
    dht: &AsyncDht,
    public: bool,
    lookups: &Receiver<Lookup>,
    reports: &Sender<Report>,
    wake: &(dyn Fn() + Send + Sync),
) {
    while let Ok(what) = lookups.recv() {
        let content = match what {
            Lookup::Holders(content) => content,
            Lookup::Peer(key) => {
                if !resolve(dht, key, public, reports, wake) {
                    return;
                }
                continue;
            }
        };
        let start = Instant::now();
        let key = Id::from(content_key(&content));
        let mut stream = dht.get_peers(key);
        let mut seen = BTreeSet::new();
        let ok = futures_lite::future::block_on(async {
            while let Some(batch) = stream.next().await {
                let addrs: Vec<SocketAddr> = batch
                    .into_iter()
                    .filter(|a| worth_dialling(*a, public))
                    .map(SocketAddr::V4)
                    .filter(|a| seen.len() < MAX_HOLDERS && seen.insert(*a))
                    .collect();
                if !addrs.is_empty() {
                    let after = start.elapsed();
                    if reports
                        .send(Report::Holders {
                            content,
                            addrs,
                            after,
                        })
                        .is_err()
                    {
                        return false;
                    }
                    wake();
                }
                if seen.len() >= MAX_HOLDERS {
                    break;
                }
            }
            true
        });
        let done = Report::LookupDone {
            content,
            holders: seen.len(),
            took: start.elapsed(),
        };
        if !ok || reports.send(done).is_err() {
            return;
        }
        wake();
    }
}

/// Looks `key`'s address record up: each record signed by `key` (mainline checks the
/// signature and that the item is the one of `key` and our salt; we check the key once more)
/// that is newer than any seen before in this resolve is decoded, and its new addresses
/// [`worth_dialling_addr`] reported, at most [`MAX_HOLDERS`] in all. False when the driver is
/// gone.
fn resolve(
    dht: &AsyncDht,
    key: PeerId,
    public: bool,
    reports: &Sender<Report>,
    wake: &(dyn Fn() + Send + Sync),
) -> bool {
    let start = Instant::now();
    let mut stream = dht.get_mutable(&key.0, Some(addr_record::SALT), None);
    let mut seen = BTreeSet::new();
    let mut newest: Option<i64> = None;
    let ok = futures_lite::future::block_on(async {
        while let Some(item) = stream.next().await {
            if item.key() != &key.0 || newest.is_some_and(|n| item.seq() <= n) {
                continue;
            }
            newest = Some(item.seq());
            let report = match addr_record::decode(item.value()) {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs
                        .into_iter()
                        .filter(|a| worth_dialling_addr(*a, public))
                        .filter(|a| seen.len() < MAX_HOLDERS && seen.insert(*a))
                        .collect();
                    if addrs.is_empty() {
                        continue;
                    }
                    Report::PeerAddrs {
                        key,
                        seq: item.seq(),
                        addrs,
                        after: start.elapsed(),
                    }
                }
                Err(error) => Report::BadRecord { key, error },
            };
            if reports.send(report).is_err() {
                return false;
            }
            wake();
        }
        true
    });
    let done = Report::ResolveDone {
        key,
        seq: newest,
        addrs: seen.len(),
        took: start.elapsed(),
    };
    if !ok || reports.send(done).is_err() {
        return false;
    }
    wake();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_transfer_address_is_ours_and_another_port_is_not() {
        let ours: Vec<std::net::IpAddr> =
            vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(is_own(at("10.0.0.5:10000"), 10000, &ours));
        assert!(is_own(at("[fd00::5]:10000"), 10000, &ours));
        assert!(is_own(at("[::ffff:10.0.0.5]:10000"), 10000, &ours));
        assert!(is_own(at("127.0.0.1:10000"), 10000, &ours));
        // Another peer on this machine, or our port elsewhere.
        assert!(!is_own(at("10.0.0.5:10001"), 10000, &ours));
        assert!(!is_own(at("127.0.0.1:10001"), 10000, &ours));
        assert!(!is_own(at("10.0.0.6:10000"), 10000, &ours));
    }

    fn c(b: u8) -> ContentId {
        ContentId([b; 32])
    }

    #[test]
    fn the_key_is_the_tagged_hash_not_the_ids_prefix() {
        let id = c(0xab);
        let key = content_key(&id);
        let mut h = Sha256::new();
        h.update(b"p2pshare-content-v1");
        h.update([0xab; 32]);
        assert_eq!(key[..], h.finalize()[..20]);
        assert_ne!(key[..], id.0[..20]);
        // Nor the untagged hash (the id hashed alone, as another program might).
        assert_ne!(key[..], Sha256::digest(id.0)[..20]);
        assert_ne!(content_key(&c(1)), content_key(&c(2)));
    }

    #[test]
    fn the_public_dht_never_names_a_local_holder() {
        let a = |s: &str| s.parse::<SocketAddrV4>().unwrap();
        for local in [
            "127.0.0.1:10000",
            "10.1.2.3:10000",
            "192.168.1.5:10000",
            "172.16.0.1:10000",
            "169.254.1.1:10000",
            "100.64.0.1:10000",
        ] {
            assert!(!worth_dialling(a(local), true), "{local}");
            assert!(worth_dialling(a(local), false), "{local} on a private DHT");
        }
        for never in [
            "0.0.0.0:10000",
            "255.255.255.255:10000",
            "224.0.0.1:10000",
            "8.8.8.8:0",
        ] {
            assert!(!worth_dialling(a(never), false), "{never}");
        }
        assert!(worth_dialling(a("198.51.99.7:10000"), true));
        assert!(worth_dialling(a("100.128.0.1:10000"), true));
    }

    #[test]
    fn new_contents_go_first_then_each_again_after_the_period() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        assert_eq!(s.next(t0), Next::Idle);
        s.set_shared([c(1), c(2)]);
        let mut got = vec![];
        for _ in 0..2 {
            match s.next(t0) {
                Next::Announce(x) => got.push(x),
                other => panic!("expected an announce, got {other:?}"),
            }
        }
        got.sort();
        assert_eq!(got, [c(1), c(2)]);
        assert_eq!(s.next(t0), Next::Wait(t0 + REANNOUNCE_EVERY));
        // A new file is due at once; a removed one never again.
        s.set_shared([c(2), c(3)]);
        assert_eq!(s.next(t0), Next::Announce(c(3)));
        let later = t0 + REANNOUNCE_EVERY;
        assert_eq!(s.next(later), Next::Announce(c(2)));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn announces_stay_within_the_hourly_budget() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        s.set_shared((0..=255).map(c));
        let mut announced = 0u32;
        let mut now = t0;
        let hour = t0 + Duration::from_secs(3600);
        while now < hour {
            match s.next(now) {
                Next::Announce(_) => announced += 1,
                Next::Wait(at) => now = at.max(now + Duration::from_millis(1)),
                Next::Idle => unreachable!("256 contents are shared"),
            }
        }
        // The burst, then the hourly rate (the last token may land right at the hour).
        assert!(
            announced <= ANNOUNCE_BURST + ANNOUNCES_PER_HOUR + 1,
            "{announced}"
        );
        assert!(announced >= ANNOUNCES_PER_HOUR, "{announced}");
    }

    #[test]
    fn a_failed_announce_is_tried_again_soon() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        s.set_shared([c(1)]);
        assert_eq!(s.next(t0), Next::Announce(c(1)));
        s.failed(&c(1), t0);
        assert_eq!(s.next(t0), Next::Wait(t0 + ANNOUNCE_RETRY));
    }

    #[test]
    fn lookups_are_bounded_per_content_and_per_minute() {
        let t0 = Instant::now();
        let mut b = LookupBounds::new(t0);
        let h = |b: u8| Lookup::Holders(c(b));
        assert_eq!(b.admit(h(0), t0), Ok(()));
        assert_eq!(b.admit(h(0), t0), Err(Refused::TooSoon));
        for i in 1..LOOKUPS_PER_MINUTE {
            assert_eq!(b.admit(h(i as u8), t0), Ok(()));
        }
        assert_eq!(b.admit(h(200), t0), Err(Refused::Busy));
        let later = t0 + LOOKUP_AGAIN_AFTER;
        assert_eq!(b.admit(h(0), later), Ok(()));
    }

    #[test]
    fn resolves_share_the_lookups_bounds() {
        let t0 = Instant::now();
        let mut b = LookupBounds::new(t0);
        let p = |b: u8| Lookup::Peer(PeerId([b; 32]));
        assert_eq!(b.admit(p(1), t0), Ok(()));
        // The same key again only after LOOKUP_AGAIN_AFTER; a content of the same bytes is
        // another lookup.
        assert_eq!(b.admit(p(1), t0), Err(Refused::TooSoon));
        assert_eq!(b.admit(Lookup::Holders(c(1)), t0), Ok(()));
        for i in 2..LOOKUPS_PER_MINUTE {
            assert_eq!(b.admit(p(i as u8), t0), Ok(()));
        }
        // The minute's budget is spent by both kinds together.
        assert_eq!(b.admit(p(100), t0), Err(Refused::Busy));
        assert_eq!(b.admit(p(100), t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.admit(p(1), t0 + LOOKUP_AGAIN_AFTER), Ok(()));
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_record_is_put_at_once_on_a_change_and_every_half_hour() {
        let t0 = Instant::now();
        let unix = 1_800_000_000;
        let mut r = RecordSchedule::new(t0);
        assert_eq!(r.due(&[], t0, unix), None, "no address: nothing to put");
        let a = [sa("10.0.0.2:10000")];
        let b = [sa("10.0.0.3:10000")];
        assert_eq!(r.due(&a, t0, unix), Some(unix as i64));
        r.done(&a, true, t0);
        assert_eq!(r.due(&a, t0 + Duration::from_secs(5), unix + 5), None);
        // Changed: at once, and the same second still gives a larger seq.
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(r.due(&b, t1, unix), Some(unix as i64 + 1));
        r.done(&b, true, t1);
        assert_eq!(
            r.due(&b, t1 + REPUBLISH_EVERY - Duration::from_secs(1), unix),
            None
        );
        let t2 = t1 + REPUBLISH_EVERY;
        assert_eq!(r.due(&b, t2, unix + 1806), Some(unix as i64 + 1806));
        // A failed put waits PUT_RETRY.
        r.done(&b, false, t2);
        assert_eq!(
            r.due(&b, t2 + PUT_RETRY - Duration::from_secs(1), unix + 1830),
            None
        );
        assert_eq!(
            r.due(&b, t2 + PUT_RETRY, unix + 1836),
            Some(unix as i64 + 1836)
        );
        // Refused as not the most recent, and a newer record of ours read back (a clock that
        // went back): at once, above it.
        let t3 = t2 + PUT_RETRY;
        r.done(&b, false, t3);
        assert_eq!(r.due(&b, t3, unix + 1836), None);
        r.seen(unix as i64 + 5000);
        assert_eq!(r.due(&b, t3, unix + 1836), Some(unix as i64 + 5001));
    }

    #[test]
    fn flapping_addresses_stay_within_the_hourly_puts() {
        let t0 = Instant::now();
        let mut r = RecordSchedule::new(t0);
        let mut puts = 0;
        let mut last = None;
        // A new address set every HEALTH_EVERY for an hour.
        for i in 0..720u32 {
            let now = t0 + HEALTH_EVERY * i;
            let addrs = [SocketAddr::new(
                [10, 0, (i / 256) as u8, i as u8].into(),
                10000,
            )];
            if let Some(seq) = r.due(&addrs, now, 1_800_000_000 + u64::from(i) * 5) {
                assert!(last.is_none_or(|l| seq > l), "seq grows");
                last = Some(seq);
                r.done(&addrs, true, now);
                puts += 1;
            }
        }
        assert!(puts <= PUT_BURST + PUTS_PER_HOUR, "{puts}");
        assert!(puts >= PUTS_PER_HOUR, "{puts}");
    }

    #[test]
    fn the_public_dht_keeps_no_local_ipv6_either() {
        for local in [
            "[::1]:1",
            "[fe80::1]:1",
            "[fd00::1]:1",
            "[2001:db8::1]:1",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(!worth_dialling_addr(sa(local), true), "{local}");
            assert!(
                worth_dialling_addr(sa(local), false),
                "{local} on a private DHT"
            );
        }
        for never in ["[::]:1", "[ff02::1]:1", "[2a00::1]:0"] {
            assert!(!worth_dialling_addr(sa(never), false), "{never}");
        }
        assert!(worth_dialling_addr(sa("[2a00:1450::1]:10000"), true));
        assert!(worth_dialling_addr(sa("198.51.99.7:10000"), true));
    }

    #[test]
    fn the_folders_key_signs_the_record_and_names_its_target() {
        let id = Identity::from_secret_bytes(&[7; 32]);
        let signer = SigningKey::from_bytes(&id.secret_bytes());
        // mainline's ed25519 key of our secret is our PeerId.
        assert_eq!(signer.verifying_key().to_bytes(), id.key().0);
        let value = addr_record::encode(&[sa("10.0.0.2:10000")]);
        let item = MutableItem::new(signer, &value, 5, Some(addr_record::SALT));
        assert_eq!(
            *item.target(),
            MutableItem::target_from_key(&id.key().0, Some(addr_record::SALT)),
            "a resolver needs the key alone"
        );
        assert_ne!(
            *item.target(),
            MutableItem::target_from_key(&id.key().0, None)
        );
        assert!(value.len() < 1000);
    }
}
