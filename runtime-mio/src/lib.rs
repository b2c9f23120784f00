//! Drives a p2pshare peer with one `mio::Poll` loop on one thread.
//!
//! The loop owns the discovery UDP sockets (IPv4, and IPv6 when it multicasts), the TCP
//! listener, every connection and a waker; everything else (the node, disk work, scanning, the
//! handle's channels) is the shared [`p2pshare_host::Driver`]. Invariants: the node is touched
//! only by the loop thread; the loop never sleeps past the node's deadline and feeds
//! `Instant::now()` (not the deadline) when it wakes; a connection's unsent bytes stay in its
//! queue until the socket takes them, and are written once per turn of the node's operations
//! (small frames merged), never once per frame.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use p2pshare_host::parked::Parked;
use p2pshare_host::{Driver, Handle, Network, PeerConfig, StartError};
use p2pshare_proto::{Admission, ConnId, Input};

const UDP: Token = Token(0);
/// Datagrams read in one turn at most (see `Loop::read_datagrams`).
const DATAGRAMS_PER_TURN: usize = 16;
const LISTENER: Token = Token(1);
const WAKER: Token = Token(2);
const UDP6: Token = Token(3);
const FIRST_CONN: usize = 4;
/// Bytes read from a socket per `Received` input: a host that floods requests makes the node
/// work through at most this much of them per read (and per turn, `READS_PER_TURN` times)
/// before the loop turns to timers and other sockets.
const READ_BUF: usize = 64 << 10;
/// Reads from one connection before the loop turns to the others: one fast peer must not
/// starve the rest (with edge-triggered events, a socket that still has data is revisited).
const READS_PER_TURN: usize = 4;
/// Queued frames up to this size are merged into one buffer (one `write` for many refusals,
/// pongs or small answers); larger ones, chunk bodies above all, are queued as they are.
const COALESCE: usize = 16 << 10;

/// Starts a peer on the mio runtime: binds its sockets (errors are returned here, not later),
/// takes the shared folder, and runs the loop on a new thread.
pub fn start(cfg: &PeerConfig) -> Result<Handle, StartError> {
    let poll = Poll::new().map_err(|error| StartError::EventLoop {
        what: "create poll",
        error,
    })?;
    let mut udp = UdpSocket::from_std(p2pshare_host::sockets::discovery(cfg.discovery_port)?);
    let (mut udp6, groups) = match p2pshare_host::sockets::discovery6_for(cfg)? {
        Some((s, g)) => (Some(UdpSocket::from_std(s)), Some(g)),
        None => (None, None),
    };
    let mut listener = TcpListener::from_std(p2pshare_host::sockets::listener(cfg.transfer_port)?);
    let port = listener
        .local_addr()
        .map_err(|e| StartError::Bind(format!("cannot read the listening port: {e}")))?
        .port();
    let reg = poll.registry();
    let register = |error: io::Error| StartError::EventLoop {
        what: "register a socket",
        error,
    };
    reg.register(&mut udp, UDP, Interest::READABLE)
        .map_err(register)?;
    reg.register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(register)?;
    if let Some(u) = &mut udp6 {
        reg.register(u, UDP6, Interest::READABLE)
            .map_err(register)?;
    }
    let waker = Arc::new(Waker::new(reg, WAKER).map_err(register)?);
    let w = waker.clone();
    let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let _ = w.wake();
    });
    let started = p2pshare_host::start(cfg, port, wake.clone(), groups)?;
    started.spawn("mio", wake, port, move |driver| {
        Loop {
            poll,
            udp,
            udp6,
            listener,
            driver,
            conns: BTreeMap::new(),
            tokens: BTreeMap::new(),
            next_token: FIRST_CONN,
            buf: vec![0; READ_BUF],
            unread: VecDeque::new(),
            udp_unread: false,
            dirty: Vec::new(),
            parked: Parked::default(),
        }
        .run();
    })
}

struct Conn {
    stream: TcpStream,
    token: Token,
    connecting: bool,
    /// What waits to be written (small frames merged).
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the queue's front already written.
    sent: usize,
    /// The node asked not to read it for now (`NetOp::Pause`).
    paused: bool,
}

struct Loop {
    poll: Poll,
    udp: UdpSocket,
    /// The IPv6 discovery socket (multicast), if IPv6 discovery is on.
    udp6: Option<UdpSocket>,
    listener: TcpListener,
    driver: Driver,
    conns: BTreeMap<ConnId, Conn>,
    tokens: BTreeMap<Token, ConnId>,
    next_token: usize,
    buf: Vec<u8>,
    /// Connections left readable when their turn ended.
    unread: VecDeque<ConnId>,
    /// The discovery socket may hold more datagrams than one turn reads.
    udp_unread: bool,
    /// Connections given bytes since the last flush: written once the node's operations of
    /// this turn are all performed, so that a turn that answers a thousand small requests
    /// costs one `write` per connection, not a thousand.
    dirty: Vec<ConnId>,
    /// Accepted connections waiting for their address's budget (a Python burst).
    parked: Parked<TcpStream>,
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        self.driver.poll_channels();
        loop {
            self.perform();
            self.unpark();
            if self.driver.is_stopped() {
                return;
            }
            let timeout = if self.unread.is_empty() && !self.udp_unread {
                self.driver
                    .deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_secs(60))
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return;
            }
            // Datagrams a turn left unread (edge-triggered: no new event says so).
            if self.udp_unread {
                self.read_datagrams();
                self.perform();
            }
            // Discovery, new connections and the other threads first; then the connections,
            // each followed by a look at discovery and the timers, so that a flood on many
            // connections cannot keep a newcomer waiting for our answer.
            for ev in events.iter() {
                match ev.token() {
                    UDP | UDP6 => self.read_datagrams(),
                    LISTENER => self.accept(),
                    // A question about the view (a snapshot) is answered after every
                    // datagram that arrived before it was asked: a newcomer's answer waiting
                    // in the socket is not left out of a `peers` asked at that moment.
                    WAKER => {
                        self.read_datagrams();
                        self.driver.poll_channels();
                    }
                    _ => continue,
                }
                self.perform();
            }
            for ev in events.iter() {
                let Some(&conn) = self.tokens.get(&ev.token()) else {
                    continue;
                };
                if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                    self.on_writable(conn);
                }
                if ev.is_readable() || ev.is_read_closed() {
                    self.on_readable(conn);
                }
                self.perform();
                self.between_turns();
            }
            for conn in std::mem::take(&mut self.unread) {
                self.on_readable(conn);
                self.perform();
                self.between_turns();
            }
            self.driver.timeout_if_due();
        }
    }

    /// Between two connections' turns: datagrams that arrived meanwhile, and timers due.
    fn between_turns(&mut self) {
        self.read_datagrams();
        self.driver.timeout_if_due();
        self.perform();
    }

    /// Performs every pending network operation of the driver, then writes what they queued.
    fn perform(&mut self) {
        loop {
            while let Some(op) = self.driver.poll_net() {
                p2pshare_host::perform(op, self);
            }
            if self.dirty.is_empty() {
                return;
            }
            // A flush may report `Flushed` (or a loss), which gives the node more to do.
            for conn in std::mem::take(&mut self.dirty) {
                self.flush(conn);
            }
        }
    }

    fn register(&mut self, conn: ConnId, mut stream: TcpStream, connecting: bool) -> bool {
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, token, interest)
            .is_err()
        {
            return false;
        }
        self.tokens.insert(token, conn);
        self.conns.insert(
            conn,
            Conn {
                stream,
                token,
                connecting,
                queue: VecDeque::new(),
                sent: 0,
                paused: false,
            },
        );
        true
    }

    fn dial(&mut self, conn: ConnId, addr: SocketAddr) {
        let registered = match TcpStream::connect(addr) {
            Ok(stream) => self.register(conn, stream, true),
            Err(_) => false,
        };
        if !registered {
            self.driver.input(Input::ConnectFailed { conn });
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    // The listener is dual-stack: an IPv4 peer is an IPv4 address from here on.
                    let remote = p2pshare_proto::addr::canonical(remote);
                    // The node names the connection, or refuses it: then the stream is held if
                    // the node may take it later (a burst from one address), else dropped.
                    let conn = match self.driver.accept(remote) {
                        Admission::Accepted(conn) => conn,
                        Admission::Later => {
                            self.parked.offer(stream, remote, &mut self.driver);
                            continue;
                        }
                        Admission::Refused => continue,
                    };
                    if !self.register(conn, stream, false) {
                        self.driver.input(Input::Closed { conn });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors or an aborted handshake: try again on the next event.
                Err(_) => return,
            }
        }
    }

    /// Reads at most [`DATAGRAMS_PER_TURN`] datagrams from each discovery socket (the rest
    /// wait for the next turn: the loop does not sleep while some may be left). A burst of
    /// datagrams that are each costly to read (Python peers' 60 KiB announcements) cannot hold
    /// the connections' turns up.
    fn read_datagrams(&mut self) {
        let v4 = read_from(&self.udp, &mut self.buf, &mut self.driver);
        let v6 = match &self.udp6 {
            Some(u) => read_from(u, &mut self.buf, &mut self.driver),
            None => false,
        };
        self.udp_unread = v4 || v6;
    }

    fn on_writable(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.connecting {
            let failed = matches!(c.stream.take_error(), Ok(Some(_)) | Err(_));
            if failed {
                return self.lost(conn, Input::ConnectFailed { conn });
            }
            match c.stream.peer_addr() {
                Ok(_) => {
                    c.connecting = false;
                    let _ = c.stream.set_nodelay(true);
                    self.driver.input(Input::Connected { conn });
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => {
                    return self.lost(conn, Input::ConnectFailed { conn });
                }
            }
            self.perform();
        }
        self.flush(conn);
    }

    /// Writes as much of the connection's queue as the socket takes; reports `Flushed` when
    /// the queue empties.
    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.connecting || c.queue.is_empty() {
            return;
        }
        loop {
            let Some(front) = c.queue.front_mut() else {
                self.driver.input(Input::Flushed { conn });
                return;
            };
            match c.stream.write(&front[c.sent..]) {
                Ok(n) => {
                    c.sent += n;
                    if c.sent == front.len() {
                        c.queue.pop_front();
                        c.sent = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return self.lost(conn, Input::Closed { conn });
                }
            }
        }
    }

    fn on_readable(&mut self, conn: ConnId) {
        for turn in 0.. {
            if turn == READS_PER_TURN {
                if !self.unread.contains(&conn) {
                    self.unread.push_back(conn);
                }
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.connecting || c.paused {
                return;
            }
            match c.stream.read(&mut self.buf) {
                Ok(0) => {
                    return self.lost(conn, Input::Closed { conn });
                }
                Ok(n) => {
                    self.driver.received(conn, &self.buf[..n]);
                    self.perform();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return self.lost(conn, Input::Closed { conn });
                }
            }
        }
    }

    /// The connection failed or ended: forget it, and tell the node with `why`.
    fn lost(&mut self, conn: ConnId, why: Input) {
        self.drop_conn(conn);
        self.driver.input(why);
    }

    /// Registers the held connections the node takes now that a connection ended.
    fn unpark(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        for (stream, conn) in self.parked.retry(&mut self.driver) {
            if !self.register(conn, stream, false) {
                self.driver.input(Input::Closed { conn });
            }
        }
        self.perform();
    }

    fn drop_conn(&mut self, conn: ConnId) {
        self.parked.freed();
        if let Some(mut c) = self.conns.remove(&conn) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.tokens.remove(&c.token);
        }
    }
}

impl Network for Loop {
    fn datagram(&mut self, to: SocketAddr, data: Vec<u8>) {
        // A failed send (no route, a full buffer, no IPv6 socket) is a lost datagram.
        let socket = match to {
            SocketAddr::V4(_) => Some(&self.udp),
            SocketAddr::V6(_) => self.udp6.as_ref(),
        };
        if let Some(s) = socket {
            let _ = s.send_to(&data, to);
        }
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        self.dial(conn, addr);
    }

    fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            // Small frames join the small buffer before them (appending leaves the written
            // part of a partly written front as it is), so that the flush writes them at once.
            match c.queue.back_mut() {
                Some(last) if data.len() <= COALESCE && last.len() + data.len() <= COALESCE => {
                    last.extend_from_slice(&data)
                }
                _ => c.queue.push_back(data),
            }
            if !c.connecting && !self.dirty.contains(&conn) {
                self.dirty.push(conn);
            }
        }
    }

    fn pause(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.paused = true;
        }
    }

    fn resume(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && std::mem::replace(&mut c.paused, false)
            && !self.unread.contains(&conn)
        {
            // Readiness is edge-triggered: what arrived while paused raised no new event.
            self.unread.push_back(conn);
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.drop_conn(conn);
    }
}

/// Reads at most [`DATAGRAMS_PER_TURN`] datagrams from `udp` into the driver; true when some
/// may be left.
fn read_from(udp: &UdpSocket, buf: &mut [u8], driver: &mut Driver) -> bool {
    for _ in 0..DATAGRAMS_PER_TURN {
        match udp.recv_from(buf) {
            Ok((n, from)) => {
                let data = buf[..n].to_vec();
                driver.input(Input::Datagram { from, data });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
