//! The peers this folder has met: `<folder>/.p2pshare-known`, one line per key.
//!
//! A peer is its key (issue 28). The first time a key is met — proven by a Noise handshake or
//! by a verified signed datagram, which is when the node reports `Event::PeerFound` — it is
//! remembered here with the addresses it was met at and when it was first and last seen, so
//! that `peers` can say which peers are new (met for the first time in this run) and a later
//! start can look for the peers it knows at their last addresses ([`Known::peers`] gives each
//! key's addresses, newest first). A peer a person adds (`peers add KEY@ADDR`, a link) is
//! remembered the same way before any dial reached it ([`Known::keep`]).
//!
//! Format (text, so a person can read it; integers are seconds since the UNIX epoch):
//!
//! ```text
//! p2pshare known peers v1
//! <64 hex digits: key> <first seen> <last seen> <ip:port>[,<ip:port>…]
//! ```
//!
//! Invariants:
//! - bounded: at most [`MAX_KNOWN`] keys (the one seen longest ago is dropped first) and
//!   [`MAX_ADDRS`] addresses per key (the newest kept); a key not seen for [`MAX_AGE`] is
//!   forgotten. A remote can add keys (every new key costs it a signed datagram or a
//!   handshake), but never grow the file past those bounds;
//! - written whole or not at all: to a temporary file created owner-only (`O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, mode 0600), then renamed over the old one, so a crash leaves the old file or
//!   the new one, never a torn one; a symlink in the way is replaced, never written through;
//! - the file is hidden beside the folder's other state (the lock, the key, the scan cache),
//!   so the scanner never shares or lists it;
//! - a file that cannot be read or is not one we wrote is never a reason to stop: it is
//!   counted ([`Loaded::reset`]), said in one line, and replaced by the next save. Losing it
//!   costs only the memory of which peers are old friends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p2pshare_proto::PeerId;

/// The file's name inside the shared folder (hidden, so never shared).
pub const KNOWN_FILE: &str = ".p2pshare-known";
/// Where a new version is written before it replaces the file.
const TEMP_FILE: &str = ".p2pshare-known.new";
const HEADER: &str = "p2pshare known peers v1";
/// Most keys remembered: a LAN of friends is tens of peers; a thousand is a campus, and the
/// file stays under 200 KiB.
pub const MAX_KNOWN: usize = 1024;
/// Most addresses remembered per key (a laptop moves between a few networks).
pub const MAX_ADDRS: usize = 4;
/// A key not seen for this long is forgotten: a peer gone for a season is as good as new.
pub const MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
/// A file larger than this is not ours (a full one is about 200 KiB).
const MAX_LEN: u64 = 1 << 20;
/// Most keys a start probes ([`Known::to_probe`]): the ones seen most recently.
pub const PROBE_KEYS: usize = 64;
/// Most addresses a start probes, over all keys: half the node's bound on the peers it dials
/// (256), so that `--peer` and `peers add` always find room beside them.
pub const PROBE_ADDRS: usize = 128;

/// One remembered peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its key (its id).
    pub key: PeerId,
    /// Addresses it was met at, newest first (at most [`MAX_ADDRS`]).
    pub addrs: Vec<SocketAddr>,
    /// When it was first met (seconds since the UNIX epoch).
    pub first_seen: u64,
    /// When it was last seen (seconds since the UNIX epoch).
    pub last_seen: u64,
}

/// The peers a folder has met, and which of them were known before this run.
#[derive(Debug, Default)]
pub struct Known {
    peers: BTreeMap<PeerId, KnownPeer>,
    /// The keys known when this run began: every other key is new.
    before: BTreeSet<PeerId>,
    /// Changed since the last save.
    dirty: bool,
}

/// What [`Known::load`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The peers (none if the file was missing or reset).
    pub known: Known,
    /// Why the file was not used, if it existed and could not be: it is replaced by the next
    /// save. One line, for a warning.
    pub reset: Option<String>,
}

impl Known {
    /// Reads `<dir>/.p2pshare-known` at `now` (seconds since the UNIX epoch), forgetting keys
    /// older than [`MAX_AGE`]. Never fails: a missing file is an empty memory, a bad one is
    /// reset (see [`Loaded::reset`]).
    pub fn load(dir: &Path, now: u64) -> Loaded {
        let path = dir.join(KNOWN_FILE);
        let text = match read(&path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Loaded {
                    known: Known::default(),
                    reset: None,
                };
            }
            Err(why) => {
                return Loaded {
                    known: Known::default(),
                    reset: Some(format!("{}: {why}; starting afresh", path.display())),
                };
            }
        };
        match parse(&text) {
            Ok(peers) => {
                let mut known = Known {
                    before: peers.keys().copied().collect(),
                    peers,
                    dirty: false,
                };
                known.age(now);
                Loaded { known, reset: None }
            }
            Err(why) => Loaded {
                known: Known::default(),
                reset: Some(format!(
                    "{} is damaged ({why}); starting afresh",
                    path.display()
                )),
            },
        }
    }

    /// We met `key` at `addr` at `now` (a verified datagram or a handshake proved it): it is
    /// remembered, or its record updated. True when the key was never met before.
    pub fn met(&mut self, key: PeerId, addr: SocketAddr, now: u64) -> bool {
        self.dirty = true;
        if let Some(p) = self.peers.get_mut(&key) {
            p.last_seen = p.last_seen.max(now);
            if p.addrs.first() != Some(&addr) {
                p.addrs.retain(|a| *a != addr);
                p.addrs.insert(0, addr);
                p.addrs.truncate(MAX_ADDRS);
            }
            return false;
        }
        if self.peers.len() >= MAX_KNOWN {
            // The one seen longest ago makes room (ties: the smaller key, so it is stable).
            if let Some(oldest) = self
                .peers
                .values()
                .min_by_key(|p| (p.last_seen, p.key))
                .map(|p| p.key)
            {
                self.peers.remove(&oldest);
            }
        }
        self.peers.insert(
            key,
            KnownPeer {
                key,
                addrs: vec![addr],
                first_seen: now,
                last_seen: now,
            },
        );
        true
    }

    /// A person asked to keep `key` at `addr` (`peers add`), at `now`: remembered as if met
    /// there now (that address first), so that a later start looks for it there. Its key is
    /// proven only when a dial reaches it; a dial answered by another key changes nothing.
    pub fn keep(&mut self, key: PeerId, addr: SocketAddr, now: u64) {
        self.met(key, addr, now);
    }

    /// `key` is still around at `now` (listed by discovery): its last-seen time moves on.
    pub fn seen(&mut self, key: &PeerId, now: u64) {
        if let Some(p) = self.peers.get_mut(key)
            && p.last_seen < now
        {
            p.last_seen = now;
            self.dirty = true;
        }
    }

    /// True when `key` was not known when this run began (met for the first time in it, or
    /// not met at all).
    pub fn is_new(&self, key: &PeerId) -> bool {
        !self.before.contains(key)
    }

    /// The record of `key`, if it is known.
    pub fn get(&self, key: &PeerId) -> Option<&KnownPeer> {
        self.peers.get(key)
    }

    /// Every remembered peer, by key: what a start can look for at their last addresses.
    pub fn peers(&self) -> impl Iterator<Item = &KnownPeer> {
        self.peers.values()
    }

    /// What a start looks for at the last addresses (a probe each: issue 29): the
    /// [`PROBE_KEYS`] keys seen most recently, newest first (ties: by key), never `me`; every
    /// such key's newest address first, then every key's second newest, and so on, at most
    /// [`PROBE_ADDRS`] in all, so that each key is tried at least where it was last met. An
    /// address that cannot be dialled (no address, port 0) is left out.
    pub fn to_probe(&self, me: &PeerId) -> Vec<(PeerId, SocketAddr)> {
        let dialable = |a: &&SocketAddr| !a.ip().is_unspecified() && a.port() != 0;
        let mut recent: Vec<(&KnownPeer, Vec<SocketAddr>)> = self
            .peers
            .values()
            .filter(|p| p.key != *me)
            .map(|p| (p, p.addrs.iter().filter(dialable).copied().collect()))
            .filter(|(_, addrs): &(_, Vec<_>)| !addrs.is_empty())
            .collect();
        recent.sort_by_key(|(p, _)| (std::cmp::Reverse(p.last_seen), p.key));
        recent.truncate(PROBE_KEYS);
        let mut out = Vec::new();
        for rank in 0..MAX_ADDRS {
            for (p, addrs) in &recent {
                if let Some(a) = addrs.get(rank)
                    && out.len() < PROBE_ADDRS
                {
                    out.push((p.key, *a));
                }
            }
        }
        out
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// True when something changed since the last [`Known::save`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Forgets the keys not seen for [`MAX_AGE`] before `now`.
    pub fn age(&mut self, now: u64) {
        let before = self.peers.len();
        let horizon = now.saturating_sub(MAX_AGE.as_secs());
        self.peers.retain(|_, p| p.last_seen >= horizon);
        if self.peers.len() != before {
            self.dirty = true;
        }
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + self.peers.len() * 120);
        out.push_str(HEADER);
        out.push('\n');
        for p in self.peers.values() {
            let addrs: Vec<String> = p.addrs.iter().map(SocketAddr::to_string).collect();
            out.push_str(&format!(
                "{} {} {} {}\n",
                p.key.to_hex(),
                p.first_seen,
                p.last_seen,
                addrs.join(",")
            ));
        }
        out
    }

    /// The bytes to write and the place, taken now (the write may happen on another thread:
    /// [`write`]); the memory counts as saved from here on.
    pub fn take_save(&mut self, dir: &Path) -> (PathBuf, Vec<u8>) {
        self.dirty = false;
        (dir.to_path_buf(), self.encode().into_bytes())
    }
}

/// Replaces `<dir>/.p2pshare-known` with `bytes`, atomically (see the module doc).
pub fn write(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::nofollow::replace_private(&dir.join(TEMP_FILE), &dir.join(KNOWN_FILE), bytes)
}

/// The file's text, `None` if there is none, or why it cannot be used.
fn read(path: &Path) -> Result<Option<String>, String> {
    use crate::nofollow::{PrivateError, open_private};
    let (mut file, meta) = match open_private(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(PrivateError::Symlink) => return Err("a symlink".into()),
        Err(PrivateError::NotAFile) => return Err("not a regular file".into()),
        Err(PrivateError::Io(e)) => return Err(format!("cannot read it: {e}")),
    };
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!("it belongs to user {}", meta.uid()));
    }
    if meta.len() > MAX_LEN {
        return Err("too long".into());
    }
    let mut text = String::new();
    (&mut file)
        .take(MAX_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Some(text))
}

/// The peers in the file's text, or what is wrong with it.
fn parse(text: &str) -> Result<BTreeMap<PeerId, KnownPeer>, String> {
    if text.len() as u64 > MAX_LEN {
        return Err("too long".into());
    }
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(HEADER) {
        return Err("not a p2pshare known-peers file".into());
    }
    if !text.ends_with('\n') {
        return Err("cut short".into());
    }
    let mut peers = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let bad = |what: &str| format!("line {}: {what}", n + 2);
        let mut fields = line.split(' ');
        let key = fields
            .next()
            .and_then(PeerId::from_hex)
            .ok_or_else(|| bad("no key"))?;
        let first_seen: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("no first-seen time"))?;
        let last_seen: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("no last-seen time"))?;
        let addrs: Vec<SocketAddr> = fields
            .next()
            .ok_or_else(|| bad("no address"))?
            .split(',')
            .map(|a| a.parse().map_err(|_| bad("a bad address")))
            .collect::<Result<_, _>>()?;
        if fields.next().is_some() {
            return Err(bad("unexpected text at the end"));
        }
        if addrs.is_empty() || addrs.len() > MAX_ADDRS || first_seen > last_seen {
            return Err(bad("out of bounds"));
        }
        if peers.len() >= MAX_KNOWN {
            return Err("too many peers".into());
        }
        let p = KnownPeer {
            key,
            addrs,
            first_seen,
            last_seen,
        };
        if peers.insert(key, p).is_some() {
            return Err(bad("a key twice"));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const DAY: u64 = 24 * 3600;

    fn key(n: u16) -> PeerId {
        let mut k = [0u8; 32];
        k[..2].copy_from_slice(&n.to_be_bytes());
        PeerId(k)
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 10000))
    }

    fn save(dir: &Path, known: &mut Known) {
        let (d, bytes) = known.take_save(dir);
        write(&d, &bytes).expect("write");
    }

    #[test]
    fn met_peers_survive_a_restart_and_are_not_new_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = 1_800_000_000;
        let mut first = Known::load(dir.path(), t);
        assert!(first.reset.is_none());
        let known = &mut first.known;
        assert!(known.met(key(1), addr(1), t));
        assert!(!known.met(key(1), addr(2), t + 5), "met before");
        assert!(known.met(key(2), addr(3), t + 6));
        assert!(
            known.is_new(&key(1)) && known.is_new(&key(2)),
            "new in this run"
        );
        assert!(known.is_dirty());
        save(dir.path(), known);
        assert!(!known.is_dirty());
        let path = dir.path().join(KNOWN_FILE);
        assert_eq!(
            fs::symlink_metadata(&path).expect("stat").mode() & 0o777,
            0o600
        );
        assert!(!dir.path().join(TEMP_FILE).exists());
        assert!(
            p2pshare_proto::check_name(KNOWN_FILE).is_err(),
            "never shared"
        );

        let again = Known::load(dir.path(), t + 100);
        assert!(again.reset.is_none());
        let known = again.known;
        assert_eq!(known.len(), 2);
        assert!(!known.is_new(&key(1)) && !known.is_new(&key(2)));
        assert!(known.is_new(&key(3)));
        let one = known.get(&key(1)).expect("known");
        assert_eq!(one.addrs, vec![addr(2), addr(1)], "newest address first");
        assert_eq!((one.first_seen, one.last_seen), (t, t + 5));
    }

    #[test]
    fn bounded_in_keys_and_addresses_and_aged_out() {
        let t = 1_800_000_000;
        let mut known = Known::default();
        for n in 0..MAX_KNOWN as u16 {
            known.met(key(n), addr(n), t + u64::from(n));
        }
        // Key 0 was seen longest ago: it makes room.
        known.met(key(5000), addr(1), t + 5000);
        assert_eq!(known.len(), MAX_KNOWN);
        assert!(known.get(&key(0)).is_none() && known.get(&key(5000)).is_some());
        for n in 0..10 {
            known.met(key(7), addr(100 + n), t + 6000);
        }
        let seven = known.get(&key(7)).expect("known");
        assert_eq!(seven.addrs.len(), MAX_ADDRS);
        assert_eq!(seven.addrs[0], addr(109));
        // 90 days after everyone but key 7 was last seen, only key 7 (seen again) stays.
        known.seen(&key(7), t + 100 * DAY);
        known.age(t + 6000 + MAX_AGE.as_secs() + 1);
        assert_eq!(known.len(), 1);
        assert!(known.get(&key(7)).is_some());
        // A file of a thousand peers with four addresses each stays small.
        let mut full = Known::default();
        for n in 0..MAX_KNOWN as u16 {
            for a in 0..4 {
                full.met(key(n), addr(a), t);
            }
        }
        assert!(full.encode().len() < 300 * 1024, "{}", full.encode().len());
        assert_eq!(parse(&full.encode()).expect("parses").len(), MAX_KNOWN);
    }

    #[test]
    fn a_start_probes_the_most_recent_keys_each_where_last_met_first() {
        let t = 1_800_000_000;
        let mut known = Known::default();
        // 100 keys, key n last seen at t + n, each met at four addresses (newest: n * 4 + 3).
        for n in 0..100u16 {
            for a in 0..4 {
                known.met(key(n), addr(n * 4 + a), t + u64::from(n));
            }
        }
        let me = key(99);
        known.met(key(200), addr(999), t + 50);
        known.met(key(201), "0.0.0.0:10000".parse().expect("addr"), t + 500);
        let mut port0 = addr(998);
        port0.set_port(0);
        known.met(key(202), port0, t + 500);
        let probe = known.to_probe(&me);
        assert_eq!(probe.len(), PROBE_ADDRS);
        let keys: BTreeSet<PeerId> = probe.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), PROBE_KEYS, "every chosen key is tried");
        assert!(!keys.contains(&me), "never ourselves");
        assert!(!keys.contains(&key(201)) && !keys.contains(&key(202)));
        // The most recent that can be dialled: 98 down to 36, and 200 (seen at t + 50).
        assert!(keys.contains(&key(98)) && keys.contains(&key(36)) && keys.contains(&key(200)));
        assert!(!keys.contains(&key(35)));
        // Newest first, each key's newest address in the first round.
        assert_eq!(probe[0], (key(98), addr(98 * 4 + 3)));
        assert_eq!(probe[1], (key(97), addr(97 * 4 + 3)));
        assert_eq!(probe[PROBE_KEYS], (key(98), addr(98 * 4 + 2)));
        let firsts: Vec<_> = probe[..PROBE_KEYS].iter().map(|(k, _)| *k).collect();
        assert_eq!(firsts.iter().collect::<BTreeSet<_>>().len(), PROBE_KEYS);
        assert!(Known::default().to_probe(&me).is_empty());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_a_reset_never_a_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(KNOWN_FILE);
        let t = 1_800_000_000;
        let mut good = Known::default();
        good.met(key(1), addr(1), t);
        let good = good.encode();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "not a p2pshare known-peers file"),
            (good[..good.len() - 1].into(), "cut short"),
            (format!("{good}zz 1 2 10.0.0.1:1\n").into(), "no key"),
            (
                format!("{good}{} 5 4 10.0.0.1:1\n", key(2).to_hex()).into(),
                "out of bounds",
            ),
            (
                format!("{good}{} 1 2 nowhere\n", key(2).to_hex()).into(),
                "a bad address",
            ),
            (format!("{good}{good}").into(), "no key"),
            (vec![0xff, 0xfe, 0], "cannot read it"),
        ];
        for (bytes, why) in cases {
            fs::write(&path, &bytes).expect("write");
            let loaded = Known::load(dir.path(), t);
            let reset = loaded.reset.expect("reset");
            assert!(reset.contains(why), "{reset} (wanted {why})");
            assert!(!reset.contains('\n'), "one line: {reset}");
            assert!(loaded.known.is_empty());
            // The next save replaces it.
            let mut known = loaded.known;
            known.met(key(3), addr(3), t);
            save(dir.path(), &mut known);
            assert!(Known::load(dir.path(), t).reset.is_none());
        }
        // A symlink in its place is refused, and replaced (not written through) by a save.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").expect("write");
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        assert!(
            Known::load(dir.path(), t)
                .reset
                .expect("reset")
                .contains("symlink")
        );
        let mut known = Known::default();
        known.met(key(4), addr(4), t);
        save(dir.path(), &mut known);
        assert_eq!(fs::read(&victim).expect("read"), b"keep");
        assert!(fs::symlink_metadata(&path).expect("stat").is_file());
        // An unreadable file (only meaningful when not root, who reads everything).
        if !rustix::process::geteuid().is_root() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
            assert!(Known::load(dir.path(), t).reset.is_some());
        }
    }

    #[test]
    fn a_crash_s_temporary_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let temp = dir.path().join(TEMP_FILE);
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").expect("write");
        std::os::unix::fs::symlink(&victim, &temp).expect("symlink");
        let mut known = Known::default();
        known.met(key(1), addr(1), 5);
        save(dir.path(), &mut known);
        assert_eq!(fs::read(&victim).expect("read"), b"keep");
        assert_eq!(Known::load(dir.path(), 5).known.len(), 1);
    }
}
