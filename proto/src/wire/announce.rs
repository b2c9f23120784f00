//! The discovery datagram: one UDP datagram per announcement.
//!
//! Layout: the 4-byte magic `P2PS`, one byte of protocol version, then a CBOR map
//! ([`Announce`]). At most [`MAX_DATAGRAM`] bytes. Anything else is a [`DatagramError`]: the
//! caller counts it and drops it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::PeerId;

/// Every datagram of ours starts with these bytes.
pub(crate) const DATAGRAM_MAGIC: &[u8; 4] = b"P2PS";
/// The protocol version this code speaks.
const PROTOCOL_VERSION: u8 = 1;
/// Largest datagram we send or accept: fits any LAN MTU without fragmentation.
pub const MAX_DATAGRAM: usize = 1200;

/// A peer's presence announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Who sends it.
    pub peer: PeerId,
    /// Random per start of the peer: a new value means the peer restarted.
    pub instance: u64,
    /// The TCP port it serves chunks on.
    pub port: u16,
    /// Bumped whenever its shared files change: fetch its catalog only when this moved.
    pub revision: u64,
    /// True in the last announcement of a peer that is shutting down: forget it at once.
    pub bye: bool,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramError {
    /// Longer than [`MAX_DATAGRAM`].
    TooLong,
    /// Does not start with our magic (another program, e.g. the original Python peer).
    Foreign,
    /// Our magic, a version we do not speak.
    UnknownVersion(u8),
    /// Our magic and version, but the body does not decode.
    Malformed,
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramError::TooLong => f.write_str("datagram too long"),
            DatagramError::Foreign => f.write_str("not a p2pshare datagram"),
            DatagramError::UnknownVersion(v) => write!(f, "unknown protocol version {v}"),
            DatagramError::Malformed => f.write_str("malformed announcement"),
        }
    }
}

impl std::error::Error for DatagramError {}

impl Announce {
    /// Encodes the datagram. Always well under [`MAX_DATAGRAM`] (the fields are fixed-size).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(DATAGRAM_MAGIC);
        out.push(PROTOCOL_VERSION);
        // Writing into a Vec cannot fail, and the fields have no map keys that could.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes one datagram.
    pub fn decode(data: &[u8]) -> Result<Announce, DatagramError> {
        if data.len() > MAX_DATAGRAM {
            return Err(DatagramError::TooLong);
        }
        if data.len() < 5 || &data[..4] != DATAGRAM_MAGIC {
            return Err(DatagramError::Foreign);
        }
        if data[4] != PROTOCOL_VERSION {
            return Err(DatagramError::UnknownVersion(data[4]));
        }
        let mut body = &data[5..];
        let a: Announce = ciborium::from_reader(&mut body).map_err(|_| DatagramError::Malformed)?;
        if !body.is_empty() {
            return Err(DatagramError::Malformed);
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announce {
        Announce {
            peer: PeerId([9; 32]),
            instance: 77,
            port: 10000,
            revision: 3,
            bye: false,
        }
    }

    #[test]
    fn round_trip_and_size() {
        let a = sample();
        let d = a.encode();
        assert!(d.len() <= MAX_DATAGRAM);
        assert_eq!(Announce::decode(&d), Ok(a));
    }

    #[test]
    fn rejects() {
        let mut d = sample().encode();
        assert_eq!(
            Announce::decode(br#"{"port": 10000, "files": []}"#),
            Err(DatagramError::Foreign)
        );
        assert_eq!(Announce::decode(&[0; 2000]), Err(DatagramError::TooLong));
        d[4] = 9;
        assert_eq!(Announce::decode(&d), Err(DatagramError::UnknownVersion(9)));
        d[4] = PROTOCOL_VERSION;
        d.truncate(d.len() - 1);
        assert_eq!(Announce::decode(&d), Err(DatagramError::Malformed));
        let mut extra = sample().encode();
        extra.push(0);
        assert_eq!(Announce::decode(&extra), Err(DatagramError::Malformed));
    }
}
