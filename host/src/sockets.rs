//! Binding a peer's listening sockets, with the options std cannot set before `bind`; both
//! runtimes take them from here.
//!
//! The IPv4 discovery socket gets SO_REUSEADDR and SO_REUSEPORT, so that several peers on one
//! host all bind the discovery port and all hear each broadcast, and SO_BROADCAST to send
//! them. The IPv6 discovery socket ([`discovery6`]) is a second one on the same port (IPv6
//! only, so the two never share a datagram), which joins the multicast group on each
//! interface ([`Groups`]) and sends to it with the interface as the destination's scope. The
//! transfer listener is dual-stack (`[::]`, IPv4 peers arrive as IPv4-mapped addresses, which
//! the node makes IPv4 again), or IPv4 alone where the system has no IPv6.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::driver::StartError;
use crate::interfaces::MulticastInterface;
use p2pshare_proto::addr::MULTICAST_GROUP;
use socket2::{Domain, Protocol, Socket, Type};

/// The [`StartError::Bind`] for `what` failing on `port`.
fn err(what: &str, port: u16, e: std::io::Error) -> StartError {
    StartError::Bind(format!("cannot {what} port {port}: {e}"))
}

/// A new non-blocking IPv4 socket with SO_REUSEADDR, to be bound to `0.0.0.0:port`; `kind`
/// (`UDP`, `TCP`) names it in errors. For TCP, SO_REUSEADDR lets a restarted peer bind at once
/// despite connections in TIME_WAIT; two live listeners on one port are still refused.
fn socket(ty: Type, protocol: Protocol, kind: &str, port: u16) -> Result<Socket, StartError> {
    configure(Domain::IPV4, ty, protocol, kind, port)
}

/// [`socket`] of either family (`domain`).
fn configure(
    domain: Domain,
    ty: Type,
    protocol: Protocol,
    kind: &str,
    port: u16,
) -> Result<Socket, StartError> {
    let s = Socket::new(domain, ty, Some(protocol))
        .map_err(|e| err(&format!("open {kind}"), port, e))?;
    s.set_reuse_address(true)
        .map_err(|e| err(&format!("reuse {kind}"), port, e))?;
    s.set_nonblocking(true)
        .map_err(|e| err(&format!("configure {kind}"), port, e))?;
    Ok(s)
}

/// `0.0.0.0:port`.
fn any(port: u16) -> socket2::SockAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into()
}

/// Receive buffer asked for the discovery socket (the kernel caps it at `net.core.rmem_max`).
pub const DISCOVERY_RECV_BUFFER: usize = 4 << 20;

/// The discovery socket: UDP on `0.0.0.0:port`, non-blocking, with a receive buffer of
/// [`DISCOVERY_RECV_BUFFER`] if the kernel allows.
pub fn discovery(port: u16) -> Result<std::net::UdpSocket, StartError> {
    let s = socket(Type::DGRAM, Protocol::UDP, "UDP", port)?;
    s.set_reuse_port(true)
        .map_err(|e| err("reuse UDP", port, e))?;
    s.set_broadcast(true)
        .map_err(|e| err("broadcast on UDP", port, e))?;
    // Room for a burst: Python peers' announcements are up to 64 KiB each, and the default
    // buffer (~208 KiB) holds three, so a flood of them made the kernel drop the small
    // announcements of honest peers arriving meanwhile. The kernel caps it at `rmem_max`;
    // failing to raise it is no reason not to run.
    let _ = s.set_recv_buffer_size(DISCOVERY_RECV_BUFFER);
    s.bind(&any(port)).map_err(|e| err("bind UDP", port, e))?;
    Ok(s.into())
}

/// The IPv6 discovery socket: UDP on `[::]:port`, IPv6 only, non-blocking, sharing the port
/// as the IPv4 one does, its multicast sent with a hop limit of 1 (the group is link-local
/// anyway) and looped back to the other peers of this host, and the [`Groups`] it joins. An
/// error (no IPv6 on this system, say) means no IPv6 discovery.
pub fn discovery6(port: u16) -> Result<(std::net::UdpSocket, Groups), StartError> {
    let s = configure(Domain::IPV6, Type::DGRAM, Protocol::UDP, "UDP6", port)?;
    let fail = |what: &str, e| err(what, port, e);
    s.set_only_v6(true)
        .map_err(|e| fail("make IPv6-only UDP6", e))?;
    s.set_reuse_port(true).map_err(|e| fail("reuse UDP6", e))?;
    s.set_multicast_hops_v6(1)
        .map_err(|e| fail("set the hop limit on UDP6", e))?;
    s.set_multicast_loop_v6(true)
        .map_err(|e| fail("loop multicast on UDP6", e))?;
    let _ = s.set_recv_buffer_size(DISCOVERY_RECV_BUFFER);
    let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    s.bind(&any.into()).map_err(|e| fail("bind UDP6", e))?;
    let groups = Groups {
        socket: s.try_clone().map_err(|e| fail("share UDP6", e))?,
        joined: BTreeSet::new(),
    };
    Ok((s.into(), groups))
}

/// The IPv6 discovery socket's memberships of the multicast group, one per interface (the
/// host joins as interfaces come and go; the runtime only reads and sends).
#[derive(Debug)]
pub struct Groups {
    socket: Socket,
    joined: BTreeSet<u32>,
}

impl Groups {
    /// Joins the group on each of `ifaces` (again: joining is idempotent, and an interface
    /// made anew under an old index needs it), leaves it on the interfaces no longer wanted,
    /// and returns the indexes where it is joined: where announcements should go.
    pub fn follow(&mut self, ifaces: &[MulticastInterface]) -> Vec<u32> {
        let want: BTreeSet<u32> = ifaces.iter().map(|i| i.index).collect();
        for &gone in self.joined.difference(&want) {
            let _ = self.socket.leave_multicast_v6(&MULTICAST_GROUP, gone);
        }
        self.joined = want
            .into_iter()
            .filter(
                |&i| match self.socket.join_multicast_v6(&MULTICAST_GROUP, i) {
                    Ok(()) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::AddrInUse,
                },
            )
            .collect();
        self.joined.iter().copied().collect()
    }
}

/// The transfer listener: TCP on `[::]:port` for both families (0 picks a free port), or on
/// `0.0.0.0:port` where IPv6 sockets cannot be made; non-blocking, without SO_REUSEPORT.
pub fn listener(port: u16) -> Result<std::net::TcpListener, StartError> {
    let dual = configure(Domain::IPV6, Type::STREAM, Protocol::TCP, "TCP", port).and_then(|s| {
        s.set_only_v6(false)
            .map_err(|e| err("listen on IPv4 and IPv6 TCP", port, e))?;
        Ok(s)
    });
    let (s, at) = match dual {
        Ok(s) => (s, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into()),
        Err(_) => (socket(Type::STREAM, Protocol::TCP, "TCP", port)?, any(port)),
    };
    s.bind(&at).map_err(|e| err("listen on TCP", port, e))?;
    s.listen(1024).map_err(|e| err("listen on TCP", port, e))?;
    Ok(s.into())
}

/// The IPv6 discovery socket and its memberships for `cfg`: none when its multicast is off
/// ([`crate::PeerConfig::uses_multicast`]), or when IPv6 cannot be used here and nobody asked
/// for it by name; an error when interfaces were named ([`crate::Multicast::On`]) and one does
/// not exist, or IPv6 cannot be used.
pub fn discovery6_for(
    cfg: &crate::PeerConfig,
) -> Result<Option<(std::net::UdpSocket, Groups)>, StartError> {
    if !cfg.uses_multicast() {
        return Ok(None);
    }
    let named = match &cfg.multicast {
        crate::Multicast::On(names) => names.as_slice(),
        _ => &[],
    };
    let there = crate::interfaces::named_interfaces(named);
    if let Some(missing) = named.iter().find(|n| !there.iter().any(|i| &i.name == *n)) {
        return Err(StartError::Bind(format!(
            "cannot multicast on {missing}: no such interface"
        )));
    }
    match discovery6(cfg.discovery_port) {
        Ok(s) => Ok(Some(s)),
        Err(e) if !named.is_empty() => Err(e),
        Err(_) => Ok(None),
    }
}
