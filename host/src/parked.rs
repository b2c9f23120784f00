//! Accepted connections waiting for their address's share of the connection budget.
//!
//! A Python downloader opens one connection per 1 KiB chunk, all at once: a 1 MiB file is
//! 1,024 connects from one address, far past `max_connections_per_ip`. Dropping the ones
//! over the budget resets them and fails the download; so the runtime holds them here,
//! unread, and offers them to the node again whenever a connection ends (a listen backlog in
//! user space). Both runtimes use it with their own stream type.
//!
//! Invariants: at most [`MAX_PARKED`] sockets are held, each at most [`PARK_FOR`]; one held
//! longer, or one the node no longer wants held (`Admission::Refused`), is dropped.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use p2pshare_proto::budget::{MAX_PARKED, PARK_FOR};
use p2pshare_proto::{Admission, ConnId};

use crate::driver::Driver;

/// The held connections, oldest first.
pub struct Parked<S> {
    queue: VecDeque<(S, SocketAddr, Instant)>,
    /// A connection ended since the last [`Parked::retry`]: there may be room now.
    freed: bool,
}

impl<S> Default for Parked<S> {
    fn default() -> Self {
        Parked {
            queue: VecDeque::new(),
            freed: false,
        }
    }
}

impl<S> Parked<S> {
    /// The node wants `stream` from `remote` held for later (`Admission::Later`): holds it if
    /// there is room (else it is dropped here).
    pub fn offer(&mut self, stream: S, remote: SocketAddr) {
        if self.queue.len() < MAX_PARKED {
            self.queue.push_back((stream, remote, Instant::now()));
        }
    }

    /// A connection ended: call [`Parked::retry`] soon.
    pub fn freed(&mut self) {
        self.freed = true;
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Offers the held connections to the node again, oldest first, if a connection ended
    /// since the last call; drops those held too long. Returns those the node took, with
    /// their ids, for the runtime to register.
    pub fn retry(&mut self, driver: &mut Driver) -> Vec<(S, ConnId)> {
        let now = Instant::now();
        while self
            .queue
            .front()
            .is_some_and(|(_, _, at)| now.duration_since(*at) >= PARK_FOR)
        {
            self.queue.pop_front();
        }
        if !std::mem::take(&mut self.freed) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut full: BTreeSet<IpAddr> = BTreeSet::new();
        let mut keep = VecDeque::with_capacity(self.queue.len());
        for (stream, remote, at) in std::mem::take(&mut self.queue) {
            if full.contains(&remote.ip()) {
                keep.push_back((stream, remote, at));
                continue;
            }
            match driver.accept(remote) {
                Admission::Accepted(conn) => taken.push((stream, conn)),
                Admission::Later => {
                    full.insert(remote.ip());
                    keep.push_back((stream, remote, at));
                }
                Admission::Refused => {}
            }
        }
        self.queue = keep;
        taken
    }
}
