//! The one checked pump of a `Node`: every call into the node goes through [`Checked`], which
//! catches a panic, drains the outputs (the node's contract) and checks every post-condition
//! the design names, after each call, whoever drives the node: the simulator, the scripted
//! harness of `node_inputs` and its fuzz target, and the small worlds of `three_nodes`.
//!
//! Checked after every call ([`Violation`] says which broke):
//! - the node did not panic;
//! - it asked for at most [`Checked::max_outputs`] outputs;
//! - `Node::check_invariants` holds (every chunk of a download in exactly one state, …);
//! - receive buffers hold at most [`Checked::buffered_per_conn`] bytes per connection;
//! - every disk request names a file the world knows and stays inside it: a write carries a
//!   chunk that verifies against the file's manifest at its offset; a finish comes only when
//!   the partial file, as the pump's disk holds it, is whole and hashes to the file's SHA-256,
//!   and hands on the manifest it was verified against; a read of a partial file reads only a
//!   chunk being re-verified or verified and written (never one merely asked for);
//! - after `handle_timeout(now)`: no peer silent for the expiry (3½ announcement intervals for
//!   ours, `PY_EXPIRY` for Python peers; silent since the time the pump says it last heard it)
//!   is listed while the node runs (a node shut down runs no timers: its table stays as it
//!   was), and `poll_timeout()` is later than `now`, or `None` only after a shutdown (no busy
//!   loop).
//!
//! What the node asks of the network is the pump's to perform and to check (its model of the
//! LAN knows which connections exist); so are the checks that need the whole world (budgets
//! across hosts, liveness, who is honest).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use p2pshare_proto::budget::PY_EXPIRY;
use p2pshare_proto::download::ChunkState;
use p2pshare_proto::{
    Admission, Command, ConnId, ContentId, DiskOp, Input, Manifest, NetOp, Node, Output, PeerView,
    ReadSource, sha256,
};

/// The partial download of a content as the pump's disk would give its first `size` bytes
/// (`None`: there is no such file).
pub type Disk<'a> = &'a dyn Fn(&ContentId, u64) -> Option<Vec<u8>>;

/// When the world last heard the peer of a listed entry (for the expiry check).
pub type Heard<'a> = &'a dyn Fn(&PeerView) -> Instant;

/// A post-condition that broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The node panicked in this call.
    Panic(&'static str),
    /// More outputs from one call than allowed.
    TooManyOutputs(usize),
    /// `Node::check_invariants` failed.
    Invariant(String),
    /// Receive buffers hold more than allowed.
    Buffered {
        /// Bytes buffered.
        bytes: usize,
        /// Across this many connections.
        conns: usize,
    },
    /// A chunk whose bytes fail the manifest's hash (or at the wrong offset) was written.
    CorruptWrite(String),
    /// A finish was asked before the whole file was written and matched its SHA-256.
    EarlyFinish(String),
    /// A chunk of a partial file was read to be served before it was verified and written.
    UnverifiedServe(String),
    /// A disk or network request about a file the world does not have, or past its end.
    BadRequest(String),
    /// A peer silent past the expiry is still listed after the timers ran.
    PeerNotExpired(String),
    /// `poll_timeout()` after `handle_timeout(now)` is not later than `now`.
    BusyLoop(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Panic(call) => write!(f, "panicked in {call}"),
            Violation::TooManyOutputs(n) => write!(f, "{n} outputs from one call"),
            Violation::Invariant(e) => write!(f, "invariant broken: {e}"),
            Violation::Buffered { bytes, conns } => {
                write!(f, "{bytes} bytes buffered in {conns} connections")
            }
            Violation::CorruptWrite(m)
            | Violation::EarlyFinish(m)
            | Violation::UnverifiedServe(m)
            | Violation::BadRequest(m)
            | Violation::PeerNotExpired(m)
            | Violation::BusyLoop(m) => f.write_str(m),
        }
    }
}

type Checks = Result<(), Violation>;

/// A node whose every call is checked.
pub struct Checked {
    node: Node,
    /// The manifests of every file of the world, by content.
    known: BTreeMap<ContentId, Manifest>,
    /// The most outputs one call may produce.
    pub max_outputs: usize,
    /// The most bytes a connection's receive buffer may hold.
    pub buffered_per_conn: usize,
    shut_down: bool,
}

impl Checked {
    /// Checks `node`, whose world has the files of `known`.
    pub fn new(node: Node, known: impl IntoIterator<Item = Manifest>) -> Checked {
        Checked {
            node,
            known: known.into_iter().map(|m| (m.id(), m)).collect(),
            max_outputs: usize::MAX,
            buffered_per_conn: usize::MAX,
            shut_down: false,
        }
    }

    /// The node, for its views.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The world has this file too.
    pub fn know(&mut self, m: Manifest) {
        self.known.insert(m.id(), m);
    }

    /// `handle_input(now, input)`, checked; the outputs to perform.
    pub fn input(
        &mut self,
        now: Instant,
        input: Input,
        disk: Disk<'_>,
    ) -> Result<Vec<Output>, Violation> {
        if matches!(input, Input::Command(Command::Shutdown)) {
            self.shut_down = true;
        }
        let node = &mut self.node;
        call("handle_input", || node.handle_input(now, input))?;
        self.after(disk)
    }

    /// `handle_received(now, conn, data)`, checked; the outputs to perform.
    pub fn received(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
        disk: Disk<'_>,
    ) -> Result<Vec<Output>, Violation> {
        let node = &mut self.node;
        call("handle_received", || node.handle_received(now, conn, data))?;
        self.after(disk)
    }

    /// `accept(now, remote)`, checked; what the node decided and the outputs to perform.
    pub fn accept(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        disk: Disk<'_>,
    ) -> Result<(Admission, Vec<Output>), Violation> {
        let node = &mut self.node;
        let admission = call("accept", || node.accept(now, remote))?;
        if let Admission::Accepted(conn) = admission
            && !conn.is_inbound()
        {
            return Err(Violation::BadRequest(format!(
                "accepted {conn:?} without the inbound bit"
            )));
        }
        Ok((admission, self.after(disk)?))
    }

    /// `handle_timeout(now)`, checked (peers expired, no busy loop); the outputs to perform.
    pub fn timeout(
        &mut self,
        now: Instant,
        disk: Disk<'_>,
        heard: Heard<'_>,
    ) -> Result<Vec<Output>, Violation> {
        let node = &mut self.node;
        call("handle_timeout", || node.handle_timeout(now))?;
        let outs = self.after(disk)?;
        if !self.shut_down {
            self.check_expiry(now, heard)?;
        }
        match self.node.poll_timeout() {
            Some(t) if t <= now => Err(Violation::BusyLoop(format!(
                "poll_timeout {t:?} is not after now {now:?} after handle_timeout (due: {:?})",
                self.node
                    .timers()
                    .iter()
                    .filter(|(at, _)| *at <= now)
                    .map(|(_, w)| w)
                    .collect::<Vec<_>>()
            ))),
            None if !self.shut_down => Err(Violation::BusyLoop(
                "no deadline before shutdown".to_owned(),
            )),
            _ => Ok(outs),
        }
    }

    /// No listed peer has been silent (since `heard` says it last spoke) for its expiry.
    pub fn check_expiry(&self, now: Instant, heard: Heard<'_>) -> Checks {
        let interval = self.node.config().interval;
        let native = interval * 3 + interval / 2;
        for p in self.node.peers() {
            let expiry = if p.python { PY_EXPIRY } else { native };
            let silent = now.saturating_duration_since(heard(&p));
            if silent >= expiry {
                return Err(Violation::PeerNotExpired(format!(
                    "still lists {:?} at {}, silent for {:.3}s (expiry {:.1}s)",
                    p.id,
                    p.addr,
                    silent.as_secs_f64(),
                    expiry.as_secs_f64()
                )));
            }
        }
        Ok(())
    }

    /// Drains the outputs of the call and checks them and the node.
    fn after(&mut self, disk: Disk<'_>) -> Result<Vec<Output>, Violation> {
        let mut outs = Vec::new();
        while let Some(o) = self.node.poll_output() {
            outs.push(o);
            if outs.len() > self.max_outputs {
                return Err(Violation::TooManyOutputs(outs.len()));
            }
        }
        for o in &outs {
            self.check_output(o, disk)?;
        }
        self.node.check_invariants().map_err(Violation::Invariant)?;
        let conns = self.node.connections();
        let bytes = self.node.buffered_bytes();
        if bytes > conns.max(1).saturating_mul(self.buffered_per_conn) {
            return Err(Violation::Buffered { bytes, conns });
        }
        Ok(outs)
    }

    fn manifest(&self, content: &ContentId, what: &str) -> Result<&Manifest, Violation> {
        self.known.get(content).ok_or_else(|| {
            Violation::BadRequest(format!("{what} of {}, a file nobody has", content.short()))
        })
    }

    /// `what` (a read) of `len` bytes at `offset` stays inside `content`.
    fn inside(&self, content: &ContentId, offset: u64, len: u32, what: &str) -> Checks {
        let m = self.manifest(content, what)?;
        if offset + u64::from(len) > m.size() {
            return Err(Violation::BadRequest(format!(
                "{what} of {} past its end",
                content.short()
            )));
        }
        Ok(())
    }

    /// The checks on one thing the node asks for.
    fn check_output(&self, o: &Output, disk: Disk<'_>) -> Checks {
        match o {
            Output::Disk(DiskOp::Write {
                content,
                index,
                offset,
                data,
            }) => {
                let ok = self.known.get(content).is_some_and(|m| {
                    m.chunk_range(*index).is_some_and(|(o, _)| o == *offset)
                        && m.verify_chunk(*index, data).is_ok()
                });
                if !ok {
                    return Err(Violation::CorruptWrite(format!(
                        "writes chunk {index} of {} whose bytes fail its hash",
                        content.short()
                    )));
                }
            }
            Output::Disk(DiskOp::Finish {
                content,
                size,
                file_hash,
                manifest,
                ..
            }) => {
                let p = disk(content, *size);
                let known = self.known.get(content);
                // The manifest handed on for sharing is the one the file was verified against.
                let ok = p
                    .as_ref()
                    .is_some_and(|p| p.len() as u64 == *size && sha256(p) == *file_hash)
                    && known.is_some_and(|m| m.file_hash() == file_hash && m.size() == *size)
                    && manifest.as_deref().is_none_or(|m| Some(m) == known);
                if !ok {
                    let have = p.map_or(0, |p| p.len());
                    return Err(Violation::EarlyFinish(format!(
                        "asks to finish {} but its partial file ({have} of {size} bytes) does not match the file hash",
                        content.short()
                    )));
                }
            }
            Output::Disk(DiskOp::Read {
                source,
                offset,
                len,
                ..
            }) => {
                let content = match source {
                    ReadSource::Shared(c) | ReadSource::Partial(c) => c,
                };
                self.inside(content, *offset, *len, "read")?;
                if let ReadSource::Partial(c) = source {
                    // Of a partial file, only chunks being re-verified (resume) or verified
                    // and written (served to others) are ever read.
                    let state = self.node.download(c).and_then(|d| {
                        let index = (offset / u64::from(d.manifest()?.chunk_size())) as u32;
                        d.chunk(index).cloned()
                    });
                    if !matches!(
                        state,
                        Some(ChunkState::Written | ChunkState::Checking) | None
                    ) {
                        return Err(Violation::UnverifiedServe(format!(
                            "reads {} @{offset} of its partial file to serve it while that chunk is {state:?}",
                            c.short()
                        )));
                    }
                }
            }
            Output::Disk(DiskOp::OpenPartial { content, size, .. }) => {
                let m = self.manifest(content, "open")?;
                if m.size() != *size {
                    return Err(Violation::BadRequest(format!(
                        "opens {} as {size} bytes, not {}",
                        content.short(),
                        m.size()
                    )));
                }
            }
            Output::Net(NetOp::Connect { conn, .. }) if conn.is_inbound() => {
                return Err(Violation::BadRequest(format!(
                    "connects {conn:?} with the inbound bit set"
                )));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The node's views (`peers()`, `downloads()`, …) read straight through; every call that
/// changes it goes through the checked methods above.
impl std::ops::Deref for Checked {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

/// Runs one call into the node; a panic is a violation.
fn call<T>(name: &'static str, f: impl FnOnce() -> T) -> Result<T, Violation> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| Violation::Panic(name))
}
