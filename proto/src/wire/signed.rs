//! The signed discovery datagram (protocol version 2): who sends it is its key, and its content
//! is only believed when that key signed it and it is newer than what we already believe.
//!
//! Layout: the magic `P2PS`, the version byte `2`, a CBOR map ([`Announcement`] and the sender's
//! [`PeerId`]), then the sender's 64-byte Ed25519 signature over [`Context::Announce`]'s prefix
//! and every byte before the signature. At most [`MAX_DATAGRAM`] bytes (about 170 in practice).
//!
//! Freshness: each datagram carries a [`Mark`], the sender's `instance` (the time it started,
//! in milliseconds since the UNIX epoch) and a `seq` it counts up from 0 with every
//! announcement of that instance. Marks order lexicographically; a receiver believes a key's
//! datagram only if its mark is above the last one it believed from that key
//! ([`Verdict::judge`]). So a replay (same mark), a reordered datagram (lower seq) and an old
//! instance's datagram (lower instance) change nothing, and a restart is a higher instance: told
//! apart from a replay of an older one without any state kept across the sender's restarts.
//! A sender whose clock went back across a restart is ignored until receivers forget its old
//! instance (its expiry, 3½ intervals), then found anew. A receiver that never heard a key (or
//! forgot it) cannot tell an old datagram from a new one: a replay can then make it list a key
//! that has left, at the address the replay came from, until it expires or the key's own newer
//! datagram arrives; any connection there must still prove the key (Noise), so nothing is
//! fetched from the replayer. The source address is not signed (a sender does not know which
//! of its addresses a receiver sees): it is a hint, and only a handshake confirms it.
//!
//! Cost, in the order a receiver should pay it: [`decode`] is cheap (no cryptography, bounded
//! CBOR), and gives the key and the mark, so our own echo and anything not fresh
//! ([`Verdict::judge`] with the mark we hold) are dropped before any cryptography.
//! [`Unverified::verify`] is one Ed25519 verification (50–100 µs): the caller budgets it per
//! source address before calling it. Only a [`Verified`] datagram (made by `verify` alone)
//! carries content a receiver may act on.

use serde::{Deserialize, Serialize};

use crate::identity::{Context, Identity, SIGNATURE_LEN, VerifyError};
use crate::ids::PeerId;
use crate::wire::announce::{DATAGRAM_MAGIC, DatagramError, MAX_DATAGRAM};

/// The discovery protocol version of signed datagrams.
pub const SIGNED_VERSION: u8 = 2;

/// What a peer says about itself in an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// When this instance of the peer started (ms since the UNIX epoch, by its clock) and how
    /// many announcements it sent before this one: see the module doc.
    pub mark: Mark,
    /// The TCP port it serves on.
    pub port: u16,
    /// Bumped whenever its shared files change: fetch its catalog only when this moved.
    pub revision: u64,
    /// True in the last announcement of a peer that is shutting down: forget it at once.
    pub bye: bool,
}

/// The position of a datagram in its sender's history: instances in start order, then
/// announcements in the order sent. Ordered lexicographically (the derive's field order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    /// The sender's start time, ms since the UNIX epoch: higher means a later start.
    pub instance: u64,
    /// Announcements of this instance before this one.
    pub seq: u64,
}

/// What a datagram with a given mark is to a receiver that believes `held` of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A key the receiver holds nothing of.
    First,
    /// The same instance, a later announcement.
    Newer,
    /// A later instance: the sender restarted.
    Restarted,
    /// Not above what the receiver holds: a duplicate, a replay, a late or an old instance's
    /// datagram. Drop it, before verifying if it is not verified yet.
    Stale,
}

impl Verdict {
    /// Judges mark `new` against the mark `held` of the last datagram believed from its key.
    pub fn judge(held: Option<Mark>, new: Mark) -> Verdict {
        match held {
            None => Verdict::First,
            Some(h) if new <= h => Verdict::Stale,
            Some(h) if new.instance > h.instance => Verdict::Restarted,
            Some(_) => Verdict::Newer,
        }
    }
}

/// The CBOR body: the key that signs it and the announcement's fields, in one flat map.
#[derive(Serialize, Deserialize)]
struct Body {
    key: PeerId,
    instance: u64,
    seq: u64,
    port: u16,
    revision: u64,
    bye: bool,
}

impl Body {
    fn new(key: PeerId, a: &Announcement) -> Body {
        Body {
            key,
            instance: a.mark.instance,
            seq: a.mark.seq,
            port: a.port,
            revision: a.revision,
            bye: a.bye,
        }
    }

    fn announcement(&self) -> Announcement {
        Announcement {
            mark: Mark {
                instance: self.instance,
                seq: self.seq,
            },
            port: self.port,
            revision: self.revision,
            bye: self.bye,
        }
    }
}

/// Encodes `announcement` as a datagram signed by `identity`.
pub fn encode(announcement: &Announcement, identity: &Identity) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(DATAGRAM_MAGIC);
    out.push(SIGNED_VERSION);
    let body = Body::new(identity.key(), announcement);
    // Writing into a Vec cannot fail, and the fields have no map keys that could.
    let _ = ciborium::into_writer(&body, &mut out);
    let signature = identity.sign(Context::Announce, &out);
    out.extend_from_slice(&signature);
    out
}

/// A datagram that decoded, whose signature is not checked yet: its key and mark may be read
/// (to drop our own echo and what is not fresh), nothing else until [`Unverified::verify`].
#[derive(Debug, Clone)]
pub struct Unverified<'a> {
    key: PeerId,
    announcement: Announcement,
    signed: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

/// A datagram whose signature verified: its key said this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    key: PeerId,
    announcement: Announcement,
}

/// Decodes a datagram without checking its signature. Pure and cheap (no cryptography); the
/// errors are those of version 1 ([`DatagramError`]), a version-1 datagram being
/// `UnknownVersion(1)`: the old protocol is counted and ignored.
pub fn decode(data: &[u8]) -> Result<Unverified<'_>, DatagramError> {
    if data.len() > MAX_DATAGRAM {
        return Err(DatagramError::TooLong);
    }
    if data.len() < 5 || &data[..4] != DATAGRAM_MAGIC {
        return Err(DatagramError::Foreign);
    }
    if data[4] != SIGNED_VERSION {
        return Err(DatagramError::UnknownVersion(data[4]));
    }
    let Some(split) = data.len().checked_sub(SIGNATURE_LEN).filter(|&s| s > 5) else {
        return Err(DatagramError::Malformed);
    };
    let (signed, signature) = data.split_at(split);
    let mut cbor = &signed[5..];
    let body: Body = ciborium::from_reader(&mut cbor).map_err(|_| DatagramError::Malformed)?;
    if !cbor.is_empty() {
        return Err(DatagramError::Malformed);
    }
    let Ok(signature) = <[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return Err(DatagramError::Malformed);
    };
    Ok(Unverified {
        key: body.key,
        announcement: body.announcement(),
        signed,
        signature,
    })
}

impl Unverified<'_> {
    /// The key it claims to come from (not proven yet).
    pub fn key(&self) -> PeerId {
        self.key
    }

    /// Its mark (not proven yet): enough to drop it as [`Verdict::Stale`] before verifying.
    pub fn mark(&self) -> Mark {
        self.announcement.mark
    }

    /// Checks the signature: one Ed25519 verification (50–100 µs), so budget it first.
    pub fn verify(&self) -> Result<Verified, VerifyError> {
        self.key
            .verify(Context::Announce, self.signed, &self.signature)?;
        Ok(Verified {
            key: self.key,
            announcement: self.announcement,
        })
    }
}

impl Verified {
    /// The key that signed it.
    pub fn key(&self) -> PeerId {
        self.key
    }

    /// What that key said.
    pub fn announcement(&self) -> &Announcement {
        &self.announcement
    }
}

#[cfg(test)]
mod tests;
