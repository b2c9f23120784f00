//! Serving original Python peers on the transfer port: a connection whose first bytes are
//! `chunk ` is a Python request (`chunk NAME N`), answered as the Python server answers (the
//! chunk's SHA-256 in hex, the chunk, close); anything else is ours and gets our hello.
//!
//! Invariants: an accepted connection says nothing until its first bytes decided what it is,
//! or [`PY_SNIFF`](crate::budget::PY_SNIFF) passed without any (a client that waits for our
//! hello gets it then); at most 5 bytes are held meanwhile, under the handshake deadline; a Python connection
//! counts in the same connection budgets as ours (`max_connections`,
//! `max_connections_per_ip`), lives at most the handshake timeout, holds at most
//! [`MAX_REQUEST_LINE`] bytes of request, and is served only a name in our catalog (the read
//! goes through the catalog's content, never a path); a malformed request is closed and
//! counted.

use std::net::SocketAddr;
use std::time::Instant;

use super::{DiskOp, Input, NetOp, Node, Output, ReadId, ReadSource};
use crate::session::ConnId;
use crate::wire::legacy::{LegacyRequest, PY_CHUNK, REQUEST_PREFIX, encode_reply, may_be_request};

/// One Python request connection.
#[derive(Debug)]
pub(super) struct PyServe {
    remote: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
    /// The reply is queued: close once it is flushed.
    replied: bool,
}

/// What the first bytes of an accepted connection say.
pub(super) enum FirstBytes {
    /// Too few to tell: wait for more.
    Wait,
    /// A Python request: taken over here.
    Python,
    /// Ours (or a stranger's): these are all the bytes so far, for the session.
    Native(Vec<u8>),
}

impl PyServe {
    /// When it is closed if no whole request came.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Node {
    /// Connections from `ip` that count against its budget: sessions and Python requests.
    pub(super) fn py_serving_from(&self, ip: std::net::IpAddr) -> usize {
        self.py_serving
            .values()
            .filter(|c| c.remote.ip() == ip)
            .count()
    }

    /// Bytes on an accepted connection that has not said what it is yet.
    pub(super) fn first_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) -> FirstBytes {
        let Some((buf, _)) = self.undecided.get_mut(&conn) else {
            return FirstBytes::Native(data.to_vec());
        };
        buf.extend_from_slice(data);
        if may_be_request(buf) {
            if buf.len() < REQUEST_PREFIX.len() {
                return FirstBytes::Wait;
            }
            let buf = self
                .undecided
                .remove(&conn)
                .map(|u| u.0)
                .unwrap_or_default();
            let Some(s) = self.sessions.remove(&conn) else {
                return FirstBytes::Python;
            };
            self.py_serving.insert(
                conn,
                PyServe {
                    remote: s.remote(),
                    buf: Vec::new(),
                    deadline: now + self.cfg.timeouts.handshake,
                    replied: false,
                },
            );
            self.py_serve_received(conn, &buf);
            return FirstBytes::Python;
        }
        FirstBytes::Native(
            self.undecided
                .remove(&conn)
                .map(|u| u.0)
                .unwrap_or_default(),
        )
    }

    /// Bytes of a Python request.
    pub(super) fn py_serve_received(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.py_serving.get_mut(&conn) else {
            return;
        };
        if c.replied {
            return;
        }
        c.buf.extend_from_slice(data);
        match LegacyRequest::decode(&c.buf) {
            Ok(None) => {}
            Ok(Some(req)) => {
                c.replied = true;
                self.py_serve_request(conn, &req);
            }
            Err(_) => {
                self.stats.python_requests_malformed += 1;
                self.py_serve_close(conn);
            }
        }
    }

    /// Reads the chunk asked for, if we share a file of that name and it has that chunk.
    fn py_serve_request(&mut self, conn: ConnId, req: &LegacyRequest) {
        let found = self
            .local
            .iter()
            .find(|(_, e)| e.names.contains(&req.name))
            .map(|(c, e)| (*c, e.manifest.size()));
        let offset = (req.index - 1).checked_mul(PY_CHUNK as u64);
        let (Some((content, size)), Some(offset)) = (found, offset) else {
            self.stats.python_requests_refused += 1;
            return self.py_serve_close(conn);
        };
        if offset >= size {
            self.stats.python_requests_refused += 1;
            return self.py_serve_close(conn);
        }
        let len = (size - offset).min(PY_CHUNK as u64) as u32;
        let read = ReadId(self.next_read);
        self.next_read += 1;
        self.py_reads.insert(read, conn);
        self.out.push_back(Output::Disk(DiskOp::Read {
            read,
            source: ReadSource::Shared(content),
            offset,
            len,
        }));
    }

    fn py_serve_close(&mut self, conn: ConnId) {
        if self.py_serving.remove(&conn).is_some() {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
    }

    /// Routes inputs of Python request connections and their reads; gives back the others.
    pub(super) fn py_serve_input(&mut self, input: Input) -> Option<Input> {
        match input {
            Input::Received { conn, data } if self.py_serving.contains_key(&conn) => {
                self.py_serve_received(conn, &data)
            }
            Input::Flushed { conn } if self.py_serving.contains_key(&conn) => {
                if self.py_serving.get(&conn).is_some_and(|c| c.replied) {
                    self.py_serve_close(conn);
                }
            }
            Input::Closed { conn } if self.py_serving.contains_key(&conn) => {
                self.py_serving.remove(&conn);
            }
            Input::ReadDone { read, result } if self.py_reads.contains_key(&read) => {
                // Present: the guard looked.
                let conn = self.py_reads.remove(&read)?;
                match result {
                    Ok(chunk) if self.py_serving.contains_key(&conn) => {
                        self.stats.python_chunks_served += 1;
                        self.out.push_back(Output::Net(NetOp::Send {
                            conn,
                            data: encode_reply(&chunk),
                        }));
                    }
                    _ => self.py_serve_close(conn),
                }
            }
            other => return Some(other),
        }
        None
    }

    /// Python request connection `conn` reached its deadline: closed as malformed.
    pub(super) fn py_serve_late(&mut self, conn: ConnId) {
        self.stats.python_requests_malformed += 1;
        self.py_serve_close(conn);
    }

    /// Accepted connection `conn` was silent for [`PY_SNIFF`](crate::budget::PY_SNIFF): it is no
    /// Python request (those come at once): it gets our hello now.
    pub(super) fn sniffed_silence(&mut self, now: Instant, conn: ConnId) {
        // A stalled start of `chunk ` goes the native way too (and fails there).
        let held = self
            .undecided
            .remove(&conn)
            .map(|u| u.0)
            .unwrap_or_default();
        self.start_handshake(now, conn);
        if !held.is_empty() {
            self.on_received(now, conn, &held);
        }
    }
}
