//! The node's record of its outbound connection to one peer ([`Link`]): private fields,
//! changed only through the transitions below, so the rules hold wherever the node uses them.
//! (An address we dial without having heard it, a `--peer` or a known peer, is a
//! [`super::targets::Target`].)
//!
//! Invariants of a [`Link`]:
//! - it holds at most one connection, ours, which carries our requests to the peer;
//! - a link that failed is dialled again only after its backoff (1 s … 10 s, doubling with each
//!   failure in a row); one never opened that failed [`MAX_DIAL_FAILURES`] times is
//!   unreachable;
//! - at most one catalog page is asked for at a time ([`Link::catalog_asked`]), and a whole
//!   catalog fetch starts no sooner than [`MIN_CATALOG_GAP`] (or [`CATALOG_GAP_FACTOR`] times
//!   the last fetch's time) after the last one ended; a fetch put off by that gap has a timer
//!   ([`Link::catalog_retry_at`]) that asks again.

use std::time::{Duration, Instant};

use crate::budget::{CATALOG_GAP_FACTOR, MAX_DIAL_FAILURES, MIN_CATALOG_GAP};
use crate::session::ConnId;

/// How long a connection put off by `max_outbound` waits before it is tried again.
const OUTBOUND_RETRY: Duration = Duration::from_secs(1);

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500 << failures.min(5)).min(Duration::from_secs(10))
}

/// Our outbound connection to one peer, and the fetch of its catalog over it.
#[derive(Debug, Default)]
pub(super) struct Link {
    conn: Option<ConnId>,
    /// Failed connections in a row.
    failures: u32,
    /// Not dialled again before this (backoff, or a dial put off); the timer that dials again.
    retry_at: Option<Instant>,
    /// A catalog fetch is wanted (the peer is new, restarted or announced a new revision).
    catalog_wanted: bool,
    /// True once a connection to it completed its handshake.
    opened_once: bool,
    /// The catalog page asked for on `conn`, not yet answered.
    catalog_pending: Option<u32>,
    /// When the catalog fetch under way began.
    catalog_started: Option<Instant>,
    /// No catalog fetch before this (see `budget::MIN_CATALOG_GAP`).
    catalog_not_before: Option<Instant>,
    /// A fetch put off until then: the timer that asks again.
    catalog_retry_at: Option<Instant>,
}

/// What the end of a link's connection means ([`Link::closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LinkClosed {
    /// A catalog page was in flight: the half-assembled catalog is abandoned (the fetch is
    /// wanted again, on the next connection).
    pub(super) catalog_lost: bool,
    /// Never reached, again and again: the peer is unreachable.
    pub(super) unreachable: bool,
}

impl Link {
    /// Its connection (open or being opened).
    pub(super) fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// True when `conn` is its connection.
    pub(super) fn is(&self, conn: ConnId) -> bool {
        self.conn == Some(conn)
    }

    /// When it is dialled again, if a dial waits: its timer.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// When a catalog fetch put off by the gap asks again: its timer.
    pub(super) fn catalog_retry_at(&self) -> Option<Instant> {
        self.catalog_retry_at
    }

    /// True while a catalog fetch is wanted and not begun.
    pub(super) fn catalog_wanted(&self) -> bool {
        self.catalog_wanted
    }

    // ---- the connection ----

    /// True when it may be dialled at `now`: it has no connection and no backoff runs.
    pub(super) fn may_dial(&self, now: Instant) -> bool {
        self.conn.is_none() && self.retry_at.is_none_or(|t| t <= now)
    }

    /// A dial was put off (no room under `max_outbound`): try again in a second.
    pub(super) fn put_off(&mut self, now: Instant) {
        self.retry_at = Some(now + OUTBOUND_RETRY);
    }

    /// We dialled it on `conn`.
    pub(super) fn dialled(&mut self, conn: ConnId) {
        self.retry_at = None;
        self.conn = Some(conn);
    }

    /// The hello on `conn`, a connection we dialled, opened it: `conn` becomes the link unless
    /// another connection already is. True when it did.
    pub(super) fn opened(&mut self, conn: ConnId) -> bool {
        if self.conn.is_some_and(|c| c != conn) {
            return false;
        }
        self.conn = Some(conn);
        self.opened_once = true;
        self.failures = 0;
        self.retry_at = None;
        true
    }

    /// Its connection ended at `now`, cleanly (the peer did nothing wrong) or not (then it is
    /// retried after its backoff).
    pub(super) fn closed(&mut self, now: Instant, clean: bool) -> LinkClosed {
        self.conn = None;
        // A catalog request that died with its connection is asked again on the next one.
        let catalog_lost = self.catalog_pending.take().is_some();
        if catalog_lost {
            self.catalog_wanted = true;
        }
        if !clean {
            self.failures += 1;
            self.retry_at = Some(now + backoff(self.failures));
        }
        LinkClosed {
            catalog_lost,
            unreachable: !self.opened_once && self.failures >= MAX_DIAL_FAILURES,
        }
    }

    /// The dial timer fired.
    pub(super) fn retry_fired(&mut self) {
        self.retry_at = None;
    }

    /// The peer restarted (a new instance): its catalog is wanted now, not after the gap, and
    /// the failures of the old one (dialled while it was down) are not its own.
    pub(super) fn restarted(&mut self) {
        self.catalog_not_before = None;
        self.failures = 0;
        self.retry_at = None;
    }

    /// The peer moved to another address: failures at the old one were not its.
    pub(super) fn moved(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.opened_once = false;
    }

    // ---- its catalog ----

    /// A catalog fetch is wanted.
    pub(super) fn want_catalog(&mut self) {
        self.catalog_wanted = true;
    }

    /// Begins the catalog fetch at `now` if one is wanted, none is under way and the gap since
    /// the last one has passed (else the fetch is put off, and its timer set): true when page 0
    /// is to be asked for now.
    pub(super) fn start_catalog_fetch(&mut self, now: Instant) -> bool {
        if !self.catalog_wanted || self.catalog_pending.is_some() {
            return false;
        }
        if let Some(t) = self.catalog_not_before.filter(|t| *t > now) {
            self.catalog_retry_at = Some(t);
            return false;
        }
        self.catalog_wanted = false;
        self.catalog_started = Some(now);
        true
    }

    /// Catalog page `page` was asked for on its connection.
    pub(super) fn catalog_asked(&mut self, page: u32) {
        self.catalog_pending = Some(page);
    }

    /// A catalog page `page` arrived on `conn`: true (and no page is pending any more) when it
    /// is the page asked for on this link's connection; anything else is unsolicited.
    pub(super) fn catalog_answered(&mut self, conn: ConnId, page: u32) -> bool {
        if self.conn != Some(conn) || self.catalog_pending != Some(page) {
            return false;
        }
        self.catalog_pending = None;
        true
    }

    /// The whole catalog arrived at `now`: the next fetch waits the gap.
    pub(super) fn catalog_fetched(&mut self, now: Instant) {
        let took = self.catalog_started.map_or(Duration::ZERO, |t| now - t);
        let gap = MIN_CATALOG_GAP.max(took * CATALOG_GAP_FACTOR);
        self.catalog_not_before = Some(now + gap);
    }

    /// The timer of a put-off catalog fetch fired.
    pub(super) fn catalog_retry_fired(&mut self) {
        self.catalog_retry_at = None;
    }
}
