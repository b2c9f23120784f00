//! Drives a p2pshare peer with tasks on a smol executor, all on one thread.
//!
//! [`start`] binds the discovery UDP socket and the TCP listener on the caller's thread (so a
//! bind error is returned by `start`), then runs a [`smol::LocalExecutor`] on a new thread
//! named `p2pshare-smol`. On it:
//! - one **owner task** holds the shared [`p2pshare_host::Driver`] (the node, disk work,
//!   scanner and the handle's channels) and is the only code that touches it;
//! - a **datagram task** receives on each discovery socket (IPv4, and IPv6 when it
//!   multicasts), an **accept task** takes new
//!   connections, a **connect task** per outbound connection dials it, and every established
//!   connection has a **reader task** and a **writer task**;
//! - a reader task reads again only once the owner has given its last buffer to the node and
//!   performed what the node said to that (a pause above all), as the mio loop does: see
//!   [`Gate`];
//! - the socket tasks report to the owner through one bounded event channel; the owner sends
//!   a connection's outgoing buffers to its writer through an unbounded per-connection channel
//!   (the node bounds what it queues, waiting for `Flushed`);
//! - the owner waits on three things at once: the event channel, the wake channel (the `wake`
//!   closure given to the host, called by the handle and the scanner) and a [`smol::Timer`] at
//!   the driver's deadline.
//!
//! Invariants: the node is touched by the owner task only; the owner never sleeps past the
//! node's deadline and feeds `Instant::now()` (not the deadline) when it wakes; `Flushed` is fed
//! exactly when every buffer sent on a connection has been written to its socket; no input
//! about a connection reaches the node after the node closed it (or was told it closed), since
//! events of unknown connections are dropped and connection ids are never reused; when the
//! driver stops, its remaining network work (goodbye datagrams included) is performed before
//! the loop ends.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use p2pshare_host::parked::Parked;
use p2pshare_host::{Driver, Handle, Network, PeerConfig, StartError};
use p2pshare_proto::{Admission, ConnId, Input};
use smol::channel::{self, Receiver, Sender};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::{Async, LocalExecutor, Task, Timer};

/// Bytes read from a connection per `Received` input. Each reader task has its own buffer,
/// so this is paid per connection: 64 KiB × 50 connections of one hostile host is 3 MiB,
/// where 256 KiB made it 12 MiB (and a victim over its 64 MiB bound).
const READ_BUF: usize = 64 << 10;
/// Receive buffer of the datagram task: larger than any UDP datagram.
const DATAGRAM_BUF: usize = 64 << 10;
/// Capacity of the event channel; a full channel makes the socket tasks wait (backpressure).
/// Small on purpose: with 64, readers ran up to 16 MiB ahead of the owner, and the allocator
/// returned and re-faulted that memory over and over (230k page faults per GiB, 0.6 x the
/// reference pipeline); with 4, 50-90k and 0.9-1.1 x. (Since then a reader has at most one
/// buffer in it, see [`Gate`].)
const EVENTS: usize = 4;
/// Pause after a failed accept or receive, so that a lasting error does not spin.
const RETRY: Duration = Duration::from_millis(50);

/// Starts a peer on the smol runtime: binds its sockets (errors are returned here, not later),
/// takes the shared folder, and runs the executor on a new thread.
pub fn start(cfg: &PeerConfig) -> Result<Handle, StartError> {
    let register = |error: io::Error| StartError::EventLoop {
        what: "register a socket",
        error,
    };
    let udp = Arc::new(
        Async::new(p2pshare_host::sockets::discovery(cfg.discovery_port)?).map_err(register)?,
    );
    let (udp6, groups) = match p2pshare_host::sockets::discovery6_for(cfg)? {
        Some((s, g)) => (Some(Arc::new(Async::new(s).map_err(register)?)), Some(g)),
        None => (None, None),
    };
    let listener = TcpListener::try_from(p2pshare_host::sockets::listener(cfg.transfer_port)?)
        .map_err(register)?;
    let port = listener
        .local_addr()
        .map_err(|e| StartError::Bind(format!("cannot read the listening port: {e}")))?
        .port();
    let (wake_tx, wake_rx) = channel::bounded(1);
    let keep_wake = wake_tx.clone();
    let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        // A full channel means a wake-up is already pending.
        let _ = wake_tx.try_send(());
    });
    let started = p2pshare_host::start(cfg, port, wake.clone(), groups)?;
    started.spawn("smol", wake, port, move |driver| {
        let ex = LocalExecutor::new();
        let (events_tx, events) = channel::bounded(EVENTS);
        let owner = Owner {
            ex: &ex,
            driver,
            udp,
            udp6,
            events_tx,
            events,
            wake: wake_rx,
            _keep_wake: keep_wake,
            conns: BTreeMap::new(),
            parked: Parked::default(),
        };
        smol::block_on(ex.run(owner.run(listener)));
    })
}

/// What a socket task tells the owner.
enum Event {
    Datagram {
        from: SocketAddr,
        data: Vec<u8>,
    },
    Accepted {
        stream: TcpStream,
        remote: SocketAddr,
    },
    Connected {
        conn: ConnId,
        stream: TcpStream,
    },
    ConnectFailed {
        conn: ConnId,
    },
    Received {
        conn: ConnId,
        data: Vec<u8>,
    },
    /// The writer wrote one buffer.
    Written {
        conn: ConnId,
    },
    /// End of stream or an error, from the reader or the writer.
    Closed {
        conn: ConnId,
    },
}

/// Why the owner woke up.
enum Woke {
    Wake,
    Deadline,
    Event(Event),
    Gone,
}

/// Whether a connection's reader may read: not while the node holds it (`NetOp::Pause`), and
/// not while the last buffer it read is still on its way to the node. The node can pause a
/// connection only once it has the buffer that fills its queue or budget; a reader that read
/// on meanwhile handed it one more buffer for every event it was ahead (as many as the event
/// channel holds, and one waiting to go in). Against 48 sessions that ask and never read, that
/// was 2-3 buffers of 64 KiB per session after its pause (6.7 of the 8.8 MB of requests the
/// seeder read), all parsed and refused: three times what the mio loop reads, which reads a
/// connection again only after the node has taken its last buffer.
struct Gate {
    paused: Cell<bool>,
    /// A `Received` of this connection is in the event channel, not yet given to the node.
    in_flight: Cell<bool>,
    open_tx: Sender<()>,
    opened: Receiver<()>,
}

impl Gate {
    fn new() -> Rc<Gate> {
        let (open_tx, opened) = channel::bounded(1);
        Rc::new(Gate {
            paused: Cell::new(false),
            in_flight: Cell::new(false),
            open_tx,
            opened,
        })
    }

    /// Waits until the reader may read; false when the gate is gone.
    async fn pass(&self) -> bool {
        while self.paused.get() || self.in_flight.get() {
            if self.opened.recv().await.is_err() {
                return false;
            }
        }
        true
    }

    /// Holds or lets go the reader (`NetOp::Pause`/`Resume`).
    fn set_paused(&self, paused: bool) {
        self.paused.set(paused);
        if !paused {
            self.wake();
        }
    }

    /// The node took the reader's last buffer: it has paused the connection by the time the
    /// reader runs again, if that buffer made it want to (the owner applies the node's
    /// operations before it waits, and the reader runs on the same thread).
    fn taken(&self) {
        self.in_flight.set(false);
        self.wake();
    }

    fn wake(&self) {
        // A full channel already holds a wake-up for the reader, which looks at both flags.
        let _ = self.open_tx.try_send(());
    }
}

/// The owner's view of one connection. Dropping it cancels its connect, reader and writer
/// tasks: what was queued and not yet written is discarded, as `NetOp::Close` says.
struct Conn {
    /// Lets the reader read, or holds it (`NetOp::Pause`).
    gate: Rc<Gate>,
    /// The writer's queue.
    out: Sender<Vec<u8>>,
    /// The writer's end of `out`, until the connection is established.
    pending: Option<Receiver<Vec<u8>>>,
    /// Items sent to the writer and not yet written.
    queued: usize,
    connect: Option<Task<()>>,
    reader: Option<Task<()>>,
    writer: Option<Task<()>>,
}

struct Owner<'ex> {
    ex: &'ex LocalExecutor<'static>,
    driver: Driver,
    udp: Arc<Async<std::net::UdpSocket>>,
    /// The IPv6 discovery socket (multicast), if IPv6 discovery is on.
    udp6: Option<Arc<Async<std::net::UdpSocket>>>,
    /// Cloned into every socket task.
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    wake: Receiver<()>,
    /// Keeps the wake channel open whoever else holds the `wake` closure.
    _keep_wake: Sender<()>,
    conns: BTreeMap<ConnId, Conn>,
    /// Accepted connections waiting for their address's budget (a Python burst).
    parked: Parked<TcpStream>,
}

impl Owner<'_> {
    async fn run(mut self, listener: TcpListener) {
        let _datagrams = self
            .ex
            .spawn(recv_datagrams(self.udp.clone(), self.events_tx.clone()));
        let _datagrams6 = self
            .udp6
            .clone()
            .map(|u| self.ex.spawn(recv_datagrams(u, self.events_tx.clone())));
        let _accept = self.ex.spawn(accept(listener, self.events_tx.clone()));
        self.driver.poll_channels();
        loop {
            self.perform();
            self.unpark();
            if self.driver.is_stopped() {
                break;
            }
            let timer = match self.driver.deadline() {
                Some(d) => Timer::at(d),
                None => Timer::never(),
            };
            let wake = self.wake.recv();
            let event = self.events.recv();
            // Wake-ups and deadlines first: they are rare, events may be plenty.
            let woke = async {
                let _ = wake.await;
                Woke::Wake
            }
            .or(async {
                timer.await;
                Woke::Deadline
            })
            .or(async { event.await.map_or(Woke::Gone, Woke::Event) })
            .await;
            match woke {
                Woke::Wake => self.driver.poll_channels(),
                Woke::Deadline => {}
                Woke::Event(ev) => self.on_event(ev),
                // Cannot happen (the owner holds a sender), but would leave nothing to do.
                Woke::Gone => break,
            }
            self.driver.timeout_if_due();
        }
        // Stopped: the remaining network work (the goodbye, the closes) was performed above;
        // dropping the owner cancels every task left.
    }

    /// Performs every pending network operation of the driver.
    fn perform(&mut self) {
        while let Some(op) = self.driver.poll_net() {
            p2pshare_host::perform(op, self);
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Datagram { from, data } => self.driver.input(Input::Datagram { from, data }),
            Event::Accepted { stream, remote } => {
                // The node names the connection, or refuses it: then the stream is held if
                // the node may take it later (a burst from one address), else dropped.
                match self.driver.accept(remote) {
                    Admission::Accepted(conn) => self.adopt(conn, stream),
                    Admission::Later => self.parked.offer(stream, remote, &mut self.driver),
                    Admission::Refused => {}
                }
            }
            Event::Connected { conn, stream } => {
                let Some((pending, gate)) = self
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| Some((c.pending.take()?, c.gate.clone())))
                else {
                    return;
                };
                let (reader, writer) = self.spawn_io(conn, stream, pending, gate);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.connect = None;
                    c.reader = Some(reader);
                    c.writer = Some(writer);
                }
                self.driver.input(Input::Connected { conn });
            }
            Event::ConnectFailed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.parked.freed();
                    self.driver.input(Input::ConnectFailed { conn });
                }
            }
            Event::Received { conn, data } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.gate.taken();
                    self.driver.input(Input::Received { conn, data });
                }
            }
            Event::Written { conn } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queued = c.queued.saturating_sub(1);
                    if c.queued == 0 {
                        self.driver.input(Input::Flushed { conn });
                    }
                }
            }
            Event::Closed { conn } => {
                if self.conns.contains_key(&conn) {
                    self.drop_conn(conn);
                    self.driver.input(Input::Closed { conn });
                }
            }
        }
    }

    /// Dials `addr` in a task; the connection's queue takes sends at once.
    fn dial(&mut self, conn: ConnId, addr: SocketAddr) {
        let events = self.events_tx.clone();
        let task = self.ex.spawn(async move {
            let ev = match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    Event::Connected { conn, stream }
                }
                Err(_) => Event::ConnectFailed { conn },
            };
            let _ = events.send(ev).await;
        });
        let (out, pending) = channel::unbounded();
        self.conns.insert(
            conn,
            Conn {
                gate: Gate::new(),
                out,
                pending: Some(pending),
                queued: 0,
                connect: Some(task),
                reader: None,
                writer: None,
            },
        );
    }

    fn spawn_io(
        &self,
        conn: ConnId,
        stream: TcpStream,
        out: Receiver<Vec<u8>>,
        gate: Rc<Gate>,
    ) -> (Task<()>, Task<()>) {
        let reader = self.ex.spawn(read_conn(
            conn,
            stream.clone(),
            self.events_tx.clone(),
            gate,
        ));
        let writer = self
            .ex
            .spawn(write_conn(conn, stream, out, self.events_tx.clone()));
        (reader, writer)
    }

    /// Takes an accepted connection the node named `conn`. The tasks spawned run only once
    /// the owner waits again, so nothing they report comes before the node knows it.
    fn adopt(&mut self, conn: ConnId, stream: TcpStream) {
        let (out, pending) = channel::unbounded();
        let gate = Gate::new();
        let (reader, writer) = self.spawn_io(conn, stream, pending, gate.clone());
        self.conns.insert(
            conn,
            Conn {
                gate,
                out,
                pending: None,
                queued: 0,
                connect: None,
                reader: Some(reader),
                writer: Some(writer),
            },
        );
    }

    /// Offers the held connections to the node again after a connection ended.
    fn unpark(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        for (stream, conn) in self.parked.retry(&mut self.driver) {
            self.adopt(conn, stream);
        }
        self.perform();
    }

    /// Forgets a connection at once: its tasks are cancelled, unsent bytes discarded, and the
    /// socket closes with them.
    fn drop_conn(&mut self, conn: ConnId) {
        self.parked.freed();
        self.conns.remove(&conn);
    }
}

/// The datagram task: every datagram on the discovery socket, to the owner.
async fn recv_datagrams(udp: Arc<Async<std::net::UdpSocket>>, events: Sender<Event>) {
    let mut buf = vec![0; DATAGRAM_BUF];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = buf[..n].to_vec();
                if events.send(Event::Datagram { from, data }).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // An ICMP error reported on the socket, say: try again shortly.
            Err(_) => {
                Timer::after(RETRY).await;
            }
        }
    }
}

/// The accept task: every new connection, with TCP_NODELAY, to the owner.
async fn accept(listener: TcpListener, events: Sender<Event>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                // The listener is dual-stack: an IPv4 peer is an IPv4 address from here on.
                let remote = p2pshare_proto::addr::canonical(remote);
                if events
                    .send(Event::Accepted { stream, remote })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or an aborted handshake: try again shortly.
            Err(_) => {
                Timer::after(RETRY).await;
            }
        }
    }
}

/// A reader task: what arrives on the connection, up to [`READ_BUF`] bytes per event and one
/// event at a time (the next read waits until the node took the last buffer, see [`Gate`]),
/// then `Closed` at the end of the stream or on an error.
async fn read_conn(conn: ConnId, mut stream: TcpStream, events: Sender<Event>, gate: Rc<Gate>) {
    let mut buf = vec![0; READ_BUF];
    loop {
        if !gate.pass().await {
            return;
        }
        let ev = match stream.read(&mut buf).await {
            Ok(0) => Event::Closed { conn },
            Ok(n) => Event::Received {
                conn,
                data: buf[..n].to_vec(),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Event::Closed { conn },
        };
        let closed = matches!(ev, Event::Closed { .. });
        gate.in_flight.set(!closed);
        if events.send(ev).await.is_err() || closed {
            return;
        }
    }
}

/// A writer task: writes the queued buffers in order, reporting each one written; `Closed` on
/// an error. Ends when the owner drops the queue and it is written.
async fn write_conn(
    conn: ConnId,
    mut stream: TcpStream,
    out: Receiver<Vec<u8>>,
    events: Sender<Event>,
) {
    while let Ok(data) = out.recv().await {
        let ev = match stream.write_all(&data).await {
            Ok(()) => Event::Written { conn },
            Err(_) => Event::Closed { conn },
        };
        let closed = !matches!(ev, Event::Written { .. });
        if events.send(ev).await.is_err() || closed {
            return;
        }
    }
}

impl Network for Owner<'_> {
    fn datagram(&mut self, to: SocketAddr, data: Vec<u8>) {
        // Sent at once, without waiting: a failed send (no route, a full buffer, no IPv6
        // socket) is like a lost datagram.
        let socket = match to {
            SocketAddr::V4(_) => Some(&self.udp),
            SocketAddr::V6(_) => self.udp6.as_ref(),
        };
        if let Some(s) = socket {
            let _ = s.get_ref().send_to(&data, to);
        }
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        self.dial(conn, addr);
    }

    fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.out.try_send(data).is_ok()
        {
            c.queued += 1;
        }
    }

    fn pause(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.gate.set_paused(true);
        }
    }

    fn resume(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.gate.set_paused(false);
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.drop_conn(conn);
    }
}
