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

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

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

#[cfg(test)]
mod tests {
    use super::*;

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
