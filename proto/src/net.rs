//! Network work: the one mapping from the node's network requests ([`NetOp`]) to a runtime's
//! socket operations ([`perform`]), beside [`crate::disk::perform`] for disk work.
//!
//! The node never touches a socket: it emits network requests as outputs, and the runtime
//! answers with inputs (`Connected`, `Received`, `Flushed`, `Closed`, …). Whoever owns the
//! sockets — a runtime's event loop, the simulator's LAN — implements [`Network`] and calls
//! [`perform`] for each [`NetOp`]; nothing here does I/O itself.

use std::net::SocketAddr;

use crate::node::NetOp;
use crate::session::ConnId;

/// What a runtime does with each kind of [`NetOp`]. The runtime drains the node's network
/// outputs and hands each one to [`perform`], which calls the method for it, so the mapping
/// from the node's requests to socket work is written once.
pub trait Network {
    /// Sends a datagram from the discovery socket; a failed send is a lost datagram.
    fn datagram(&mut self, to: SocketAddr, data: Vec<u8>);
    /// Opens a connection; feed `Input::Connected` or `Input::ConnectFailed` later.
    fn connect(&mut self, conn: ConnId, addr: SocketAddr);
    /// Queues bytes on a connection, after everything queued before; feed `Input::Flushed`
    /// when its queue is empty again.
    fn send(&mut self, conn: ConnId, data: Vec<u8>);
    /// Stops reading a connection until [`Network::resume`]; bytes that arrive meanwhile stay
    /// in the kernel.
    fn pause(&mut self, conn: ConnId);
    /// Reads a paused connection again (what waited meanwhile first).
    fn resume(&mut self, conn: ConnId);
    /// Closes a connection at once, discarding what is still queued.
    fn close(&mut self, conn: ConnId);
}

/// Performs one network request of the node on `net`.
pub fn perform(op: NetOp, net: &mut impl Network) {
    match op {
        NetOp::Datagram { to, data } => net.datagram(to, data),
        NetOp::Connect { conn, addr } => net.connect(conn, addr),
        NetOp::Send { conn, data } => net.send(conn, data),
        NetOp::Pause { conn } => net.pause(conn),
        NetOp::Resume { conn } => net.resume(conn),
        NetOp::Close { conn } => net.close(conn),
    }
}
