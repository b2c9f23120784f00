//! Addresses of both families, as the node keeps them.
//!
//! A peer's address is a [`SocketAddr`] of either family. An IPv6 link-local address
//! (`fe80::/10`) means nothing without the interface it was heard on, so the node keeps the
//! *scope id* (the interface index the kernel gave the datagram's source) with the address it
//! dials; naming the interface (`eth0`) is the host's business. Invariants:
//! - an address the node derives from another (a peer's transfer address from the source of its
//!   datagram, [`with_port`]) keeps that address's scope id;
//! - an IPv4 peer is an IPv4 address wherever it came from: an IPv4-mapped IPv6 address (what a
//!   dual-stack socket reports for an IPv4 peer) is made IPv4 ([`canonical`]) where an address
//!   enters the node, so one host is one address in every table and budget;
//! - the budgets "per source address" ([`crate::budget`]) are per *address* in both families
//!   (the scope id aside): see [`crate::budget`] for why not per IPv6 /64.
//!
//! Discovery over IPv6 goes to [`MULTICAST_GROUP`] on each interface: a destination
//! `[ff12::7032:7073%<ifindex>]:<discovery port>` (the scope id picks the interface the
//! datagram leaves by, as IPV6_MULTICAST_IF would).
//!
//! A person writes an address as a *literal* ([`parse_literal`]): `IPv4:PORT`, `[IPv6]:PORT`
//! or `[IPv6%ZONE]:PORT`. The zone (an interface's name or index) stays text here: which
//! interface it names is the host's question. This is the one parser of address literals:
//! `--peer`, `peers add` and links (`crate::share_link`) all go through it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The IPv6 multicast group p2pshare announces to: `ff12::7032:7073`. `ff1x` is a transient
/// (not IANA-assigned) group, `xx2` link-local scope (it never crosses a router); the group id
/// spells `p2ps` in ASCII. Peers join it on every up, multicast-capable interface and send one
/// copy of each announcement per interface, on the discovery port.
pub const MULTICAST_GROUP: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0x7032, 0x7073);

/// `at` with `port`: the same host, on the same interface (an IPv6 scope id is kept; a
/// `SocketAddr::new(at.ip(), port)` would lose it, and a link-local address without it cannot
/// be dialled).
pub fn with_port(mut at: SocketAddr, port: u16) -> SocketAddr {
    at.set_port(port);
    at
}

/// `a` as the node keeps it: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
/// dual-stack socket reports for an IPv4 peer) as the IPv4 address it is; anything else as it
/// is.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// True for an IPv6 address that needs a scope id to be dialled or sent to: link-local unicast
/// (`fe80::/10`) and link- or interface-local multicast.
pub fn needs_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xffc0) == 0xfe80 || (v6.is_multicast() && matches!(s & 0x000f, 1 | 2))
        }
    }
}

/// The multicast destination that sends an announcement out of interface `ifindex` on
/// `port`.
pub fn multicast_on(ifindex: u32, port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(MULTICAST_GROUP, port, 0, ifindex))
}

/// The longest zone (interface name) accepted: Linux's `IFNAMSIZ` less its NUL.
pub const MAX_ZONE_LEN: usize = 15;

/// An address as a person wrote it: the address (scope id 0) and the zone written after `%`,
/// if any. See [`parse_literal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal<'a> {
    /// The address and port, without a scope.
    pub addr: SocketAddr,
    /// The zone (`eth0`, `3`) of an IPv6 address, as written.
    pub zone: Option<&'a str>,
}

/// What is wrong with an address literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// `[` without `]:PORT` after it.
    Form,
    /// What follows the address is not a port number.
    Port,
    /// What is in brackets is not an IPv6 address.
    Ipv6,
    /// Neither `IPv4:PORT` nor `[IPv6]:PORT`.
    NotIp,
    /// A link-local address without its interface.
    NeedsZone,
    /// An empty zone, one longer than [`MAX_ZONE_LEN`], or one with a character other than
    /// letters, digits and `-._~` (what interface names are made of).
    Zone,
    /// A zone on an address that needs none (only a link-local address has an interface).
    StrayZone,
    /// An address no peer listens on: unspecified, multicast, broadcast, or port 0.
    Unreachable,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Form => "an IPv6 address is written [ADDRESS]:PORT",
            AddrError::Port => "what follows the address is not a port number",
            AddrError::Ipv6 => "what is in brackets is not an IPv6 address",
            AddrError::NotIp => "not an address: IPv4:PORT or [IPv6]:PORT",
            AddrError::NeedsZone => "a link-local address needs its interface",
            AddrError::Zone => "the interface after % must be 1 to 15 letters, digits or -._~",
            AddrError::StrayZone => "only a link-local address takes an interface (%)",
            AddrError::Unreachable => {
                "no peer listens there (an unspecified, multicast or broadcast address, or port 0)"
            }
        })
    }
}

impl std::error::Error for AddrError {}

/// Parses an address literal: `IPv4:PORT`, `[IPv6]:PORT` or `[IPv6%ZONE]:PORT`. A link-local
/// IPv6 address ([`needs_scope`]) must have a zone; the zone is returned as written (at most
/// [`MAX_ZONE_LEN`] bytes), for the host to resolve. Host names are not literals.
pub fn parse_literal(s: &str) -> Result<Literal<'_>, AddrError> {
    let Some(rest) = s.strip_prefix('[') else {
        return s
            .parse::<SocketAddrV4>()
            .map(|a| Literal {
                addr: SocketAddr::V4(a),
                zone: None,
            })
            .map_err(|_| AddrError::NotIp);
    };
    let (inside, port) = rest.split_once("]:").ok_or(AddrError::Form)?;
    // `u16::from_str` takes a leading `+`: a port is digits only.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Port);
    }
    let port: u16 = port.parse().map_err(|_| AddrError::Port)?;
    let (ip, zone) = match inside.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (inside, None),
    };
    let ip: Ipv6Addr = ip.parse().map_err(|_| AddrError::Ipv6)?;
    match zone {
        None if needs_scope(IpAddr::V6(ip)) => Err(AddrError::NeedsZone),
        Some(z) if !is_zone(z) => Err(AddrError::Zone),
        _ => Ok(Literal {
            addr: SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)),
            zone,
        }),
    }
}

/// True when `z` may name an interface: 1 to [`MAX_ZONE_LEN`] letters, digits or `-._~`.
fn is_zone(z: &str) -> bool {
    (1..=MAX_ZONE_LEN).contains(&z.len())
        && z.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// True for an address no connection can reach: port 0, or an unspecified, multicast or
/// broadcast IP (an IPv4-mapped one judged as the IPv4 address it is).
pub fn unreachable(a: SocketAddr) -> bool {
    let ip = canonical(a).ip();
    a.port() == 0
        || ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// Checks that `a` (canonical, see [`canonical`]) with `zone` is an address a peer could
/// listen on: not unspecified, multicast or broadcast, not port 0; with a zone exactly when it
/// needs one ([`needs_scope`]), and a zone that may name an interface.
pub fn check_dialable(a: SocketAddr, zone: Option<&str>) -> Result<(), AddrError> {
    if unreachable(a) {
        return Err(AddrError::Unreachable);
    }
    let ip = a.ip();
    match zone {
        None if needs_scope(ip) => Err(AddrError::NeedsZone),
        Some(_) if !needs_scope(ip) => Err(AddrError::StrayZone),
        Some(z) if !is_zone(z) => Err(AddrError::Zone),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_of_both_families_with_their_zone_as_text() {
        fn ok(s: &str) -> Literal<'_> {
            parse_literal(s).unwrap()
        }
        assert_eq!(ok("10.0.0.1:7").addr, "10.0.0.1:7".parse().unwrap());
        assert_eq!(
            ok("[2001:db8::1]:8").addr,
            "[2001:db8::1]:8".parse().unwrap()
        );
        let l = ok("[fe80::1%eth0]:10000");
        assert_eq!(l.addr, "[fe80::1]:10000".parse().unwrap());
        assert_eq!(l.zone, Some("eth0"));
        assert_eq!(ok("[fe80::1%3]:1").zone, Some("3"));
        let err = |s: &str| parse_literal(s).unwrap_err();
        assert_eq!(err("[fe80::1]:1"), AddrError::NeedsZone);
        assert_eq!(err("[fe80::1%]:1"), AddrError::Zone);
        assert_eq!(err("[fe80::1%abcdefghijklmnop]:1"), AddrError::Zone);
        assert_eq!(err("[fe80::1%a b]:1"), AddrError::Zone);
        assert_eq!(err("[fe80::1%a]b]:1"), AddrError::Zone);
        assert_eq!(err("[::1]"), AddrError::Form);
        assert_eq!(err("[::1]:+1"), AddrError::Port);
        assert_eq!(err("[::1]:65536"), AddrError::Port);
        assert_eq!(err("[10.0.0.1]:1"), AddrError::Ipv6);
        assert_eq!(err("host:1"), AddrError::NotIp);
        assert_eq!(err("10.0.0.1"), AddrError::NotIp);
    }

    #[test]
    fn dialable_addresses_have_a_port_a_unicast_ip_and_a_zone_only_if_link_local() {
        let check = |s: &str, zone| check_dialable(s.parse().unwrap(), zone);
        assert_eq!(check("10.0.0.1:1", None), Ok(()));
        assert_eq!(check("127.0.0.1:1", None), Ok(()));
        assert_eq!(check("[fe80::1]:1", Some("eth0")), Ok(()));
        assert_eq!(check("[2001:db8::1]:1", None), Ok(()));
        for bad in [
            "10.0.0.1:0",
            "0.0.0.0:1",
            "255.255.255.255:1",
            "224.0.0.1:1",
            "[::]:1",
        ] {
            assert_eq!(check(bad, None), Err(AddrError::Unreachable), "{bad}");
        }
        assert_eq!(
            check("[ff12::1]:1", Some("eth0")),
            Err(AddrError::Unreachable)
        );
        assert_eq!(check("[fe80::1]:1", None), Err(AddrError::NeedsZone));
        assert_eq!(
            check("[2001:db8::1]:1", Some("eth0")),
            Err(AddrError::StrayZone)
        );
        assert_eq!(check("10.0.0.1:1", Some("eth0")), Err(AddrError::StrayZone));
        assert_eq!(check("[fe80::1]:1", Some("a/b")), Err(AddrError::Zone));
    }

    #[test]
    fn a_derived_address_keeps_its_scope() {
        let from: SocketAddr = "[fe80::1%3]:9999".parse().unwrap();
        let a = with_port(from, 10000);
        assert_eq!(a.to_string(), "[fe80::1%3]:10000");
        let SocketAddr::V6(v6) = a else { panic!() };
        assert_eq!(v6.scope_id(), 3);
        let v4: SocketAddr = "10.0.0.7:9999".parse().unwrap();
        assert_eq!(with_port(v4, 1), "10.0.0.7:1".parse().unwrap());
    }

    #[test]
    fn a_mapped_address_is_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:10000".parse().unwrap();
        assert_eq!(canonical(mapped), "10.1.2.3:10000".parse().unwrap());
        for a in ["[fe80::1%2]:1", "[2001:db8::1]:2", "10.0.0.1:3", "[::1]:4"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(canonical(a), a);
        }
    }

    #[test]
    fn link_local_and_our_group_need_a_scope() {
        for ip in [
            "fe80::1",
            "febf::1",
            "ff12::7032:7073",
            "ff02::1",
            "ff11::1",
        ] {
            assert!(needs_scope(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "2001:db8::1",
            "::1",
            "fec0::1",
            "ff15::1",
            "ff0e::1",
            "10.0.0.1",
        ] {
            assert!(!needs_scope(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            multicast_on(7, 9999).to_string(),
            "[ff12::7032:7073%7]:9999"
        );
        assert!(MULTICAST_GROUP.is_multicast());
    }
}
