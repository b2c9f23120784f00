//! The node's downloads from original Python peers: one connection per chunk, driven here;
//! what to ask whom is [`crate::pyfetch::PyDownload`]'s. The runtime only connects, sends the
//! request line, hands back the bytes and reports the close.
//!
//! Invariants: a chunk connection lives at most [`PY_CHUNK_DEADLINE`] and buffers at most
//! [`MAX_REPLY`] bytes (more is a lie); a chunk is written only after its transport hash
//! matched and its length fits; the file appears only after the disk checked the whole
//! file's SHA-256 against the announced one (`DiskOp::Finish`).

use std::net::SocketAddr;
use std::time::Instant;

use super::{DiskOp, DownloadView, Event, Input, NetOp, Node, Output, Source};
use crate::budget::PY_CHUNK_DEADLINE;
use crate::disk::FinishError;
use crate::download::{FailReason, Phase};
use crate::ids::ContentId;
use crate::pyfetch::{Attempt, PyDownload, PyPhase};
use crate::python::peer_id_of;
use crate::session::ConnId;
use crate::wire::legacy::{LegacyRequest, MAX_REPLY, decode_reply};

/// Chunks written between two progress events.
const PROGRESS_EVERY: u32 = 1024;

/// One chunk connection to a Python peer.
#[derive(Debug)]
pub(super) struct PyConn {
    content: ContentId,
    addr: SocketAddr,
    /// 0-based.
    index: u32,
    name: String,
    buf: Vec<u8>,
    deadline: Instant,
}

impl PyConn {
    /// When it is closed if no reply came.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Node {
    /// True when `content` is a Python file that no p2pshare peer holds: `get` fetches it with
    /// the Python protocol.
    pub(super) fn is_python_content(&self, content: &ContentId) -> bool {
        !self.python.holders(content).is_empty()
            && !self
                .remote
                .iter()
                .any(|(_, files)| files.iter().any(|f| f.content == *content))
    }

    /// Starts downloading the Python file `content`.
    pub(super) fn start_py_download(&mut self, content: ContentId, asked: Option<String>) {
        if self.py_downloads.contains_key(&content) {
            return;
        }
        let holders = self.python.holders(&content);
        let Some((_, first)) = holders.first() else {
            return;
        };
        let name = asked
            .filter(|n| crate::name::check_name(n).is_ok())
            .unwrap_or_else(|| first.name.clone());
        let (file_hash, total) = (first.file_hash, first.total_chunks);
        // Bounded by MAX_LEGACY_CHUNKS (2^24) on decoding.
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        let addrs: Vec<SocketAddr> = holders.iter().map(|(a, _)| *a).collect();
        let d = PyDownload::new(content, name.clone(), file_hash, total, addrs);
        self.out.push_back(Output::Disk(DiskOp::OpenPartial {
            content,
            name,
            size: d.max_size(),
        }));
        self.py_downloads.insert(content, d);
    }

    /// Routes an input that belongs to a Python chunk connection or download; gives back
    /// every other input.
    pub(super) fn python_input(&mut self, now: Instant, input: Input) -> Option<Input> {
        let input = self.py_serve_input(input)?;
        match input {
            Input::Connected { conn } if self.py_conns.contains_key(&conn) => {
                if let Some(c) = self.py_conns.get(&conn) {
                    let req = LegacyRequest {
                        name: c.name.clone(),
                        index: u64::from(c.index) + 1,
                    };
                    self.out.push_back(Output::Net(NetOp::Send {
                        conn,
                        data: req.encode(),
                    }));
                }
            }
            Input::ConnectFailed { conn } if self.py_conns.contains_key(&conn) => {
                self.py_conn_ended(now, conn, None);
            }
            Input::Received { conn, data } if self.py_conns.contains_key(&conn) => {
                self.py_received(now, conn, &data);
            }
            Input::Closed { conn } if self.py_conns.contains_key(&conn) => {
                let buf = self
                    .py_conns
                    .get_mut(&conn)
                    .map(|c| std::mem::take(&mut c.buf));
                self.py_conn_ended(now, conn, buf);
            }
            Input::Flushed { conn } if self.py_conns.contains_key(&conn) => {}
            Input::PartialOpened { content, result }
                if self.py_downloads.contains_key(&content) =>
            {
                match result {
                    Ok(len) => self.py_opened(now, content, len),
                    Err(e) => self.fail_py_download(content, FailReason::Disk(e)),
                }
            }
            Input::Written {
                content,
                index,
                result,
            } if self.py_downloads.contains_key(&content) => match result {
                Ok(()) => self.py_written(now, content, index),
                Err(e) => self.fail_py_download(content, FailReason::Disk(e)),
            },
            Input::Finished { content, result } if self.py_downloads.contains_key(&content) => {
                self.py_finished(now, content, result)
            }
            Input::Command(super::Command::Get { content, name })
                if self.is_python_content(&content) =>
            {
                self.start_py_download(content, name)
            }
            Input::Command(super::Command::Cancel(content))
                if self.py_downloads.contains_key(&content) =>
            {
                self.fail_py_download(content, FailReason::Cancelled)
            }
            other => return Some(other),
        }
        None
    }

    /// Bytes on a Python chunk connection (also from `handle_received`).
    pub(super) fn py_received(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(c) = self.py_conns.get_mut(&conn) else {
            return;
        };
        if c.buf.len() + data.len() > MAX_REPLY {
            // More than a hash and a chunk: a lie, whatever the rest.
            self.out.push_back(Output::Net(NetOp::Close { conn }));
            let over = vec![0u8; MAX_REPLY + 1];
            self.py_conn_ended(now, conn, Some(over));
            return;
        }
        c.buf.extend_from_slice(data);
    }

    /// A chunk connection ended: with everything it received (`None`: it never connected, or
    /// its deadline passed).
    fn py_conn_ended(&mut self, now: Instant, conn: ConnId, got: Option<Vec<u8>>) {
        let Some(c) = self.py_conns.remove(&conn) else {
            return;
        };
        let attempt = match got {
            None => Attempt::Failed,
            // Closed before a whole hash line: the Python server's way to refuse.
            Some(b) if b.len() < 64 => Attempt::Failed,
            Some(b) => match decode_reply(&b) {
                Ok(body) => Attempt::Chunk(body.to_vec()),
                Err(_) => Attempt::Lied,
            },
        };
        let Some(d) = self.py_downloads.get_mut(&c.content) else {
            return;
        };
        let (writes, lied) = d.on_attempt(c.addr, c.index, attempt);
        if lied {
            self.stats.chunks_rejected += 1;
            self.out.push_back(Output::Event(Event::ChunkRejected {
                content: c.content,
                peer: peer_id_of(c.addr),
                index: c.index,
            }));
        }
        for (index, offset, data) in writes {
            self.out.push_back(Output::Disk(DiskOp::Write {
                content: c.content,
                index,
                offset,
                data,
            }));
        }
        self.py_pump(now, c.content);
    }

    fn py_opened(&mut self, now: Instant, content: ContentId, len: u64) {
        let Some(d) = self.py_downloads.get_mut(&content) else {
            return;
        };
        let complete = d.opened(len);
        let (name, size) = (d.name().to_owned(), d.max_size());
        self.out.push_back(Output::Event(Event::DownloadStarted {
            content,
            name,
            size,
        }));
        if complete {
            d.begin_finish();
            self.py_finish(content);
        } else {
            self.py_pump(now, content);
        }
    }

    fn py_written(&mut self, now: Instant, content: ContentId, index: u32) {
        let Some(d) = self.py_downloads.get_mut(&content) else {
            return;
        };
        let all = d.on_written(index);
        let (done, total) = (d.written_bytes(), d.size().unwrap_or(d.max_size()));
        let peers = d.holders().values().filter(|h| h.in_flight > 0).count();
        // One progress event per MiB (a native chunk's worth), not per 1 KiB chunk.
        if all || d.written_chunks().is_multiple_of(PROGRESS_EVERY) {
            self.out.push_back(Output::Event(Event::Progress {
                content,
                done,
                total,
                peers,
            }));
        }
        if all {
            self.py_finish(content);
        } else {
            self.py_pump(now, content);
        }
    }

    fn py_finish(&mut self, content: ContentId) {
        let Some(d) = self.py_downloads.get(&content) else {
            return;
        };
        self.out.push_back(Output::Disk(DiskOp::Finish {
            content,
            name: d.name().to_owned(),
            size: d.size().unwrap_or(0),
            file_hash: *d.file_hash(),
            manifest: None,
        }));
    }

    fn py_finished(
        &mut self,
        now: Instant,
        content: ContentId,
        result: Result<String, FinishError>,
    ) {
        match result {
            Ok(file) => {
                let Some(d) = self.py_downloads.remove(&content) else {
                    return;
                };
                let sources = d
                    .holders()
                    .iter()
                    .filter(|(_, h)| h.delivered > 0)
                    .map(|(a, h)| Source {
                        peer: peer_id_of(*a),
                        addr: Some(*a),
                        chunks: h.delivered,
                        bytes: h.bytes,
                    })
                    .collect();
                let fetched = d.holders().values().map(|h| h.bytes).sum();
                self.out.push_back(Output::Event(Event::DownloadDone {
                    content,
                    file,
                    size: d.size().unwrap_or(0),
                    file_hash: *d.file_hash(),
                    fetched,
                    reused: d.reused(),
                    rejected: d.rejected(),
                    sources,
                }));
            }
            Err(FinishError::HashMismatch) => {
                let retry = self
                    .py_downloads
                    .get_mut(&content)
                    .is_some_and(PyDownload::on_mismatch);
                if retry {
                    self.stats.chunks_rejected += 1;
                    self.py_pump(now, content);
                } else {
                    self.fail_py_download(content, FailReason::Finish(FinishError::HashMismatch));
                }
            }
            Err(e) => self.fail_py_download(content, FailReason::Finish(e)),
        }
    }

    /// Opens connections for as many chunks as the budgets allow; fails the download when
    /// nobody is left to ask.
    fn py_pump(&mut self, now: Instant, content: ContentId) {
        let Some(d) = self.py_downloads.get_mut(&content) else {
            return;
        };
        if d.phase() != PyPhase::Running {
            return;
        }
        // Each holder is asked under the name it lists the file as (one it no longer lists:
        // under the download's name).
        let names: std::collections::BTreeMap<SocketAddr, String> = self
            .python
            .holders(&content)
            .into_iter()
            .map(|(a, f)| (a, f.name.clone()))
            .collect();
        while let Some((addr, index)) = d.next_request() {
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            let asked = names
                .get(&addr)
                .cloned()
                .unwrap_or_else(|| d.name().to_owned());
            self.py_conns.insert(
                conn,
                PyConn {
                    content,
                    addr,
                    index,
                    name: asked,
                    buf: Vec::new(),
                    deadline: now + PY_CHUNK_DEADLINE,
                },
            );
            self.out
                .push_back(Output::Net(NetOp::Connect { conn, addr }));
        }
        let idle = !self.py_conns.values().any(|c| c.content == content);
        if idle && d.usable() == 0 {
            let reason = FailReason::NoPeers {
                have: d.written_chunks(),
                total: d.total(),
            };
            self.fail_py_download(content, reason);
        }
    }

    fn fail_py_download(&mut self, content: ContentId, reason: FailReason) {
        let Some(d) = self.py_downloads.remove(&content) else {
            return;
        };
        let conns: Vec<ConnId> = self
            .py_conns
            .iter()
            .filter(|(_, c)| c.content == content)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.py_conns.remove(&conn);
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
        self.out
            .push_back(Output::Disk(DiskOp::ClosePartial { content }));
        self.out.push_back(Output::Event(Event::DownloadFailed {
            content,
            name: d.name().to_owned(),
            reason,
        }));
    }

    /// Chunk connection `conn` reached its deadline: closed, the attempt failed.
    pub(super) fn py_fetch_late(&mut self, now: Instant, conn: ConnId) {
        if self.py_conns.contains_key(&conn) {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
            self.py_conn_ended(now, conn, None);
        }
    }

    /// A Python peer announced (again): it holds the files it lists, for the downloads of
    /// them; a download waiting for holders goes on.
    pub(super) fn py_holders_heard(&mut self, now: Instant, addr: SocketAddr) {
        let contents: Vec<ContentId> = self.py_downloads.keys().copied().collect();
        for content in contents {
            if self
                .python
                .holders(&content)
                .iter()
                .any(|(a, _)| *a == addr)
                && let Some(d) = self.py_downloads.get_mut(&content)
            {
                d.add_holder(addr);
                self.py_pump(now, content);
            }
        }
    }

    /// A Python peer was forgotten: no longer asked.
    pub(super) fn py_holder_lost(&mut self, now: Instant, addr: SocketAddr) {
        let contents: Vec<ContentId> = self.py_downloads.keys().copied().collect();
        for content in contents {
            if let Some(d) = self.py_downloads.get_mut(&content) {
                d.remove_holder(addr);
            }
            self.py_pump(now, content);
        }
    }

    /// The Python downloads, for [`Node::downloads`].
    pub(super) fn py_download_views(&self) -> impl Iterator<Item = DownloadView> + '_ {
        self.py_downloads.values().map(|d| DownloadView {
            content: d.content(),
            name: d.name().to_owned(),
            size: d.size().or(Some(d.max_size())),
            done: d.written_bytes(),
            phase: match d.phase() {
                PyPhase::Opening => Phase::Opening,
                PyPhase::Running => Phase::Running,
                PyPhase::Finishing => Phase::Finishing,
            },
            peers: d.usable(),
            rejected: d.rejected(),
        })
    }

    /// Shutdown: every chunk connection closed, every partial file closed (kept for resume).
    pub(super) fn py_shutdown(&mut self) {
        for conn in std::mem::take(&mut self.py_serving).into_keys() {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
        self.py_reads.clear();
        self.undecided.clear();
        for conn in std::mem::take(&mut self.py_conns).into_keys() {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
        for content in std::mem::take(&mut self.py_downloads).into_keys() {
            self.out
                .push_back(Output::Disk(DiskOp::ClosePartial { content }));
        }
    }

    /// One Python download (for tests' invariant checks).
    pub fn py_download(&self, content: &ContentId) -> Option<&PyDownload> {
        self.py_downloads.get(content)
    }
}
