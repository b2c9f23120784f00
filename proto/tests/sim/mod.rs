//! A deterministic simulator of whole p2pshare networks: N sans-IO `Node`s on one virtual clock,
//! a LAN model, an in-memory store per host, node faults, and invariant checks after every step.
//!
//! How a run goes: [`Sim::new`] draws a world from the seed (hosts, files, who holds and who
//! wants what, misbehaving peers, a schedule of faults that all heal by `heal_at`), then
//! [`Sim::run`] pops events in (time, sequence) order. Time jumps to the earlier of the next
//! queued event (a delivery, a disk answer, a fault, a user command) and the earliest node
//! deadline (`poll_timeout`). Every output of a node is performed at once: datagrams and bytes
//! become future deliveries, disk work becomes a future answer.
//!
//! The LAN: one broadcast domain (split by partitions, which heal) delivering each announcement
//! to every host on the segment, the sender included, with loss, duplication and jitter (hence
//! reordering); TCP connections as ordered byte streams cut into arbitrary pieces, paced by the
//! sender's uplink rate plus a per-host latency, which can be reset, stalled, or half-closed.
//!
//! Invariants checked after every step (a violation ends the run with a [`Failure`]); those of
//! one node are the checked pump's ([`checked::Checked`], shared with the other tests that drive
//! nodes), the rest need the whole world:
//! - no chunk is written whose bytes fail the manifest's hash ([`Kind::CorruptWrite`]);
//! - no finish is asked before the whole partial file hashes to the file hash
//!   ([`Kind::EarlyFinish`]);
//! - `Node::check_invariants` holds (every chunk in exactly one state) ([`Kind::NodeInvariant`]);
//! - a peer the host has heard nothing from for the discovery expiry is not in its `peers()`
//!   ([`Kind::PeerNotExpired`]);
//! - `poll_timeout()` after `handle_timeout(now)` is later than `now` ([`Kind::BusyLoop`]);
//! - connections, receive buffers and outputs per step stay bounded ([`Kind::Unbounded`]);
//! - reads and opens stay inside files the world has ([`Kind::BadRequest`]);
//! - liveness: a download attempt completes or fails within [`ATTEMPT_BOUND`]
//!   ([`Kind::Stuck`]); with an honest holder alive after the heal, every wanted file is
//!   downloaded before the run ends ([`Kind::Liveness`]);
//! - against the adversaries of [`adversary`] (impersonators, askers that never read,
//!   drip-feeding holders, peer-table flooders): an honest holder is never blamed for bytes it
//!   did not send ([`Kind::Framed`]); no node owes more than its send budgets
//!   ([`Kind::OverBudget`]) or lists more than 32 peers from one address; a connection whose
//!   queues or budget are full is no longer read ([`Kind::NotPaused`]); one whose reader does
//!   not read is closed by its deadline ([`Kind::NotReadingKept`]); a spoofer's claims about
//!   a peer never change, nor remove, the entry listed at another address ([`Kind::Evicted`]);
//!   no world lets its queue of events run away ([`Kind::Runaway`]);
//! - against the claim liars of crowds ([`crowd`]): a partial holder that refuses what it
//!   claimed costs itself, not its victims: no host sends it more than [`MAX_REFUSED_PER_SEC`]
//!   requests in a second that it refuses ([`Kind::Unpunished`]);
//! - in routed worlds ([`subnets`]: several subnets, routers that drop broadcast, hosts that
//!   learn each other through links and the peers they met before, restarts among the
//!   faults): a holder counts for liveness only where a route and a way to learn it exist, and
//!   every pair of settled honest hosts a router joins, one whose running node was told of
//!   the other, lists each other ([`Kind::Unlisted`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is the virtual clock's offset.
#![allow(clippy::disallowed_methods)]

pub mod adversary;
#[path = "../support/checked.rs"]
pub mod checked;
mod checks;
pub mod crowd;
mod disk;
mod faults;
mod feed;
mod folders;
mod lan;
pub mod rng;
pub mod scenario;
#[path = "../support/mem_store.rs"]
pub mod store;
pub mod subnets;
mod sweep;
pub mod trace;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use sweep::{Sweep, Until, run_seed, sweep, sweep_on};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use p2pshare_proto::noise::Channel;
use p2pshare_proto::wire::frame::{self, Frame, Message};
use p2pshare_proto::{
    Bugs, Command, Config, ConnId, ContentId, DiskError, DiskOp, Event, Input, LocalFile, Manifest,
    Node, Output, PeerId, ReadSource,
};

use checked::{Checked, Violation};
use rng::SimRng;
use store::Store;

/// Virtual time: nanoseconds since the start of the run.
pub type Nanos = u64;
/// A millisecond.
pub const MS: Nanos = 1_000_000;
/// A second.
pub const SEC: Nanos = 1_000 * MS;
/// Where every node announces.
pub const BROADCAST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 255, 255)), 9999);
/// Announcement interval of every node (the default).
pub const INTERVAL: Nanos = 5 * SEC;
/// Discovery's expiry: 3½ intervals.
pub const EXPIRY: Nanos = INTERVAL * 7 / 2;
/// The longest a download attempt may run without completing or failing.
pub const ATTEMPT_BOUND: Nanos = 120 * SEC;
/// After the heal, the user keeps retrying failed downloads this long.
pub const RETRY_WINDOW: Nanos = 30 * SEC;
/// After the heal, the run ends at the latest this much later.
pub const HARD_END: Nanos = 150 * SEC;
/// Events that may wait in the queue at once: 200 times the most seen in a sweep (about 5,000,
/// in the world of 50 hosts), so that only a runaway reaches it ([`Kind::Runaway`]).
pub const MAX_QUEUED_EVENTS: usize = 1_000_000;

/// Which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A chunk whose bytes fail the manifest hash was written.
    CorruptWrite,
    /// A finish was asked before the whole file was written and matched its SHA-256.
    EarlyFinish,
    /// A finished file differs from the original.
    WrongFile,
    /// `Node::check_invariants` failed.
    NodeInvariant,
    /// A peer silent past the expiry is still listed.
    PeerNotExpired,
    /// `poll_timeout()` after `handle_timeout(now)` was not later than `now`.
    BusyLoop,
    /// A queue or buffer grew past its bound.
    Unbounded,
    /// A download attempt neither completed nor failed within the bound.
    Stuck,
    /// With an honest holder, a wanted file was never downloaded.
    Liveness,
    /// The node panicked.
    Panic,
    /// An honest holder was rejected for a chunk, a manifest or a refusal it never sent (an
    /// answer counted on a connection other than our own link to it).
    Framed,
    /// A node owes more than its send budgets allow, or lists more peers from one address than
    /// the table's cap.
    OverBudget,
    /// A connection whose serve queues or send budget are full is still being read.
    NotPaused,
    /// A connection whose reader stopped reading outlived its read deadline.
    NotReadingKept,
    /// A chunk of a download in progress was read to be served before it was verified and
    /// written.
    UnverifiedServe,
    /// A datagram from a spoofer changed or removed a peer listed at another address.
    Evicted,
    /// More than [`MAX_QUEUED_EVENTS`] events wait at once: something schedules events
    /// faster than they are used up, and the world would run for hours instead of failing.
    Runaway,
    /// A disk or network request about a file nobody has, or past its end.
    BadRequest,
    /// A session is open under the id of another host than the one at its other end.
    Impersonated,
    /// A host asked a claim liar for more than [`MAX_REFUSED_PER_SEC`] chunks in a second that
    /// the liar refused: its refusals cost it nothing.
    Unpunished,
    /// In a routed world, two hosts a router joins, one whose running node was told of the
    /// other (a link, a peer met before), do not list each other long after the last fault.
    Unlisted,
}

impl Kind {
    /// The kind of a post-condition the checked pump found broken.
    fn of(v: &Violation) -> Kind {
        match v {
            Violation::Panic(_) => Kind::Panic,
            Violation::TooManyOutputs(_) | Violation::Buffered { .. } => Kind::Unbounded,
            Violation::Invariant(_) => Kind::NodeInvariant,
            Violation::CorruptWrite(_) => Kind::CorruptWrite,
            Violation::EarlyFinish(_) => Kind::EarlyFinish,
            Violation::UnverifiedServe(_) => Kind::UnverifiedServe,
            Violation::BadRequest(_) => Kind::BadRequest,
            Violation::PeerNotExpired(_) => Kind::PeerNotExpired,
            Violation::BusyLoop(_) => Kind::BusyLoop,
        }
    }
}

/// Refusals one host may draw from one claim liar in any second of virtual time. Refusals
/// cost the liar: a partial holder is paused at its first `Busy`, loses each refused claim
/// and is not believed after `MAX_CLAIM_STRIKES`, and any holder is paused after
/// `MAX_REFUSAL_RUN` refusals in a row, pauses doubling; so a download sees a few windows of
/// refusals, a run of 16 and what a restart begins again, not one refusal per round trip
/// (hundreds a second on the simulated LAN).
pub const MAX_REFUSED_PER_SEC: usize = 64;

/// A violated invariant, with enough to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed of the run.
    pub seed: u64,
    /// The step it happened at.
    pub step: u64,
    /// Virtual time.
    pub at: Nanos,
    /// Which check.
    pub kind: Kind,
    /// What exactly.
    pub msg: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={} step={} t={:.6}s {:?}: {}\n  replay: P2PSHARE_SIM_SEED={} cargo test -p p2pshare-proto --test sim_replay -- --nocapture",
            self.seed,
            self.step,
            self.at as f64 / SEC as f64,
            self.kind,
            self.msg,
            self.seed
        )
    }
}

type Res = Result<(), Failure>;

/// What a finished run looked like.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Hash of every input and output, in order.
    pub trace_hash: u64,
    /// Steps taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub end: Nanos,
    /// Hosts.
    pub hosts: usize,
    /// Downloads wanted / completed.
    pub wanted: usize,
    /// Downloads completed.
    pub done: usize,
    /// Faults injected.
    pub faults: usize,
}

/// How a host misbehaves, for its whole life (these never heal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Honest.
    Honest,
    /// Flips a byte in a served chunk with this probability.
    Corrupt(f64),
    /// Lists a file it does not have (its reads of it fail).
    CatalogLiar,
    /// Serves manifests that do not match their content id.
    ManifestLiar,
    /// Answers catalogs but never manifest or chunk requests.
    Mute,
    /// Closes the connection in the middle of a chunk with this probability.
    Closer(f64),
    /// Not a node: connects to others claiming another host's peer id in its hello and sends
    /// junk answers (corrupt chunks, refusals, bad manifests) for the files they want.
    Impersonator,
    /// Not a node: connects, says hello, then asks (catalogs, manifests, chunks) in a loop and
    /// never reads a byte.
    AskNoRead,
    /// A node whose stream, once it starts a chunk, trickles out a few bytes a second: the
    /// connection stays alive, the chunk never arrives in time.
    DripFeed,
    /// Not a node: announces many fresh peer ids from its address.
    TableFlood,
    /// Not a node, and no key of theirs: replays other hosts' signed announcements — an old
    /// one and the latest from its own address, a forged one (a bit of its signature flipped),
    /// and an old one from the victim's own address (it spoofs the source) — to evict them or
    /// turn back what others believe of them.
    Spoofer,
    /// A node of a crowd that downloads honestly but lies about what it has (issue 27, item
    /// 1): every bitfield it sends claims every chunk (but those of its last byte), and every
    /// chunk it is asked for (one it has or not) is refused as `Busy` or `Taken`, or never
    /// answered (a stall).
    ClaimLiar(Liar),
}

/// How a [`Behaviour::ClaimLiar`] fails to honour its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liar {
    /// It answers every chunk request with `Error{Busy}`.
    Busy,
    /// ... with `Error{Taken}`.
    Taken,
    /// It never answers a chunk request.
    Stall,
}

impl Behaviour {
    /// True for the adversaries that are no node at all: the simulator speaks for them.
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            Behaviour::Impersonator
                | Behaviour::AskNoRead
                | Behaviour::TableFlood
                | Behaviour::Spoofer
        )
    }
}

/// A file of the world.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// Its name.
    pub name: String,
    /// Its bytes.
    pub data: Rc<Vec<u8>>,
    /// Its manifest.
    pub manifest: Manifest,
}

/// One host: a node (while it runs), its store, and its place on the LAN.
pub struct Host {
    /// Its peer id (kept across restarts): the public key of `secret`.
    pub id: PeerId,
    /// Its identity's secret (its folder's key file), drawn from the seed.
    pub secret: [u8; 32],
    /// A drip-feeder's connections (its node's ids) that started a chunk: their sealed bytes
    /// trickle out from there on.
    drip_marks: Arc<Mutex<BTreeSet<ConnId>>>,
    /// A claim liar's connections (its node's ids) and the chunk requests it refused on each
    /// since the LAN last looked (the `Unpunished` check counts them per asker).
    refusals: Arc<Mutex<BTreeMap<ConnId, u32>>>,
    /// The instance of its running node (what its announcements carry).
    pub instance: u64,
    /// Its IP address.
    pub ip: Ipv4Addr,
    /// The running node, every call checked; `None` while crashed.
    pub node: Option<Checked>,
    /// Bumped on every crash: deliveries to an older incarnation are dropped.
    pub inc: u32,
    /// Gone for good.
    pub departed: bool,
    /// Paused: deliveries wait in `backlog` and timers do not run.
    pub paused: bool,
    backlog: VecDeque<Arrival>,
    /// The node's `poll_timeout`, in virtual time.
    deadline: Option<Nanos>,
    /// Its disk.
    pub store: Store,
    /// What it shares (what a folder scan would find, lies included).
    pub catalog: Vec<LocalFile>,
    /// Since when it shares each content (for the liveness oracle: a host that got a file
    /// after the user stopped asking was no source the user could have used).
    pub shares_since: BTreeMap<ContentId, Nanos>,
    /// How it misbehaves.
    pub behaviour: Behaviour,
    /// Planted bugs of its node.
    pub bugs: Bugs,
    /// Partition group (equal groups hear each other).
    pub group: u8,
    /// Its subnet (a routed world's; 0 otherwise): broadcast reaches only its own.
    pub subnet: u8,
    /// Hosts it was told of beyond its subnet: met in an earlier run, or named by a link (what
    /// the liveness oracle counts as a way to learn a host no broadcast reaches).
    pub contacts: BTreeSet<usize>,
    /// Hosts its node met (its known-peers store: probed on every start, routed worlds only).
    pub met: BTreeSet<usize>,
    /// Hosts beyond its subnet its running node was told of (probed at its start, or a link's
    /// peers since): what the `Unlisted` check holds it to. A link given before a crash is
    /// not remembered unless it was met, as a real peer's is not.
    pub told: BTreeSet<usize>,
    /// When its node last started.
    pub started_at: Nanos,
    /// Uplink rate, bytes per second.
    pub up_rate: u64,
    tx_busy: Nanos,
    /// One-way latency contribution of this host.
    pub lat: Nanos,
    /// Disk latency of one operation.
    pub disk_lat: Nanos,
    /// Disk latency while slow (until the heal).
    pub disk_slow: Option<Nanos>,
    disk_busy: Nanos,
    /// Probability that a write fails with `NoSpace` (until the heal).
    pub write_fail: f64,
    pending_disk: BTreeMap<u64, DiskOp>,
    /// Last time this host's node was handed anything from host `i`.
    heard: Vec<Nanos>,
    /// Earliest time a listed peer could be overdue (cached).
    expiry_check_at: Nanos,
}

#[derive(Debug, Clone, Copy)]
struct End {
    host: usize,
    inc: u32,
    /// The node's id for it: the accepting end has one only once its node accepted it.
    conn: Option<ConnId>,
    open: bool,
}

/// What waits for a paused host: inputs, accepts, and events on connections it has not
/// accepted yet (they need the id the accept gives).
enum Arrival {
    Input(Input, Option<usize>),
    Accept(usize),
    Event(Ev),
}

/// Re-frames the plaintext a misbehaving node sends on one connection (before its node seals
/// it: [`Node::set_tamper`]) to drop or falsify answers; a drip-feeder's only marks the
/// connection once a chunk starts (its sealed bytes trickle from there, see `lan.rs`), and a
/// claim liar's counts the chunk requests it refused.
#[derive(Debug, Default)]
struct Rewriter {
    buf: Vec<u8>,
    /// Chunk requests a claim liar refused since its host last looked (see `refusals`).
    refused: u32,
}

struct SimConn {
    ends: [End; 2],
    reset: bool,
    /// Per receiving end: arrival time of the last byte scheduled to it.
    last_arrival: [Nanos; 2],
    /// Per sending end: when its last bytes leave the uplink.
    flush_at: [Nanos; 2],
    /// Per sending end: held back until.
    stall_until: [Nanos; 2],
    /// Per receiving end: its node stopped reading (`NetOp::Pause`); what arrives waits in
    /// `held` until `NetOp::Resume`.
    holding: [bool; 2],
    /// Per receiving end: what arrived while it was not reading, in order (`None`: the other
    /// end's FIN).
    held: [VecDeque<Option<Vec<u8>>>; 2],
    /// Per sending end: its `Flushed` waits until the receiver reads again (the receiver's
    /// kernel buffer, [`KERNEL_BUF`], is full).
    flush_owed: [bool; 2],
    /// Per sending end: since when its `Flushed` is withheld.
    withheld_since: [Option<Nanos>; 2],
    /// Per sending end: bytes written since its node was last told `Flushed`. None: what it
    /// wrote since was empty (a misbehaving node's tamper may leave nothing of a send), and
    /// a kernel takes an empty write at once, full buffer or not.
    unflushed: [u64; 2],
    /// End 0 is no node: an adversary the simulator speaks for ([`Behaviour::is_raw`]).
    raw: bool,
    /// The adversary's end of a raw connection: its handshake (under its own key), then its
    /// records.
    adv: Option<Box<Channel>>,
    /// What the adversary said before its handshake was done: sealed once it is.
    adv_out: Vec<u8>,
    /// Per sending end of a [`Behaviour::DripFeed`] host: everything from its first chunk on,
    /// trickling out.
    drip: [Vec<u8>; 2],
    /// Per sending end: an `Ev::Drip` is scheduled.
    dripping: [bool; 2],
}

impl SimConn {
    /// The hosts of its two ends.
    fn hosts(&self) -> [usize; 2] {
        [self.ends[0].host, self.ends[1].host]
    }
}

/// What a receiving kernel buffers for a connection its process does not read: a sender's
/// runtime reports `Flushed` only while at most this much waits unread at the other end.
const KERNEL_BUF: usize = 256 << 10;

impl SimConn {
    fn held_bytes(&self, to: usize) -> usize {
        self.held[to].iter().flatten().map(Vec::len).sum()
    }
}

enum Ev {
    /// An input for a host's node (datagram, connect failure, disk answer...).
    Input {
        host: usize,
        inc: u32,
        input: Input,
        from: Option<usize>,
    },
    Accepted {
        cid: usize,
    },
    Connected {
        cid: usize,
    },
    Bytes {
        cid: usize,
        to: usize,
        data: Vec<u8>,
    },
    /// The other end closed after its last bytes.
    Fin {
        cid: usize,
        to: usize,
    },
    /// Reset: the end learns its connection is gone.
    Reset {
        cid: usize,
        to: usize,
    },
    Flushed {
        cid: usize,
        end: usize,
    },
    /// The end `to` reads again: what was held for it is delivered.
    Drain {
        cid: usize,
        to: usize,
    },
    /// The next few bytes of a drip-feeding end go out.
    Drip {
        cid: usize,
        end: usize,
    },
    Disk {
        host: usize,
        inc: u32,
        op: u64,
    },
    Act(Act),
}

/// A scheduled workload step or fault.
#[derive(Debug, Clone)]
pub enum Act {
    /// The user asks host `host` to get want `want`.
    Get {
        /// Index into the wants.
        want: usize,
    },
    /// The process dies (graceful: it says goodbye first); back after `down_for` if any.
    Crash {
        /// Which host.
        host: usize,
        /// Shut down cleanly first.
        graceful: bool,
        /// Restart after this long; `None`: gone for good.
        down_for: Option<Nanos>,
    },
    /// A crashed host starts again.
    Restart {
        /// Which host.
        host: usize,
    },
    /// The process stops being scheduled.
    Pause {
        /// Which host.
        host: usize,
        /// For how long.
        dur: Nanos,
    },
    /// ... and runs again.
    Unpause {
        /// Which host.
        host: usize,
    },
    /// The user's one-shot `get` lets a download it held back be put in place.
    Release {
        /// Which host.
        host: usize,
        /// Which download.
        content: ContentId,
    },
    /// The LAN splits in two groups for `dur`.
    Partition {
        /// Group of each host.
        groups: Vec<u8>,
        /// For how long.
        dur: Nanos,
    },
    /// The LAN is whole again.
    HealPartition,
    /// A random open connection is reset.
    ResetConn,
    /// A random open connection is half-closed: one end learns, the other does not.
    HalfClose,
    /// A random connection stops carrying bytes for `dur`.
    Stall {
        /// For how long.
        dur: Nanos,
    },
    /// The host's disk gets slow (until the heal).
    SlowDisk {
        /// Which host.
        host: usize,
        /// Latency of each operation.
        lat: Nanos,
    },
    /// The host's writes fail with probability `p` (until the heal).
    WriteFail {
        /// Which host.
        host: usize,
        /// Probability.
        p: f64,
    },
    /// Datagrams get lost, duplicated, delayed.
    BadNet {
        /// Loss probability.
        loss: f64,
        /// Duplication probability.
        dup: f64,
        /// Extra delay, up to.
        jitter: Nanos,
    },
    /// A burst of garbage datagrams from a stranger.
    Garbage,
    /// Every fault heals (malicious peers stay malicious).
    Heal,
    /// The host rescans its folder and shares what it downloaded.
    Rescan {
        /// Which host.
        host: usize,
    },
    /// An adversary that is no node acts (and schedules its next act).
    Adversary {
        /// Which host.
        host: usize,
        /// Its turn: an act of an older turn (rescheduled since) does nothing.
        turn: u64,
    },
}

/// One file a host wants.
#[derive(Debug, Clone)]
pub struct Want {
    /// The host.
    pub host: usize,
    /// The file (index into `files`).
    pub file: usize,
    /// Downloaded and verified.
    pub done: bool,
    /// The running attempt started then.
    pub attempt: Option<Nanos>,
    /// Attempts so far.
    pub attempts: u32,
    /// A `Get` is scheduled, or (a folder want) its host's running job will start it.
    pub get_pending: bool,
    /// An `Act::Get` of this want is in the queue ([`Sim::ask_again`] keeps it to one: a
    /// folder's `Get` fetches all its missing files, so one per want and failure would
    /// double the folder's `Get`s at every round of failures).
    pub get_scheduled: bool,
    /// Why the last attempt failed.
    pub last_fail: Option<String>,
}

/// The simulated network.
pub struct Sim {
    /// The seed.
    pub seed: u64,
    /// The one RNG.
    pub rng: SimRng,
    origin: Instant,
    /// Virtual now.
    pub now: Nanos,
    /// Steps taken.
    pub step: u64,
    queue: BTreeMap<(Nanos, u64), Ev>,
    seq: u64,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Each host's index, by its peer id.
    by_id: BTreeMap<PeerId, usize>,
    /// Which subnets a router joins, by subnet (empty: one subnet, see `subnets`).
    pub routes: Vec<Vec<bool>>,
    /// The last signed datagrams each honest host broadcast, oldest first: what a spoofer
    /// replays (it hears every broadcast, as any host on the LAN does).
    pub captured: BTreeMap<usize, VecDeque<Vec<u8>>>,
    conns: Vec<SimConn>,
    conn_of: BTreeMap<(usize, ConnId), usize>,
    /// The files of the world.
    pub files: Vec<FileSpec>,
    manifests: BTreeMap<ContentId, usize>,
    /// What the users want.
    pub wants: Vec<Want>,
    /// The running folder job of each host (see `folders`).
    jobs: BTreeMap<usize, p2pshare_proto::folder::FolderJob>,
    loss: f64,
    dup: f64,
    jitter: Nanos,
    partition_until: Nanos,
    /// When every fault has healed.
    pub heal_at: Nanos,
    /// The run lasts at least until then (to watch expiries).
    pub min_end: Nanos,
    /// Faults scheduled.
    pub faults: usize,
    trace_hash: u64,
    /// What the adversaries that are no node keep, by host.
    raws: BTreeMap<usize, adversary::Raw>,
    /// Sending ends whose `Flushed` is withheld (their reader does not read): (conn, end).
    withheld: std::collections::BTreeSet<(usize, usize)>,
    /// When each claim liar refused a request of each host, over the last second: (liar,
    /// asker).
    refused: BTreeMap<(usize, usize), VecDeque<Nanos>>,
    /// A failure found where no `Res` could carry it, returned by the next check.
    found: Option<Failure>,
    /// Print every step to stderr.
    pub tracing: bool,
    next_op: u64,
}

impl Sim {
    /// A world drawn from `seed`, with `bugs` planted in every node.
    pub fn new(seed: u64, bugs: Bugs) -> Sim {
        Sim::with_hosts(seed, bugs, None)
    }

    /// A world drawn from `seed` with `hosts` hosts (2 to 50) if given.
    pub fn with_hosts(seed: u64, bugs: Bugs, hosts: Option<usize>) -> Sim {
        let mut sim = Sim {
            seed,
            rng: SimRng::new(seed),
            origin: Instant::now(),
            now: 0,
            step: 0,
            queue: BTreeMap::new(),
            seq: 0,
            hosts: Vec::new(),
            by_id: BTreeMap::new(),
            routes: Vec::new(),
            captured: BTreeMap::new(),
            conns: Vec::new(),
            conn_of: BTreeMap::new(),
            files: Vec::new(),
            manifests: BTreeMap::new(),
            wants: Vec::new(),
            jobs: BTreeMap::new(),
            loss: 0.0,
            dup: 0.0,
            jitter: 0,
            partition_until: 0,
            heal_at: 0,
            min_end: 0,
            faults: 0,
            trace_hash: trace::FNV0,
            raws: BTreeMap::new(),
            withheld: std::collections::BTreeSet::new(),
            refused: BTreeMap::new(),
            found: None,
            tracing: false,
            next_op: 0,
        };
        scenario::populate(&mut sim, bugs, hosts);
        sim
    }

    // ---- building the world (used by `scenario`) ----

    /// Adds a file to the world.
    pub fn add_file(&mut self, name: String, data: Vec<u8>) -> usize {
        let mut b = p2pshare_proto::ManifestBuilder::new(p2pshare_proto::manifest::MIN_CHUNK_SIZE);
        b.update(&data);
        let manifest = b.finish().expect("a small file fits");
        let i = self.files.len();
        self.manifests.insert(manifest.id(), i);
        self.files.push(FileSpec {
            name,
            data: Rc::new(data),
            manifest,
        });
        i
    }

    /// Adds a host (not started yet).
    pub fn add_host(&mut self, behaviour: Behaviour, bugs: Bugs) -> usize {
        let i = self.hosts.len();
        let up_rate = match self.rng.below(4) {
            0 => self.rng.range(64 << 10, 512 << 10),
            1 => self.rng.range(512 << 10, 4 << 20),
            _ => self.rng.range(4 << 20, 60 << 20),
        };
        let lat = self.rng.range(20_000, 2 * MS);
        let disk_lat = self.rng.range(10_000, MS);
        // The key is derived from the seed, the host and one draw (the draw the 16-byte ids of
        // before keys took), so the rest of every world is drawn as it was.
        let mut material = self.seed.to_le_bytes().to_vec();
        material.extend((i as u64).to_le_bytes());
        material.extend(self.rng.u64().to_le_bytes());
        let secret = p2pshare_proto::sha256(&material);
        let id = p2pshare_proto::Identity::from_secret_bytes(&secret).key();
        self.by_id.insert(id, i);
        self.hosts.push(Host {
            instance: 0,
            id,
            secret,
            drip_marks: Arc::default(),
            refusals: Arc::default(),
            ip: Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200) as u8 + 1),
            node: None,
            inc: 0,
            departed: false,
            paused: false,
            backlog: VecDeque::new(),
            deadline: None,
            store: Store::default(),
            catalog: Vec::new(),
            shares_since: BTreeMap::new(),
            behaviour,
            bugs,
            group: 0,
            subnet: 0,
            contacts: BTreeSet::new(),
            met: BTreeSet::new(),
            told: BTreeSet::new(),
            started_at: 0,
            up_rate,
            tx_busy: 0,
            lat,
            disk_lat,
            disk_slow: None,
            disk_busy: 0,
            write_fail: 0.0,
            pending_disk: BTreeMap::new(),
            heard: Vec::new(),
            expiry_check_at: Nanos::MAX,
        });
        i
    }

    /// Host `h` holds file `f` (or, when `bytes` is false, only claims to).
    pub fn hold(&mut self, h: usize, f: usize, bytes: bool) {
        let file = &self.files[f];
        if bytes {
            self.hosts[h]
                .store
                .shared
                .insert(file.manifest.id(), file.data.clone());
        }
        let lf = LocalFile {
            name: file.name.clone(),
            manifest: file.manifest.clone(),
        };
        self.hosts[h].catalog.push(lf);
        self.hosts[h]
            .shares_since
            .entry(file.manifest.id())
            .or_insert(self.now);
    }

    /// Host `h` wants file `f`; the user first asks at `at`.
    pub fn want(&mut self, h: usize, f: usize, at: Nanos) {
        let want = self.wants.len();
        self.wants.push(Want {
            host: h,
            file: f,
            done: false,
            attempt: None,
            attempts: 0,
            get_pending: true,
            get_scheduled: true,
            last_fail: None,
        });
        self.schedule(at, Ev::Act(Act::Get { want }));
    }

    /// Schedules the user's next `Get` of want `w` at `at`, unless one is in the queue already.
    pub(super) fn ask_again(&mut self, at: Nanos, w: usize) {
        if !std::mem::replace(&mut self.wants[w].get_scheduled, true) {
            self.act(at, Act::Get { want: w });
        }
    }

    /// Schedules a fault or workload step.
    pub fn act(&mut self, at: Nanos, act: Act) {
        self.schedule(at, Ev::Act(act));
    }

    /// Delivers `input` to host `t`'s current incarnation at `at` (dropped if it crashed since).
    fn schedule_input(&mut self, at: Nanos, t: usize, input: Input, from: Option<usize>) {
        let inc = self.hosts[t].inc;
        let ev = Ev::Input {
            host: t,
            inc,
            input,
            from,
        };
        self.schedule(at, ev);
    }

    fn schedule(&mut self, at: Nanos, ev: Ev) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn instant(&self) -> Instant {
        self.origin + Duration::from_nanos(self.now)
    }

    fn nanos(&self, t: Instant) -> Nanos {
        t.saturating_duration_since(self.origin).as_nanos() as Nanos
    }

    /// The failure for a post-condition that broke on host `h`.
    fn violated(&self, h: usize, v: Violation) -> Failure {
        self.fail(Kind::of(&v), format!("h{h}: {v}"))
    }

    fn fail(&self, kind: Kind, msg: impl Into<String>) -> Failure {
        Failure {
            seed: self.seed,
            step: self.step,
            at: self.now,
            kind,
            msg: msg.into(),
        }
    }

    /// Prints `line` in the trace without hashing it: what follows from the hashed lines (why a
    /// node woke up), so that hashes stay comparable across builds that only restructure how
    /// the node computes it.
    fn note(&self, line: String) {
        if self.tracing {
            eprintln!("[{:>11.6}s] {line}", self.now as f64 / SEC as f64);
        }
    }

    fn log(&mut self, line: String) {
        self.trace_hash = trace::fnv(self.trace_hash, &self.now.to_le_bytes());
        self.trace_hash = trace::fnv(self.trace_hash, line.as_bytes());
        if self.tracing {
            eprintln!("[{:>11.6}s] {line}", self.now as f64 / SEC as f64);
        }
    }

    fn host_of_peer(&self, id: &PeerId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn link_lat(&self, a: usize, b: usize) -> Nanos {
        self.hosts[a].lat + self.hosts[b].lat
    }

    fn running(&self, h: usize) -> bool {
        self.hosts[h].node.is_some() && !self.hosts[h].paused
    }

    // ---- starting and stopping nodes ----

    fn start(&mut self, h: usize) -> Res {
        let instance = self.rng.u64();
        let seed = self.rng.u64();
        let n = self.hosts.len();
        let host = &mut self.hosts[h];
        let mut cfg = Config::new(instance, seed, 10000);
        cfg.announce_to = vec![BROADCAST];
        cfg.bugs = host.bugs;
        // Half the hosts have AES in hardware: both suites run in every network, without
        // drawing from the RNG.
        cfg.aes = h % 2 == 1;
        let me = p2pshare_proto::Identity::from_secret_bytes(&host.secret);
        // Its secrets' seed: from its key and this start's instance (no draw).
        let mut material = host.secret.to_vec();
        material.extend(instance.to_le_bytes());
        let key_seed = p2pshare_proto::sha256(&material);
        let mut node = Node::new(
            cfg,
            me,
            key_seed,
            self.origin + Duration::from_nanos(self.now),
        )
        .expect("a valid configuration");
        // (A new node's connection ids name new connections: no count of an old one's.)
        host.refusals.lock().expect("one thread").clear();
        if let Some(t) = tamper(host.behaviour, &host.drip_marks, &host.refusals) {
            node.set_tamper(t);
        }
        let mut node = Checked::new(node, self.files.iter().map(|f| f.manifest.clone()));
        node.max_outputs = 256 + 64 * n;
        // One incomplete frame plus one delivery, and one incomplete sealed record.
        node.buffered_per_conn = 2 * (64 << 10) + 2 + 65_535;
        host.node = Some(node);
        host.heard = vec![self.now; n];
        host.instance = instance;
        host.started_at = self.now;
        host.told.clear();
        let b = self.hosts[h].behaviour;
        self.log(format!("h{h} start instance={instance:016x} {b:?}"));
        let files = self.hosts[h].catalog.clone();
        self.feed(h, Input::CatalogChanged { files }, None)?;
        self.feed_known(h)
    }

    /// Starts every host and runs until the end; checks the invariants after every step.
    pub fn run(&mut self) -> Result<Report, Failure> {
        for h in 0..self.hosts.len() {
            if !self.hosts[h].behaviour.is_raw() {
                self.start(h)?;
            }
        }
        loop {
            self.step += 1;
            let next_ev = self.queue.keys().next().map(|k| k.0);
            let next_timer = self
                .hosts
                .iter()
                .filter(|x| x.node.is_some() && !x.paused)
                .filter_map(|x| x.deadline)
                .min();
            let t = match (next_ev, next_timer) {
                (None, None) => break,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (Some(a), Some(b)) => a.min(b),
            };
            if t > self.now {
                if self.finished_at(t) {
                    break;
                }
                self.now = t;
            }
            if next_timer.is_some_and(|b| b <= self.now) {
                for h in 0..self.hosts.len() {
                    if self.running(h) && self.hosts[h].deadline.is_some_and(|d| d <= self.now) {
                        self.timeout(h)?;
                    }
                }
            } else if let Some((_, ev)) = self.queue.pop_first() {
                self.event(ev)?;
            }
            self.check_all()?;
            if self.queue.len() > MAX_QUEUED_EVENTS {
                let n = self.queue.len();
                return Err(self.fail(Kind::Runaway, format!("{n} events queued at once")));
            }
        }
        self.final_check()?;
        self.check_routed_pairs()?;
        Ok(Report {
            seed: self.seed,
            trace_hash: self.trace_hash,
            steps: self.step,
            end: self.now,
            hosts: self.hosts.len(),
            wanted: self.wants.len(),
            done: self.wants.iter().filter(|w| w.done).count(),
            faults: self.faults,
        })
    }

    // ---- performing outputs ----

    fn perform(&mut self, h: usize, o: Output) -> Res {
        match o {
            Output::Net(op) => p2pshare_proto::net::perform(op, &mut HostNet { sim: self, h }),
            Output::Disk(op) => self.disk_op(h, op),
            Output::Event(e) => self.on_event(h, e)?,
        }
        Ok(())
    }

    fn on_event(&mut self, h: usize, e: Event) -> Res {
        match e {
            // Two names may share one content (two empty files): one download serves both.
            Event::DownloadDone { content, file, .. } => {
                for w in self.wants_of(h, &content) {
                    let f = self.wants[w].file;
                    let same = self.hosts[h]
                        .store
                        .finished
                        .get(&file)
                        .is_some_and(|(c, d)| *c == content && *d == *self.files[f].data);
                    if !same {
                        return Err(self.fail(
                            Kind::WrongFile,
                            format!("h{h}: {file} is not byte-identical to the original"),
                        ));
                    }
                    let want = &mut self.wants[w];
                    want.done = true;
                    want.attempt = None;
                }
                if self.rng.chance(0.5) {
                    let at = self.now + self.rng.range(100 * MS, 2 * SEC);
                    self.act(at, Act::Rescan { host: h });
                }
                self.folder_ended(h, &content, Some(file))?;
            }
            Event::ChunkRejected {
                content,
                peer,
                index,
            } => {
                if let Some(x) = self.host_of_peer(&peer)
                    && self.hosts[x].behaviour == Behaviour::Honest
                {
                    return Err(self.fail(
                        Kind::Framed,
                        format!(
                            "h{h} rejected chunk {index} of {} as sent by honest h{x}",
                            content.short()
                        ),
                    ));
                }
            }
            Event::DownloadFailed {
                content, reason, ..
            } => {
                for w in self.wants_of(h, &content) {
                    let want = &mut self.wants[w];
                    want.attempt = None;
                    want.last_fail = Some(reason.to_string());
                    if !want.done && !want.get_pending && self.now < self.heal_at + RETRY_WINDOW {
                        want.get_pending = true;
                        let at = self.now + self.rng.range(SEC, 3 * SEC);
                        self.ask_again(at, w);
                    }
                }
                self.folder_ended(h, &content, None)?;
            }
            Event::PeerFound { peer, .. } => {
                if let Some(x) = self.host_of_peer(&peer) {
                    self.met(h, x);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn wants_of(&self, h: usize, c: &ContentId) -> Vec<usize> {
        (0..self.wants.len())
            .filter(|&w| {
                self.wants[w].host == h && self.files[self.wants[w].file].manifest.id() == *c
            })
            .collect()
    }

    // ---- events ----

    /// The end an event reaches, for events on a connection.
    fn end_of(ev: &Ev) -> Option<(usize, usize)> {
        match *ev {
            Ev::Bytes { cid, to, .. }
            | Ev::Fin { cid, to }
            | Ev::Reset { cid, to }
            | Ev::Drain { cid, to } => Some((cid, to)),
            Ev::Flushed { cid, end } => Some((cid, end)),
            _ => None,
        }
    }

    fn event(&mut self, ev: Ev) -> Res {
        // Events for an adversary's end are the simulator's to handle.
        if let Some((cid, 0)) = Self::end_of(&ev)
            && self.conns[cid].raw
        {
            self.raw_event(ev);
            return Ok(());
        }
        // An event for an end its paused host has not accepted yet waits behind the accept.
        if let Some((cid, to)) = Self::end_of(&ev) {
            let end = self.conns[cid].ends[to];
            if end.open && end.conn.is_none() {
                let host = &mut self.hosts[end.host];
                if host.inc == end.inc && host.node.is_some() {
                    host.backlog.push_back(Arrival::Event(ev));
                }
                return Ok(());
            }
        }
        match ev {
            Ev::Input {
                host,
                inc,
                input,
                from,
            } => self.deliver(host, inc, input, from),
            Ev::Accepted { cid } => {
                let b = self.conns[cid].ends[1];
                let host = &mut self.hosts[b.host];
                if !b.open || host.inc != b.inc || host.node.is_none() {
                    return Ok(());
                }
                if host.paused {
                    host.backlog.push_back(Arrival::Accept(cid));
                    return Ok(());
                }
                self.accept(cid)
            }
            Ev::Connected { cid } => {
                let [a, b] = self.conns[cid].ends;
                let Some(conn) = a.conn.filter(|_| a.open) else {
                    return Ok(());
                };
                self.deliver(a.host, a.inc, Input::Connected { conn }, Some(b.host))
            }
            Ev::Bytes { cid, to, data } if self.conns[cid].holding[to] => {
                self.conns[cid].held[to].push_back(Some(data));
                Ok(())
            }
            Ev::Fin { cid, to } if self.conns[cid].holding[to] => {
                self.conns[cid].held[to].push_back(None);
                Ok(())
            }
            Ev::Drain { cid, to } => self.drain(cid, to),
            Ev::Bytes { cid, to, data } => {
                let c = &self.conns[cid];
                let end = c.ends[to];
                let Some(conn) = end.conn.filter(|_| !c.reset && end.open) else {
                    return Ok(());
                };
                let from = c.ends[1 - to].host;
                let input = Input::Received { conn, data };
                self.deliver(end.host, end.inc, input, Some(from))
            }
            Ev::Fin { cid, to } | Ev::Reset { cid, to } => self.end_told(cid, to),
            Ev::Flushed { cid, end } => {
                let c = &self.conns[cid];
                let e = c.ends[end];
                let Some(conn) = e.conn.filter(|_| e.open && c.flush_at[end] <= self.now) else {
                    return Ok(());
                };
                if c.unflushed[end] > 0 && c.held_bytes(1 - end) > KERNEL_BUF {
                    let c = &mut self.conns[cid];
                    c.flush_owed[end] = true;
                    c.withheld_since[end].get_or_insert(self.now);
                    self.withheld.insert((cid, end));
                    return Ok(());
                }
                self.conns[cid].unflushed[end] = 0;
                self.deliver(e.host, e.inc, Input::Flushed { conn }, None)
            }
            Ev::Disk { host, inc, op } => self.disk_done(host, inc, op),
            Ev::Drip { cid, end } => {
                self.drip(cid, end);
                Ok(())
            }
            Ev::Act(a) => self.action(a),
        }
    }
}

/// Host `h`'s network card on the LAN: what its node's network requests do
/// (`p2pshare_proto::net::perform` maps each `NetOp` to one of these).
struct HostNet<'a> {
    sim: &'a mut Sim,
    h: usize,
}

impl p2pshare_proto::net::Network for HostNet<'_> {
    fn datagram(&mut self, to: SocketAddr, data: Vec<u8>) {
        assert_eq!(to, BROADCAST, "nodes announce to the configured address");
        self.sim.broadcast(self.h, data);
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        self.sim.connect(self.h, conn, addr);
    }

    fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        self.sim.send(self.h, conn, data);
    }

    fn pause(&mut self, conn: ConnId) {
        self.sim.read_pause(self.h, conn, true);
    }

    fn resume(&mut self, conn: ConnId) {
        self.sim.read_pause(self.h, conn, false);
    }

    fn close(&mut self, conn: ConnId) {
        self.sim.close(self.h, conn);
    }
}

/// What a misbehaving node does to its plaintext before sealing it (see [`Rewriter`]).
fn tamper(
    b: Behaviour,
    marks: &Arc<Mutex<BTreeSet<ConnId>>>,
    refusals: &Arc<Mutex<BTreeMap<ConnId, u32>>>,
) -> Option<p2pshare_proto::bugs::Tamper> {
    match b {
        Behaviour::Mute | Behaviour::ManifestLiar | Behaviour::ClaimLiar(_) => {
            let refusals = Arc::clone(refusals);
            let mut rewriters: BTreeMap<ConnId, Rewriter> = BTreeMap::new();
            Some(p2pshare_proto::bugs::Tamper(Box::new(move |conn, data| {
                let rw = rewriters.entry(conn).or_default();
                let out = rw.rewrite(b, &data);
                if rw.refused > 0 {
                    *refusals
                        .lock()
                        .expect("one thread")
                        .entry(conn)
                        .or_default() += std::mem::take(&mut rw.refused);
                }
                out
            })))
        }
        Behaviour::DripFeed => {
            let marks = Arc::clone(marks);
            Some(p2pshare_proto::bugs::Tamper(Box::new(move |conn, data| {
                if matches!(frame::decode(&data), Ok(Some((Frame::Chunk { .. }, _)))) {
                    marks.lock().expect("one thread").insert(conn);
                }
                data
            })))
        }
        _ => None,
    }
}
