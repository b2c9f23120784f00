//! Addresses the node dials without having heard them: a `--peer` or `peers add` (static), a
//! link's peers, and the peers this folder met in earlier runs (known), each a [`Target`].
//! This is how a peer beyond the broadcast domain (another subnet, a VPN) comes into view:
//! nothing announces it to us, so we go and ask, and its hello on our connection lists it
//! (`Discovery::heard_via`, marked with how it was found).
//!
//! Invariants:
//! - at most [`MAX_TARGETS`] targets, one per (address, expected key); when full, a link's
//!   peer takes the place of the link target held longest (its connection unpinned), and any
//!   other is counted (`peers_add_refused`) and ignored, as is a target we could never reach
//!   (port 0, an unspecified, multicast or broadcast address), our own key, or one that says
//!   it was found by a datagram or a hello (only discovery says that);
//! - a target has at most one connection, ours; a key given with it is expected, so a dial
//!   answered by another key is closed before we say who we are and counted
//!   (`handshake_wrong_peer`), and changes nothing;
//! - a *kept* target (static, link) is dialled at once, and again every interval while it has
//!   no connection; its connection is pinned once its hello came (never closed for being idle),
//!   so a peer that no broadcast reaches stays listed;
//! - a *probe* (a known peer) is dialled only while no connection with its key is open (a
//!   peer on the LAN has one for its catalog at first): first [`PROBE_DELAY`] after it was
//!   added, so the LAN's answers to our first announcement come first, then after each dial
//!   that did not open with a backoff that doubles from one interval up to
//!   2^[`PROBE_BACKOFF_STEPS`] intervals; once its handshake proved the key where the key is
//!   listed it is kept like a static target while that connection lasts. Being *listed* is not
//!   enough to skip it: hearing a peer's datagrams does not mean it hears ours (a router that
//!   forwards one way, a relay of its genuine datagrams), and only a connection lists us on
//!   its side. So a known peer on the LAN also ends up with one kept connection, once its
//!   catalog connection went idle: a ping every `Timeouts::ping` (5 s);
//! - a holder a DHT lookup named (`Found::Dht`, usually with no key: only a claim) is dialled
//!   at once and at most [`DHT_DIALS`] times for each time it is added (a later lookup that
//!   names it again re-arms it); its connection is not pinned: it serves the download that
//!   looked the holder up and closes once nothing passes on it, and a holder that answered is
//!   not dialled again until a lookup names it again; at most [`MAX_DHT_TARGETS`] of them, a
//!   spent one's slot taken by a new one. So an address that speaks nothing, or another key,
//!   costs a bounded number of dials per lookup, and a holder that served us holds no
//!   connection;
//! - every dial stays within the node's outbound budgets (`max_outbound`, dials per address),
//!   and at most [`MAX_PROBE_DIALS`] probes and DHT holders are being dialled at once: a
//!   thousand remembered peers cost a few connection attempts per interval, not a thousand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Node;
use crate::discovery::Found;
use crate::ids::PeerId;
use crate::session::ConnId;

/// The most targets a node holds: `--peer`s, links' peers and known peers' addresses together
/// (the host gives at most 128 known peers' addresses, so `--peer`s and links keep room).
pub(crate) const MAX_TARGETS: usize = 256;
/// How long after it is added a probe waits before its first dial: the LAN's peers answer our
/// first announcement within `EARLY_ANSWER_GAP` plus a round trip, and a peer whose catalog
/// connection is open by then needs no probe.
pub(crate) const PROBE_DELAY: Duration = Duration::from_millis(500);
/// Probes being dialled (connections not yet open) at once, at most.
pub(crate) const MAX_PROBE_DIALS: usize = 8;
/// A probe that keeps failing is dialled every interval × 2^this at the least often.
pub(crate) const PROBE_BACKOFF_STEPS: u32 = 4;
/// Dials of a holder the DHT named, for each time a lookup names it.
pub(crate) const DHT_DIALS: u32 = 2;
/// Targets the DHT named, at most (of [`MAX_TARGETS`]).
pub(crate) const MAX_DHT_TARGETS: usize = 64;
/// A dial put off for want of room is tried again this much later.
const PUT_OFF: Duration = Duration::from_secs(1);

/// What came of a target's dials so far, for the user ([`TargetView`]): how `get LINK` tells
/// a link whose peer is not there, or is another peer now, from one still being dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No dial of it has ended yet.
    Trying,
    /// Its connection's hello came: the peer is there (and listed).
    Open,
    /// Its last connection ended or never opened: refused, silent, not our protocol, closed.
    Failed,
    /// Its last dial was answered by another key than the one it must present.
    WrongKey,
}

/// A target as [`Node::targets`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetView {
    /// Its address.
    pub addr: SocketAddr,
    /// The key it must present, if one was given.
    pub key: Option<PeerId>,
    /// Why we dial it: static, link or known.
    pub found: Found,
    /// What came of its dials so far.
    pub reach: Reach,
}

/// One address we dial without having heard it.
#[derive(Debug)]
pub(super) struct Target {
    addr: SocketAddr,
    /// The key it must present, if one was given.
    key: Option<PeerId>,
    /// Why we dial it: static, link (kept) or known (a probe).
    found: Found,
    conn: Option<ConnId>,
    /// When to dial it again while it has no connection.
    due: Instant,
    /// Dials in a row that did not open (probes only).
    failures: u32,
    /// Dials left (a holder the DHT named); `None`: no limit.
    dials_left: Option<u32>,
    /// What came of its dials so far.
    reach: Reach,
}

impl Target {
    /// A target at `addr` (that must present `key`, if given), found as `found`, added at
    /// `now`.
    pub(super) fn new(addr: SocketAddr, key: Option<PeerId>, found: Found, now: Instant) -> Target {
        let due = if found == Found::Known {
            now + PROBE_DELAY
        } else {
            now
        };
        Target {
            addr,
            key,
            found,
            conn: None,
            due,
            failures: 0,
            dials_left: (found == Found::Dht).then_some(DHT_DIALS),
            reach: Reach::Trying,
        }
    }

    /// Its address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key it must present, if one was given.
    pub(super) fn key(&self) -> Option<PeerId> {
        self.key
    }

    /// How it was found: what a peer listed through it is marked with.
    pub(super) fn found(&self) -> Found {
        self.found
    }

    /// A probe of a known peer (dialled only while no connection with its key is open), not a
    /// kept target.
    pub(super) fn is_probe(&self) -> bool {
        self.found == Found::Known
    }

    /// True when `conn` is its connection.
    pub(super) fn is(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// Its connection, open or being opened.
    pub(super) fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// When to dial it again: while it has no connection. Its timer.
    pub(super) fn redial_at(&self) -> Option<Instant> {
        (self.conn.is_none() && self.dials_left != Some(0)).then_some(self.due)
    }

    /// A holder the DHT named whose dials are used up and that has no connection: its slot
    /// may go to another.
    fn is_spent(&self) -> bool {
        self.conn.is_none() && self.dials_left == Some(0)
    }

    /// We dialled it on `conn`.
    pub(super) fn dialled(&mut self, conn: ConnId) {
        self.conn = Some(conn);
        if let Some(n) = &mut self.dials_left {
            *n = n.saturating_sub(1);
        }
    }

    /// Its dial is not made now (its key is listed, or there is no room): look again at `at`.
    pub(super) fn put_off(&mut self, at: Instant) {
        self.due = at;
    }

    /// Its connection's hello came: the peer is there, and a probe's backoff starts over; a
    /// holder the DHT named is done with its dials (once its connection ends, it is dialled
    /// again only when a lookup names it again).
    pub(super) fn opened(&mut self) {
        self.failures = 0;
        self.reach = Reach::Open;
        if self.found == Found::Dht {
            self.dials_left = Some(0);
        }
    }

    /// Its connection ended (or never opened) at `now`, answered by another key than its own
    /// if `wrong_key`: dialled again one interval later, a probe later still after each dial in
    /// a row that did not open.
    pub(super) fn closed(&mut self, now: Instant, interval: Duration, wrong_key: bool) {
        self.conn = None;
        self.reach = if wrong_key {
            Reach::WrongKey
        } else {
            Reach::Failed
        };
        self.due = if self.is_probe() {
            let gap = interval * (1 << self.failures.min(PROBE_BACKOFF_STEPS));
            self.failures = self.failures.saturating_add(1);
            now + gap
        } else {
            now + interval
        };
    }

    /// This target's address and key were named again, as `found`: the user (or a link)
    /// makes a probe or a DHT holder a kept target, due at once; a DHT lookup gives a DHT
    /// holder its dials again.
    fn upgrade(&mut self, found: Found, now: Instant) {
        let claim = self.is_probe() || self.found == Found::Dht;
        if claim && !matches!(found, Found::Known | Found::Dht) {
            self.found = found;
            self.dials_left = None;
            self.due = self.due.min(now);
        } else if self.found == Found::Dht && found == Found::Dht {
            self.dials_left = Some(DHT_DIALS);
            self.due = self.due.min(now);
        }
    }
}

impl Node {
    /// The targets (`--peer`, `peers add`, links' peers, probes of known peers) and what came
    /// of their dials: what `get LINK` waits on.
    pub fn targets(&self) -> Vec<TargetView> {
        self.targets
            .iter()
            .map(|t| TargetView {
                addr: t.addr,
                key: t.key,
                found: t.found,
                reach: t.reach,
            })
            .collect()
    }

    /// `Command::AddPeer`: dial `addr` (expecting `key`, if given) as `found` says (see the
    /// module doc). Idempotent: a target already held is not added twice.
    pub(super) fn add_target(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        key: Option<PeerId>,
        found: Found,
    ) {
        let addr = crate::addr::canonical(addr);
        let by_user = matches!(
            found,
            Found::Static | Found::Link | Found::Known | Found::Dht
        );
        let ours = key == Some(self.identity.key());
        if !by_user
            || ours
            || crate::addr::unreachable(addr)
            || (found == Found::Known && key.is_none())
        {
            self.stats.peers_add_refused += 1;
            return;
        }
        if let Some(t) = self
            .targets
            .iter_mut()
            .find(|t| t.addr() == addr && t.key() == key)
        {
            t.upgrade(found, now);
            return;
        }
        let target = Target::new(addr, key, found, now);
        if found == Found::Dht
            && self
                .targets
                .iter()
                .filter(|t| t.found() == Found::Dht)
                .count()
                >= MAX_DHT_TARGETS
        {
            // Full of DHT holders: a spent one's slot, or none.
            match self.targets.iter_mut().find(|t| t.is_spent()) {
                Some(t) => *t = target,
                None => self.stats.peers_add_refused += 1,
            }
            return;
        }
        if self.targets.len() >= MAX_TARGETS {
            // Full: a link's peer takes the place of the link target held longest (a peer
            // that runs for weeks fetches more links than it can keep), whose connection is
            // no longer pinned: it closes once nothing passes on it. What the user added
            // (`--peer`, `peers add`) is never pushed out.
            let oldest = self.targets.iter().position(|t| t.found() == Found::Link);
            match oldest {
                Some(i) if found == Found::Link => {
                    let old = self.targets.remove(i);
                    if let Some(s) = old.conn().and_then(|c| self.conns.session_mut(&c)) {
                        s.unpin();
                    }
                    self.targets.push(target);
                }
                _ => self.stats.peers_add_refused += 1,
            }
            return;
        }
        self.targets.push(target);
    }

    /// Target `i`'s timer fired (it has no connection): dial it, unless it is a probe whose key
    /// has a connection open already, or there is no room to dial now.
    pub(super) fn redial_target(&mut self, now: Instant, i: usize) {
        let Some(t) = self.targets.get(i) else {
            return;
        };
        let (addr, key, probe) = (t.addr(), t.key(), t.is_probe());
        let claim = probe || t.found() == Found::Dht;
        if probe {
            let connected = key.is_some_and(|k| {
                self.conns.sessions().any(|s| s.open_peer() == Some(k))
                    || (self.cfg.bugs.probe_only_unlisted() && self.discovery.peer(&k).is_some())
            });
            if connected {
                // In view over a connection already (ours or its): look again an interval
                // later.
                self.targets[i].put_off(now + self.cfg.interval);
                return;
            }
        }
        if claim {
            let dialing = self
                .targets
                .iter()
                .filter(|t| t.is_probe() || t.found() == Found::Dht)
                .filter_map(Target::conn)
                .filter(|c| self.conns.session(c).is_some_and(|s| !s.is_open()))
                .count();
            if dialing >= MAX_PROBE_DIALS || !self.room_to_dial(addr.ip()) {
                self.stats.connects_deferred += 1;
                self.targets[i].put_off(now + PUT_OFF);
                return;
            }
        }
        // A key given with it is expected: the handshake fails on any other.
        let conn = self.open_session(now, addr, key);
        self.targets[i].dialled(conn);
    }
}
