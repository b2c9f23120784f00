//! A fake of the original Python peer (`main.py`), in Rust, for the end-to-end tests: it
//! announces its files as JSON on the discovery port, serves `chunk NAME N` requests one
//! connection each (hash line, chunk, close), and can fetch a file the Python way (one
//! connection per 1 KiB chunk, all at once) and hear p2pshare's JSON announcements. It can lie:
//! a wrong transport hash on every chunk, or the chunks of another file under the announced
//! name and hash. Loopback or a test's own namespace only: it sends to the address it is given.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lower-case hex SHA-256 of `d`, as Python's hexdigest.
pub fn sha(d: &[u8]) -> String {
    p2pshare_proto::hex(&p2pshare_proto::sha256(d))
}

/// How the fake serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lie {
    /// As main.py does.
    Honest,
    /// Every reply's hash line is of other bytes.
    BadHash,
    /// Announces the real file's name and hash, serves these bytes (with their true chunk
    /// hashes).
    WrongFile(Vec<u8>),
}

/// What the fake heard announced: name → (total_chunks, filehash, announcer's address).
pub type Heard = Arc<Mutex<BTreeMap<String, (u64, String, SocketAddr)>>>;

/// A running fake Python peer; stopped when dropped.
pub struct FakePython {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub served: Arc<AtomicU64>,
    /// Files a p2pshare peer announced in JSON: name → (total_chunks, filehash), with the
    /// announcing address.
    pub heard: Heard,
}

impl FakePython {
    /// Starts serving `files` on `ip`:0 and announcing them every `every` to `broadcast`;
    /// with `listen_port`, it also hears JSON announcements on that UDP port.
    pub fn start(
        ip: &str,
        broadcast: SocketAddr,
        files: &[(&str, &[u8])],
        lie: Lie,
        every: Duration,
        listen_port: Option<u16>,
    ) -> FakePython {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let files: Arc<BTreeMap<String, Vec<u8>>> = Arc::new(
            files
                .iter()
                .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let heard = Arc::new(Mutex::new(BTreeMap::new()));

        // The announcement, as json.dumps writes it.
        let entries: Vec<String> = files
            .iter()
            .map(|(n, b)| {
                format!(
                    "\"{n}\": {{\"total_chunks\": {}, \"filehash\": \"{}\"}}",
                    b.len().div_ceil(1024),
                    sha(b)
                )
            })
            .collect();
        let json = format!(
            "{{\"type\": \"P2P_PEER_DISCOVERY\", \"port\": {}, \"files\": {{{}}}}}",
            addr.port(),
            entries.join(", ")
        );
        let udp = UdpSocket::bind((ip, 0)).unwrap();
        udp.set_broadcast(true).unwrap();
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _ = udp.send_to(json.as_bytes(), broadcast);
                let until = Instant::now() + every;
                while Instant::now() < until && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });

        if let Some(port) = listen_port {
            let sock = p2pshare_host::sockets::discovery(port).unwrap();
            sock.set_nonblocking(false).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let (s, h) = (stop.clone(), heard.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !s.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[..n]) else {
                        continue;
                    };
                    if v["type"] != "P2P_PEER_DISCOVERY" {
                        continue;
                    }
                    let at = SocketAddr::new(from.ip(), v["port"].as_u64().unwrap() as u16);
                    if at == addr {
                        continue;
                    }
                    if let Some(fs) = v["files"].as_object() {
                        let mut h = h.lock().unwrap();
                        for (name, info) in fs {
                            h.insert(
                                name.clone(),
                                (
                                    info["total_chunks"].as_u64().unwrap(),
                                    info["filehash"].as_str().unwrap().to_owned(),
                                    at,
                                ),
                            );
                        }
                    }
                }
            });
        }

        let (s, n) = (stop.clone(), served.clone());
        let lie = Arc::new(lie);
        std::thread::spawn(move || {
            // Blocking, as main.py's; Drop wakes it with a connection of its own.
            while let Ok((conn, _)) = listener.accept() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let (files, lie, n) = (files.clone(), lie.clone(), n.clone());
                std::thread::spawn(move || serve_one(conn, &files, &lie, &n));
            }
        });
        FakePython {
            addr,
            stop,
            served,
            heard,
        }
    }
}

impl Drop for FakePython {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// main.py's handle_client: one read, `chunk NAME N`, hash + chunk, close.
fn serve_one(mut conn: TcpStream, files: &BTreeMap<String, Vec<u8>>, lie: &Lie, n: &AtomicU64) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let Ok(len) = conn.read(&mut buf) else { return };
    let req = String::from_utf8_lossy(&buf[..len]);
    let parts: Vec<&str> = req.split_whitespace().collect();
    if parts.len() != 3 || parts[0] != "chunk" {
        return;
    }
    let (Some(file), Ok(index)) = (files.get(parts[1]), parts[2].parse::<usize>()) else {
        return;
    };
    let file = match lie {
        Lie::WrongFile(other) => other,
        _ => file,
    };
    let start = ((index.max(1) - 1) * 1024).min(file.len());
    let chunk = &file[start..(start + 1024).min(file.len())];
    let hash = match lie {
        Lie::BadHash => sha(b"not this chunk"),
        _ => sha(chunk),
    };
    let mut out = hash.into_bytes();
    out.extend_from_slice(chunk);
    let _ = conn.write_all(&out);
    n.fetch_add(1, Ordering::Relaxed);
}

/// main.py's download_chunk, once: connect, send the request, read the hash line and up to
/// 1 KiB until the server closes; `None` on any failure or a hash mismatch.
pub fn fetch_chunk(addr: SocketAddr, name: &str, index: u64) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("chunk {name} {index}").as_bytes())
        .ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    if all.len() < 64 {
        return None;
    }
    let (h, body) = all.split_at(64);
    (h == sha(body).as_bytes() && body.len() <= 1024).then(|| body.to_vec())
}

/// main.py's download_file: one thread per chunk, all started at once, each trying up to 5
/// times; the whole file, or `None` if a chunk failed.
pub fn fetch_file(addr: SocketAddr, name: &str, total_chunks: u64) -> Option<Vec<u8>> {
    let threads: Vec<_> = (1..=total_chunks)
        .map(|i| {
            let name = name.to_owned();
            std::thread::spawn(move || (0..5).find_map(|_| fetch_chunk(addr, &name, i)))
        })
        .collect();
    let mut out = Vec::new();
    for t in threads {
        out.extend(t.join().ok()??);
    }
    Some(out)
}
