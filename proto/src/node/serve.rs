//! Serving: answering catalog, manifest and chunk requests from other peers.
//!
//! Invariants: only content in our catalog is ever read, and only inside its manifest's range
//! (a request names a content id and an index, never a path); per connection at most
//! `MAX_QUEUED_REQUESTS` chunk requests and `MAX_QUEUED_MANIFESTS` manifest requests wait, at
//! most `serve_window` chunks are read or sent but not yet flushed, and at most one catalog
//! page and one manifest are unflushed; an answer starts only while it fits the connection's,
//! its IP's and the node's send budgets ([`crate::budget`]), except that a connection that
//! owes nothing may always take one answer within the shared budgets. A connection at its
//! own budget is paused; one whose answers wait for a shared budget is starved (a flag of its
//! session) and is
//! served again as soon as any connection flushes or ends. So a peer that asks a lot and reads
//! slowly costs bounded memory, and cannot take the others' share.
//!
//! A chunk is read (`DiskOp::Read`), then sealed and sent (`NetOp::Send` in `on_read_done`):
//! the sealed buffer is the only copy of it (`sendfile` cannot carry encrypted bytes). It
//! takes a serve-window slot and owes its sealed bytes until `Flushed`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use super::swarm::Serve;
use super::{DiskOp, NetOp, Node, Output, ReadId, ReadSource};
use crate::budget::{CONN_SEND_BUDGET, IP_SEND_BUDGET, NODE_SEND_BUDGET};
use crate::disk::DiskError;
use crate::ids::ContentId;
use crate::session::{ConnId, Session};
use crate::wire::frame::{
    CHUNK_FRAME_OVERHEAD, CatalogEntry, ErrorCode, Message, encode_chunk_header, encode_message,
};

/// What a pending read is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum ReadFor {
    /// A chunk to send on a connection.
    Serve {
        conn: ConnId,
        content: ContentId,
        index: u32,
        len: u32,
        /// Read from a download in progress.
        partial: bool,
    },
    /// A chunk of a partial download to re-verify.
    Check { content: ContentId, index: u32 },
    /// A chunk to send as the reply to the Python request on a connection.
    PyServe { conn: ConnId },
}

/// Whether an answer of some size may start on a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Yes,
    /// The connection's own budget is spent: it waits for its own flush.
    Conn,
    /// Its IP's or the node's budget is spent: it waits for anyone's flush.
    Shared,
}

impl Node {
    /// Bytes owed to connections from `ip`, and to all.
    fn owed(&self, ip: IpAddr) -> (usize, usize) {
        self.conns.sessions().fold((0, 0), |(by_ip, all), s| {
            let o = s.owed();
            (by_ip + if s.remote().ip() == ip { o } else { 0 }, all + o)
        })
    }

    fn room(&self, conn: ConnId, len: usize) -> Room {
        let Some(s) = self.conns.session(&conn) else {
            return Room::Conn;
        };
        let own = s.owed();
        if own > 0 && own + len > CONN_SEND_BUDGET {
            return Room::Conn;
        }
        let (by_ip, all) = self.owed(s.remote().ip());
        // Nothing owed by anyone: one answer always fits, whatever its size.
        if all > 0 && (by_ip + len > IP_SEND_BUDGET || all + len > NODE_SEND_BUDGET) {
            return Room::Shared;
        }
        Room::Yes
    }

    /// Room for `len` bytes on `conn`; records a wait for a shared budget.
    fn fits(&mut self, conn: ConnId, len: usize) -> bool {
        match self.room(conn, len) {
            Room::Yes => true,
            Room::Conn => false,
            Room::Shared => {
                self.stats.answers_delayed += 1;
                if let Some(s) = self.conns.session_mut(&conn) {
                    s.set_starved(true);
                }
                false
            }
        }
    }

    /// True when the peer on `conn` may be served: no allow list, or its proven key is on it.
    pub(super) fn allowed(&self, conn: ConnId) -> bool {
        let Some(allow) = &self.cfg.allow else {
            return true;
        };
        self.conns
            .session(&conn)
            .and_then(Session::open_peer)
            .is_some_and(|p| allow.contains(&p))
    }

    /// A catalog request from a peer not allowed: an empty catalog (what we share is not its
    /// business), counted. Under the budgets as any small answer.
    pub(super) fn refuse_catalog(&mut self, conn: ConnId, page: u32) {
        self.stats.requests_not_allowed += 1;
        if self.over_budget(conn) {
            self.stats.answers_dropped += 1;
            return;
        }
        let empty = Message::Catalog {
            revision: self.revision,
            page,
            pages: 1,
            files: Vec::new(),
        };
        self.send_msg(conn, &empty);
    }

    pub(super) fn serve_catalog(&mut self, conn: ConnId, page: u32) {
        if let Some(s) = self.conns.session_mut(&conn) {
            s.queue_catalog(page);
        }
        self.pump_serve(conn);
    }

    /// The encoded catalog page `page` (built once per revision).
    fn catalog_page(&mut self, page: u32) -> Vec<u8> {
        if self.catalog_pages.is_empty() {
            let files: Vec<CatalogEntry> = self
                .local
                .values()
                .flat_map(|e| {
                    e.names.iter().map(|n| CatalogEntry {
                        name: n.clone(),
                        size: e.manifest.size(),
                        content: e.manifest.id(),
                        partial: false,
                    })
                })
                .chain(self.partial_entries())
                .collect();
            self.catalog_pages = crate::wire::catalog_pages(self.revision, files);
        }
        let pages = self.catalog_pages.len() as u32;
        match self.catalog_pages.get(page as usize) {
            Some(f) => f.clone(),
            None => encode_message(&Message::Catalog {
                revision: self.revision,
                page,
                pages,
                files: Vec::new(),
            }),
        }
    }

    pub(super) fn serve_manifest(&mut self, conn: ConnId, content: ContentId) {
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        if !s.want_manifest(content) {
            return self.refuse(conn, ErrorCode::Busy, content, None);
        }
        self.pump_serve(conn);
    }

    /// True when `conn`, its IP or the node has spent its send budget: small answers
    /// (refusals, pongs) are then dropped, not queued (the connection is paused; one that
    /// reads is never here).
    pub(super) fn over_budget(&self, conn: ConnId) -> bool {
        let Some(s) = self.conns.session(&conn) else {
            return true;
        };
        if s.owed() >= CONN_SEND_BUDGET {
            return true;
        }
        let (by_ip, all) = self.owed(s.remote().ip());
        s.owed() > 0 && (by_ip >= IP_SEND_BUDGET || all >= NODE_SEND_BUDGET)
    }

    pub(super) fn refuse(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        content: ContentId,
        index: Option<u32>,
    ) {
        if self.over_budget(conn) {
            self.stats.answers_dropped += 1;
            return;
        }
        self.stats.requests_refused += 1;
        self.send_msg(
            conn,
            &Message::Error {
                code,
                content,
                index,
            },
        );
    }

    pub(super) fn serve_chunk(&mut self, conn: ConnId, content: ContentId, index: u32) {
        match self.serve_source(&content, index) {
            Serve::Read { .. } => {}
            Serve::NotFound => return self.refuse(conn, ErrorCode::NotFound, content, Some(index)),
            Serve::BadRequest => {
                return self.refuse(conn, ErrorCode::BadRequest, content, Some(index));
            }
            Serve::Busy => return self.refuse(conn, ErrorCode::Busy, content, Some(index)),
        }
        if self.sent_elsewhere(conn, content, index)
            && self
                .conns
                .session_mut(&conn)
                .is_some_and(|s| s.take_once(content, index))
        {
            self.stats.requests_spread += 1;
            return self.refuse(conn, ErrorCode::Taken, content, Some(index));
        }
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        if !s.queue_request(content, index) {
            return self.refuse(conn, ErrorCode::Busy, content, Some(index));
        }
        // A connection waiting for a shared budget is served when it frees (`pump_starved`):
        // trying again for each of its requests would only cost time.
        if !self.conns.session(&conn).is_some_and(Session::is_starved) {
            self.pump_serve(conn);
        }
    }

    /// Sends the waiting catalog page and manifest, and starts reads for queued chunk
    /// requests, while the serve window and the send budgets have room; then pauses or
    /// resumes reading the connection.
    fn pump_serve(&mut self, conn: ConnId) {
        if let Some(s) = self.conns.session_mut(&conn) {
            s.set_starved(false);
        }
        self.pump_catalog(conn);
        self.pump_manifests(conn);
        self.pump_chunks(conn);
        self.update_pause(conn);
    }

    fn pump_catalog(&mut self, conn: ConnId) {
        let Some(page) = self.conns.session(&conn).and_then(|s| s.catalog_due()) else {
            return;
        };
        let frame = self.catalog_page(page);
        if !self.fits(conn, frame.len()) {
            return;
        }
        if let Some(s) = self.conns.session_mut(&conn) {
            s.catalog_sent();
        }
        self.send(conn, frame);
    }

    fn pump_manifests(&mut self, conn: ConnId) {
        while let Some(content) = self.conns.session(&conn).and_then(|s| s.manifest_due()) {
            let Some(m) = self.serving_manifest(&content) else {
                if let Some(s) = self.conns.session_mut(&conn) {
                    s.manifest_answered(false);
                }
                self.refuse(conn, ErrorCode::NotFound, content, None);
                continue;
            };
            let frame = encode_message(&Message::Manifest {
                content,
                bytes: m.encode(),
            });
            if !self.fits(conn, frame.len()) {
                return;
            }
            if let Some(s) = self.conns.session_mut(&conn) {
                s.manifest_answered(true);
            }
            self.send(conn, frame);
        }
    }

    fn pump_chunks(&mut self, conn: ConnId) {
        loop {
            let Some(s) = self.conns.session(&conn) else {
                return;
            };
            let Some((content, index)) = s.next_to_serve(self.cfg.serve_window) else {
                return;
            };
            let (source, offset, len) = match self.serve_source(&content, index) {
                Serve::Read {
                    source,
                    offset,
                    len,
                } => (source, offset, len),
                other => {
                    // Unshared (or finishing) since it was queued.
                    if let Some(s) = self.conns.session_mut(&conn) {
                        s.skip_serving();
                    }
                    let code = match other {
                        Serve::Busy => ErrorCode::Busy,
                        _ => ErrorCode::NotFound,
                    };
                    self.refuse(conn, code, content, Some(index));
                    continue;
                }
            };
            if !self.fits(conn, len as usize + CHUNK_FRAME_OVERHEAD) {
                return;
            }
            if let Some(s) = self.conns.session_mut(&conn) {
                s.start_serving(len);
            }
            self.note_sent(conn, content, index);
            let read = self.ids.read();
            self.reads.insert(
                read,
                ReadFor::Serve {
                    conn,
                    content,
                    index,
                    len,
                    partial: matches!(source, ReadSource::Partial(_)),
                },
            );
            self.out.push_back(Output::Disk(DiskOp::Read {
                read,
                source,
                offset,
                len,
            }));
        }
    }

    /// Tells the runtime to stop reading `conn` while it wants a pause, and to read it again
    /// once it does not.
    pub(super) fn update_pause(&mut self, conn: ConnId) {
        let never = self.cfg.bugs.never_pause(); // planted bug (simulator only)
        let Some(s) = self.conns.session(&conn) else {
            return;
        };
        // One host's connections share one budget: once its IP has spent it, none of them is
        // read (else each would be read again as soon as its own few bytes left, and a host
        // with many connections would be read without end).
        let (was, wants, may) = (s.is_paused(), s.wants_pause(), s.may_resume());
        let (by_ip, _) = self.owed(s.remote().ip());
        let pause = if was {
            !(may && by_ip <= IP_SEND_BUDGET / 2)
        } else {
            wants || by_ip >= IP_SEND_BUDGET
        } && !never;
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        if s.set_paused(pause) {
            if pause {
                self.stats.connections_paused += 1;
                self.out.push_back(Output::Net(NetOp::Pause { conn }));
            } else {
                self.out.push_back(Output::Net(NetOp::Resume { conn }));
            }
        }
    }

    /// Serves the connections that waited for a shared budget (someone flushed or left).
    /// Those whose IP, or the node, still has no room stay waiting without being tried: with
    /// many waiting connections of one greedy host, every flush would otherwise try them all.
    pub(super) fn pump_starved(&mut self) {
        let waiting: Vec<ConnId> = self
            .conns
            .sessions()
            .filter(|s| s.is_starved())
            .map(Session::id)
            .collect();
        if waiting.is_empty() {
            return;
        }
        let mut by_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let mut all = 0;
        for s in self.conns.sessions() {
            *by_ip.entry(s.remote().ip()).or_default() += s.owed();
            all += s.owed();
        }
        for conn in &waiting {
            if let Some(s) = self.conns.session_mut(conn) {
                s.set_starved(false);
            }
        }
        for conn in waiting {
            let ip = self.conns.session(&conn).map(|s| s.remote().ip());
            let need = self.next_answer_len(conn);
            let full = ip.is_none_or(|ip| {
                let mine = by_ip.get(&ip).copied().unwrap_or(0);
                all > 0 && (mine + need > IP_SEND_BUDGET || all + need > NODE_SEND_BUDGET)
            });
            if full {
                if let Some(s) = self.conns.session_mut(&conn) {
                    s.set_starved(true);
                }
            } else {
                self.pump_serve(conn);
            }
        }
    }

    /// The size of the smallest answer `conn` waits to be sent (0 if none): what must fit
    /// before trying it is worth the time.
    fn next_answer_len(&self, conn: ConnId) -> usize {
        let Some(s) = self.conns.session(&conn) else {
            return 0;
        };
        let catalog = s.catalog_due().map(|_| crate::wire::CATALOG_PAGE_BYTES / 4);
        let manifest = s
            .manifest_due()
            .and_then(|c| self.serving_manifest(&c))
            .map(|m| 64 + 32 * m.chunk_count() as usize);
        let chunk = s
            .next_to_serve(self.cfg.serve_window)
            .and_then(|(c, i)| match self.serve_source(&c, i) {
                Serve::Read { len, .. } => Some(len),
                _ => None,
            })
            .map(|len| len as usize + CHUNK_FRAME_OVERHEAD);
        [catalog, manifest, chunk]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0)
    }

    pub(super) fn on_flushed(&mut self, conn: ConnId) {
        let ip = self.conns.session_mut(&conn).map(|s| {
            s.flushed();
            s.remote().ip()
        });
        self.pump_serve(conn);
        self.pump_starved();
        if let Some(ip) = ip {
            self.repause_ip(ip);
        }
    }

    /// Decides again whether the paused connections from `ip` may be read (its budget moved).
    pub(super) fn repause_ip(&mut self, ip: IpAddr) {
        let paused: Vec<ConnId> = self
            .conns
            .sessions()
            .filter(|s| s.is_paused() && s.remote().ip() == ip)
            .map(Session::id)
            .collect();
        for c in paused {
            self.update_pause(c);
        }
    }

    pub(super) fn on_read_done(
        &mut self,
        now: Instant,
        read: ReadId,
        result: Result<Vec<u8>, DiskError>,
    ) {
        match self.reads.remove(&read) {
            Some(ReadFor::Serve {
                conn,
                content,
                index,
                len,
                partial,
            }) => {
                let Some(s) = self.conns.session_mut(&conn) else {
                    return;
                };
                let ok = matches!(&result, Ok(data) if data.len() == len as usize);
                s.served(ok, len);
                match result {
                    Ok(data) if ok => {
                        self.stats.chunks_served += 1;
                        self.stats.chunks_served_partial += u64::from(partial);
                        let header = encode_chunk_header(&content, index, data.len());
                        self.send_parts(conn, &[&header, &data]);
                    }
                    _ => self.refuse(conn, ErrorCode::ReadFailed, content, Some(index)),
                }
                self.pump_serve(conn);
            }
            Some(ReadFor::Check { content, index }) => {
                self.on_check_done(now, content, index, result)
            }
            Some(ReadFor::PyServe { conn }) => self.py_read_done(conn, result),
            None => {}
        }
    }
}
