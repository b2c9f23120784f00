//! Binding a peer's two listening sockets, with the options std cannot set before `bind`; both
//! runtimes take them from here.
//!
//! The discovery socket gets SO_REUSEADDR and SO_REUSEPORT, so that several peers on one host
//! all bind the discovery port and all hear each broadcast, and SO_BROADCAST to send them.

use std::net::{Ipv4Addr, SocketAddr};

use crate::driver::StartError;
use socket2::{Domain, Protocol, Socket, Type};

fn err(what: &str, port: u16, e: std::io::Error) -> StartError {
    StartError::Bind(format!("cannot {what} port {port}: {e}"))
}

/// The discovery socket: UDP on `0.0.0.0:port`, non-blocking.
pub fn discovery(port: u16) -> Result<std::net::UdpSocket, StartError> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| err("open UDP", port, e))?;
    s.set_reuse_address(true)
        .map_err(|e| err("reuse UDP", port, e))?;
    s.set_reuse_port(true)
        .map_err(|e| err("reuse UDP", port, e))?;
    s.set_broadcast(true)
        .map_err(|e| err("broadcast on UDP", port, e))?;
    s.set_nonblocking(true)
        .map_err(|e| err("configure UDP", port, e))?;
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    s.bind(&addr.into()).map_err(|e| err("bind UDP", port, e))?;
    Ok(s.into())
}

/// The transfer listener: TCP on `0.0.0.0:port` (0 picks a free port), non-blocking.
pub fn listener(port: u16) -> Result<std::net::TcpListener, StartError> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| err("open TCP", port, e))?;
    // Lets a restarted peer bind at once despite connections in TIME_WAIT; two live
    // listeners on one port are still refused (no SO_REUSEPORT here).
    s.set_reuse_address(true)
        .map_err(|e| err("reuse TCP", port, e))?;
    s.set_nonblocking(true)
        .map_err(|e| err("configure TCP", port, e))?;
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    s.bind(&addr.into())
        .map_err(|e| err("listen on TCP", port, e))?;
    s.listen(1024).map_err(|e| err("listen on TCP", port, e))?;
    Ok(s.into())
}
