//! Serving: answering catalog, manifest and chunk requests from other peers.
//!
//! Invariants: only content in our catalog is ever read, and only inside its manifest's range
//! (a request names a content id and an index, never a path); per connection at most
//! `MAX_QUEUED_REQUESTS` chunk requests wait and at most `serve_window` chunks are read or sent
//! but not yet flushed, so a peer that asks a lot and reads slowly costs bounded memory.

use std::time::Instant;

use super::{DiskOp, Node, Output, ReadId, ReadSource};
use crate::disk::DiskError;
use crate::ids::ContentId;
use crate::session::ConnId;
use crate::wire::frame::{CatalogEntry, ErrorCode, Message, encode_chunk_header, encode_message};

/// What a pending read is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum ReadFor {
    /// A chunk to send on a connection.
    Serve {
        conn: ConnId,
        content: ContentId,
        index: u32,
        len: u32,
    },
    /// A chunk of a partial download to re-verify.
    Check { content: ContentId, index: u32 },
}

impl Node {
    pub(super) fn serve_catalog(&mut self, conn: ConnId) {
        if self.catalog_frame.is_none() {
            let files = self
                .local
                .values()
                .flat_map(|e| {
                    e.names.iter().map(|n| CatalogEntry {
                        name: n.clone(),
                        size: e.manifest.size(),
                        content: e.manifest.id(),
                    })
                })
                .collect();
            let msg = Message::Catalog {
                revision: self.revision,
                files,
            };
            self.catalog_frame = Some(encode_message(&msg));
        }
        if let Some(frame) = self.catalog_frame.clone() {
            self.send(conn, frame);
        }
    }

    pub(super) fn serve_manifest(&mut self, conn: ConnId, content: ContentId) {
        match self.local.get(&content) {
            Some(e) => {
                let msg = Message::Manifest {
                    content,
                    bytes: e.manifest.encode(),
                };
                self.send_msg(conn, &msg);
            }
            None => self.refuse(conn, ErrorCode::NotFound, content, None),
        }
    }

    fn refuse(&mut self, conn: ConnId, code: ErrorCode, content: ContentId, index: Option<u32>) {
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
        let Some(e) = self.local.get(&content) else {
            return self.refuse(conn, ErrorCode::NotFound, content, Some(index));
        };
        if e.manifest.chunk_range(index).is_none() {
            return self.refuse(conn, ErrorCode::BadRequest, content, Some(index));
        }
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        if !s.queue_request(content, index) {
            return self.refuse(conn, ErrorCode::Busy, content, Some(index));
        }
        self.pump_serve(conn);
    }

    /// Starts reads for queued requests while the connection's serve window has room.
    fn pump_serve(&mut self, conn: ConnId) {
        loop {
            let Some(s) = self.sessions.get_mut(&conn) else {
                return;
            };
            let Some((content, index)) = s.next_to_serve(self.cfg.serve_window) else {
                return;
            };
            let range = self
                .local
                .get(&content)
                .and_then(|e| e.manifest.chunk_range(index));
            let Some((offset, len)) = range else {
                // Unshared since it was queued.
                s.served(false);
                self.refuse(conn, ErrorCode::NotFound, content, Some(index));
                continue;
            };
            let read = ReadId(self.next_read);
            self.next_read += 1;
            self.reads.insert(
                read,
                ReadFor::Serve {
                    conn,
                    content,
                    index,
                    len,
                },
            );
            self.out.push_back(Output::Disk(DiskOp::Read {
                read,
                source: ReadSource::Shared(content),
                offset,
                len,
            }));
        }
    }

    pub(super) fn on_flushed(&mut self, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.flushed();
        }
        self.pump_serve(conn);
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
            }) => {
                let Some(s) = self.sessions.get_mut(&conn) else {
                    return;
                };
                let ok = matches!(&result, Ok(data) if data.len() == len as usize);
                s.served(ok);
                match result {
                    Ok(data) if ok => {
                        self.stats.chunks_served += 1;
                        let header = encode_chunk_header(&content, index, data.len());
                        self.send(conn, header);
                        self.send(conn, data);
                    }
                    _ => self.refuse(conn, ErrorCode::ReadFailed, content, Some(index)),
                }
                self.pump_serve(conn);
            }
            Some(ReadFor::Check { content, index }) => {
                self.on_check_done(now, content, index, result)
            }
            None => {}
        }
    }
}
