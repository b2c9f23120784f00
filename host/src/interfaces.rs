//! The LAN interfaces a peer announces on: every up, broadcast-capable IPv4 interface that is
//! not loopback, by its directed broadcast address.
//!
//! 255.255.255.255 leaves by the default-route interface only: with a VPN up, or the default
//! route on another card, nobody on the LAN would hear us. Directed broadcasts (10.1.2.255 for
//! 10.1.2.7/24) leave by the interface of their subnet, so every LAN we have a leg on hears us.
//!
//! Invariant: [`broadcast_targets`] never returns an empty list (with no such interface it
//! falls back to 255.255.255.255, which then simply goes nowhere useful), and never a
//! loopback address.

use std::net::{IpAddr, Ipv4Addr};

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

/// The up, broadcast-capable, non-loopback IPv4 interfaces now (none if they cannot be read).
pub fn lan_interfaces() -> Vec<LanInterface> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<LanInterface> = all
        .into_iter()
        // Some drivers never report their state (UNKNOWN): only a known down state excludes.
        .filter(|i| {
            use if_addrs::IfOperStatus as S;
            let down = matches!(i.oper_status, S::Down | S::NotPresent | S::LowerLayerDown);
            !i.is_loopback() && !i.is_p2p() && !down
        })
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
