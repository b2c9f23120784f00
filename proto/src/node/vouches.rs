//! Vouches, checked: which native contents are the same bytes as a Python peer's file.
//!
//! A p2pshare peer that hears Python peers announces its files to them in their JSON, with its
//! id (`LegacyAnnounce::origin`): its name `N` has SHA-256 `H`. A Python peer listing a file
//! with SHA-256 `H` then holds the same bytes as that peer's native content named `N`, and the
//! file can be listed once and fetched natively. But that is the peer's word, and a liar's
//! word would silently put its bytes in place of the Python peer's (issue 27, item 3). So the
//! claim is believed only when the peer's own manifest for that content, fetched from it and
//! verified against its content id, has file hash `H`: then the content's bytes have SHA-256
//! `H`, whoever said so. Until then, and when the manifest says otherwise, the listing shows
//! two files sharing a name, which is the honest answer.
//!
//! Invariants: a content is in `verified` only after `Manifest::verify_received` accepted its
//! manifest against its content id, and what is kept is that manifest's file hash and size;
//! the checks a peer asks of us (each a manifest fetch) are budgeted by the address that
//! made them, from the first one ([`VOUCH_CHECKS_PER_IP`], [`VOUCH_CHECKS`]), and go when that
//! peer is forgotten; one check per (peer, content), retried only after
//! [`VOUCH_RETRY`]. Looking up whether a Python file's hash is a verified native content is one
//! map lookup.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::ids::{ContentId, Digest, PeerId};
use crate::manifest::Manifest;

/// Manifest checks one address's peers may have us make (asked or done) at a time: a host
/// sharing this many files with Python peers too gets them listed once; past it, a file is
/// listed twice (native and Python), which is true, only less tidy.
pub(crate) const VOUCH_CHECKS_PER_IP: usize = 16;
/// Manifest checks held in all.
pub(crate) const VOUCH_CHECKS: usize = 256;
/// A check whose manifest did not come (the link was down, the request refused) may be asked
/// again after this.
pub(crate) const VOUCH_RETRY: Duration = Duration::from_secs(30);
/// How long a view waits for a check asked for before it settles without it (an honest peer
/// answers in a round trip).
pub(crate) const VOUCH_PATIENCE: Duration = Duration::from_secs(3);

/// Where the check of one (peer, content) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Its manifest was asked for at this time, for a claim of this file hash.
    Asked(Instant, Digest),
    /// Its manifest verified: the content's bytes have this SHA-256 and size.
    Verified { file_hash: Digest, size: u64 },
    /// Its manifest did not verify (the peer lied about its own content).
    Bad,
}

/// The checks.
#[derive(Debug, Default)]
pub(super) struct Vouches {
    checks: BTreeMap<(PeerId, ContentId), (IpAddr, Check)>,
    per_ip: BTreeMap<IpAddr, usize>,
    /// Verified contents by file hash: content and size (and how many checks found it).
    by_hash: BTreeMap<Digest, BTreeMap<ContentId, (u64, usize)>>,
    /// Claims a verified manifest contradicted (the name's content has another file hash).
    pub(super) refuted: u64,
    /// Claims a verified manifest confirmed.
    pub(super) believed: u64,
    /// Checks not made for their address's (or the node's) budget.
    pub(super) over_budget: u64,
}

/// What to do about one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// Ask the peer for this content's manifest.
    Ask,
    /// Asked lately, or over the budget: nothing now.
    Wait,
    /// Known: the manifest has this file hash (`None`: the manifest was bad).
    Known(Option<Digest>),
}

impl Vouches {
    /// Peer `peer` at `ip` claims that its `content` has file hash `hash`: what to do.
    pub(super) fn claim(
        &mut self,
        now: Instant,
        peer: PeerId,
        ip: IpAddr,
        content: ContentId,
        hash: Digest,
    ) -> Claim {
        match self.checks.get_mut(&(peer, content)) {
            Some((_, Check::Verified { file_hash, .. })) => return Claim::Known(Some(*file_hash)),
            Some((_, Check::Bad)) => return Claim::Known(None),
            Some((_, Check::Asked(at, _))) if now.saturating_duration_since(*at) < VOUCH_RETRY => {
                return Claim::Wait;
            }
            Some((_, check)) => {
                *check = Check::Asked(now, hash);
                return Claim::Ask;
            }
            None => {}
        }
        let at_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if at_ip >= VOUCH_CHECKS_PER_IP || self.checks.len() >= VOUCH_CHECKS {
            self.over_budget += 1;
            return Claim::Wait;
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.checks
            .insert((peer, content), (ip, Check::Asked(now, hash)));
        Claim::Ask
    }

    /// True while a check asked for less than [`VOUCH_PATIENCE`] ago has no answer: a view
    /// of the LAN is not settled before it is in.
    pub(super) fn pending(&self, now: Instant) -> bool {
        self.checks.values().any(|(_, c)| {
            matches!(c, Check::Asked(at, _) if now.saturating_duration_since(*at) < VOUCH_PATIENCE)
        })
    }

    /// True while the manifest of `content` was asked of `peer` for a check.
    pub(super) fn asked(&self, peer: &PeerId, content: &ContentId) -> bool {
        matches!(
            self.checks.get(&(*peer, *content)),
            Some((_, Check::Asked(..)))
        )
    }

    /// The manifest of `content` that `peer` sent for a check: verified against the content
    /// id, or marked bad; the claim is counted believed or refuted. Returns its file hash when
    /// it verified.
    pub(super) fn manifest(
        &mut self,
        peer: PeerId,
        content: ContentId,
        bytes: &[u8],
    ) -> Option<Digest> {
        let (_, check) = self.checks.get_mut(&(peer, content))?;
        let Check::Asked(_, claimed) = *check else {
            return None;
        };
        match Manifest::verify_received(&content, bytes) {
            Ok(m) => {
                let (file_hash, size) = (*m.file_hash(), m.size());
                *check = Check::Verified { file_hash, size };
                if file_hash == claimed {
                    self.believed += 1;
                } else {
                    self.refuted += 1;
                }
                let e = self
                    .by_hash
                    .entry(file_hash)
                    .or_default()
                    .entry(content)
                    .or_insert((size, 0));
                e.1 += 1;
                Some(file_hash)
            }
            Err(_) => {
                *check = Check::Bad;
                self.refuted += 1;
                None
            }
        }
    }

    /// Forgets the checks `peer` made us make (it is gone).
    pub(super) fn forget(&mut self, peer: &PeerId) {
        let keys: Vec<(PeerId, ContentId)> = self
            .checks
            .range((*peer, ContentId([0; 32]))..=(*peer, ContentId([0xff; 32])))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let Some((ip, check)) = self.checks.remove(&k) else {
                continue;
            };
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
            if let Check::Verified { file_hash, .. } = check
                && let Some(by) = self.by_hash.get_mut(&file_hash)
            {
                if let Some(e) = by.get_mut(&k.1) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        by.remove(&k.1);
                    }
                }
                if by.is_empty() {
                    self.by_hash.remove(&file_hash);
                }
            }
        }
    }

    /// The verified native contents whose bytes have SHA-256 `hash` and `chunks` 1 KiB chunks
    /// (as a Python peer counts them): a Python file with that hash is the same bytes.
    pub(super) fn native(&self, hash: &Digest, chunks: u64) -> impl Iterator<Item = &ContentId> {
        self.by_hash
            .get(hash)
            .into_iter()
            .flat_map(|by| by.iter())
            .filter(move |(_, (size, _))| size.div_ceil(1024) == chunks)
            .map(|(c, _)| c)
    }
}

impl super::Node {
    /// Checks what the p2pshare peer `peer` claims in its JSON (its names' file hashes, for
    /// the hashes a Python peer lists): each named content of its complete catalog whose
    /// manifest we have not checked is asked for on our link to it. Costs the claims (at most
    /// one datagram's worth), each a lookup by name.
    pub(super) fn check_vouches(&mut self, now: Instant, peer: PeerId) {
        let Some(ip) = self.discovery.peer(&peer).map(|p| p.addr.ip()) else {
            return;
        };
        let Some(conn) = self.link_conn(&peer) else {
            return;
        };
        let claims = self.python.vouches_of(&peer);
        let mut ask = Vec::new();
        for (name, hash) in &claims {
            for e in self.remote.named(&peer, name) {
                if e.partial || crate::python::wire::chunks_for(e.size) == 0 {
                    continue;
                }
                if self.vouches.claim(now, peer, ip, e.content, *hash) == Claim::Ask {
                    ask.push(e.content);
                }
            }
        }
        for content in ask {
            if let Some(s) = self.conns.session_mut(&conn) {
                s.request_sent(now, crate::manifest::MAX_MANIFEST_BYTES + 256);
            }
            self.send_msg(
                conn,
                &crate::wire::frame::Message::ManifestRequest { content },
            );
        }
    }

    /// True when a manifest (or a refusal of one) about `content` on `conn` answers a check
    /// of ours: asked on our link to that peer.
    pub(super) fn vouch_answer(&self, conn: crate::session::ConnId, content: &ContentId) -> bool {
        let Some(peer) = self
            .conns
            .session(&conn)
            .and_then(crate::session::Session::peer)
        else {
            return false;
        };
        self.links.get(&peer).and_then(|l| l.conn()) == Some(conn)
            && self.vouches.asked(&peer, content)
    }

    /// The manifest (`None`: a refusal) of `content` for a check arrived on `conn`.
    pub(super) fn on_vouch_answer(
        &mut self,
        conn: crate::session::ConnId,
        content: ContentId,
        bytes: Option<&[u8]>,
    ) {
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        s.request_done();
        let Some(peer) = s.peer() else {
            return;
        };
        // A refusal leaves the check asked: it is asked again after VOUCH_RETRY.
        if let Some(bytes) = bytes {
            self.vouches.manifest(peer, content, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn believed_only_through_a_verified_manifest_and_budgeted_per_ip() {
        let t0 = crate::test_epoch();
        let mut v = Vouches::default();
        let p = PeerId([1; 32]);
        let m = Manifest::of_bytes(b"the honest bytes");
        let c = m.id();
        let h = *m.file_hash();
        assert_eq!(v.claim(t0, p, IP, c, h), Claim::Ask);
        assert_eq!(v.claim(t0, p, IP, c, h), Claim::Wait, "asked once");
        assert!(v.asked(&p, &c));
        // A manifest of other bytes does not verify against the content id.
        let other = Manifest::of_bytes(b"other bytes").encode();
        assert_eq!(v.manifest(p, c, &other), None);
        assert_eq!(v.claim(t0, p, IP, c, h), Claim::Known(None));
        assert_eq!((v.refuted, v.believed), (1, 0));
        // Another peer, the true manifest.
        let q = PeerId([2; 32]);
        assert_eq!(v.claim(t0, q, IP, c, h), Claim::Ask);
        assert_eq!(v.manifest(q, c, &m.encode()), Some(h));
        assert_eq!((v.refuted, v.believed), (1, 1));
        // A true manifest of content the peer claimed another hash for: refuted.
        let r = PeerId([3; 32]);
        assert_eq!(v.claim(t0, r, IP, c, [7; 32]), Claim::Ask);
        assert_eq!(v.manifest(r, c, &m.encode()), Some(h));
        assert_eq!((v.refuted, v.believed), (2, 1));
        v.forget(&r);
        assert_eq!(v.native(m.file_hash(), 1).collect::<Vec<_>>(), [&c]);
        assert_eq!(v.native(m.file_hash(), 2).count(), 0, "another chunk count");
        v.forget(&q);
        assert_eq!(v.native(m.file_hash(), 1).count(), 0);
        // One address's checks are bounded.
        for k in 0..VOUCH_CHECKS_PER_IP as u8 + 4 {
            v.claim(t0, p, IP, ContentId([k; 32]), h);
        }
        assert_eq!(v.per_ip[&IP], VOUCH_CHECKS_PER_IP);
        assert!(v.over_budget >= 4);
        v.forget(&p);
        assert!(v.per_ip.is_empty() && v.checks.is_empty());
    }
}
