//! Accepted connections waiting for their address's share of the connection budget.
//!
//! A Python downloader opens one connection per 1 KiB chunk, all at once: a 1 MiB file is
//! 1,024 connects from one address, far past `max_connections_per_ip`. Dropping the ones
//! over the budget resets them and fails the download; so the runtime holds them here,
//! unread, and offers them to the node again whenever a connection ends (a listen backlog in
//! user space). Both runtimes use it with their own stream type.
//!
//! Invariants: at most [`MAX_PARKED`] sockets are held, at most [`MAX_PARKED_PER_IP`] from
//! one address (from the first: one address cannot take the slots of the others, issue 27,
//! item 8), each at most [`PARK_FOR`]; one held longer, one the node no longer wants held
//! (`Admission::Refused`), or one over its address's share is dropped and counted
//! (`Driver::parked_dropped`). Held connections are kept per address, oldest first, with one
//! queue of all in arrival order for their expiry: expiring costs the expired ones, a retry
//! one offer per address that holds any and one per connection taken.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use p2pshare_proto::budget::{MAX_PARKED, MAX_PARKED_PER_IP, PARK_FOR};
use p2pshare_proto::{Admission, ConnId};

use crate::driver::Driver;

/// The held connections, per address, oldest first.
pub struct Parked<S> {
    /// Per address: (arrival number, stream, remote).
    by_ip: BTreeMap<IpAddr, VecDeque<(u64, S, SocketAddr)>>,
    /// Every held connection's arrival (time, address, number), oldest first; an entry whose
    /// connection left its address's queue already is skipped.
    order: VecDeque<(Instant, IpAddr, u64)>,
    /// Connections held.
    held: usize,
    next: u64,
    /// A connection ended since the last [`Parked::retry`]: there may be room now.
    freed: bool,
}

impl<S> Default for Parked<S> {
    fn default() -> Self {
        Parked {
            by_ip: BTreeMap::new(),
            order: VecDeque::new(),
            held: 0,
            next: 0,
            freed: false,
        }
    }
}

impl<S> Parked<S> {
    /// The node wants `stream` from `remote` held for later (`Admission::Later`): holds it if
    /// there is room for it and its address, else drops it (counted by `driver`).
    pub fn offer(&mut self, stream: S, remote: SocketAddr, driver: &mut Driver) {
        let q = self.by_ip.entry(remote.ip()).or_default();
        if self.held >= MAX_PARKED || q.len() >= MAX_PARKED_PER_IP {
            if q.is_empty() {
                self.by_ip.remove(&remote.ip());
            }
            driver.parked_dropped();
            return;
        }
        let n = self.next;
        self.next += 1;
        q.push_back((n, stream, remote));
        self.order.push_back((Instant::now(), remote.ip(), n));
        self.held += 1;
    }

    /// A connection ended: call [`Parked::retry`] soon.
    pub fn freed(&mut self) {
        self.freed = true;
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Drops the connections held past [`PARK_FOR`].
    fn expire(&mut self, now: Instant, driver: &mut Driver) {
        while let Some(&(at, ip, n)) = self.order.front() {
            if now.duration_since(at) < PARK_FOR {
                break;
            }
            self.order.pop_front();
            let Some(q) = self.by_ip.get_mut(&ip) else {
                continue;
            };
            if q.front().is_some_and(|(m, ..)| *m == n) {
                q.pop_front();
                self.held -= 1;
                driver.parked_dropped();
            }
            if q.is_empty() {
                self.by_ip.remove(&ip);
            }
        }
    }

    /// Offers the held connections to the node again, each address's oldest first, if a
    /// connection ended since the last call; drops those held too long. Returns those the
    /// node took, with their ids, for the runtime to register.
    pub fn retry(&mut self, driver: &mut Driver) -> Vec<(S, ConnId)> {
        self.expire(Instant::now(), driver);
        if !std::mem::take(&mut self.freed) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        for q in self.by_ip.values_mut() {
            while let Some(&(_, _, remote)) = q.front() {
                match driver.accept(remote) {
                    Admission::Accepted(conn) => {
                        if let Some((_, stream, _)) = q.pop_front() {
                            taken.push((stream, conn));
                        }
                    }
                    Admission::Later => break,
                    Admission::Refused => {
                        q.pop_front();
                    }
                }
            }
        }
        self.by_ip.retain(|_, q| !q.is_empty());
        self.held = self.by_ip.values().map(VecDeque::len).sum();
        // (The order queue keeps entries of connections gone: skipped at their expiry.)
        taken
    }
}
