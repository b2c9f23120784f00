//! The node's one timer list: every deadline of the machine, each with the reason it wakes the
//! node ([`Wake`], as str0m's `Reason` on its timeouts), read by both "when to wake"
//! ([`Node::poll_timeout`]) and "what is due" ([`Node::handle_timeout`]), so the two cannot
//! drift apart (the node's version of `Session::timers`).
//!
//! Each deadline is computed in one place, [`Node::each_timer`], one arm per source; the only
//! "is it due" test is `at <= now`, in [`Node::run_due`]. `handle_timeout` runs the sources in
//! a fixed order ([`FIRST`], then [`THEN`]), each source's due timers collected before any of
//! them fires; a connection acts on its first due timer per pass (a session's closes come
//! before its ping, as in `Session::timers`).
//!
//! Invariant: after `handle_timeout(now)` no timer is due at `now` any more, so
//! `poll_timeout()` is later than `now` (the tests' checked pump checks this after every
//! timeout, in the simulator, the scripted harness and the small worlds).
//!
//! To add a timer: a [`Wake`] variant, an arm in `each_timer` (its deadline), an arm in
//! [`Node::wake`] (what it does), and its source's place in [`FIRST`] or [`THEN`].

use std::time::Instant;

use super::Node;
use super::conns::Conn;
use crate::ids::{ContentId, PeerId};
use crate::session::{ConnId, Due};
use crate::wire::frame::Message;

/// Why the node wakes up: one variant per kind of timer, naming what it is for. The simulator's
/// trace prints the reasons each `handle_timeout` ran for ([`Node::timers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Discovery: our announcement is due, or a peer in the table expires.
    Discovery,
    /// A Python peer (or a p2pshare peer's JSON announcement) expires.
    PythonPeers,
    /// A chunk connection to a Python peer reached its deadline.
    PyFetch(ConnId),
    /// A Python request being served reached its deadline.
    PyServe(ConnId),
    /// An accepted connection said nothing for `PY_SNIFF`: it gets our hello now.
    Sniff(ConnId),
    /// A session's timer: a close (connect, handshake, stall, idle, not reading) or a ping.
    Session(ConnId, Due),
    /// A catalog fetch put off by the gap since the last one asks again.
    CatalogRetry(PeerId),
    /// A link's backoff (or a dial put off) ended: dial again if something waits for it.
    Redial(PeerId),
    /// A target (a `--peer`, a link's peer, a known peer's probe; by its place in the list)
    /// without a connection is dialled.
    Target(usize),
    /// A download's request deadlines: a holder that delivered nothing in time loses its
    /// requests (or a stranded download's grace ends, or a chunk refused as taken may be asked
    /// again).
    Download(ContentId),
    /// Verified chunks wait to be announced (`Have`).
    Haves,
}

impl Wake {
    /// The connection this timer belongs to, if any.
    fn conn(&self) -> Option<ConnId> {
        match *self {
            Wake::PyFetch(c) | Wake::PyServe(c) | Wake::Sniff(c) | Wake::Session(c, _) => Some(c),
            _ => None,
        }
    }
}

/// Where the node's timers come from, in the order `handle_timeout` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Discovery,
    PythonPeers,
    PyFetch,
    PyServe,
    Sniff,
    Session,
    CatalogRetry,
    Redial,
    Targets,
    Download,
    Haves,
}

/// The sources run first; then discovery's changes are handled (a peer expired, a hello
/// arrived in the held bytes of a sniffed connection).
const FIRST: [Source; 5] = [
    Source::Discovery,
    Source::PythonPeers,
    Source::PyFetch,
    Source::PyServe,
    Source::Sniff,
];
/// The sources run next; then discovery's changes again.
const THEN: [Source; 6] = [
    Source::Session,
    Source::CatalogRetry,
    Source::Redial,
    Source::Targets,
    Source::Download,
    Source::Haves,
];

impl Node {
    /// Calls `f` with every armed timer of `source`: its deadline and why. The one place each
    /// deadline of the node is computed.
    pub(super) fn each_timer(&self, source: Source, f: &mut dyn FnMut(Instant, Wake)) {
        match source {
            Source::Discovery => f(self.discovery.poll_timeout(), Wake::Discovery),
            Source::PythonPeers => {
                if let Some(at) = self.python.poll_timeout() {
                    f(at, Wake::PythonPeers);
                }
            }
            Source::PyFetch => {
                for (conn, c) in self.conns.iter() {
                    if let Conn::PyFetch(fetch) = c {
                        f(fetch.deadline(), Wake::PyFetch(*conn));
                    }
                }
            }
            Source::PyServe => {
                for (conn, c) in self.conns.iter() {
                    if let Conn::PyServe(serve) = c {
                        f(serve.deadline(), Wake::PyServe(*conn));
                    }
                }
            }
            Source::Sniff => {
                for (conn, c) in self.conns.iter() {
                    if let Conn::Sniffing { sniff, .. } = c {
                        f(sniff.hello_at(), Wake::Sniff(*conn));
                    }
                }
            }
            Source::Session => {
                for s in self.conns.sessions() {
                    for (at, due) in s.timers(&self.cfg.timeouts) {
                        f(at, Wake::Session(s.id(), due));
                    }
                }
            }
            Source::CatalogRetry => {
                for (p, l) in &self.links {
                    if let Some(at) = l.catalog_retry_at() {
                        f(at, Wake::CatalogRetry(*p));
                    }
                }
            }
            Source::Redial => {
                for (p, l) in &self.links {
                    if let Some(at) = l.retry_at() {
                        f(at, Wake::Redial(*p));
                    }
                }
            }
            Source::Targets => {
                for (i, t) in self.targets.iter().enumerate() {
                    if let Some(at) = t.redial_at() {
                        f(at, Wake::Target(i));
                    }
                }
            }
            Source::Download => {
                let stall = self.cfg.timeouts.stall;
                for (c, d) in &self.downloads {
                    if let Some(at) = d.deadline(stall) {
                        f(at, Wake::Download(*c));
                    }
                }
            }
            Source::Haves => {
                if let Some(at) = self.swarm.have_due() {
                    f(at, Wake::Haves);
                }
            }
        }
    }

    /// Every armed timer: when, and why, in the order [`Node::handle_timeout`] runs them
    /// (empty after shutdown). [`Node::poll_timeout`] is the earliest of them.
    pub fn timers(&self) -> Vec<(Instant, Wake)> {
        let mut all = Vec::new();
        if !self.shut_down {
            for source in FIRST.into_iter().chain(THEN) {
                self.each_timer(source, &mut |at, w| all.push((at, w)));
            }
        }
        all
    }

    /// When to call [`Node::handle_timeout`] next; `None` after shutdown. The earliest of
    /// [`Node::timers`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        let mut first: Option<Instant> = None;
        for source in FIRST.into_iter().chain(THEN) {
            self.each_timer(source, &mut |at, _| {
                first = Some(first.map_or(at, |f| f.min(at)));
            });
        }
        first
    }

    /// Runs the timers due at `now` (see the module doc for the order). Spurious extra calls
    /// do nothing. Then drain [`Node::poll_output`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.assert_drained();
        self.now = self.now.max(now);
        let now = self.now;
        if self.shut_down {
            return;
        }
        for source in FIRST {
            self.run_due(now, source);
        }
        self.drain_discovery(now);
        for source in THEN {
            self.run_due(now, source);
        }
        self.drain_discovery(now);
        // A timer above may have revised our catalog (a download gave up), which brings the
        // next announcement forward, possibly to now: send it now, not in a busy loop.
        self.run_due(now, Source::Discovery);
        self.drain_discovery(now);
    }

    /// Fires the timers of `source` due at `now`: all of them are collected first, then each
    /// fires in turn (one per connection: its first due timer).
    pub(super) fn run_due(&mut self, now: Instant, source: Source) {
        let mut due: Vec<Wake> = Vec::new();
        self.each_timer(source, &mut |at, w| {
            if at <= now {
                due.push(w);
            }
        });
        due.dedup_by(|b, a| a.conn().is_some() && a.conn() == b.conn());
        for w in due {
            self.wake(now, w);
        }
    }

    /// Does what timer `w` is for.
    fn wake(&mut self, now: Instant, w: Wake) {
        match w {
            Wake::Discovery => {
                if self.discovery.handle_timeout(now, &mut self.rng) {
                    self.announce(false);
                }
            }
            Wake::PythonPeers => {
                self.python.handle_timeout(now);
                self.drain_python(now);
            }
            Wake::PyFetch(conn) => self.py_fetch_late(now, conn),
            Wake::PyServe(conn) => self.py_serve_late(conn),
            Wake::Sniff(conn) => self.sniffed_silence(now, conn),
            Wake::Session(conn, Due::Ping) => {
                if let Some(s) = self.conns.session_mut(&conn) {
                    s.ping_sent(now);
                }
                self.send_msg(conn, &Message::Ping);
            }
            Wake::Session(conn, Due::Close(why)) => self.end_session(now, conn, why, true),
            Wake::CatalogRetry(peer) => {
                if let Some(l) = self.links.get_mut(&peer) {
                    l.catalog_retry_fired();
                }
                self.fetch_catalog(now, peer);
            }
            Wake::Redial(peer) => {
                if let Some(l) = self.links.get_mut(&peer) {
                    l.retry_fired();
                }
                if self.peer_wanted(&peer) {
                    self.ensure_link(now, peer);
                }
            }
            Wake::Target(i) => self.redial_target(now, i),
            Wake::Download(content) => self.download_late(now, content),
            Wake::Haves => self.flush_haves(),
        }
    }
}
