//! Serving original Python peers on the transfer port, and telling their requests from ours: a
//! connection whose first bytes are `chunk ` is a Python request (`chunk NAME N`), answered as
//! the Python server answers (the chunk's SHA-256 in hex, the chunk, close); anything else is
//! ours and gets our hello. These are the records the node keeps in its connection table:
//! [`Sniff`] while the first bytes have not decided, [`Serve`] for a Python request.
//!
//! Invariants: an accepted connection says nothing until its first bytes decided what it is,
//! or [`PY_SNIFF`] passed without any (a client that waits for our hello gets it then); at most
//! 5 bytes are held meanwhile, under the handshake deadline; a Python request connection
//! counts in the same connection budgets as ours (`max_connections`,
//! `max_connections_per_ip`), lives at most the handshake timeout, holds at most
//! [`MAX_REQUEST_LINE`](super::wire::MAX_REQUEST_LINE) bytes of request, is answered at most
//! once, and is served only a name in our catalog (the read goes through the catalog's
//! content, never a path); a malformed request is closed and counted.

use std::net::SocketAddr;
use std::time::Instant;

use super::wire::{LegacyRequest, REQUEST_PREFIX, may_be_request};
use crate::budget::PY_SNIFF;

/// An accepted connection whose first bytes have not said yet what it is.
#[derive(Debug)]
pub(crate) struct Sniff {
    /// What arrived so far (fewer bytes than [`REQUEST_PREFIX`], all agreeing with it).
    held: Vec<u8>,
    hello_at: Instant,
}

/// What the first bytes of an accepted connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    /// Too few to tell: wait for more.
    Wait,
    /// A Python request.
    Python,
    /// Ours (or a stranger's): the held bytes are the session's.
    Native,
}

impl Sniff {
    /// A connection accepted at `now`.
    pub(crate) fn new(now: Instant) -> Sniff {
        Sniff {
            held: Vec::new(),
            hello_at: now + PY_SNIFF,
        }
    }

    /// When our hello goes out if nothing decided before: its timer.
    pub(crate) fn hello_at(&self) -> Instant {
        self.hello_at
    }

    /// Bytes arrived: held, and what they say so far.
    pub(crate) fn first_bytes(&mut self, data: &[u8]) -> FirstBytes {
        self.held.extend_from_slice(data);
        if !may_be_request(&self.held) {
            FirstBytes::Native
        } else if self.held.len() < REQUEST_PREFIX.len() {
            FirstBytes::Wait
        } else {
            FirstBytes::Python
        }
    }

    /// Every byte received so far, for whoever the connection turned out to be.
    pub(crate) fn into_held(self) -> Vec<u8> {
        self.held
    }
}

/// A Python peer's chunk request being served.
#[derive(Debug)]
pub(crate) struct Serve {
    remote: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
    /// The request was read (its reply is on its way, or it was refused).
    replied: bool,
}

/// What the bytes of a request say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// Not a whole request yet (or one was read already): nothing to do.
    Wait,
    /// A whole request: answer it (once).
    Ask(LegacyRequest),
    /// Not a request: close it.
    Malformed,
}

impl Serve {
    /// A request connection from `remote`, closed at `deadline` unless answered before.
    pub(crate) fn new(remote: SocketAddr, deadline: Instant) -> Serve {
        Serve {
            remote,
            buf: Vec::new(),
            deadline,
            replied: false,
        }
    }

    /// The other end.
    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// When it is closed if no whole request came: its timer.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once its request was read: it is closed when the reply is flushed.
    pub(crate) fn replied(&self) -> bool {
        self.replied
    }

    /// Bytes of the request arrived.
    pub(crate) fn received(&mut self, data: &[u8]) -> Request {
        if self.replied {
            return Request::Wait;
        }
        self.buf.extend_from_slice(data);
        match LegacyRequest::decode(&self.buf) {
            Ok(None) => Request::Wait,
            Ok(Some(req)) => {
                self.replied = true;
                Request::Ask(req)
            }
            Err(_) => Request::Malformed,
        }
    }
}
