//! The original Python peers we hear: a table keyed by `(source ip, announced port)`.
//!
//! A Python peer sends its whole file list every 5 s ([`LegacyAnnounce`]); each announcement
//! replaces what we knew of it. Within p2pshare it has a derived [`PeerId`] (from its address)
//! and each of its files a derived [`ContentId`] (from the file's SHA-256 and chunk count), so
//! the views and commands treat them like any peer and content.
//!
//! Invariants:
//! - the table holds at most [`MAX_PY_PEERS`] peers, [`MAX_PY_PEERS_PER_IP`] per IP address;
//!   beyond that new peers are counted and ignored;
//! - a peer silent past [`PY_EXPIRY`] is gone, driven by [`PythonPeers::handle_timeout`];
//! - announcements carrying a p2pshare origin ([`LegacyAnnounce::origin`]) are not Python
//!   peers: they only record which file hashes that p2pshare peer's names have (for listing a
//!   file held by both kinds once), bounded the same way and forgotten the same way.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::wire::{LegacyAnnounce, LegacyFile};
use crate::budget::{MAX_PY_PEERS, MAX_PY_PEERS_PER_IP, PY_EXPIRY, PY_RECENT};
use crate::ids::{ContentId, Digest, PeerId, sha256};

/// The id a Python peer at `addr` has within p2pshare.
pub(crate) fn peer_id_of(addr: SocketAddr) -> PeerId {
    PeerId(sha256(format!("p2pshare python peer {addr}").as_bytes()))
}

/// The content id a Python file has within p2pshare: different from every native content id
/// (those hash a manifest), the same for every Python peer with the same bytes.
pub(crate) fn content_id_of(file_hash: &Digest, total_chunks: u64) -> ContentId {
    let mut buf = b"p2pshare python content ".to_vec();
    buf.extend_from_slice(file_hash);
    buf.extend_from_slice(&total_chunks.to_be_bytes());
    ContentId(sha256(&buf))
}

/// When an entry last heard at `last_seen` expires: the one formula of both the timer and the
/// expiry.
fn expires(last_seen: Instant) -> Instant {
    last_seen + PY_EXPIRY
}

fn contents_of(files: &[LegacyFile]) -> Vec<ContentId> {
    files
        .iter()
        .map(|f| content_id_of(&f.file_hash, f.total_chunks))
        .collect()
}

/// A Python peer in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PyPeer {
    /// Its derived id ([`peer_id_of`]).
    pub(crate) id: PeerId,
    /// Where it serves chunks: its source IP and announced port.
    pub(crate) addr: SocketAddr,
    /// Its files, from its last announcement.
    pub(crate) files: Vec<LegacyFile>,
    /// Their content ids ([`content_id_of`]), in the same order, computed once.
    contents: Vec<ContentId>,
    /// When we last heard it.
    pub(crate) last_seen: Instant,
}

/// What a p2pshare peer's JSON announcement said about its names.
#[derive(Debug, Clone)]
struct Vouched {
    ip: IpAddr,
    hashes: BTreeMap<String, Digest>,
    last_seen: Instant,
}

/// What became of one announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// A Python peer we did not know.
    New(PeerId),
    /// A known one, refreshed.
    Again(PeerId),
    /// One of ours (it carries a p2pshare origin): its hashes are noted.
    Native,
    /// A new peer, ignored: the table (or its address's share) is full.
    Full,
}

/// Every Python peer we hear.
#[derive(Debug, Default)]
pub(crate) struct PythonPeers {
    peers: BTreeMap<SocketAddr, PyPeer>,
    vouched: BTreeMap<PeerId, Vouched>,
    last_heard: Option<Instant>,
}

impl PythonPeers {
    /// Records announcement `a` heard from `from` at `now`.
    pub(crate) fn heard(&mut self, now: Instant, from: SocketAddr, a: LegacyAnnounce) -> Heard {
        if let Some(origin) = a.origin {
            if !self.vouched.contains_key(&origin) && self.vouched.len() >= MAX_PY_PEERS {
                return Heard::Full;
            }
            let hashes = a.files.into_iter().map(|f| (f.name, f.file_hash)).collect();
            self.vouched.insert(
                origin,
                Vouched {
                    ip: from.ip(),
                    hashes,
                    last_seen: now,
                },
            );
            return Heard::Native;
        }
        let addr = SocketAddr::new(from.ip(), a.port);
        self.last_heard = Some(now);
        if let Some(p) = self.peers.get_mut(&addr) {
            p.contents = contents_of(&a.files);
            p.files = a.files;
            p.last_seen = now;
            return Heard::Again(p.id);
        }
        let at_ip = self.peers.keys().filter(|k| k.ip() == addr.ip()).count();
        if self.peers.len() >= MAX_PY_PEERS || at_ip >= MAX_PY_PEERS_PER_IP {
            return Heard::Full;
        }
        let id = peer_id_of(addr);
        self.peers.insert(
            addr,
            PyPeer {
                id,
                addr,
                contents: contents_of(&a.files),
                files: a.files,
                last_seen: now,
            },
        );
        Heard::New(id)
    }

    /// Forgets what went silent past [`PY_EXPIRY`]; returns the Python peers lost.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<PyPeer> {
        let mut lost = Vec::new();
        self.peers.retain(|_, p| {
            let keep = expires(p.last_seen) > now;
            if !keep {
                lost.push(p.clone());
            }
            keep
        });
        self.vouched.retain(|_, v| expires(v.last_seen) > now);
        lost
    }

    /// The next expiry, if anything can expire.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let peers = self.peers.values().map(|p| p.last_seen);
        let vouched = self.vouched.values().map(|v| v.last_seen);
        peers.chain(vouched).min().map(expires)
    }

    /// True while a Python peer was heard within [`PY_RECENT`]: only then do we announce to
    /// them.
    pub(crate) fn heard_recently(&self, now: Instant) -> bool {
        self.last_heard
            .is_some_and(|t| now.saturating_duration_since(t) < PY_RECENT)
    }

    /// True when a Python peer, or a p2pshare peer's JSON announcement (sent only while it
    /// hears Python peers), is in the table.
    pub(crate) fn any(&self) -> bool {
        !self.peers.is_empty() || !self.vouched.is_empty()
    }

    /// Every Python peer, by address.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &PyPeer> {
        self.peers.values()
    }

    /// The file hash the p2pshare peer `peer` (at `ip`) announced for its file `name`, if its
    /// JSON announcement said so from that address.
    pub(crate) fn vouched_hash(&self, peer: &PeerId, ip: IpAddr, name: &str) -> Option<&Digest> {
        self.vouched
            .get(peer)
            .filter(|v| v.ip == ip)
            .and_then(|v| v.hashes.get(name))
    }

    /// What Python peers hold `content` ([`content_id_of`]): each holder's address and the
    /// name it lists it under, and the file (the first holder's entry).
    pub(crate) fn holders(&self, content: &ContentId) -> Vec<(SocketAddr, &LegacyFile)> {
        self.peers
            .values()
            .flat_map(|p| {
                p.files
                    .iter()
                    .zip(&p.contents)
                    .filter(|(_, c)| *c == content)
                    .map(move |(f, _)| (p.addr, f))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(port: u16, names: &[&str]) -> LegacyAnnounce {
        LegacyAnnounce {
            port,
            files: names
                .iter()
                .map(|n| LegacyFile {
                    name: (*n).to_owned(),
                    total_chunks: 2,
                    file_hash: sha256(n.as_bytes()),
                })
                .collect(),
            rejected: 0,
            origin: None,
        }
    }

    #[test]
    fn heard_replaced_and_expired() {
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let from: SocketAddr = "10.0.0.5:9999".parse().unwrap();
        let addr: SocketAddr = "10.0.0.5:10001".parse().unwrap();
        assert_eq!(
            t.heard(t0, from, ann(10001, &["a"])),
            Heard::New(peer_id_of(addr))
        );
        assert!(t.heard_recently(t0));
        let later = t0 + std::time::Duration::from_secs(5);
        assert_eq!(
            t.heard(later, from, ann(10001, &["b"])),
            Heard::Again(peer_id_of(addr))
        );
        let p = t.peers().next().unwrap();
        assert_eq!(
            (p.addr, p.files.len(), p.files[0].name.as_str()),
            (addr, 1, "b")
        );
        let c = content_id_of(&sha256(b"b"), 2);
        assert_eq!(t.holders(&c).len(), 1);
        assert_eq!(t.poll_timeout(), Some(later + PY_EXPIRY));
        assert!(
            t.handle_timeout(later + PY_EXPIRY - std::time::Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(t.handle_timeout(later + PY_EXPIRY).len(), 1);
        assert_eq!(t.peers().count(), 0);
        assert!(!t.heard_recently(later + PY_RECENT));
    }

    #[test]
    fn bounded_per_ip_and_ours_are_not_python_peers() {
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let from: SocketAddr = "10.0.0.5:9999".parse().unwrap();
        for port in 1..=100 {
            t.heard(t0, from, ann(port, &["a"]));
        }
        assert_eq!(t.peers().count(), MAX_PY_PEERS_PER_IP);
        let mut ours = ann(10000, &["x"]);
        ours.origin = Some(PeerId([1; 32]));
        let other: SocketAddr = "10.0.0.6:9999".parse().unwrap();
        assert_eq!(t.heard(t0, other, ours), Heard::Native);
        assert_eq!(t.peers().count(), MAX_PY_PEERS_PER_IP);
        assert_eq!(
            t.vouched_hash(&PeerId([1; 32]), other.ip(), "x"),
            Some(&sha256(b"x"))
        );
        assert_eq!(t.vouched_hash(&PeerId([1; 32]), from.ip(), "x"), None);
    }
}
