//! The node's one connection table: every connection the node knows, by id, as what it is
//! ([`Conn`]), and the router that hands each connection input to the part that owns that kind
//! of connection.
//!
//! Life of a connection: one we accept starts [`Conn::Sniffing`] (its first bytes say whether it
//! is ours or a Python request; our hello waits until they do, or `PY_SNIFF` passed), then
//! becomes [`Conn::Native`] (a session: its handshake, then requests both ways) or
//! [`Conn::PyServe`]; one we dial to a peer is `Native` from the start; a chunk connection to a
//! Python peer is [`Conn::PyFetch`] from its connect to its close.
//!
//! Invariants: a connection id is in one place, its entry here, by construction (each kind
//! carries its record in its variant, as quinn's connection `State` carries each state's
//! data); a connection leaves the table when it ends, whoever ended it; an input about an id
//! not in the table changes nothing; our chunk connections to Python peers do not count in the
//! connection budgets (`max_connections`, `max_connections_per_ip`), every other connection
//! does.
//!
//! A native connection is first a Noise handshake, then a session of sealed frames: both live
//! in one [`Session`] (its `Channel` holds the handshake, then the transport; its `State`
//! stays `Handshaking` until the hello of the key the handshake proved).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use super::serve::ReadFor;
use super::{DiskOp, NetOp, Node, Output, ReadId, ReadSource};
use crate::python::{Ended, Fetch, FirstBytes, Serve, ServeStep, Sniff};
use crate::session::{CloseReason, ConnId, Session};

/// What one connection is, with its record.
#[derive(Debug)]
pub(super) enum Conn {
    /// Accepted; its first bytes have not said yet whether it is ours or a Python request.
    Sniffing {
        /// Its session, should it be ours (its handshake deadline runs from the accept).
        session: Session,
        /// What arrived so far, and when our hello goes out regardless.
        sniff: Sniff,
    },
    /// Ours: the handshake, then a session.
    Native(Session),
    /// A Python peer's chunk request, being served.
    PyServe(Serve),
    /// A chunk being fetched from a Python peer.
    PyFetch(Fetch),
}

impl Conn {
    /// Its session, if it is ours (or may still be).
    fn session(&self) -> Option<&Session> {
        match self {
            Conn::Sniffing { session, .. } | Conn::Native(session) => Some(session),
            Conn::PyServe(_) | Conn::PyFetch(_) => None,
        }
    }

    fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Conn::Sniffing { session, .. } | Conn::Native(session) => Some(session),
            Conn::PyServe(_) | Conn::PyFetch(_) => None,
        }
    }

    /// The address of the other end of an accepted connection.
    fn accepted_from(&self) -> Option<IpAddr> {
        match self {
            Conn::Sniffing { session, .. } | Conn::Native(session) => {
                session.id().is_inbound().then(|| session.remote().ip())
            }
            Conn::PyServe(s) => Some(s.remote().ip()),
            Conn::PyFetch(_) => None,
        }
    }
}

/// The table, by id.
#[derive(Debug, Default)]
pub(super) struct Conns {
    map: BTreeMap<ConnId, Conn>,
}

impl Conns {
    pub(super) fn get(&self, conn: &ConnId) -> Option<&Conn> {
        self.map.get(conn)
    }

    pub(super) fn insert(&mut self, conn: ConnId, c: Conn) {
        self.map.insert(conn, c);
    }

    pub(super) fn remove(&mut self, conn: &ConnId) -> Option<Conn> {
        self.map.remove(conn)
    }

    /// Every connection, by id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&ConnId, &Conn)> {
        self.map.iter()
    }

    /// The ids of the connections `keep` picks, in order.
    pub(super) fn ids(&self, keep: impl Fn(&Conn) -> bool) -> Vec<ConnId> {
        self.map
            .iter()
            .filter(|(_, c)| keep(c))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The session of `conn`, if it is ours (or may still be).
    pub(super) fn session(&self, conn: &ConnId) -> Option<&Session> {
        self.map.get(conn).and_then(Conn::session)
    }

    pub(super) fn session_mut(&mut self, conn: &ConnId) -> Option<&mut Session> {
        self.map.get_mut(conn).and_then(Conn::session_mut)
    }

    /// Every session, by id.
    pub(super) fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.map.values().filter_map(Conn::session)
    }

    /// Takes the session of `conn` out of the table (a connection of another kind stays).
    pub(super) fn remove_session(&mut self, conn: &ConnId) -> Option<Session> {
        match self.map.get(conn)? {
            Conn::Sniffing { .. } | Conn::Native(_) => match self.map.remove(conn)? {
                Conn::Sniffing { session, .. } | Conn::Native(session) => Some(session),
                Conn::PyServe(_) | Conn::PyFetch(_) => None,
            },
            Conn::PyServe(_) | Conn::PyFetch(_) => None,
        }
    }

    /// The sniffing connection `conn` turned out to be what `into` makes of its session;
    /// returns the bytes it held (none if it was not sniffing).
    fn decide(&mut self, conn: ConnId, into: impl FnOnce(Session) -> Conn) -> Vec<u8> {
        let Some(Conn::Sniffing { .. }) = self.map.get(&conn) else {
            return Vec::new();
        };
        match self.map.remove(&conn) {
            Some(Conn::Sniffing { session, sniff }) => {
                self.map.insert(conn, into(session));
                sniff.into_held()
            }
            _ => Vec::new(),
        }
    }

    /// Connections that count in the connection budgets: all but our chunk connections to
    /// Python peers.
    pub(super) fn budgeted(&self) -> usize {
        self.map
            .values()
            .filter(|c| !matches!(c, Conn::PyFetch(_)))
            .count()
    }

    /// Accepted connections from `ip` open now: sessions and Python requests.
    pub(super) fn accepted_from(&self, ip: IpAddr) -> usize {
        self.map
            .values()
            .filter(|c| c.accepted_from() == Some(ip))
            .count()
    }
}

impl Node {
    /// `Connected`: a chunk connection sends its request; a session starts its handshake.
    pub(super) fn on_connected(&mut self, now: Instant, conn: ConnId) {
        match self.conns.get(&conn) {
            Some(Conn::PyFetch(f)) => {
                let data = f.request();
                self.out.push_back(Output::Net(NetOp::Send { conn, data }));
            }
            Some(Conn::Native(s))
                if matches!(s.state(), crate::session::State::Connecting { .. }) =>
            {
                self.start_handshake(now, conn)
            }
            _ => {}
        }
    }

    /// `ConnectFailed`, `Closed`: the connection is gone (`why` says how, for a session).
    pub(super) fn on_conn_gone(&mut self, now: Instant, conn: ConnId, why: CloseReason) {
        match self.conns.get(&conn) {
            Some(Conn::PyFetch(_)) => {
                let ended = match why {
                    CloseReason::ConnectFailed => Ended::Failed,
                    _ => Ended::Closed,
                };
                self.fetch_ended(now, conn, ended);
            }
            // (A connection we accepted is never one whose connect failed.)
            Some(Conn::PyServe(_)) if why == CloseReason::ConnectFailed => {}
            Some(Conn::PyServe(_)) => {
                self.conns.remove(&conn);
            }
            _ => self.end_session(now, conn, why, false),
        }
    }

    /// `Flushed`: a served Python request is done; a session may send what waited.
    pub(super) fn on_conn_flushed(&mut self, conn: ConnId) {
        match self.conns.get(&conn) {
            Some(Conn::PyFetch(_)) => {}
            Some(Conn::PyServe(s)) => {
                if s.replied() {
                    self.py_serve_close(conn);
                }
            }
            // (Also for an id no longer in the table: connections waiting for a shared send
            // budget may go on.)
            _ => self.on_flushed(conn),
        }
    }

    /// Bytes arrived on `conn`: for whatever it is.
    pub(super) fn on_received(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        match self.conns.map.get_mut(&conn) {
            Some(Conn::PyFetch(f)) => {
                let kept = f.received(data);
                if !kept {
                    // More than a hash and a chunk: a lie, whatever the rest.
                    self.out.push_back(Output::Net(NetOp::Close { conn }));
                    self.fetch_ended(now, conn, Ended::TooLong);
                }
            }
            Some(Conn::PyServe(_)) => self.py_serve_received(conn, data),
            Some(Conn::Sniffing { sniff, .. }) => match sniff.first_bytes(data) {
                FirstBytes::Wait => {}
                FirstBytes::Python => {
                    let held = self.sniffed_python(now, conn);
                    self.py_serve_received(conn, &held);
                }
                FirstBytes::Native => {
                    let held = self.sniffed_native(conn);
                    self.start_handshake(now, conn);
                    self.on_session_bytes(now, conn, &held);
                }
            },
            Some(Conn::Native(_)) => self.on_session_bytes(now, conn, data),
            None => {}
        }
    }

    /// Accepted connection `conn` was silent for `PY_SNIFF`: it is no Python request (those
    /// come at once): it gets our hello now, and what it held so far is its session's.
    pub(super) fn sniffed_silence(&mut self, now: Instant, conn: ConnId) {
        // A stalled start of `chunk ` goes the native way too (and fails there).
        let held = self.sniffed_native(conn);
        self.start_handshake(now, conn);
        if !held.is_empty() {
            self.on_received(now, conn, &held);
        }
    }

    /// The sniffed connection `conn` is ours: it becomes a session. Returns the bytes it held.
    fn sniffed_native(&mut self, conn: ConnId) -> Vec<u8> {
        self.conns.decide(conn, Conn::Native)
    }

    /// The sniffed connection `conn` is a Python request: served until the handshake timeout
    /// at most. Returns the bytes it held.
    fn sniffed_python(&mut self, now: Instant, conn: ConnId) -> Vec<u8> {
        let deadline = now + self.cfg.timeouts.handshake;
        self.conns
            .decide(conn, |s| Conn::PyServe(Serve::new(s.remote(), deadline)))
    }

    /// Bytes of a Python request on `conn`: answered (a read of the chunk asked for), or
    /// closed.
    fn py_serve_received(&mut self, conn: ConnId, data: &[u8]) {
        if self.cfg.allow.is_some() {
            // Private sharing: a Python peer proves no key, so it is never allowed.
            self.stats.requests_not_allowed += 1;
            return self.py_serve_close(conn);
        }
        let Some(Conn::PyServe(serve)) = self.conns.map.get_mut(&conn) else {
            return;
        };
        let (local, names) = (&self.local, &self.local_names);
        let step = self.python.serve_received(serve, data, |name| {
            let c = names.get(name)?;
            Some((*c, local.get(c)?.manifest.size()))
        });
        match step {
            ServeStep::Wait => {}
            ServeStep::Close => self.py_serve_close(conn),
            ServeStep::Read {
                content,
                offset,
                len,
            } => {
                let read = self.ids.read();
                self.reads.insert(read, ReadFor::PyServe { conn });
                self.out.push_back(Output::Disk(DiskOp::Read {
                    read,
                    source: ReadSource::Shared(content),
                    offset,
                    len,
                }));
            }
        }
    }

    /// The chunk read for the Python request on `conn` is done: the reply goes out (the
    /// connection closes once it is flushed); a failed read closes it at once.
    pub(super) fn py_read_done(&mut self, conn: ConnId, result: Result<Vec<u8>, crate::DiskError>) {
        match result {
            Ok(chunk) if matches!(self.conns.get(&conn), Some(Conn::PyServe(_))) => {
                let data = self.python.reply(&chunk);
                self.out.push_back(Output::Net(NetOp::Send { conn, data }));
            }
            _ => self.py_serve_close(conn),
        }
    }

    /// Closes the Python request connection `conn`, if it still is one.
    fn py_serve_close(&mut self, conn: ConnId) {
        if matches!(self.conns.get(&conn), Some(Conn::PyServe(_))) {
            self.conns.remove(&conn);
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
    }

    /// Python request connection `conn` reached its deadline: closed as malformed.
    pub(super) fn py_serve_late(&mut self, conn: ConnId) {
        self.python.serve_timed_out();
        self.py_serve_close(conn);
    }

    /// Chunk connection `conn` reached its deadline: closed, the attempt failed.
    pub(super) fn py_fetch_late(&mut self, now: Instant, conn: ConnId) {
        if matches!(self.conns.get(&conn), Some(Conn::PyFetch(_))) {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
            self.fetch_ended(now, conn, Ended::Failed);
        }
    }

    /// Chunk connection `conn` ended: out of the table, and its download hears how.
    fn fetch_ended(&mut self, now: Instant, conn: ConnId, ended: Ended) {
        if let Some(Conn::PyFetch(f)) = self.conns.remove(&conn) {
            self.python.fetch_ended(now, &f, ended);
            self.drain_python(now);
        }
    }
}

/// The ids the node gives: each connection and each read has its own, never used again.
#[derive(Debug)]
pub(super) struct Ids {
    outbound: u64,
    inbound: u64,
    read: u64,
}

impl Default for Ids {
    fn default() -> Ids {
        Ids {
            outbound: 1,
            inbound: 1,
            read: 1,
        }
    }
}

impl Ids {
    /// The id of the next connection we open.
    pub(super) fn outbound(&mut self) -> ConnId {
        let conn = ConnId(self.outbound);
        self.outbound += 1;
        conn
    }

    /// The id of the next connection we accept.
    pub(super) fn inbound(&mut self) -> ConnId {
        let conn = ConnId::inbound(self.inbound);
        self.inbound += 1;
        conn
    }

    /// The id of the next read.
    pub(super) fn read(&mut self) -> ReadId {
        let read = ReadId(self.read);
        self.read += 1;
        read
    }
}
