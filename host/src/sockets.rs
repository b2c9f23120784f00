//! Binding a peer's two listening sockets, with the options std cannot set before `bind`; both
//! runtimes take them from here.
//!
//! The discovery socket gets SO_REUSEADDR and SO_REUSEPORT, so that several peers on one host
//! all bind the discovery port and all hear each broadcast, and SO_BROADCAST to send them.

use std::net::{Ipv4Addr, SocketAddr};

use crate::driver::StartError;
use socket2::{Domain, Protocol, Socket, Type};

/// The [`StartError::Bind`] for `what` failing on `port`.
fn err(what: &str, port: u16, e: std::io::Error) -> StartError {
    StartError::Bind(format!("cannot {what} port {port}: {e}"))
}

/// A new non-blocking IPv4 socket with SO_REUSEADDR, to be bound to `0.0.0.0:port`; `kind`
/// (`UDP`, `TCP`) names it in errors. For TCP, SO_REUSEADDR lets a restarted peer bind at once
/// despite connections in TIME_WAIT; two live listeners on one port are still refused.
fn socket(ty: Type, protocol: Protocol, kind: &str, port: u16) -> Result<Socket, StartError> {
    let s = Socket::new(Domain::IPV4, ty, Some(protocol))
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

/// The transfer listener: TCP on `0.0.0.0:port` (0 picks a free port), non-blocking, without
/// SO_REUSEPORT.
pub fn listener(port: u16) -> Result<std::net::TcpListener, StartError> {
    let s = socket(Type::STREAM, Protocol::TCP, "TCP", port)?;
    s.bind(&any(port))
        .map_err(|e| err("listen on TCP", port, e))?;
    s.listen(1024).map_err(|e| err("listen on TCP", port, e))?;
    Ok(s.into())
}
