//! A session that asks and never reads, on both runtimes, over loopback only (every config
//! broadcasts to 127.255.255.255): once the node pauses it (`NetOp::Pause`), the runtime reads
//! no more of it, so the node refuses at most the rest of the buffer that filled its queue,
//! once per pause. A runtime that read on before the pause reached it handed the node more
//! buffers of requests, each refused at a cost (the smol runtime did: 2-3 buffers per
//! connection, three times the mio seeder's work in the hostile scenario `ask-never-read`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use p2pshare_host::Handle;
use p2pshare_proto::noise::MAX_RECORD_PLAINTEXT;
use p2pshare_proto::wire::Frame;
use p2pshare_proto::wire::frame::{Message, encode_message};
use p2pshare_proto::{ContentId, PeerId, Stats};

#[path = "../../proto/tests/support/secure.rs"]
mod secure;
mod support;

use secure::{Key, Secure};
use support::Start;

/// What both runtimes read from a socket at most per `Received` input (their `READ_BUF`).
const READ_BUF: usize = 64 << 10;

fn hello(peer: PeerId, port: u16) -> Vec<u8> {
    encode_message(&Message::Hello {
        peer,
        instance: 1,
        port,
        revision: 1,
    })
}

/// Answers as `me` on a loopback port, sharing nothing, so that the node can reach the peer
/// whose hello names that port (one it cannot reach is forgotten with its sessions).
fn quiet_peer(me: Key) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            std::thread::spawn(move || {
                let Ok(mut s) = Secure::accept(s, &me) else {
                    return;
                };
                if s.send(&hello(me.id, port)).is_err() {
                    return;
                }
                {
                    while let Some(f) = s.read_frame() {
                        let answer = match f {
                            Frame::Message(Message::CatalogRequest { .. }) => {
                                encode_message(&Message::Catalog {
                                    revision: 1,
                                    page: 0,
                                    pages: 1,
                                    files: Vec::new(),
                                })
                            }
                            Frame::Message(Message::Ping) => encode_message(&Message::Pong),
                            _ => continue,
                        };
                        if s.send(&answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// Waits (bounded) until `h` shares `name`; returns its content id.
fn shared(h: &Handle, name: &str) -> ContentId {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let snap = h.snapshot().unwrap();
        if let Some(f) = snap.shared.iter().find(|f| f.name == name) {
            return f.content;
        }
        assert!(Instant::now() < until, "{name} was never shared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens a session to a fresh seeder of `runtime` that asks for its chunks without end and
/// never reads; returns the seeder's counters once the session is paused and the seeder has
/// stopped reading it (a write waited a whole second), and the length of one request.
fn ask_never_read(runtime: Start, offset: u16) -> (Stats, usize) {
    let dir = tempfile::tempdir().unwrap();
    let chunks = 4;
    std::fs::write(
        dir.path().join("big.bin"),
        support::contents(u64::from(offset), chunks << 20),
    )
    .unwrap();
    let handle = runtime(&support::config(dir.path(), 30 + offset)).unwrap();
    let content = shared(&handle, "big.bin");
    let port = handle.snapshot().unwrap().transfer_port;

    let me = Key::of([offset as u8 + 1; 32]);
    let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut s = Secure::dial(s, &me, None).unwrap();
    s.send(&hello(me.id, quiet_peer(me))).unwrap();
    // Every request is as long as the first (indexes below 24 take one byte in CBOR).
    let requests: Vec<Vec<u8>> = (0..chunks as u32)
        .map(|index| encode_message(&Message::ChunkRequest { content, index }))
        .collect();
    let batch = requests.concat().repeat(4096);
    s.stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    // Sealed batch after sealed batch (a sealed record is never sent twice).
    let mut sealed = s.seal(&batch);
    let mut off = 0;
    loop {
        assert!(Instant::now() < until, "the seeder never stopped reading");
        match s.stream.write(&sealed[off..]) {
            Ok(n) => {
                off += n;
                if off == sealed.len() {
                    sealed = s.seal(&batch);
                    off = 0;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Not read for a second: paused, or only slow (a busy machine)?
                let stats = handle.snapshot().unwrap().stats;
                if stats.connections_paused > 0 {
                    handle.shutdown();
                    return (stats, requests[0].len());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the seeder closed the session: {e}"),
        }
    }
}

fn reads_nothing_past_a_pause(runtime: Start, offset: u16) {
    let (stats, request) = ask_never_read(runtime, offset);
    // The buffer that fills the queue holds at most this many requests (one may begin in the
    // buffer before it; and a read may complete a sealed record begun in the read before it,
    // whose plaintext comes out with it): those after the one that filled it are refused (or
    // dropped, once the session's budget is spent). A resume reads again, once per later
    // pause.
    let per_read = (READ_BUF + MAX_RECORD_PLAINTEXT) / request + 1;
    let refused = stats.requests_refused + stats.answers_dropped;
    assert!(stats.chunks_served > 0, "nothing served: {stats:?}");
    assert!(
        refused > 0,
        "no request refused: the queue never filled ({stats:?})"
    );
    assert!(
        refused <= stats.connections_paused * per_read as u64,
        "{refused} requests refused for {} pauses, at most {per_read} each: the runtime read \
         past a pause ({stats:?})",
        stats.connections_paused
    );
}

#[test]
fn mio_reads_nothing_past_a_pause() {
    reads_nothing_past_a_pause(p2pshare_mio::start, 0);
}

#[test]
fn smol_reads_nothing_past_a_pause() {
    reads_nothing_past_a_pause(p2pshare_smol::start, 1);
}
