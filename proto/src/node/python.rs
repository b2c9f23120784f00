//! The node's side of the original Python peers: hearing their JSON announcements, showing
//! their files and addresses, and announcing ours to them (see [`crate::python`] for the
//! table, [`crate::wire::legacy`] for the codecs).
//!
//! Invariants: a Python datagram is decoded only within its hard limit and every entry that
//! breaks a rule is counted; the JSON announcement is sent only while a Python peer was heard
//! within [`PY_RECENT`](crate::budget::PY_RECENT); a Python file that a p2pshare peer vouches
//! for (same name, same whole-file SHA-256 in its JSON announcement) is listed once, as that
//! native content.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Event, NetOp, Node, Output, PeerView, RemoteFile};
use crate::ids::ContentId;
use crate::python::{Heard, content_id_of};
use crate::wire::legacy::{self, LegacyAnnounce, LegacyFile};

impl Node {
    /// A datagram that looks like JSON: a Python peer's announcement, or one of ours for them.
    pub(super) fn on_legacy_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let a = match LegacyAnnounce::decode(data) {
            Ok(a) => a,
            Err(_) => {
                self.stats.python_datagrams_dropped += 1;
                return;
            }
        };
        self.stats.python_files_rejected += u64::from(a.rejected);
        if a.origin == Some(self.cfg.peer_id) {
            return;
        }
        // A p2pshare peer without the origin key (none of ours) is still heard natively.
        let addr = SocketAddr::new(from.ip(), a.port);
        if a.origin.is_none() && self.discovery.peers().any(|p| p.addr == addr) {
            return;
        }
        let was_recent = self.python.heard_recently(now);
        match self.python.heard(now, from, a) {
            Heard::New(peer) => {
                self.out
                    .push_back(Output::Event(Event::PeerFound { peer, addr }));
                self.py_holders_heard(now, addr);
            }
            Heard::Again(_) => self.py_holders_heard(now, addr),
            Heard::Native => {}
            Heard::Full => self.stats.python_peers_full += 1,
        }
        if !was_recent && self.python.heard_recently(now) {
            // The first Python peer in a while: it hears of us at the next announcement, soon.
            self.discovery.answer_soon(now);
        }
    }

    /// Expires silent Python peers (from `handle_timeout`).
    pub(super) fn python_timers(&mut self, now: Instant) {
        for p in self.python.handle_timeout(now) {
            self.out.push_back(Output::Event(Event::PeerLost {
                peer: p.id,
                addr: p.addr,
            }));
            self.py_holder_lost(now, p.addr);
        }
    }

    /// Our JSON announcement for Python peers, if one was heard lately: our files (names they
    /// can ask for, as many as fit), marked with our id so that p2pshare peers know it is ours.
    pub(super) fn python_announcement(&self, now: Instant) -> Option<Vec<u8>> {
        if !self.python.heard_recently(now) {
            return None;
        }
        let mut files: Vec<LegacyFile> = self
            .local
            .values()
            .flat_map(|e| {
                e.names.iter().map(|n| LegacyFile {
                    name: n.clone(),
                    total_chunks: legacy::chunks_for(e.manifest.size()),
                    file_hash: *e.manifest.file_hash(),
                })
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let a = LegacyAnnounce {
            port: self.cfg.transfer_port,
            files,
            rejected: 0,
            origin: Some(self.cfg.peer_id),
        };
        Some(a.encode())
    }

    /// Sends `data` (our JSON announcement) wherever the native one goes.
    pub(super) fn send_python_announcement(&mut self, data: Vec<u8>) {
        for &to in &self.cfg.announce_to {
            self.out.push_back(Output::Net(NetOp::Datagram {
                to,
                data: data.clone(),
            }));
        }
    }

    /// True when the LAN has Python peers as far as we know: one was heard, or a p2pshare peer
    /// announces to them. They announce only every 5 s, so a one-shot view listens that long.
    pub fn python_around(&self) -> bool {
        self.python.any()
    }

    /// The Python peers, for [`Node::peers`].
    pub(super) fn python_peer_views(&self) -> impl Iterator<Item = PeerView> + '_ {
        self.python.peers().map(|p| PeerView {
            id: p.id,
            addr: p.addr,
            files: Some(p.files.len()),
            last_seen: p.last_seen,
            confirmed: false,
            python: true,
        })
    }

    /// The native content a p2pshare peer vouches is the Python file `f`: one of its catalog
    /// entries has `f`'s name, and its JSON announcement gave that name `f`'s SHA-256.
    fn vouched_native(&self, f: &LegacyFile) -> Option<ContentId> {
        self.discovery.peers().find_map(|p| {
            let hash = self.python.vouched_hash(&p.id, p.addr.ip(), &f.name)?;
            if *hash != f.file_hash {
                return None;
            }
            self.remote
                .get(&p.id)?
                .iter()
                .find(|e| e.name == f.name && e.size.div_ceil(1024) == f.total_chunks)
                .map(|e| e.content)
        })
    }

    /// The Python peers' files, for [`Node::remote_files`]: one entry per (SHA-256, chunk
    /// count), size shown as its upper bound (`total_chunks` × 1 KiB); files a p2pshare peer
    /// also holds are left out (they are listed, and fetched, as the native content).
    pub(super) fn python_remote_files(&self) -> Vec<RemoteFile> {
        let mut by_content: std::collections::BTreeMap<ContentId, RemoteFile> =
            std::collections::BTreeMap::new();
        for p in self.python.peers() {
            for f in &p.files {
                if self.vouched_native(f).is_some() {
                    continue;
                }
                let content = content_id_of(&f.file_hash, f.total_chunks);
                let r = by_content.entry(content).or_insert_with(|| RemoteFile {
                    content,
                    size: f.total_chunks.saturating_mul(legacy::PY_CHUNK as u64),
                    names: Vec::new(),
                    holders: Vec::new(),
                    local: self
                        .local
                        .values()
                        .any(|e| *e.manifest.file_hash() == f.file_hash),
                    python: true,
                });
                if !r.names.contains(&f.name) {
                    r.names.push(f.name.clone());
                }
                if !r.holders.contains(&p.id) {
                    r.holders.push(p.id);
                }
            }
        }
        by_content
            .into_values()
            .map(|mut r| {
                r.names.sort();
                r.holders.sort_unstable();
                r
            })
            .collect()
    }
}
