//! Identifiers: who a peer is ([`PeerId`]: its public key) and what a file is ([`ContentId`]).
//!
//! Invariants: both are fixed-size byte arrays, shown as lower-case hex, and serialized as CBOR
//! byte strings of exactly their length (any other length is a decode error, never a panic).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Lower-case hex of `bytes`. sha2's digests have no `{:x}`, so we write it once here.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Parses lower- or upper-case hex into bytes; `None` on an odd length or a non-hex digit.
fn parse_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Full lower-case hex.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }

            /// The first 12 hex digits: enough to tell files apart in a listing.
            pub fn short(&self) -> String {
                hex(&self.0[..6])
            }

            /// Parses the full hex form.
            pub fn from_hex(s: &str) -> Option<Self> {
                let bytes = parse_hex(s)?;
                Some(Self(bytes.try_into().ok()?))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.short())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a byte string of {} bytes", $len)
                    }
                    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<$name, E> {
                        let arr: [u8; $len] =
                            v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                        Ok($name(arr))
                    }
                    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<$name, E> {
                        self.visit_bytes(&v)
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    };
}

byte_id!(
    /// A peer's identity: its long-term Ed25519 public key (32 bytes), made once per shared
    /// folder and kept (see [`crate::identity`] for the key pair and verification). A peer is
    /// its key (issue 28): the key signs its discovery datagrams and, through the Noise
    /// handshake, proves itself on every connection. `short()` (12 hex digits) is for `peers`,
    /// `to_hex()` for `-v` and `--json`. A Python peer, which has no key, gets one derived from
    /// its address (never a valid key anyone holds).
    PeerId,
    32
);

byte_id!(
    /// A file's identity: SHA-256 of its manifest's canonical encoding. Two files with the same
    /// bytes (and chunk size) have the same id whatever their names; different bytes, different id.
    ContentId,
    32
);

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ContentId([0xab; 32]);
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(ContentId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short(), "abababababab");
        assert_eq!(ContentId::from_hex("abc"), None);
        assert_eq!(ContentId::from_hex("zz"), None);
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cbor_rejects_wrong_length() {
        let mut buf = Vec::new();
        ciborium::into_writer(&serde_bytes::Bytes::new(&[1, 2, 3]), &mut buf).unwrap();
        assert!(ciborium::from_reader::<PeerId, _>(&buf[..]).is_err());
        let mut buf = Vec::new();
        ciborium::into_writer(&PeerId([7; 32]), &mut buf).unwrap();
        assert_eq!(
            ciborium::from_reader::<PeerId, _>(&buf[..]).unwrap(),
            PeerId([7; 32])
        );
    }
}
