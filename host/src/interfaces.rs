//! The LAN interfaces a peer announces on: every up, broadcast-capable IPv4 interface that is
//! not loopback, by its directed broadcast address; and every up, multicast-capable interface
//! with IPv6 that is not loopback, by its index (IPv6 announcements go to
//! [`p2pshare_proto::addr::MULTICAST_GROUP`] on each, see [`multicast_interfaces`]). Also the
//! names of interfaces for addresses a person reads and types (`[fe80::1%eth0]:10000`:
//! [`show`], [`parse_addr`], [`scoped`]), and the addresses a link names for this host
//! ([`link_ips`]).
//!
//! 255.255.255.255 leaves by the default-route interface only: with a VPN up, or the default
//! route on another card, nobody on the LAN would hear us. Directed broadcasts (10.1.2.255 for
//! 10.1.2.7/24) leave by the interface of their subnet, so every LAN we have a leg on hears us.
//!
//! Invariant: [`broadcast_targets`] never returns an empty list (with no such interface it
//! falls back to 255.255.255.255, which then simply goes nowhere useful), and never a
//! loopback address; [`multicast_interfaces`] never returns loopback or a point-to-point link.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use p2pshare_proto::addr::{AddrError, needs_scope, parse_literal};

/// One interface we announce on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanInterface {
    /// Its name (`eth0`, `wlan0`).
    pub name: String,
    /// Our address on it.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// Its directed broadcast address.
    pub broadcast: Ipv4Addr,
}

impl LanInterface {
    /// True when `ip` is on this interface's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.ip) & mask
    }
}

/// The up, broadcast-capable, non-loopback IPv4 interfaces now (none if they cannot be read;
/// an interface set down is left out though `getifaddrs` still lists its addresses).
pub fn lan_interfaces() -> Vec<LanInterface> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<LanInterface> = all
        .into_iter()
        .filter(|i| !i.is_loopback() && !i.is_p2p() && is_usable(i))
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => Some(LanInterface {
                name: i.name,
                ip: a.ip,
                prefix: a.prefixlen,
                broadcast: a.broadcast?,
            }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .filter(|i| !i.ip.is_loopback() && !i.broadcast.is_loopback())
        .collect();
    out.sort_by(|a, b| (&a.name, a.ip).cmp(&(&b.name, b.ip)));
    out
}

/// Where announcements go for these interfaces: each distinct directed broadcast address, or
/// 255.255.255.255 when there is none.
pub fn broadcast_targets(ifaces: &[LanInterface]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = ifaces.iter().map(|i| IpAddr::V4(i.broadcast)).collect();
    v.sort();
    v.dedup();
    if v.is_empty() {
        v.push(IpAddr::V4(Ipv4Addr::BROADCAST));
    }
    v
}

/// An interface IPv6 announcements go out on (and the multicast group is joined on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MulticastInterface {
    /// Its index (an IPv6 scope id).
    pub index: u32,
    /// Its name (`eth0`).
    pub name: String,
}

/// `IFF_UP` of Linux's interface flags.
const UP: u32 = 0x1;
/// `IFF_UP | IFF_MULTICAST`.
const UP_AND_MULTICAST: u32 = UP | 0x1000;

/// The kernel's flags of the interface `name` (`/sys/class/net`), if they can be read.
fn flags(name: &str) -> Option<u32> {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).ok()?;
    u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()
}

/// True unless the kernel says the interface `name` is down or cannot multicast (where its
/// flags cannot be read, it is taken as able).
fn can_multicast(name: &str) -> bool {
    flags(name).is_none_or(|f| f & UP_AND_MULTICAST == UP_AND_MULTICAST)
}

/// True unless the kernel says the interface `name` is down (where its flags cannot be read,
/// it is taken as up). `getifaddrs` lists the addresses of an interface set down too, and
/// some drivers never report an operational state.
fn is_up(name: &str) -> bool {
    flags(name).is_none_or(|f| f & UP == UP)
}

/// True unless the interface is known to be down: its operational state says so (some
/// drivers never report one: UNKNOWN does not exclude), or it was set down (`ip link set
/// down` leaves its addresses listed). The one test the broadcast list, the multicast list and
/// a link's addresses share.
fn is_usable(i: &if_addrs::Interface) -> bool {
    use if_addrs::IfOperStatus as S;
    let down = matches!(i.oper_status, S::Down | S::NotPresent | S::LowerLayerDown);
    !down && is_up(&i.name)
}

/// The up, multicast-capable interfaces with an IPv6 address that are neither loopback nor
/// point-to-point (a VPN tunnel; none if they cannot be read), one entry each, by index.
pub fn multicast_interfaces() -> Vec<MulticastInterface> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<MulticastInterface> = all
        .into_iter()
        .filter(|i| {
            let v6 = matches!(i.addr, if_addrs::IfAddr::V6(_));
            v6 && !i.is_loopback() && !i.is_p2p() && is_usable(i) && i.name != "lo"
        })
        .filter_map(|i| {
            Some(MulticastInterface {
                index: i.index?,
                name: i.name,
            })
        })
        .filter(|i| can_multicast(&i.name))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The addresses a link names for this host ([`p2pshare_proto::share_link`]), and whether they
/// are loopback only: the addresses of every up interface, both families, IPv4 first (see
/// [`link_ips_of`]). None if the interfaces cannot be read.
pub fn link_ips() -> (Vec<IpAddr>, bool) {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return (Vec::new(), false);
    };
    link_ips_of(all.into_iter().filter(is_usable).map(|i| i.ip()))
}

/// Of the addresses of the up interfaces, those a peer elsewhere can dial: every one but
/// loopback, link-local IPv6 (it needs the sender's interface, which names nothing on the
/// receiver's machine) and unspecified ones, IPv4 first, each once. A tunnel's (VPN) is among
/// them: it is how a peer across the VPN reaches us. When that leaves nothing (a host with
/// loopback only, as the tests' are), its loopback addresses, and `true`: such a link works on
/// this host only.
pub fn link_ips_of(addrs: impl IntoIterator<Item = IpAddr>) -> (Vec<IpAddr>, bool) {
    let mut all: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| !ip.is_unspecified())
        .collect();
    all.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    all.dedup();
    let reachable: Vec<IpAddr> = all
        .iter()
        .copied()
        .filter(|ip| !ip.is_loopback() && !needs_scope(*ip))
        .collect();
    if reachable.is_empty() {
        (all.into_iter().filter(IpAddr::is_loopback).collect(), true)
    } else {
        (reachable, false)
    }
}

/// The interfaces called `names` that exist now (with an address of either family), by index:
/// where `--multicast-if` pins IPv6 discovery.
pub fn named_interfaces(names: &[String]) -> Vec<MulticastInterface> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<MulticastInterface> = all
        .into_iter()
        .filter(|i| names.contains(&i.name))
        .filter_map(|i| {
            Some(MulticastInterface {
                index: i.index?,
                name: i.name,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How this machine reaches a peer: out of which interface, and whether a router is between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface packets to the peer leave by (`eth0`, `tun0`, `lo`).
    pub interface: String,
    /// True when the peer is not on that interface's subnet: a router is between (or the
    /// interface is a point-to-point tunnel whose far end forwards).
    pub routed: bool,
}

/// One address of one interface: what [`route_in`] matches against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The interface's name.
    pub name: String,
    /// Our address on it.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

/// Every address of every interface now (none if they cannot be read): what [`route_to`]
/// needs, read once for many peers.
pub fn assigned() -> Vec<Assigned> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    all.into_iter()
        .map(|i| {
            let (ip, prefix) = match i.addr {
                if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), a.prefixlen),
                if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), a.prefixlen),
            };
            Assigned {
                name: i.name,
                ip,
                prefix,
            }
        })
        .collect()
}

/// How `addr` is reached now, as the kernel would send to it, or `None` when there is no
/// route. A link-local IPv6 address is on the interface of its scope; any other is asked of
/// the kernel's routing: a UDP socket connected to `addr` (nothing is sent) says which of our
/// addresses it would leave from, and that address's interface (in `assigned`) is the one.
pub fn route_to(addr: SocketAddr, assigned: &[Assigned]) -> Option<Route> {
    if let SocketAddr::V6(a) = addr
        && a.scope_id() != 0
        && needs_scope(IpAddr::V6(*a.ip()))
    {
        let index = a.scope_id();
        return Some(Route {
            interface: name_of(index).unwrap_or_else(|| index.to_string()),
            routed: false,
        });
    }
    let local = local_address_to(addr)?;
    route_in(addr.ip(), local, assigned)
}

/// The route to `peer` that leaves from our address `local`: its interface in `assigned`, and
/// whether `peer` lies outside that address's subnet.
pub fn route_in(peer: IpAddr, local: IpAddr, assigned: &[Assigned]) -> Option<Route> {
    let a = assigned.iter().find(|a| a.ip == local)?;
    Some(Route {
        interface: a.name.clone(),
        routed: !same_subnet(peer, a.ip, a.prefix),
    })
}

/// True when `x` and `y` share their first `prefix` bits (and their family).
fn same_subnet(x: IpAddr, y: IpAddr, prefix: u8) -> bool {
    fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
        let keep = u32::from(prefix).min(width);
        if keep == 0 {
            return 0;
        }
        bits >> (width - keep)
    }
    match (x, y) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            masked(u32::from(x).into(), 32, prefix) == masked(u32::from(y).into(), 32, prefix)
        }
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            masked(u128::from(x), 128, prefix) == masked(u128::from(y), 128, prefix)
        }
        _ => false,
    }
}

/// Our address packets to `addr` would leave from (a connected UDP socket's own address; a
/// UDP connect sends nothing), or `None` when there is no route.
fn local_address_to(addr: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(addr).ok()?;
    let local = socket.local_addr().ok()?.ip();
    (!local.is_unspecified()).then_some(local)
}

/// The name of the interface with index `index`, if it has an address now.
pub fn name_of(index: u32) -> Option<String> {
    let all = if_addrs::get_if_addrs().ok()?;
    all.into_iter()
        .find(|i| i.index == Some(index))
        .map(|i| i.name)
}

/// The index of the interface called `name`, if it has an address now.
pub fn index_of(name: &str) -> Option<u32> {
    let all = if_addrs::get_if_addrs().ok()?;
    all.into_iter()
        .find(|i| i.name == name)
        .and_then(|i| i.index)
}

/// `addr` as a person reads it: an address that needs a scope (link-local) with its interface's
/// name, `[fe80::1%eth0]:10000` (the index if the interface is gone); any other as std prints
/// it (`10.0.0.1:10000`, `[2001:db8::1]:10000`).
pub fn show(addr: SocketAddr) -> String {
    show_with(addr, name_of)
}

/// [`show`] with the names of interfaces from `name_of`.
pub fn show_with(addr: SocketAddr, name_of: impl Fn(u32) -> Option<String>) -> String {
    match addr {
        SocketAddr::V6(a) if a.scope_id() != 0 && needs_scope(IpAddr::V6(*a.ip())) => {
            let scope = name_of(a.scope_id()).unwrap_or_else(|| a.scope_id().to_string());
            format!("[{}%{scope}]:{}", a.ip(), a.port())
        }
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(_) => addr.to_string(),
    }
}

/// Parses what a person typed for a peer's transfer address: `IPv4:PORT`, `[IPv6]:PORT`,
/// `[IPv6%IFACE]:PORT` (an interface name or index; a link-local address needs one), or
/// `HOST:PORT` (looked up: its first IPv4 address, else its first IPv6 one). The error says
/// what is wrong, in words.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr_with(s, index_of)
}

/// [`parse_addr`] with the indexes of interfaces from `index_of`.
pub fn parse_addr_with(
    s: &str,
    index_of: impl Fn(&str) -> Option<u32>,
) -> Result<SocketAddr, String> {
    match parse_literal(s) {
        Ok(l) => scoped(l.addr, l.zone, index_of).map_err(|e| format!("{s}: {e}")),
        Err(AddrError::NeedsZone) => Err(format!(
            "{s}: {}, as in [fe80::1%eth0]:PORT",
            AddrError::NeedsZone
        )),
        Err(e) if s.starts_with('[') => Err(format!("{s}: {e}")),
        Err(_) => {
            let addrs: Vec<SocketAddr> = s
                .to_socket_addrs()
                .map_err(|e| format!("{s}: {e}"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| format!("{s}: no address"))
        }
    }
}

/// `addr` (an address literal's, scope id 0) with the interface `zone` names as its scope id:
/// an index (`3`) or a name (`eth0`) that `index_of` knows. The error names the zone.
pub fn scoped(
    addr: SocketAddr,
    zone: Option<&str>,
    index_of: impl Fn(&str) -> Option<u32>,
) -> Result<SocketAddr, String> {
    let (SocketAddr::V6(mut a), Some(zone)) = (addr, zone) else {
        return Ok(addr);
    };
    let index = match zone.parse::<u32>() {
        Ok(n) if n > 0 => n,
        _ => index_of(zone).ok_or_else(|| format!("no interface {zone:?}"))?,
    };
    a.set_scope_id(index);
    Ok(SocketAddr::V6(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV6;

    fn iface(ip: [u8; 4], prefix: u8, brd: [u8; 4]) -> LanInterface {
        LanInterface {
            name: "eth0".into(),
            ip: ip.into(),
            prefix,
            broadcast: brd.into(),
        }
    }

    #[test]
    fn one_directed_broadcast_per_subnet_or_the_limited_one() {
        let a = iface([10, 1, 2, 7], 24, [10, 1, 2, 255]);
        let b = iface([192, 168, 0, 9], 16, [192, 168, 255, 255]);
        let t = broadcast_targets(&[b.clone(), a.clone(), a.clone()]);
        assert_eq!(
            t,
            vec![
                IpAddr::V4([10, 1, 2, 255].into()),
                IpAddr::V4([192, 168, 255, 255].into())
            ]
        );
        assert_eq!(
            broadcast_targets(&[]),
            vec![IpAddr::V4(Ipv4Addr::BROADCAST)]
        );
        assert!(a.contains([10, 1, 2, 200].into()));
        assert!(!a.contains([10, 1, 3, 1].into()));
        assert!(b.contains([192, 168, 200, 1].into()));
        // Whatever this machine has, loopback is never among them.
        assert!(lan_interfaces().iter().all(|i| !i.ip.is_loopback()));
        assert!(multicast_interfaces().iter().all(|i| i.name != "lo"));
    }

    #[test]
    fn a_route_names_its_interface_and_whether_a_router_is_between() {
        let a = |name: &str, ip: &str, prefix| Assigned {
            name: name.into(),
            ip: ip.parse().unwrap(),
            prefix,
        };
        let mine = [
            a("lo", "127.0.0.1", 8),
            a("eth0", "10.99.0.1", 24),
            a("tun0", "172.16.5.2", 32),
            a("eth0", "2001:db8:1::7", 64),
        ];
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let route = |peer, local| route_in(ip(peer), ip(local), &mine);
        let on = |i: &str| {
            Some(Route {
                interface: i.into(),
                routed: false,
            })
        };
        let via = |i: &str| {
            Some(Route {
                interface: i.into(),
                routed: true,
            })
        };
        assert_eq!(route("10.99.0.3", "10.99.0.1"), on("eth0"));
        assert_eq!(route("10.98.0.2", "10.99.0.1"), via("eth0"));
        assert_eq!(route("172.16.0.9", "172.16.5.2"), via("tun0"));
        assert_eq!(route("127.0.0.1", "127.0.0.1"), on("lo"));
        assert_eq!(route("2001:db8:1::9", "2001:db8:1::7"), on("eth0"));
        assert_eq!(route("2001:db8:2::9", "2001:db8:1::7"), via("eth0"));
        assert_eq!(route("10.99.0.3", "10.0.0.1"), None, "not one of ours");
        // The kernel's answer for loopback, on any machine.
        let lo = route_to("127.0.0.1:9".parse().unwrap(), &assigned()).unwrap();
        assert!(!lo.routed, "{lo:?}");
        // A link-local address is on its scope's interface.
        let ll = route_to("[fe80::1%9999]:1".parse().unwrap(), &[]).unwrap();
        assert_eq!(
            ll,
            Route {
                interface: "9999".into(),
                routed: false
            }
        );
    }

    #[test]
    fn a_link_names_every_address_but_loopback_and_link_local_or_loopback_alone() {
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|s| s.parse().unwrap()).collect() };
        let (picked, only_loopback) = link_ips_of(ips(&[
            "fe80::1",
            "2001:db8::7",
            "127.0.0.1",
            "::1",
            "10.0.0.7",
            "0.0.0.0",
            "10.8.0.2",
            "10.0.0.7",
        ]));
        assert_eq!(picked, ips(&["10.0.0.7", "10.8.0.2", "2001:db8::7"]));
        assert!(!only_loopback);
        let (picked, only_loopback) = link_ips_of(ips(&["::1", "fe80::1", "127.0.0.1"]));
        assert_eq!(picked, ips(&["127.0.0.1", "::1"]));
        assert!(only_loopback);
        // This machine's: never link-local, and loopback only when alone.
        let (mine, only) = link_ips();
        assert!(mine.iter().all(|ip| !needs_scope(*ip)));
        assert!(only || mine.iter().all(|ip| !ip.is_loopback()));
    }

    fn names(i: u32) -> Option<String> {
        (i == 2).then(|| "eth0".to_string())
    }

    fn indexes(n: &str) -> Option<u32> {
        (n == "eth0").then_some(2)
    }

    #[test]
    fn addresses_print_with_their_interface_and_parse_back() {
        for (a, shown) in [
            ("[fe80::1%2]:10000", "[fe80::1%eth0]:10000"),
            ("[fe80::1%9]:10000", "[fe80::1%9]:10000"),
            ("[2001:db8::1]:10000", "[2001:db8::1]:10000"),
            ("[::1]:7", "[::1]:7"),
            ("10.0.0.1:10000", "10.0.0.1:10000"),
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(show_with(a, names), shown);
            assert_eq!(parse_addr_with(shown, indexes), Ok(a), "{shown}");
        }
        // A global address keeps no scope worth printing.
        let g = SocketAddr::V6(SocketAddrV6::new("2001:db8::1".parse().unwrap(), 1, 0, 2));
        assert_eq!(show_with(g, names), "[2001:db8::1]:1");
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let err = |s: &str| parse_addr_with(s, indexes).unwrap_err();
        assert!(err("[fe80::1]:10000").contains("needs its interface"));
        assert!(err("[fe80::1%wlan9]:10000").contains("no interface \"wlan9\""));
        assert!(err("[fe80::1%eth0]").contains("[ADDRESS]:PORT"));
        assert!(err("[fe80::1%eth0]:x").contains("not a port"));
        assert!(err("[10.0.0.1]:1").contains("not an IPv6 address"));
        assert_eq!(
            parse_addr_with("[fe80::1%0]:1", indexes).unwrap_err(),
            "[fe80::1%0]:1: no interface \"0\""
        );
        assert_eq!(
            parse_addr_with("127.0.0.1:5", indexes),
            Ok("127.0.0.1:5".parse().unwrap())
        );
    }
}
