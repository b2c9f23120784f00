//! One chunk connection to a Python peer: what the node keeps in its connection table while a
//! chunk is fetched. The Python program serves each 1 KiB chunk over a connection of its own:
//! we connect, send `chunk NAME N`, and read its reply (the chunk's SHA-256 in hex, then the
//! chunk) until it closes; which chunk to ask whom is [`PyDownload`](super::download::PyDownload)'s.
//!
//! Invariants: a chunk connection lives at most [`PY_CHUNK_DEADLINE`] and holds at most
//! [`MAX_REPLY`] bytes (a longer reply is a lie, whatever the rest).

use std::net::SocketAddr;
use std::time::Instant;

use super::download::Attempt;
use super::wire::{LegacyRequest, MAX_REPLY, decode_reply};
use crate::budget::PY_CHUNK_DEADLINE;
use crate::ids::ContentId;

/// A chunk being fetched from a Python peer.
#[derive(Debug)]
pub(crate) struct Fetch {
    content: ContentId,
    addr: SocketAddr,
    /// 0-based.
    index: u32,
    /// The name the peer lists the file under.
    name: String,
    buf: Vec<u8>,
    deadline: Instant,
}

/// How a chunk connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It never connected, or its deadline passed.
    Failed,
    /// The peer closed it after these bytes.
    Closed,
    /// It sent more than a reply can hold.
    TooLong,
}

impl Fetch {
    /// Chunk `index` (0-based) of `content`, asked of `addr` under `name` at `now`.
    pub(crate) fn new(
        content: ContentId,
        addr: SocketAddr,
        index: u32,
        name: String,
        now: Instant,
    ) -> Fetch {
        Fetch {
            content,
            addr,
            index,
            name,
            buf: Vec::new(),
            deadline: now + PY_CHUNK_DEADLINE,
        }
    }

    /// The download it is for.
    pub(crate) fn content(&self) -> ContentId {
        self.content
    }

    /// The Python peer asked.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The chunk asked for (0-based).
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// When it is closed if no whole reply came: its timer.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The request line, sent once the connection is up.
    pub(crate) fn request(&self) -> Vec<u8> {
        LegacyRequest {
            name: self.name.clone(),
            index: u64::from(self.index) + 1,
        }
        .encode()
    }

    /// Bytes of the reply arrived: false (and nothing kept) when they make it longer than any
    /// honest reply, a lie: the connection ends.
    pub(crate) fn received(&mut self, data: &[u8]) -> bool {
        if self.buf.len() + data.len() > MAX_REPLY {
            return false;
        }
        self.buf.extend_from_slice(data);
        true
    }

    /// What the attempt came to, once the connection `ended`.
    pub(crate) fn attempt(&self, ended: Ended) -> Attempt {
        match ended {
            Ended::Failed => Attempt::Failed,
            Ended::TooLong => Attempt::Lied,
            // Closed before a whole hash line: the Python server's way to refuse.
            Ended::Closed if self.buf.len() < 64 => Attempt::Failed,
            Ended::Closed => match decode_reply(&self.buf) {
                Ok(body) => Attempt::Chunk(body.to_vec()),
                Err(_) => Attempt::Lied,
            },
        }
    }
}
