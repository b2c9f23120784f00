//! A peer's address record (issue 30): where a key can be dialled now, as the value of the
//! signed mutable item (BEP 44) it publishes in the DHT under its own key.
//!
//! The encoding is ours, versioned and bounded: a version byte ([`VERSION`]), a count, then
//! each address as a family byte (4 or 6), its 4 or 16 address bytes and its port (big
//! endian). At most [`MAX_ADDRS`] addresses, so a record is at most [`MAX_LEN`] bytes, far
//! under BEP 44's 1000. IPv6 scope ids are dropped (they name an interface of the sender's).
//!
//! Invariants: [`decode`] reads at most [`MAX_LEN`] bytes' worth, never panics, and accepts
//! exactly what [`encode`] makes (no trailing bytes, no unknown family, no duplicate); what it
//! returns is only a claim signed by the key: the handshake still checks the key at each
//! address. Pure: no sockets, no clock (the sequence number comes in from the caller).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The salt of our records: the DHT target is SHA-1(key ‖ salt), so a resolver needs the key
/// alone, and our records never take the slot of another program's under the same key.
pub const SALT: &[u8] = b"p2pshare-addrs-v1";
/// The encoding's version byte.
pub const VERSION: u8 = 1;
/// The most addresses a record holds.
pub const MAX_ADDRS: usize = 16;
/// The longest record: the header and [`MAX_ADDRS`] IPv6 addresses.
pub const MAX_LEN: usize = 2 + MAX_ADDRS * (1 + 16 + 2);
// BEP 44 stores values of at most 1000 bytes.
const _: () = assert!(MAX_LEN < 1000);

/// Why bytes from the DHT are not a record of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// No bytes at all.
    Empty,
    /// A version we do not know (a newer peer's, or another program's).
    Version(u8),
    /// More addresses than [`MAX_ADDRS`].
    TooMany(u8),
    /// Longer than [`MAX_LEN`].
    TooLong(usize),
    /// It ends in the middle of an address.
    Truncated,
    /// An address of a family that is neither 4 nor 6.
    Family(u8),
    /// Bytes after the last address.
    Trailing(usize),
    /// The same address twice.
    Duplicate,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Empty => write!(f, "empty address record"),
            RecordError::Version(v) => write!(f, "address record of unknown version {v}"),
            RecordError::TooMany(n) => {
                write!(f, "address record with {n} addresses (at most {MAX_ADDRS})")
            }
            RecordError::TooLong(n) => {
                write!(f, "address record of {n} bytes (at most {MAX_LEN})")
            }
            RecordError::Truncated => write!(f, "address record cut short"),
            RecordError::Family(t) => write!(f, "address record with address family {t}"),
            RecordError::Trailing(n) => write!(f, "address record with {n} bytes left over"),
            RecordError::Duplicate => write!(f, "address record naming an address twice"),
        }
    }
}

impl std::error::Error for RecordError {}

/// `addrs` as a record: scope ids dropped, each address once (the first [`MAX_ADDRS`]
/// distinct ones, in the order given).
pub fn encode(addrs: &[SocketAddr]) -> Vec<u8> {
    let addrs = normalize(addrs);
    let mut out = Vec::with_capacity(2 + addrs.len() * 19);
    out.push(VERSION);
    out.push(addrs.len() as u8); // at most MAX_ADDRS (16)
    for a in &addrs {
        match a.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&a.port().to_be_bytes());
    }
    out
}

/// `addrs` as a record holds them: scope ids dropped, each once, at most [`MAX_ADDRS`], in
/// the order given. What [`decode`] of [`encode`] gives back.
pub fn normalize(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        let a = match a {
            SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
            v4 => *v4,
        };
        if out.len() < MAX_ADDRS && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The addresses of a record read from the DHT (see the module doc for what is refused).
pub fn decode(bytes: &[u8]) -> Result<Vec<SocketAddr>, RecordError> {
    if bytes.len() > MAX_LEN {
        return Err(RecordError::TooLong(bytes.len()));
    }
    let (&version, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let (&count, mut rest) = rest.split_first().ok_or(RecordError::Truncated)?;
    if usize::from(count) > MAX_ADDRS {
        return Err(RecordError::TooMany(count));
    }
    let mut out: Vec<SocketAddr> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (&family, tail) = rest.split_first().ok_or(RecordError::Truncated)?;
        let len = match family {
            4 => 4,
            6 => 16,
            other => return Err(RecordError::Family(other)),
        };
        if tail.len() < len + 2 {
            return Err(RecordError::Truncated);
        }
        let (ip, tail) = tail.split_at(len);
        let (port, tail) = tail.split_at(2);
        // `ip` is exactly `len` bytes long: split_at above.
        let ip = if len == 4 {
            let mut b = [0; 4];
            b.copy_from_slice(ip);
            IpAddr::V4(Ipv4Addr::from(b))
        } else {
            let mut b = [0; 16];
            b.copy_from_slice(ip);
            IpAddr::V6(Ipv6Addr::from(b))
        };
        let port = u16::from_be_bytes([port[0], port[1]]);
        let addr = SocketAddr::new(ip, port);
        if out.contains(&addr) {
            return Err(RecordError::Duplicate);
        }
        out.push(addr);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(RecordError::Trailing(rest.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_families_round_trip_and_the_scope_is_dropped() {
        let addrs = [
            a("10.0.0.2:10000"),
            a("[2001:db8::1]:10001"),
            a("[fe80::1%7]:10000"),
        ];
        let bytes = encode(&addrs);
        assert_eq!(bytes[..2], [VERSION, 3]);
        assert_eq!(bytes.len(), 2 + 7 + 19 + 19);
        assert_eq!(
            decode(&bytes).unwrap(),
            [
                a("10.0.0.2:10000"),
                a("[2001:db8::1]:10001"),
                a("[fe80::1]:10000")
            ]
        );
        assert_eq!(decode(&encode(&[])).unwrap(), []);
    }

    #[test]
    fn at_most_sixteen_addresses_well_under_bep44s_limit() {
        let many: Vec<SocketAddr> = (0..40u16)
            .map(|i| {
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
                    1,
                )
            })
            .collect();
        let bytes = encode(&many);
        assert_eq!(bytes.len(), MAX_LEN);
        assert_eq!(decode(&bytes).unwrap(), many[..MAX_ADDRS]);
        // Duplicates take no slot.
        assert_eq!(encode(&[a("1.2.3.4:5"), a("1.2.3.4:5")])[1], 1);
    }

    #[test]
    fn bad_records_are_errors_that_say_why() {
        let good = encode(&[a("10.0.0.2:10000")]);
        assert_eq!(decode(&[]), Err(RecordError::Empty));
        assert_eq!(decode(&[2, 0]), Err(RecordError::Version(2)));
        assert_eq!(decode(&[VERSION]), Err(RecordError::Truncated));
        assert_eq!(decode(&[VERSION, 17]), Err(RecordError::TooMany(17)));
        assert_eq!(decode(&good[..good.len() - 1]), Err(RecordError::Truncated));
        assert_eq!(decode(&[VERSION, 1, 5, 0]), Err(RecordError::Family(5)));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(RecordError::Trailing(1)));
        let mut twice = vec![VERSION, 2];
        twice.extend_from_slice(&good[2..]);
        twice.extend_from_slice(&good[2..]);
        assert_eq!(decode(&twice), Err(RecordError::Duplicate));
        assert_eq!(decode(&[0; 1000]), Err(RecordError::TooLong(1000)));
        let line = RecordError::TooMany(17).to_string();
        assert!(
            line.contains("at most 16") && !line.contains('\n'),
            "{line}"
        );
    }

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(ip.into()), p)),
            (any::<[u8; 16]>(), any::<u16>(), any::<u32>()).prop_map(|(ip, p, scope)| {
                SocketAddr::V6(SocketAddrV6::new(ip.into(), p, 0, scope))
            }),
        ]
    }

    proptest! {
        #[test]
        fn what_is_encoded_decodes_to_its_normal_form(addrs in prop::collection::vec(any_addr(), 0..24)) {
            let bytes = encode(&addrs);
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(decode(&bytes), Ok(normalize(&addrs)));
        }

        #[test]
        fn any_bytes_decode_without_a_panic(
            count in 0..=17u8,
            body in prop::collection::vec(prop_oneof![Just(4u8), Just(6u8), any::<u8>()], 0..400),
        ) {
            // Mostly our version and a count, so that the addresses' parsing is what is hit.
            let mut bytes = vec![VERSION, count];
            bytes.extend(body);
            if let Ok(addrs) = decode(&bytes) {
                // What decodes is exactly what encode makes of it.
                prop_assert_eq!(encode(&addrs), bytes);
            }
        }
    }
}
