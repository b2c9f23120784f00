//! A test's own end of a real TCP connection to a p2pshare peer, speaking as the holder of a
//! key: the Noise handshake (blocking), then sealed frames both ways. For the end-to-end
//! suites that play peers (fake holders, attackers) against the real binary.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use p2pshare_proto::noise::{Channel, LocalKeys};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::frame::{Frame, FrameDecoder};
use p2pshare_proto::{Identity, PeerId};

/// A key a test holds: its secret and its id.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The secret.
    pub secret: [u8; 32],
    /// Its id (the public key).
    pub id: PeerId,
}

impl Key {
    /// The key of `secret`.
    pub fn of(secret: [u8; 32]) -> Key {
        Key {
            secret,
            id: Identity::from_secret_bytes(&secret).key(),
        }
    }
}

/// One connection after its handshake.
pub struct Secure {
    /// The socket (its timeouts are the caller's).
    pub stream: TcpStream,
    /// Shared with the clones (one reads, one writes): each seal and open takes it briefly.
    channel: Arc<Mutex<Channel>>,
    decoder: FrameDecoder,
    /// The key the other side proved.
    pub remote: PeerId,
}

static CONNS: AtomicU64 = AtomicU64::new(0);

fn local(key: &Key) -> (LocalKeys, [u8; 32]) {
    // Test randomness: the key, the process and a counter (never a real peer's secrets).
    let n = CONNS.fetch_add(1, Ordering::Relaxed);
    let mut material = key.secret.to_vec();
    material.extend(u64::from(std::process::id()).to_le_bytes());
    material.extend(n.to_le_bytes());
    let mut rng = KeyRng::new(p2pshare_proto::sha256(&material));
    let keys = LocalKeys::new(&Identity::from_secret_bytes(&key.secret), &mut rng);
    (keys, rng.seed())
}

impl Secure {
    /// Runs the handshake of a connection we opened, as `key` (expecting `expected` at the
    /// other end, if given). An error if it fails or the other side closes.
    pub fn dial(stream: TcpStream, key: &Key, expected: Option<PeerId>) -> io::Result<Secure> {
        let (keys, seed) = local(key);
        Secure::run(stream, Channel::dial(&keys, expected, true, seed))
    }

    /// Runs the handshake of a connection opened to us, as `key`.
    pub fn accept(stream: TcpStream, key: &Key) -> io::Result<Secure> {
        let (keys, seed) = local(key);
        Secure::run(stream, Channel::accept(&keys, true, seed))
    }

    fn run(mut stream: TcpStream, mut channel: Channel) -> io::Result<Secure> {
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let mut out = Vec::new();
            channel.poll_transmit(&mut out);
            if !out.is_empty() {
                stream.write_all(&out)?;
            }
            if let Some(remote) = channel.remote() {
                return Ok(Secure {
                    stream,
                    channel: Arc::new(Mutex::new(channel)),
                    decoder,
                    remote,
                });
            }
            let n = read_some(&mut stream, &mut buf)?;
            let mut plain = Vec::new();
            channel
                .receive(&buf[..n], &mut plain)
                .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            decoder.push(&plain);
        }
    }

    /// Another handle on the same connection (a socket clone, the same keys), for a reader
    /// and a writer on two threads: make it before reading (it starts with no frame buffered).
    /// Whoever writes must seal and write in one go under one lock of its own, so records go
    /// out in the order they were sealed.
    pub fn try_clone(&self) -> io::Result<Secure> {
        Ok(Secure {
            stream: self.stream.try_clone()?,
            channel: Arc::clone(&self.channel),
            decoder: FrameDecoder::new(),
            remote: self.remote,
        })
    }

    /// `plain` (frames, or pieces of one) sealed: write it before anything sealed after it.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // Sealing fails only before the handshake, which `dial`/`accept` finished.
        let _ = self.channel.lock().map(|mut c| c.seal(plain, &mut out));
        out
    }

    /// Seals and writes `plain`.
    pub fn send(&mut self, plain: &[u8]) -> io::Result<()> {
        let sealed = self.seal(plain);
        self.stream.write_all(&sealed)
    }

    /// The next frame: from what was read already, else read until one is whole. `None` when
    /// the connection ends, fails, a record does not open, or a read times out.
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match self.decoder.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(_) => return None,
            }
            let n = read_some(&mut self.stream, &mut buf).ok()?;
            let mut plain = Vec::new();
            self.channel
                .lock()
                .ok()?
                .receive(&buf[..n], &mut plain)
                .ok()?;
            self.decoder.push(&plain);
        }
    }
}

/// One read of at least a byte: EOF is an error.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
