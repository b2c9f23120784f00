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
//! - it holds at most [`MAX_PY_FILES`] file entries, [`MAX_PY_FILES_PER_IP`] per IP address
//!   (counted from the first entry an address announces); the entries of an announcement
//!   past its address's share are dropped and counted (`over_budget`);
//! - the holders of a content and the entries of a file hash are indexes kept with the table
//!   (`holders`, `hashes`): no lookup walks the Python peers' files;
//! - a peer silent past [`PY_EXPIRY`] is gone, driven by [`PythonPeers::handle_timeout`];
//! - announcements carrying a p2pshare origin ([`LegacyAnnounce::origin`]) are not Python
//!   peers: they only record which file hashes that p2pshare peer's names have, and only when
//!   they come from the address the node lists that peer at (a datagram naming another peer's
//!   id is counted, `claims_elsewhere`, and changes nothing); bounded the same way and
//!   forgotten the same way. Such a record is a claim, never believed by itself: the node
//!   checks it against the peer's own verified manifest (`node::vouches`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::wire::{LegacyAnnounce, LegacyFile};
use crate::budget::{
    MAX_NAMES_PER_CONTENT, MAX_PY_FILES, MAX_PY_FILES_PER_IP, MAX_PY_PEERS, MAX_PY_PEERS_PER_IP,
    PY_EXPIRY, PY_RECENT,
};
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
    /// One of ours (it carries a p2pshare origin listed at its address): its claims are noted
    /// (true when they changed).
    Native(PeerId, bool),
    /// It carries the id of a p2pshare peer the node does not list at its address: dropped.
    Elsewhere,
    /// A new peer, ignored: the table (or its address's share) is full.
    Full,
}

/// What one IP address holds in the table.
#[derive(Debug, Default, Clone)]
struct Share {
    /// Its peers (their addresses).
    peers: BTreeSet<SocketAddr>,
    /// Their file entries.
    files: usize,
}

/// Every Python peer we hear.
#[derive(Debug, Default)]
pub(crate) struct PythonPeers {
    peers: BTreeMap<SocketAddr, PyPeer>,
    /// What each address holds (peers, file entries): its budget.
    shares: BTreeMap<IpAddr, Share>,
    /// The addresses by the file entries they hold, and by their peers: who gives way when
    /// the table is full.
    by_files: BTreeSet<(usize, IpAddr)>,
    by_peers: BTreeSet<(usize, IpAddr)>,
    /// Peers evicted to make room for an address holding less, since the last
    /// [`PythonPeers::take_evicted`].
    evicted: Vec<PyPeer>,
    /// The SHA-256 of each peer's last datagram, and the peer of each such digest: a datagram
    /// that repeats its peer's last one (the Python program sends the same list every 5 s) is
    /// one lookup, not a decoding.
    digests: BTreeMap<SocketAddr, Digest>,
    by_digest: BTreeMap<Digest, SocketAddr>,
    /// File entries held in all.
    files: usize,
    /// Who holds each content: the holder's address and its entry's position in its files.
    holders: BTreeMap<ContentId, BTreeMap<SocketAddr, Vec<usize>>>,
    /// How many entries have each file hash.
    hashes: BTreeMap<Digest, usize>,
    vouched: BTreeMap<PeerId, Vouched>,
    /// Which p2pshare peers claim each file hash (the vouch records, by hash).
    claimed: BTreeMap<Digest, BTreeSet<PeerId>>,
    /// p2pshare peers whose claims became worth checking since the last
    /// [`PythonPeers::take_recheck`]: a Python peer now lists a hash they claim.
    recheck: BTreeSet<PeerId>,
    last_heard: Option<Instant>,
    /// File entries dropped for their address's (or the table's) share.
    pub(crate) over_budget: u64,
}

impl PythonPeers {
    /// Records announcement `a` heard from `from` at `now`; `listed_at(origin, ip)` says
    /// whether the node lists the p2pshare peer `origin` at `ip`.
    pub(crate) fn heard(
        &mut self,
        now: Instant,
        from: SocketAddr,
        mut a: LegacyAnnounce,
        listed_at: impl Fn(&PeerId, IpAddr) -> bool,
    ) -> Heard {
        if let Some(origin) = a.origin {
            if !listed_at(&origin, from.ip()) {
                return Heard::Elsewhere;
            }
            if !self.vouched.contains_key(&origin) && self.vouched.len() >= MAX_PY_PEERS {
                return Heard::Full;
            }
            let hashes: BTreeMap<String, Digest> =
                a.files.into_iter().map(|f| (f.name, f.file_hash)).collect();
            let changed = self
                .vouched
                .get(&origin)
                .is_none_or(|v| v.ip != from.ip() || v.hashes != hashes);
            if changed {
                self.unclaim(&origin);
                for h in hashes.values() {
                    self.claimed.entry(*h).or_default().insert(origin);
                }
            }
            self.vouched.insert(
                origin,
                Vouched {
                    ip: from.ip(),
                    hashes,
                    last_seen: now,
                },
            );
            return Heard::Native(origin, changed);
        }
        let addr = SocketAddr::new(from.ip(), a.port);
        let ip = addr.ip();
        let known = self.peers.contains_key(&addr);
        if !known {
            let mine = self.shares.get(&ip).map_or(0, |s| s.peers.len());
            // A full table makes room for an address holding fewer peers than another.
            while self.peers.len() >= MAX_PY_PEERS
                && let Some(&(most, big)) = self.by_peers.last()
                && most > mine + 1
            {
                self.evict_largest(big);
            }
            if self.peers.len() >= MAX_PY_PEERS || mine >= MAX_PY_PEERS_PER_IP {
                return Heard::Full;
            }
        }
        self.last_heard = Some(now);
        // Its previous files go; the new ones take what its address and the table have left.
        // (Hashes it listed before are not news to the claims about them.)
        let mut before = BTreeSet::new();
        if let Some(p) = self.peers.remove(&addr) {
            before.extend(p.files.iter().map(|f| f.file_hash));
            self.unindex(&p);
        }
        let at_ip = self.shares.get(&ip).map_or(0, |s| s.files);
        let want = a.files.len().min(MAX_PY_FILES_PER_IP.saturating_sub(at_ip));
        // A full table makes room for an address that would hold fewer entries than another.
        while self.files + want > MAX_PY_FILES
            && let Some(&(most, big)) = self.by_files.last()
            && big != ip
            && most > at_ip + want
        {
            self.evict_largest(big);
        }
        let room = want.min(MAX_PY_FILES.saturating_sub(self.files));
        if a.files.len() > room {
            self.over_budget += (a.files.len() - room) as u64;
            a.files.truncate(room);
        }
        let id = peer_id_of(addr);
        let p = PyPeer {
            id,
            addr,
            contents: contents_of(&a.files),
            files: a.files,
            last_seen: now,
        };
        self.index(&p, &before);
        self.peers.insert(addr, p);
        if known {
            Heard::Again(id)
        } else {
            Heard::New(id)
        }
    }

    /// How many file entries an announcement from `ip` for `port` may bring: its address's
    /// share, less what its other peers hold (its own previous entries are replaced).
    pub(crate) fn room_for(&self, ip: IpAddr, port: u16) -> usize {
        let at_ip = self.shares.get(&ip).map_or(0, |s| s.files);
        let own = self
            .peers
            .get(&SocketAddr::new(ip, port))
            .map_or(0, |p| p.files.len());
        MAX_PY_FILES_PER_IP.saturating_sub(at_ip - own)
    }

    /// Evicts the peer with the most entries at `ip` (to make room for an address holding
    /// less).
    fn evict_largest(&mut self, ip: IpAddr) {
        let Some(share) = self.shares.get(&ip) else {
            return;
        };
        let largest = share
            .peers
            .iter()
            .filter_map(|a| self.peers.get(a))
            .max_by_key(|p| p.files.len())
            .map(|p| p.addr);
        if let Some(p) = largest.and_then(|a| self.peers.remove(&a)) {
            self.unindex(&p);
            self.over_budget += p.files.len() as u64;
            self.evicted.push(p);
        }
    }

    /// The peers evicted since the last call (they are lost).
    pub(crate) fn take_evicted(&mut self) -> Vec<PyPeer> {
        std::mem::take(&mut self.evicted)
    }

    /// Changes the share of `ip` by `change`, keeping the orders by size.
    fn reshare(&mut self, ip: IpAddr, change: impl FnOnce(&mut Share)) {
        let share = self.shares.entry(ip).or_default();
        self.by_files.remove(&(share.files, ip));
        self.by_peers.remove(&(share.peers.len(), ip));
        change(share);
        if share.peers.is_empty() {
            self.shares.remove(&ip);
        } else {
            self.by_files.insert((share.files, ip));
            self.by_peers.insert((share.peers.len(), ip));
        }
    }

    fn index(&mut self, p: &PyPeer, before: &BTreeSet<Digest>) {
        let (addr, n) = (p.addr, p.files.len());
        self.reshare(addr.ip(), |s| {
            s.peers.insert(addr);
            s.files += n;
        });
        self.files += p.files.len();
        for (i, (f, c)) in p.files.iter().zip(&p.contents).enumerate() {
            // Names are distinct within an announcement; one content is listed under at most
            // MAX_NAMES_PER_CONTENT of them, as in a native catalog.
            let at = self
                .holders
                .entry(*c)
                .or_default()
                .entry(p.addr)
                .or_default();
            if at.len() < MAX_NAMES_PER_CONTENT {
                at.push(i);
            }
            let n = self.hashes.entry(f.file_hash).or_default();
            *n += 1;
            if *n == 1
                && !before.contains(&f.file_hash)
                && let Some(peers) = self.claimed.get(&f.file_hash)
            {
                self.recheck.extend(peers.iter().copied());
            }
        }
    }

    /// The datagram with SHA-256 `digest` from `from` repeats the last one of the peer it came
    /// from: that peer is refreshed (its id and address returned) with no decoding.
    pub(crate) fn heard_again(
        &mut self,
        now: Instant,
        from: SocketAddr,
        digest: &Digest,
    ) -> Option<(PeerId, SocketAddr)> {
        let addr = *self.by_digest.get(digest)?;
        if addr.ip() != from.ip() {
            return None;
        }
        let p = self.peers.get_mut(&addr)?;
        p.last_seen = now;
        self.last_heard = Some(now);
        Some((p.id, addr))
    }

    /// The peer at `addr` was just heard in a datagram with SHA-256 `digest`.
    pub(crate) fn remember(&mut self, addr: SocketAddr, digest: Digest) {
        if !self.peers.contains_key(&addr) {
            return;
        }
        if let Some(old) = self.digests.insert(addr, digest)
            && self.by_digest.get(&old) == Some(&addr)
        {
            self.by_digest.remove(&old);
        }
        self.by_digest.insert(digest, addr);
    }

    fn unindex(&mut self, p: &PyPeer) {
        if let Some(old) = self.digests.remove(&p.addr)
            && self.by_digest.get(&old) == Some(&p.addr)
        {
            self.by_digest.remove(&old);
        }
        let (addr, n) = (p.addr, p.files.len());
        self.reshare(addr.ip(), |s| {
            s.peers.remove(&addr);
            s.files -= n;
        });
        self.files -= p.files.len();
        for (f, c) in p.files.iter().zip(&p.contents) {
            if let Some(h) = self.holders.get_mut(c) {
                h.remove(&p.addr);
                if h.is_empty() {
                    self.holders.remove(c);
                }
            }
            if let Some(n) = self.hashes.get_mut(&f.file_hash) {
                *n -= 1;
                if *n == 0 {
                    self.hashes.remove(&f.file_hash);
                }
            }
        }
    }

    /// Forgets what went silent past [`PY_EXPIRY`]; returns the Python peers lost.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<PyPeer> {
        let gone: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| expires(p.last_seen) <= now)
            .map(|p| p.addr)
            .collect();
        let mut lost = Vec::new();
        for addr in gone {
            if let Some(p) = self.peers.remove(&addr) {
                self.unindex(&p);
                lost.push(p);
            }
        }
        let gone: Vec<PeerId> = self
            .vouched
            .iter()
            .filter(|(_, v)| expires(v.last_seen) <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.unclaim(&p);
            self.vouched.remove(&p);
        }
        lost
    }

    /// Takes `peer`'s claims out of the index by hash.
    fn unclaim(&mut self, peer: &PeerId) {
        let Some(v) = self.vouched.get(peer) else {
            return;
        };
        for h in v.hashes.values() {
            if let Some(set) = self.claimed.get_mut(h) {
                set.remove(peer);
                if set.is_empty() {
                    self.claimed.remove(h);
                }
            }
        }
    }

    /// The p2pshare peers whose claims became worth checking (a Python peer now lists a hash
    /// they claim), once.
    pub(crate) fn take_recheck(&mut self) -> BTreeSet<PeerId> {
        std::mem::take(&mut self.recheck)
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

    /// True when some Python peer lists a file with SHA-256 `hash`.
    #[cfg(test)]
    fn has_hash(&self, hash: &Digest) -> bool {
        self.hashes.contains_key(hash)
    }

    /// What the p2pshare peer `peer` claims, in its JSON announcement, of its names: each name
    /// with the file hash it gave it, for the names whose hash some Python peer lists.
    pub(crate) fn vouches_of(&self, peer: &PeerId) -> Vec<(String, Digest)> {
        self.vouched.get(peer).map_or_else(Vec::new, |v| {
            v.hashes
                .iter()
                .filter(|(_, h)| self.hashes.contains_key(*h))
                .map(|(n, h)| (n.clone(), *h))
                .collect()
        })
    }

    /// The file hash the p2pshare peer `peer` gave its name `name`, if it did.
    #[cfg(test)]
    fn vouched_hash(&self, peer: &PeerId, name: &str) -> Option<&Digest> {
        self.vouched.get(peer).and_then(|v| v.hashes.get(name))
    }

    /// What Python peers hold `content` ([`content_id_of`]): each holder's address and the
    /// (first) name it lists it under, and the file. An index lookup.
    pub(crate) fn holders(&self, content: &ContentId) -> Vec<(SocketAddr, &LegacyFile)> {
        self.holders.get(content).map_or_else(Vec::new, |h| {
            h.iter()
                .filter_map(|(a, at)| Some((*a, self.peers.get(a)?.files.get(*at.first()?)?)))
                .collect()
        })
    }

    /// Every entry of `content` (at most [`MAX_NAMES_PER_CONTENT`] per holder), with its
    /// holder's id: what a listing shows of it. An index lookup.
    pub(crate) fn entries(&self, content: &ContentId) -> Vec<(PeerId, &LegacyFile)> {
        let Some(h) = self.holders.get(content) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (a, at) in h {
            let Some(p) = self.peers.get(a) else { continue };
            out.extend(at.iter().filter_map(|i| Some((p.id, p.files.get(*i)?))));
        }
        out
    }

    /// True when the Python peer at `addr` holds `content`.
    pub(crate) fn holds(&self, addr: SocketAddr, content: &ContentId) -> bool {
        self.holders
            .get(content)
            .is_some_and(|h| h.contains_key(&addr))
    }

    /// The contents held by some Python peer, each once: the keys of the index.
    pub(crate) fn contents(&self) -> impl Iterator<Item = &ContentId> {
        self.holders.keys()
    }

    /// True when some Python peer holds `content`.
    pub(crate) fn has_content(&self, content: &ContentId) -> bool {
        self.holders.contains_key(content)
    }

    /// The addresses holding an entry, for tests.
    #[cfg(test)]
    fn held_addrs(&self) -> BTreeSet<SocketAddr> {
        self.holders
            .values()
            .flat_map(|h| h.keys().copied())
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

    fn nobody(_: &PeerId, _: IpAddr) -> bool {
        false
    }

    fn listed(p: &PeerId, ip: IpAddr) -> bool {
        *p == PeerId([1; 32]) && ip == "10.0.0.6".parse::<IpAddr>().unwrap()
    }

    #[test]
    fn heard_replaced_and_expired() {
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let from: SocketAddr = "10.0.0.5:9999".parse().unwrap();
        let addr: SocketAddr = "10.0.0.5:10001".parse().unwrap();
        assert_eq!(
            t.heard(t0, from, ann(10001, &["a"]), nobody),
            Heard::New(peer_id_of(addr))
        );
        assert!(t.heard_recently(t0));
        let later = t0 + std::time::Duration::from_secs(5);
        assert_eq!(
            t.heard(later, from, ann(10001, &["b"]), nobody),
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
            t.heard(t0, from, ann(port, &["a"]), nobody);
        }
        assert_eq!(t.peers().count(), MAX_PY_PEERS_PER_IP);
        let mut ours = ann(10000, &["x"]);
        ours.origin = Some(PeerId([1; 32]));
        let other: SocketAddr = "10.0.0.6:9999".parse().unwrap();
        // Not from where the node lists that peer: dropped.
        assert_eq!(t.heard(t0, from, ours.clone(), listed), Heard::Elsewhere);
        assert_eq!(t.vouched_hash(&PeerId([1; 32]), "x"), None);
        assert_eq!(
            t.heard(t0, other, ours.clone(), listed),
            Heard::Native(PeerId([1; 32]), true)
        );
        assert_eq!(
            t.heard(t0, other, ours, listed),
            Heard::Native(PeerId([1; 32]), false)
        );
        assert_eq!(t.peers().count(), MAX_PY_PEERS_PER_IP);
        assert_eq!(t.vouched_hash(&PeerId([1; 32]), "x"), Some(&sha256(b"x")));
        // A Python peer now lists the hash it claims: its claims are worth checking, once.
        assert!(t.take_recheck().is_empty());
        let third: SocketAddr = "10.0.0.7:9999".parse().unwrap();
        t.heard(t0, third, ann(1, &["x"]), nobody);
        assert_eq!(
            t.take_recheck().into_iter().collect::<Vec<_>>(),
            [PeerId([1; 32])]
        );
        t.heard(t0, third, ann(1, &["x"]), nobody);
        assert!(t.take_recheck().is_empty());
    }

    #[test]
    fn a_repeated_datagram_refreshes_its_peer_without_decoding() {
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let from: SocketAddr = "10.0.0.5:9999".parse().unwrap();
        let addr: SocketAddr = "10.0.0.5:7".parse().unwrap();
        let d = sha256(b"the datagram");
        assert_eq!(t.heard_again(t0, from, &d), None);
        t.heard(t0, from, ann(7, &["a"]), nobody);
        t.remember(addr, d);
        let later = t0 + std::time::Duration::from_secs(5);
        assert_eq!(
            t.heard_again(later, from, &d),
            Some((peer_id_of(addr), addr))
        );
        assert_eq!(t.peers().next().unwrap().last_seen, later);
        // Not from another address; not once the peer is gone.
        let other: SocketAddr = "10.0.0.6:9999".parse().unwrap();
        assert_eq!(t.heard_again(later, other, &d), None);
        t.handle_timeout(later + PY_EXPIRY);
        assert_eq!(t.heard_again(later, from, &d), None);
        assert!(t.digests.is_empty() && t.by_digest.is_empty());
    }

    #[test]
    fn a_full_table_makes_room_for_an_address_holding_less() {
        // Issue 27, item 2: 16 addresses of 16 Python peers each fill both the peer table and
        // the entries; an honest Python peer elsewhere is still heard, with its files.
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let names: Vec<String> = (0..600).map(|i| format!("n{i:04}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for ip in 0..16u8 {
            let from = SocketAddr::from(([10, 0, 1, ip], 9999));
            for port in 1..=16 {
                t.heard(t0, from, ann(port, &names), nobody);
            }
        }
        // (The later addresses took entries from the earlier ones: evicted peers.)
        assert_eq!(t.files, MAX_PY_FILES);
        t.take_evicted();
        let honest = SocketAddr::from(([10, 0, 2, 1], 9999));
        let heard = t.heard(t0, honest, ann(7, &["mine", "yours"]), nobody);
        assert!(matches!(heard, Heard::New(_)), "{heard:?}");
        let p = t.peers().find(|p| p.addr.ip() == honest.ip()).unwrap();
        assert_eq!(p.files.len(), 2);
        assert!(!t.take_evicted().is_empty());
        // The evicted ones, back, do not evict each other in turn.
        for ip in 0..16u8 {
            let from = SocketAddr::from(([10, 0, 1, ip], 9999));
            for port in 1..=16 {
                t.heard(t0, from, ann(port, &names), nobody);
            }
        }
        assert!(
            t.peers()
                .any(|p| p.addr.ip() == honest.ip() && p.files.len() == 2)
        );
        assert!(t.peers().count() <= MAX_PY_PEERS && t.files <= MAX_PY_FILES);
        // The peer table, full of one-file peers from 16 addresses, makes room the same way.
        let mut t = PythonPeers::default();
        for ip in 0..16u8 {
            let from = SocketAddr::from(([10, 0, 1, ip], 9999));
            for port in 1..=16 {
                t.heard(t0, from, ann(port, &["x"]), nobody);
            }
        }
        assert_eq!(t.peers().count(), MAX_PY_PEERS);
        assert!(matches!(
            t.heard(t0, honest, ann(7, &["mine"]), nobody),
            Heard::New(_)
        ));
        assert_eq!(t.take_evicted().len(), 1);
        let back = SocketAddr::from(([10, 0, 1, 15], 9999));
        assert_eq!(t.heard(t0, back, ann(16, &["x"]), nobody), Heard::Full);
        assert_eq!(t.peers().count(), MAX_PY_PEERS);
    }

    #[test]
    fn file_entries_are_budgeted_per_ip_from_the_first_and_indexed() {
        let t0 = crate::test_epoch();
        let mut t = PythonPeers::default();
        let from: SocketAddr = "10.0.0.5:9999".parse().unwrap();
        let names: Vec<String> = (0..1000).map(|i| format!("n{i:04}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for port in 1..=4 {
            t.heard(t0, from, ann(port, &names), nobody);
        }
        let held: usize = t.peers().map(|p| p.files.len()).sum();
        assert_eq!(
            held, MAX_PY_FILES_PER_IP,
            "one address's share, however split"
        );
        assert_eq!(t.over_budget, (4000 - MAX_PY_FILES_PER_IP) as u64);
        // Another address still has its share.
        let other: SocketAddr = "10.0.0.6:9999".parse().unwrap();
        t.heard(t0, other, ann(1, &names), nobody);
        let c = content_id_of(&sha256(b"n0000"), 2);
        assert_eq!(
            t.holders(&c).len(),
            4,
            "ports 1, 2, 3 (its first 48) and the other address"
        );
        assert!(t.has_hash(&sha256(b"n0999")));
        // A refreshed announcement replaces its entries in the indexes.
        t.heard(t0, other, ann(1, &["z"]), nobody);
        assert_eq!(t.holders(&c).len(), 3);
        let later = t0 + PY_EXPIRY;
        assert_eq!(t.handle_timeout(later).len(), 5);
        assert!(t.contents().next().is_none() && t.held_addrs().is_empty());
        assert!(!t.has_hash(&sha256(b"z")));
        assert_eq!((t.files, t.shares.len()), (0, 0));
    }
}
