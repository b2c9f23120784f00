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
//! Invariants checked after every step (a violation ends the run with a [`Failure`]):
//! - no chunk is written whose bytes fail the manifest's hash ([`Kind::CorruptWrite`]);
//! - no finish is asked before the whole partial file hashes to the file hash
//!   ([`Kind::EarlyFinish`]);
//! - `Node::check_invariants` holds (every chunk in exactly one state) ([`Kind::NodeInvariant`]);
//! - a peer the host has heard nothing from for the discovery expiry is not in its `peers()`
//!   ([`Kind::PeerNotExpired`]);
//! - `poll_timeout()` after `handle_timeout(now)` is later than `now` ([`Kind::BusyLoop`]);
//! - connections, receive buffers and outputs per step stay bounded ([`Kind::Unbounded`]);
//! - liveness: a download attempt completes or fails within [`ATTEMPT_BOUND`]
//!   ([`Kind::Stuck`]); with an honest holder alive after the heal, every wanted file is
//!   downloaded before the run ends ([`Kind::Liveness`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is the virtual clock's offset.
#![allow(clippy::disallowed_methods)]

pub mod rng;
pub mod scenario;
pub mod store;
pub mod trace;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use p2pshare_proto::wire::frame::{self, Frame, Message};
use p2pshare_proto::{
    Bugs, Command, Config, ConnId, ContentId, DiskError, DiskOp, Event, FinishError, Input,
    LocalFile, Manifest, NetOp, Node, Output, PeerId, ReadSource, sha256,
};

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
}

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
    /// Its peer id (kept across restarts).
    pub id: PeerId,
    /// Its IP address.
    pub ip: Ipv4Addr,
    /// The running node, `None` while crashed.
    pub node: Option<Node>,
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
    /// How it misbehaves.
    pub behaviour: Behaviour,
    /// Planted bugs of its node.
    pub bugs: Bugs,
    /// Partition group (equal groups hear each other).
    pub group: u8,
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

/// Re-frames one direction of a misbehaving host's stream to drop or falsify answers.
#[derive(Debug, Default)]
struct Rewriter {
    buf: Vec<u8>,
    preamble_done: bool,
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
    rewrite: [Option<Rewriter>; 2],
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
    /// A `Get` is scheduled.
    pub get_pending: bool,
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
    conns: Vec<SimConn>,
    conn_of: BTreeMap<(usize, ConnId), usize>,
    /// The files of the world.
    pub files: Vec<FileSpec>,
    manifests: BTreeMap<ContentId, usize>,
    /// What the users want.
    pub wants: Vec<Want>,
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
            conns: Vec::new(),
            conn_of: BTreeMap::new(),
            files: Vec::new(),
            manifests: BTreeMap::new(),
            wants: Vec::new(),
            loss: 0.0,
            dup: 0.0,
            jitter: 0,
            partition_until: 0,
            heal_at: 0,
            min_end: 0,
            faults: 0,
            trace_hash: trace::FNV0,
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
        self.hosts.push(Host {
            id: PeerId({
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                id[8..].copy_from_slice(&self.rng.u64().to_le_bytes());
                id
            }),
            ip: Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200) as u8 + 1),
            node: None,
            inc: 0,
            departed: false,
            paused: false,
            backlog: VecDeque::new(),
            deadline: None,
            store: Store::default(),
            catalog: Vec::new(),
            behaviour,
            bugs,
            group: 0,
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
            last_fail: None,
        });
        self.schedule(at, Ev::Act(Act::Get { want }));
    }

    /// Schedules a fault or workload step.
    pub fn act(&mut self, at: Nanos, act: Act) {
        self.schedule(at, Ev::Act(act));
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

    fn fail(&self, kind: Kind, msg: impl Into<String>) -> Failure {
        Failure {
            seed: self.seed,
            step: self.step,
            at: self.now,
            kind,
            msg: msg.into(),
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
        let i = u64::from_be_bytes(id.0[..8].try_into().ok()?) as usize;
        (i >= 1 && i <= self.hosts.len() && self.hosts[i - 1].id == *id).then(|| i - 1)
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
        let mut cfg = Config::new(host.id, instance, seed, 10000);
        cfg.announce_to = vec![BROADCAST];
        cfg.bugs = host.bugs;
        host.node = Some(Node::new(cfg, self.origin + Duration::from_nanos(self.now)));
        host.heard = vec![self.now; n];
        let b = self.hosts[h].behaviour;
        self.log(format!("h{h} start instance={instance:016x} {b:?}"));
        let files = self.hosts[h].catalog.clone();
        self.feed(h, Input::CatalogChanged { files }, None)
    }

    /// Starts every host and runs until the end; checks the invariants after every step.
    pub fn run(&mut self) -> Result<Report, Failure> {
        for h in 0..self.hosts.len() {
            self.start(h)?;
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
        }
        self.final_check()?;
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

    /// True when the run may stop before moving the clock to `t`.
    fn finished_at(&self, t: Nanos) -> bool {
        if t > self.heal_at + HARD_END {
            return true;
        }
        if t < self.min_end || t < self.heal_at {
            return false;
        }
        self.wants.iter().all(|w| {
            w.done
                || self.hosts[w.host].departed
                || (w.attempt.is_none() && !w.get_pending && t >= self.heal_at + RETRY_WINDOW)
        })
    }

    fn final_check(&mut self) -> Res {
        for w in self.wants.clone() {
            if w.done || self.hosts[w.host].departed {
                continue;
            }
            let c = self.files[w.file].manifest.id();
            if let Some(s) = w.attempt {
                return Err(self.fail(
                    Kind::Stuck,
                    format!(
                        "h{} download of {} running since {:.3}s never ended",
                        w.host,
                        c.short(),
                        s as f64 / SEC as f64
                    ),
                ));
            }
            // Another host: one that shares the same bytes under another name is no source
            // for itself (a `get` downloads from peers).
            let honest: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| h != w.host)
                .filter(|&h| {
                    let x = &self.hosts[h];
                    x.node.is_some()
                        && x.behaviour == Behaviour::Honest
                        && x.store.shared.contains_key(&c)
                        && x.catalog.iter().any(|f| f.manifest.id() == c)
                })
                .collect();
            if !honest.is_empty() {
                return Err(self.fail(
                    Kind::Liveness,
                    format!(
                        "h{} never downloaded {} though honest h{:?} hold it ({} attempts, last failure: {:?})",
                        w.host,
                        c.short(),
                        honest,
                        w.attempts,
                        w.last_fail
                    ),
                ));
            }
        }
        Ok(())
    }

    // ---- feeding nodes ----

    /// Hands `input` to host `h` now (or to its backlog while paused).
    fn deliver(&mut self, h: usize, inc: u32, input: Input, from: Option<usize>) -> Res {
        let host = &mut self.hosts[h];
        if host.inc != inc || host.node.is_none() {
            return Ok(());
        }
        if host.paused {
            host.backlog.push_back(Arrival::Input(input, from));
            return Ok(());
        }
        self.feed(h, input, from)
    }

    fn feed(&mut self, h: usize, input: Input, from: Option<usize>) -> Res {
        self.log(format!("h{h} <- {}", trace::input(&input)));
        if let Some(f) = from {
            self.hosts[h].heard[f] = self.now;
        }
        let now = self.instant();
        let node = self.hosts[h].node.as_mut().expect("a running node");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.handle_input(now, input)
        }));
        if r.is_err() {
            return Err(self.fail(Kind::Panic, format!("h{h} panicked in handle_input")));
        }
        self.after(h)
    }

    fn timeout(&mut self, h: usize) -> Res {
        self.log(format!("h{h} timeout"));
        let now = self.instant();
        let node = self.hosts[h].node.as_mut().expect("a running node");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.handle_timeout(now)));
        if r.is_err() {
            return Err(self.fail(Kind::Panic, format!("h{h} panicked in handle_timeout")));
        }
        self.after(h)?;
        if self.hosts[h].node.is_some() {
            self.check_expiry(h)?;
            if let Some(d) = self.hosts[h].deadline
                && d <= self.now
            {
                return Err(self.fail(
                    Kind::BusyLoop,
                    format!("h{h}: poll_timeout {d} not after now after handle_timeout"),
                ));
            }
        }
        Ok(())
    }

    /// Drains and performs the outputs of host `h`, then checks its invariants.
    fn after(&mut self, h: usize) -> Res {
        let mut outs = Vec::new();
        if let Some(node) = self.hosts[h].node.as_mut() {
            while let Some(o) = node.poll_output() {
                outs.push(o);
            }
        }
        let bound = 256 + 64 * self.hosts.len();
        if outs.len() > bound {
            return Err(self.fail(
                Kind::Unbounded,
                format!("h{h}: {} outputs from one step", outs.len()),
            ));
        }
        for o in outs {
            self.log(format!("h{h} -> {}", trace::output(&o)));
            self.perform(h, o)?;
        }
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        if let Err(e) = node.check_invariants() {
            return Err(self.fail(Kind::NodeInvariant, format!("h{h}: {e}")));
        }
        let conns = node.connections();
        if conns > 4 * self.hosts.len() + 16 {
            return Err(self.fail(Kind::Unbounded, format!("h{h}: {conns} connections")));
        }
        let buffered = node.buffered_bytes();
        if buffered > conns.max(1) * 2 * (64 << 10) {
            return Err(self.fail(
                Kind::Unbounded,
                format!("h{h}: {buffered} bytes buffered in {conns} connections"),
            ));
        }
        let deadline = node.poll_timeout().map(|t| self.nanos(t));
        self.hosts[h].deadline = deadline;
        self.refresh_expiry(h);
        Ok(())
    }

    fn refresh_expiry(&mut self, h: usize) {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return;
        };
        let mut at = Nanos::MAX;
        for p in node.peers() {
            if let Some(x) = self.host_of_peer(&p.id) {
                at = at.min(self.hosts[h].heard[x] + EXPIRY);
            }
        }
        self.hosts[h].expiry_check_at = at;
    }

    /// A peer that host `h` has heard nothing from for the expiry must be gone from its table
    /// once its timers have run.
    fn check_expiry(&mut self, h: usize) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        for p in node.peers() {
            if let Some(x) = self.host_of_peer(&p.id) {
                let silent = self.now - self.hosts[h].heard[x];
                if silent >= EXPIRY {
                    return Err(self.fail(
                        Kind::PeerNotExpired,
                        format!(
                            "h{h} still lists h{x}, silent for {:.3}s (expiry {:.1}s)",
                            silent as f64 / SEC as f64,
                            EXPIRY as f64 / SEC as f64
                        ),
                    ));
                }
            }
        }
        self.refresh_expiry(h);
        Ok(())
    }

    /// The checks that concern every host at the current time.
    fn check_all(&mut self) -> Res {
        for h in 0..self.hosts.len() {
            let x = &self.hosts[h];
            if x.node.is_some()
                && !x.paused
                && x.expiry_check_at <= self.now
                && x.deadline.is_none_or(|d| d > self.now)
            {
                self.check_expiry(h)?;
            }
        }
        for w in &self.wants {
            if let Some(s) = w.attempt
                && self.now - s > ATTEMPT_BOUND
            {
                let c = self.files[w.file].manifest.id();
                let view = self.hosts[w.host]
                    .node
                    .as_ref()
                    .and_then(|n| n.downloads().into_iter().find(|d| d.content == c));
                return Err(self.fail(
                    Kind::Stuck,
                    format!(
                        "h{}: download of {} neither completed nor failed in {}s: {view:?}",
                        w.host,
                        c.short(),
                        ATTEMPT_BOUND / SEC
                    ),
                ));
            }
        }
        Ok(())
    }

    // ---- performing outputs ----

    fn perform(&mut self, h: usize, o: Output) -> Res {
        match o {
            Output::Net(op) => self.net(h, op),
            Output::Disk(op) => self.disk_op(h, op)?,
            Output::Event(e) => self.on_event(h, e)?,
        }
        Ok(())
    }

    fn net(&mut self, h: usize, op: NetOp) {
        match op {
            NetOp::Datagram { to, data } => {
                assert_eq!(to, BROADCAST, "nodes announce to the configured address");
                self.broadcast(h, data);
            }
            NetOp::Connect { conn, addr } => self.connect(h, conn, addr),
            NetOp::Send { conn, data } => self.send(h, conn, data),
            NetOp::Close { conn } => self.close(h, conn),
        }
    }

    /// Checks a disk request before it is performed: a write must carry verified bytes, a
    /// finish must come only when the partial file is whole.
    fn disk_op(&mut self, h: usize, o: DiskOp) -> Res {
        match o {
            DiskOp::Write {
                content,
                index,
                offset,
                ref data,
            } => {
                let ok = self.manifests.get(&content).is_some_and(|&f| {
                    let m = &self.files[f].manifest;
                    m.chunk_range(index).is_some_and(|(o, _)| o == offset)
                        && m.verify_chunk(index, data).is_ok()
                });
                if !ok {
                    return Err(self.fail(
                        Kind::CorruptWrite,
                        format!(
                            "h{h} writes chunk {index} of {} whose bytes fail its hash",
                            content.short()
                        ),
                    ));
                }
                self.disk(h, o);
            }
            DiskOp::Finish {
                content,
                size,
                file_hash,
                ..
            } => {
                let p = self.hosts[h].store.partial.get(&content);
                let known = self
                    .manifests
                    .get(&content)
                    .map(|&f| &self.files[f].manifest);
                let ok = p.is_some_and(|p| p.len() as u64 == size && sha256(p) == file_hash)
                    && known.is_some_and(|m| *m.file_hash() == file_hash && m.size() == size);
                if !ok {
                    let have = p.map_or(0, Vec::len);
                    return Err(self.fail(
                        Kind::EarlyFinish,
                        format!(
                            "h{h} asks to finish {} but its partial file ({have} of {size} bytes) does not match the file hash",
                            content.short()
                        ),
                    ));
                }
                self.disk(h, o);
            }
            DiskOp::Read { .. } | DiskOp::OpenPartial { .. } => self.disk(h, o),
            DiskOp::ClosePartial { .. } => {}
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
                        self.act(at, Act::Get { want: w });
                    }
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

    // ---- the LAN ----

    fn broadcast(&mut self, h: usize, data: Vec<u8>) {
        let from = SocketAddr::new(IpAddr::V4(self.hosts[h].ip), 9999);
        for t in 0..self.hosts.len() {
            if self.hosts[t].node.is_none() || self.hosts[t].group != self.hosts[h].group {
                continue;
            }
            if t != h && self.rng.chance(self.loss) {
                continue;
            }
            let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let jitter = if self.jitter > 0 {
                    self.rng.range(0, self.jitter)
                } else {
                    0
                };
                let at = self.now + self.link_lat(h, t) + jitter;
                let inc = self.hosts[t].inc;
                let input = Input::Datagram {
                    from,
                    data: data.clone(),
                };
                self.schedule(
                    at,
                    Ev::Input {
                        host: t,
                        inc,
                        input,
                        from: Some(h),
                    },
                );
            }
        }
    }

    fn connect(&mut self, h: usize, conn: ConnId, addr: SocketAddr) {
        let inc = self.hosts[h].inc;
        let target = self
            .hosts
            .iter()
            .position(|x| IpAddr::V4(x.ip) == addr.ip() && addr.port() == 10000);
        let Some(t) = target else {
            let at = self.now + self.hosts[h].lat;
            self.schedule(
                at,
                Ev::Input {
                    host: h,
                    inc,
                    input: Input::ConnectFailed { conn },
                    from: None,
                },
            );
            return;
        };
        let lat = self.link_lat(h, t);
        if self.hosts[t].group != self.hosts[h].group {
            return; // the SYN is lost: the node's connect timeout decides
        }
        if self.hosts[t].node.is_none() {
            if self.rng.chance(0.5) {
                self.schedule(
                    self.now + 2 * lat,
                    Ev::Input {
                        host: h,
                        inc,
                        input: Input::ConnectFailed { conn },
                        from: Some(t),
                    },
                );
            }
            return;
        }
        let cid = self.conns.len();
        let ends = [
            End {
                host: h,
                inc,
                conn: Some(conn),
                open: true,
            },
            End {
                host: t,
                inc: self.hosts[t].inc,
                conn: None,
                open: true,
            },
        ];
        let rewrite = |b: Behaviour| {
            matches!(b, Behaviour::Mute | Behaviour::ManifestLiar).then(Rewriter::default)
        };
        self.conns.push(SimConn {
            ends,
            reset: false,
            last_arrival: [0; 2],
            flush_at: [0; 2],
            stall_until: [0; 2],
            rewrite: [
                rewrite(self.hosts[h].behaviour),
                rewrite(self.hosts[t].behaviour),
            ],
        });
        self.conn_of.insert((h, conn), cid);
        self.schedule(self.now + lat, Ev::Accepted { cid });
        self.schedule(self.now + 2 * lat, Ev::Connected { cid });
    }

    /// The accepting end's node accepts connection `cid` (its host is running): it names the
    /// connection, or refuses it, and then the other end sees a reset.
    fn accept(&mut self, cid: usize) -> Res {
        let [a, b] = self.conns[cid].ends;
        if !b.open {
            return Ok(());
        }
        let h = b.host;
        let remote = SocketAddr::new(IpAddr::V4(self.hosts[a.host].ip), 40000);
        self.hosts[h].heard[a.host] = self.now;
        let now = self.instant();
        let node = self.hosts[h].node.as_mut().expect("a running node");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.accept(now, remote)));
        let Ok(conn) = r else {
            return Err(self.fail(Kind::Panic, format!("h{h} panicked in accept")));
        };
        match conn {
            Some(conn) => {
                self.log(format!("h{h} <- Accepted {conn:?} remote={remote}"));
                self.conns[cid].ends[1].conn = Some(conn);
                self.conn_of.insert((h, conn), cid);
            }
            None => {
                self.log(format!("h{h} <- Accepted refused remote={remote}"));
                self.conns[cid].ends[1].open = false;
                self.conns[cid].reset = true;
                let lat = self.link_lat(h, a.host);
                self.schedule(self.now + lat, Ev::Reset { cid, to: 0 });
            }
        }
        self.after(h)
    }

    fn send(&mut self, h: usize, conn: ConnId, mut data: Vec<u8>) {
        let Some(&cid) = self.conn_of.get(&(h, conn)) else {
            return;
        };
        let e = usize::from(
            self.conns[cid].ends[1].host == h && self.conns[cid].ends[1].conn == Some(conn),
        );
        let o = 1 - e;
        if !self.conns[cid].ends[e].open {
            return;
        }
        // Pace on the sender's uplink.
        let rate = self.hosts[h].up_rate.max(1);
        let start = self
            .now
            .max(self.hosts[h].tx_busy)
            .max(self.conns[cid].stall_until[e]);
        let wire = data.len() as u64 + 40;
        let end = start + ((u128::from(wire) * u128::from(SEC)) / u128::from(rate)) as Nanos;
        self.hosts[h].tx_busy = end;
        self.conns[cid].flush_at[e] = end;
        self.schedule(end, Ev::Flushed { cid, end: e });
        // Misbehaviour of the sending host.
        if let Some(rw) = self.conns[cid].rewrite[e].as_mut() {
            data = rw.rewrite(self.hosts[h].behaviour, &data);
        }
        let mut close_after = false;
        if let Behaviour::Closer(p) = self.hosts[h].behaviour
            && data.len() >= 1024
            && self.rng.chance(p)
        {
            let keep = self.rng.below(data.len());
            data.truncate(keep);
            close_after = true;
        }
        let to = o;
        if self.conns[cid].ends[to].open && !self.conns[cid].reset && !data.is_empty() {
            let t = self.conns[cid].ends[to].host;
            let lat = self.link_lat(h, t);
            // Across a partition, TCP retransmits until it heals.
            let floor = if self.hosts[t].group != self.hosts[h].group {
                self.partition_until + lat
            } else {
                0
            };
            // Cut into pieces of arbitrary sizes, arriving in order.
            let pieces = if data.len() > 1 && self.rng.chance(0.5) {
                self.rng.range(2, 4) as usize
            } else {
                1
            };
            let mut cuts: Vec<usize> = (1..pieces)
                .map(|_| self.rng.range(1, data.len() as u64 - 1) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            cuts.push(data.len());
            let mut prev = 0;
            let span = end - start;
            for cut in cuts {
                let piece = data[prev..cut].to_vec();
                let frac = (span as u128 * cut as u128 / data.len() as u128) as Nanos;
                let at = (start + frac + lat)
                    .max(floor)
                    .max(self.conns[cid].last_arrival[to]);
                self.conns[cid].last_arrival[to] = at;
                self.schedule(
                    at,
                    Ev::Bytes {
                        cid,
                        to,
                        data: piece,
                    },
                );
                prev = cut;
            }
        }
        if close_after {
            self.log(format!("h{h} closes {conn:?} mid-chunk"));
            self.conns[cid].ends[e].open = false;
            self.conn_of.remove(&(h, conn));
            let inc = self.hosts[h].inc;
            self.schedule(
                self.now,
                Ev::Input {
                    host: h,
                    inc,
                    input: Input::Closed { conn },
                    from: None,
                },
            );
            self.fin(cid, o);
        }
    }

    /// The other end `to` learns of a clean close after the last bytes sent to it.
    fn fin(&mut self, cid: usize, to: usize) {
        if !self.conns[cid].ends[to].open {
            return;
        }
        let from = self.conns[cid].ends[1 - to].host;
        let lat = self.link_lat(from, self.conns[cid].ends[to].host);
        let at = (self.now + lat).max(self.conns[cid].last_arrival[to]);
        self.schedule(at, Ev::Fin { cid, to });
    }

    fn close(&mut self, h: usize, conn: ConnId) {
        let Some(cid) = self.conn_of.remove(&(h, conn)) else {
            return;
        };
        let e = usize::from(
            self.conns[cid].ends[1].host == h && self.conns[cid].ends[1].conn == Some(conn),
        );
        self.conns[cid].ends[e].open = false;
        self.fin(cid, 1 - e);
    }

    /// The end `to` of `cid` is told its connection is gone.
    fn end_told(&mut self, cid: usize, to: usize) -> Res {
        let end = self.conns[cid].ends[to];
        if !end.open {
            return Ok(());
        }
        self.conns[cid].ends[to].open = false;
        let Some(conn) = end.conn else {
            return Ok(());
        };
        self.conn_of.remove(&(end.host, conn));
        let from = self.conns[cid].ends[1 - to].host;
        self.deliver(end.host, end.inc, Input::Closed { conn }, Some(from))
    }

    fn live_conns(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&c| self.conns[c].ends.iter().all(|e| e.open) && !self.conns[c].reset)
            .collect()
    }

    // ---- the disk ----

    fn disk(&mut self, h: usize, o: DiskOp) {
        let host = &mut self.hosts[h];
        let lat = host.disk_slow.unwrap_or(host.disk_lat);
        let lat = lat / 2 + self.rng.range(0, lat);
        let host = &mut self.hosts[h];
        let at = self.now.max(host.disk_busy) + lat;
        host.disk_busy = at;
        self.next_op += 1;
        let op = self.next_op;
        host.pending_disk.insert(op, o);
        let inc = host.inc;
        self.schedule(at, Ev::Disk { host: h, inc, op });
    }

    fn disk_done(&mut self, h: usize, inc: u32, op: u64) -> Res {
        if self.hosts[h].inc != inc {
            return Ok(());
        }
        let Some(o) = self.hosts[h].pending_disk.remove(&op) else {
            return Ok(());
        };
        let input = match o {
            DiskOp::Read {
                read,
                source,
                offset,
                len,
            } => {
                let store = &self.hosts[h].store;
                let mut result = match source {
                    ReadSource::Shared(c) => store.read_shared(&c, offset, len),
                    ReadSource::Partial(c) => store.read_partial(&c, offset, len),
                };
                if let (Behaviour::Corrupt(p), ReadSource::Shared(_), Ok(d)) =
                    (self.hosts[h].behaviour, source, result.as_mut())
                    && !d.is_empty()
                    && self.rng.chance(p)
                {
                    let i = self.rng.below(d.len());
                    d[i] ^= 1 << self.rng.below(8);
                }
                Input::ReadDone { read, result }
            }
            DiskOp::OpenPartial { content, .. } => Input::PartialOpened {
                content,
                result: Ok(self.hosts[h].store.open_partial(content)),
            },
            DiskOp::Write {
                content,
                index,
                offset,
                data,
            } => {
                let result = if self.rng.chance(self.hosts[h].write_fail) {
                    Err(DiskError::NoSpace)
                } else {
                    self.hosts[h].store.write(content, offset, &data);
                    Ok(())
                };
                Input::Written {
                    content,
                    index,
                    result,
                }
            }
            DiskOp::Finish {
                content,
                name,
                size,
                file_hash,
            } => {
                let store = &mut self.hosts[h].store;
                // As the real store: never replace a file, take the next free name instead
                // (a crash between the rename and its answer leaves `dl_<name>` behind).
                let file = (0..)
                    .map(|i| match i {
                        0 => format!("dl_{name}"),
                        i => format!("dl_{name} ({i})"),
                    })
                    .find(|f| !store.finished.contains_key(f))
                    .unwrap_or_default();
                let ok = store
                    .partial
                    .get(&content)
                    .is_some_and(|p| p.len() as u64 == size && sha256(p) == file_hash);
                let result = if !ok {
                    Err(FinishError::HashMismatch)
                } else {
                    let data = store.partial.remove(&content).unwrap_or_default();
                    store.finished.insert(file.clone(), (content, data));
                    Ok(file)
                };
                Input::Finished { content, result }
            }
            _ => return Ok(()),
        };
        self.deliver(h, inc, input, None)
    }

    // ---- events ----

    /// The end an event reaches, for events on a connection.
    fn end_of(ev: &Ev) -> Option<(usize, usize)> {
        match *ev {
            Ev::Bytes { cid, to, .. } | Ev::Fin { cid, to } | Ev::Reset { cid, to } => {
                Some((cid, to))
            }
            Ev::Flushed { cid, end } => Some((cid, end)),
            _ => None,
        }
    }

    fn event(&mut self, ev: Ev) -> Res {
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
                self.deliver(e.host, e.inc, Input::Flushed { conn }, None)
            }
            Ev::Disk { host, inc, op } => self.disk_done(host, inc, op),
            Ev::Act(a) => self.action(a),
        }
    }

    fn action(&mut self, a: Act) -> Res {
        self.log(format!("act {a:?}"));
        match a {
            Act::Get { want } => {
                let w = &mut self.wants[want];
                w.get_pending = false;
                let (h, f) = (w.host, w.file);
                if w.done || self.hosts[h].node.is_none() {
                    return Ok(());
                }
                if self.hosts[h].paused {
                    self.wants[want].get_pending = true;
                    let at = self.now + SEC;
                    self.act(at, Act::Get { want });
                    return Ok(());
                }
                let c = self.files[f].manifest.id();
                if self.hosts[h]
                    .node
                    .as_ref()
                    .and_then(|n| n.download(&c))
                    .is_some()
                {
                    return Ok(());
                }
                let w = &mut self.wants[want];
                w.attempt = Some(self.now);
                w.attempts += 1;
                self.feed(h, Input::Command(Command::Get(c)), None)?;
            }
            Act::Crash {
                host,
                graceful,
                down_for,
            } => {
                if self.hosts[host].node.is_none() {
                    return Ok(());
                }
                if graceful && !self.hosts[host].paused {
                    self.feed(host, Input::Command(Command::Shutdown), None)?;
                }
                self.crash(host);
                match down_for {
                    Some(d) => self.act(self.now + d, Act::Restart { host }),
                    None => self.hosts[host].departed = true,
                }
            }
            Act::Restart { host } => {
                if self.hosts[host].node.is_some() {
                    return Ok(());
                }
                self.start(host)?;
                for w in 0..self.wants.len() {
                    if self.wants[w].host == host
                        && !self.wants[w].done
                        && !self.wants[w].get_pending
                    {
                        self.wants[w].get_pending = true;
                        let at = self.now + self.rng.range(SEC, 3 * SEC);
                        self.act(at, Act::Get { want: w });
                    }
                }
            }
            Act::Pause { host, dur } => {
                if self.hosts[host].node.is_some() && !self.hosts[host].paused {
                    self.hosts[host].paused = true;
                    self.act(self.now + dur, Act::Unpause { host });
                }
            }
            Act::Unpause { host } => {
                if !self.hosts[host].paused {
                    return Ok(());
                }
                self.hosts[host].paused = false;
                if self.hosts[host].node.is_none() {
                    return Ok(());
                }
                if self.hosts[host].deadline.is_some_and(|d| d <= self.now) {
                    self.timeout(host)?;
                }
                while let Some(arrival) = self.hosts[host].backlog.pop_front() {
                    if self.hosts[host].node.is_none() {
                        break;
                    }
                    match arrival {
                        Arrival::Input(input, from) => self.feed(host, input, from)?,
                        Arrival::Accept(cid) => self.accept(cid)?,
                        Arrival::Event(ev) => self.event(ev)?,
                    }
                }
            }
            Act::Partition { groups, dur } => {
                for (h, g) in groups.into_iter().enumerate() {
                    self.hosts[h].group = g;
                }
                self.partition_until = self.now + dur;
                self.act(self.now + dur, Act::HealPartition);
            }
            Act::HealPartition => {
                for x in &mut self.hosts {
                    x.group = 0;
                }
            }
            Act::ResetConn => {
                let live = self.live_conns();
                if !live.is_empty() {
                    let cid = live[self.rng.below(live.len())];
                    self.conns[cid].reset = true;
                    for to in 0..2 {
                        let lat = self.hosts[self.conns[cid].ends[to].host].lat;
                        self.schedule(self.now + lat, Ev::Reset { cid, to });
                    }
                }
            }
            Act::HalfClose => {
                let live = self.live_conns();
                if !live.is_empty() {
                    let cid = live[self.rng.below(live.len())];
                    let to = self.rng.below(2);
                    let lat = self.hosts[self.conns[cid].ends[to].host].lat;
                    self.schedule(self.now + lat, Ev::Reset { cid, to });
                }
            }
            Act::Stall { dur } => {
                let live = self.live_conns();
                if !live.is_empty() {
                    let cid = live[self.rng.below(live.len())];
                    for e in 0..2 {
                        if self.rng.chance(0.7) {
                            self.conns[cid].stall_until[e] = self.now + dur;
                        }
                    }
                }
            }
            Act::SlowDisk { host, lat } => self.hosts[host].disk_slow = Some(lat),
            Act::WriteFail { host, p } => self.hosts[host].write_fail = p,
            Act::BadNet { loss, dup, jitter } => {
                self.loss = loss;
                self.dup = dup;
                self.jitter = jitter;
            }
            Act::Garbage => {
                let from: SocketAddr = "10.0.254.1:9999".parse().unwrap();
                for _ in 0..3 {
                    let n = self.rng.range(0, 1500) as usize;
                    let mut data = self.rng.bytes(n);
                    if self.rng.chance(0.5) && data.len() >= 5 {
                        data[..4].copy_from_slice(b"P2PS");
                        if self.rng.chance(0.5) {
                            data[4] = 1;
                        }
                    }
                    for t in 0..self.hosts.len() {
                        let inc = self.hosts[t].inc;
                        let input = Input::Datagram {
                            from,
                            data: data.clone(),
                        };
                        let at = self.now + self.hosts[t].lat;
                        self.schedule(
                            at,
                            Ev::Input {
                                host: t,
                                inc,
                                input,
                                from: None,
                            },
                        );
                    }
                }
            }
            Act::Heal => {
                self.loss = 0.0;
                self.dup = 0.0;
                self.jitter = 0;
                for x in &mut self.hosts {
                    x.disk_slow = None;
                    x.write_fail = 0.0;
                    x.group = 0;
                }
                for s in self.conns.iter_mut() {
                    s.stall_until = [0; 2];
                }
            }
            Act::Rescan { host } => {
                if self.hosts[host].node.is_none() {
                    return Ok(());
                }
                let finished: Vec<(String, ContentId, Vec<u8>)> = self.hosts[host]
                    .store
                    .finished
                    .iter()
                    .map(|(n, (c, d))| (n.clone(), *c, d.clone()))
                    .collect();
                for (name, c, data) in finished {
                    if self.hosts[host].catalog.iter().any(|f| f.name == name) {
                        continue;
                    }
                    let Some(&f) = self.manifests.get(&c) else {
                        continue;
                    };
                    let manifest = self.files[f].manifest.clone();
                    self.hosts[host].store.shared.insert(c, Rc::new(data));
                    self.hosts[host].catalog.push(LocalFile { name, manifest });
                }
                // A paused host sees the change when it wakes, like every other input.
                let files = self.hosts[host].catalog.clone();
                let inc = self.hosts[host].inc;
                self.deliver(host, inc, Input::CatalogChanged { files }, None)?;
            }
        }
        Ok(())
    }

    fn crash(&mut self, h: usize) {
        self.log(format!("h{h} crash"));
        let host = &mut self.hosts[h];
        host.node = None;
        host.inc += 1;
        host.paused = false;
        host.backlog.clear();
        host.deadline = None;
        host.expiry_check_at = Nanos::MAX;
        // Writes still queued may land, land torn, or vanish.
        let pending = std::mem::take(&mut host.pending_disk);
        for (_, o) in pending {
            if let DiskOp::Write {
                content,
                offset,
                data,
                ..
            } = o
            {
                match self.rng.below(3) {
                    0 => self.hosts[h].store.write(content, offset, &data),
                    1 => {
                        let n = self.rng.below(data.len().max(1));
                        self.hosts[h].store.write(content, offset, &data[..n]);
                    }
                    _ => {}
                }
            }
        }
        // The OS closes its sockets (or the machine is gone and says nothing).
        let rst = self.rng.chance(0.7);
        for cid in 0..self.conns.len() {
            for e in 0..2 {
                let end = self.conns[cid].ends[e];
                if end.host == h && end.open {
                    self.conns[cid].ends[e].open = false;
                    if rst {
                        self.conns[cid].reset = true;
                        let lat = self.link_lat(h, self.conns[cid].ends[1 - e].host);
                        self.schedule(self.now + lat, Ev::Reset { cid, to: 1 - e });
                    }
                }
            }
        }
        self.conn_of.retain(|(x, _), _| *x != h);
        for w in &mut self.wants {
            if w.host == h {
                w.attempt = None;
            }
        }
    }
}

impl Rewriter {
    /// Passes whole frames on, falsifying or dropping what `b` misbehaves on.
    fn rewrite(&mut self, b: Behaviour, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        if !self.preamble_done {
            if self.buf.len() < frame::PREAMBLE.len() {
                return out;
            }
            out.extend(self.buf.drain(..frame::PREAMBLE.len()));
            self.preamble_done = true;
        }
        loop {
            match frame::decode(&self.buf) {
                Ok(Some((f, used))) => {
                    let raw: Vec<u8> = self.buf.drain(..used).collect();
                    match (b, f) {
                        (Behaviour::Mute, Frame::Chunk { .. })
                        | (Behaviour::Mute, Frame::Message(Message::Manifest { .. })) => {}
                        (
                            Behaviour::ManifestLiar,
                            Frame::Message(Message::Manifest { content, mut bytes }),
                        ) => {
                            if let Some(last) = bytes.last_mut() {
                                *last ^= 0x55;
                            }
                            out.extend(frame::encode_message(&Message::Manifest {
                                content,
                                bytes,
                            }));
                        }
                        _ => out.extend(raw),
                    }
                }
                Ok(None) => return out,
                Err(_) => {
                    out.append(&mut self.buf);
                    return out;
                }
            }
        }
    }
}

/// Runs one seed: prints the seed first, then runs the world of that seed.
pub fn run_seed(seed: u64, bugs: Bugs, tracing: bool) -> Result<Report, Failure> {
    eprintln!("sim seed={seed}");
    let mut sim = Sim::new(seed, bugs);
    sim.tracing = tracing;
    sim.run()
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Seeds run.
    pub runs: u64,
    /// Steps over all runs.
    pub steps: u64,
    /// Downloads wanted over all runs.
    pub wanted: usize,
    /// Downloads completed over all runs.
    pub done: usize,
    /// Seeds per second of wall time.
    pub per_sec: f64,
    /// Every failure, in seed order.
    pub failures: Vec<Failure>,
}

impl Sweep {
    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failures.first()
    }
}

/// When a sweep stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the first failure (the bite tests: one is enough).
    FirstFailure,
    /// At the end of the range, whatever failed.
    End,
}

/// Runs `seeds` on `threads` threads (each takes the next seed not yet taken), printing each
/// failure as it is found when `until` is [`Until::End`]. With [`Until::FirstFailure`] every
/// thread stops once any failed, and the failure reported is the lowest seed that failed.
pub fn sweep_on(seeds: std::ops::Range<u64>, bugs: Bugs, threads: usize, until: Until) -> Sweep {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let t0 = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Sweep::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut mine = Sweep::default();
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    mine.runs += 1;
                    let mut sim = Sim::new(seed, bugs);
                    match sim.run() {
                        Ok(r) => {
                            mine.steps += r.steps;
                            mine.wanted += r.wanted;
                            mine.done += r.done;
                        }
                        Err(f) => {
                            mine.steps += f.step;
                            match until {
                                Until::FirstFailure => stop.store(true, Ordering::Relaxed),
                                Until::End => eprintln!("FAILED {f}"),
                            }
                            mine.failures.push(f);
                        }
                    }
                }
                let mut t = total.lock().unwrap();
                t.runs += mine.runs;
                t.steps += mine.steps;
                t.wanted += mine.wanted;
                t.done += mine.done;
                t.failures.append(&mut mine.failures);
            });
        }
    });
    let mut s = total.into_inner().unwrap();
    s.failures.sort_by_key(|f| f.seed);
    s.per_sec = s.runs as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    s
}

/// Runs `seeds` in order on this thread until the first failure.
pub fn sweep(seeds: std::ops::Range<u64>, bugs: Bugs) -> Sweep {
    sweep_on(seeds, bugs, 1, Until::FirstFailure)
}
