//! One TCP connection: its handshake, framing, serving queue and timers.
//!
//! Life of a session: an outbound one is `Connecting` until the runtime reports it connected;
//! both ends then send [`PREAMBLE`] and a `Hello` and wait for the other's (`Handshaking`);
//! after a valid `Hello` the session is `Open` and carries requests both ways.
//!
//! Invariants:
//! - every state has a deadline or a liveness rule: connect and handshake time out; an open
//!   session with requests outstanding and no byte received for `stall` is stalled; an idle
//!   one is closed after `idle` (static-peer sessions are pinged instead);
//! - the receive buffer holds at most one incomplete frame ([`FrameDecoder`]);
//! - the serving side queues at most [`MAX_QUEUED_REQUESTS`] chunk requests and has at most
//!   `serve_window` chunks read or sent but not yet flushed by the runtime.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ids::{ContentId, PeerId};
use crate::wire::{FrameDecoder, PREAMBLE};

/// Most chunk requests a peer may queue on one connection; more are answered `Busy`.
pub const MAX_QUEUED_REQUESTS: usize = 256;

/// Identifies a connection between the node and its runtime. The node numbers outbound
/// connections with the top bit clear; the runtime numbers accepted ones with
/// [`ConnId::inbound`], so the two never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    const INBOUND: u64 = 1 << 63;

    /// The id a runtime gives its `n`-th accepted connection.
    pub fn inbound(n: u64) -> ConnId {
        ConnId(n | Self::INBOUND)
    }

    /// True for ids made by [`ConnId::inbound`].
    pub fn is_inbound(self) -> bool {
        self.0 & Self::INBOUND != 0
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Outbound, waiting for the runtime's `Connected`.
    Connecting,
    /// Preamble and hello sent, waiting for the other side's.
    Handshaking,
    /// Hello received from `peer`.
    Open,
}

/// Why the node ended a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The runtime could not connect.
    ConnectFailed,
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// No valid hello within the handshake timeout.
    HandshakeTimeout,
    /// Requests outstanding and nothing received for the stall timeout.
    Stalled,
    /// Nothing to do for the idle timeout.
    Idle,
    /// The bytes broke the protocol.
    Protocol(String),
    /// The other side closed or reset.
    Remote,
    /// The peer expired or said goodbye.
    PeerGone,
    /// The hello named another peer than expected.
    WrongPeer,
    /// Too many connections.
    TooMany,
    /// This node is shutting down.
    Shutdown,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ConnectFailed => f.write_str("connection refused or unreachable"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::Stalled => f.write_str("peer stopped answering"),
            CloseReason::Idle => f.write_str("idle"),
            CloseReason::Protocol(s) => write!(f, "protocol error: {s}"),
            CloseReason::Remote => f.write_str("closed by peer"),
            CloseReason::PeerGone => f.write_str("peer gone"),
            CloseReason::WrongPeer => f.write_str("unexpected peer at that address"),
            CloseReason::TooMany => f.write_str("too many connections"),
            CloseReason::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// Timeouts of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From `Connect` to `Connected`.
    pub connect: Duration,
    /// From sending our hello to receiving theirs.
    pub handshake: Duration,
    /// With requests outstanding, the longest silence before the peer counts as stalled.
    pub stall: Duration,
    /// With nothing outstanding either way, how long before an outbound session is closed
    /// (inbound ones get twice that, static-peer ones never).
    pub idle: Duration,
    /// How often static-peer sessions are pinged.
    pub ping: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            stall: Duration::from_secs(5),
            idle: Duration::from_secs(60),
            ping: Duration::from_secs(5),
        }
    }
}

/// What the timers ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Close the session.
    Close(CloseReason),
    /// Send a ping.
    Ping,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub id: ConnId,
    /// The other end's address.
    pub remote: SocketAddr,
    /// Where the session is in its life.
    pub state: State,
    /// The peer, once its hello arrived (for outbound sessions to a known peer, the peer we
    /// expect).
    pub peer: Option<PeerId>,
    /// The instance its hello named (a peer that restarts gets a new one).
    pub instance: Option<u64>,
    /// True when this session keeps a static peer (`--peer`) in view.
    pub pinned: bool,
    /// Frames received.
    pub decoder: FrameDecoder,
    /// When the state last changed (deadlines for connect and handshake run from here).
    pub since: Instant,
    /// When bytes last arrived.
    pub last_recv: Instant,
    /// When we last sent anything.
    pub last_send: Instant,
    /// Our requests on this session not yet answered (chunks, catalog, manifest).
    pub outstanding: u32,
    /// Since when we wait for an answer with no byte received (stall clock).
    pub waiting_since: Option<Instant>,
    /// Chunk requests received and not yet read.
    pub serve_queue: VecDeque<(ContentId, u32)>,
    /// Chunk reads in flight for this connection.
    pub serving: u32,
    /// Chunks sent since the runtime last reported `Flushed`.
    pub unflushed: u32,
}

impl Session {
    /// A new session; outbound ones start `Connecting`, inbound ones `Handshaking`.
    pub fn new(id: ConnId, remote: SocketAddr, peer: Option<PeerId>, now: Instant) -> Session {
        Session {
            id,
            remote,
            state: if id.is_inbound() {
                State::Handshaking
            } else {
                State::Connecting
            },
            peer,
            instance: None,
            pinned: false,
            decoder: FrameDecoder::new(),
            since: now,
            last_recv: now,
            last_send: now,
            outstanding: 0,
            waiting_since: None,
            serve_queue: VecDeque::new(),
            serving: 0,
            unflushed: 0,
        }
    }

    /// The bytes that open our side of every connection.
    pub fn preamble() -> &'static [u8] {
        PREAMBLE
    }

    /// Records received bytes (for the stall and idle clocks) and buffers them.
    pub fn on_bytes(&mut self, now: Instant, data: &[u8]) {
        self.last_recv = now;
        if self.waiting_since.is_some() {
            self.waiting_since = Some(now);
        }
        self.decoder.push(data);
    }

    /// Records that we sent a request that expects an answer.
    pub fn request_sent(&mut self, now: Instant) {
        if self.outstanding == 0 {
            self.waiting_since = Some(now);
        }
        self.outstanding += 1;
        self.last_send = now;
    }

    /// Records that one outstanding request was answered (or abandoned).
    pub fn request_done(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.outstanding == 0 {
            self.waiting_since = None;
        }
    }

    fn busy(&self) -> bool {
        self.outstanding > 0
            || !self.serve_queue.is_empty()
            || self.serving > 0
            || self.unflushed > 0
    }

    fn idle_limit(&self, t: &Timeouts) -> Option<Duration> {
        if self.pinned {
            None
        } else if self.id.is_inbound() {
            Some(t.idle * 2)
        } else {
            Some(t.idle)
        }
    }

    /// The next instant this session's timers have work.
    pub fn poll_timeout(&self, t: &Timeouts) -> Option<Instant> {
        match self.state {
            State::Connecting => Some(self.since + t.connect),
            State::Handshaking => Some(self.since + t.handshake),
            State::Open => {
                let mut next = None;
                if let Some(w) = self.waiting_since {
                    next = Some(w + t.stall);
                }
                if self.pinned {
                    let ping = self.last_send + t.ping;
                    next = Some(next.map_or(ping, |n: Instant| n.min(ping)));
                } else if !self.busy()
                    && let Some(limit) = self.idle_limit(t)
                {
                    let idle = self.last_recv.max(self.last_send) + limit;
                    next = Some(next.map_or(idle, |n: Instant| n.min(idle)));
                }
                next
            }
        }
    }

    /// What is due at `now`, if anything.
    pub fn due(&self, now: Instant, t: &Timeouts) -> Option<Due> {
        match self.state {
            State::Connecting if now >= self.since + t.connect => {
                Some(Due::Close(CloseReason::ConnectTimeout))
            }
            State::Handshaking if now >= self.since + t.handshake => {
                Some(Due::Close(CloseReason::HandshakeTimeout))
            }
            State::Open => {
                if let Some(w) = self.waiting_since
                    && now >= w + t.stall
                {
                    return Some(Due::Close(CloseReason::Stalled));
                }
                if self.pinned {
                    if now >= self.last_send + t.ping {
                        return Some(Due::Ping);
                    }
                } else if !self.busy()
                    && let Some(limit) = self.idle_limit(t)
                    && now >= self.last_recv.max(self.last_send) + limit
                {
                    return Some(Due::Close(CloseReason::Idle));
                }
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:10000".parse().unwrap()
    }

    #[test]
    fn connect_and_handshake_deadlines() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let s = Session::new(ConnId(1), addr(), None, t0);
        assert_eq!(s.state, State::Connecting);
        assert_eq!(s.poll_timeout(&t), Some(t0 + t.connect));
        assert_eq!(s.due(t0, &t), None);
        assert_eq!(
            s.due(t0 + t.connect, &t),
            Some(Due::Close(CloseReason::ConnectTimeout))
        );
        let s = Session::new(ConnId::inbound(1), addr(), None, t0);
        assert_eq!(s.state, State::Handshaking);
        assert_eq!(
            s.due(t0 + t.handshake, &t),
            Some(Due::Close(CloseReason::HandshakeTimeout))
        );
    }

    #[test]
    fn stall_clock_runs_only_while_waiting_and_resets_on_bytes() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let mut s = Session::new(ConnId(1), addr(), None, t0);
        s.state = State::Open;
        s.request_sent(t0);
        assert_eq!(s.poll_timeout(&t), Some(t0 + t.stall));
        let t1 = t0 + Duration::from_secs(3);
        s.on_bytes(t1, b"P2P");
        assert_eq!(s.due(t0 + t.stall, &t), None);
        assert_eq!(
            s.due(t1 + t.stall, &t),
            Some(Due::Close(CloseReason::Stalled))
        );
        s.request_done();
        assert_eq!(s.due(t1 + t.stall, &t), None);
        // Idle afterwards.
        assert_eq!(s.poll_timeout(&t), Some(t1 + t.idle));
        assert_eq!(s.due(t1 + t.idle, &t), Some(Due::Close(CloseReason::Idle)));
        s.pinned = true;
        assert_eq!(s.due(t1 + t.idle, &t), Some(Due::Ping));
    }

    #[test]
    fn inbound_ids_never_collide_with_outbound() {
        assert!(ConnId::inbound(0).is_inbound());
        assert!(!ConnId(5).is_inbound());
        assert_ne!(ConnId::inbound(5), ConnId(5));
    }
}
