//! What encryption costs: `cargo run --release -p p2pshare-bench --bin crypto`.
//!
//! Prints, for each Noise suite (AES-256-GCM through ring, ChaCha20-Poly1305 through ring):
//! sealing and opening one full record (65,519 bytes of plaintext, the "64 KiB message"), and
//! a 1 MiB chunk frame sealed as p2pshare would send it (its 41-byte header, then the payload);
//! the XX handshake in memory (both sides' CPU, keys made beforehand, as a node makes them at
//! start); Ed25519 signing and verifying a discovery
//! datagram. Beside them, in the same run: memcpy and SHA-256 of the same sizes (every chunk
//! is hashed anyway), and serving a file over one loopback TCP connection three ways — today's
//! `sendfile(2)` (zero copy), today's buffered path (`pread` + `write`), and `pread` + seal +
//! `write` (what an encrypted connection must do: `sendfile` cannot carry encrypted bytes) —
//! with the sender thread's CPU seconds per GiB. Figures are medians of `CRYPTO_ROUNDS` rounds
//! (default 5); `CRYPTO_SERVE_MIB` sets the served file's size (default 256).

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2pshare_proto::Identity;
use p2pshare_proto::noise::{
    Established, Handshake, LocalKeys, MAX_RECORD_PLAINTEXT, Suite, cpu_has_aes,
};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use sha2::Digest;

const CHUNK: usize = 1 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median over `rounds` of the seconds per call of `f` run `n` times.
fn per_call(rounds: usize, n: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    f();
                }
                t.elapsed().as_secs_f64() / n as f64
            })
            .collect(),
    )
}

fn keys(seed: u8) -> LocalKeys {
    let mut rng = KeyRng::new([seed; 32]);
    LocalKeys::new(&Identity::generate(&mut rng), &mut rng)
}

/// A handshake between two parties in memory; both ends.
fn pair(aes: bool, seed: u8) -> (Established, Established) {
    pair_of(&keys(1), &keys(2), aes, seed)
}

/// A handshake between the holders of `kd` (dialing) and `ka`, in memory; both ends.
fn pair_of(kd: &LocalKeys, ka: &LocalKeys, aes: bool, seed: u8) -> (Established, Established) {
    let mut d = Handshake::dial(kd, Some(ka.key()), aes, [seed; 32]);
    let mut a = Handshake::accept(ka, aes, [seed.wrapping_add(1); 32]);
    let mut bytes = Vec::new();
    while !d.is_done() {
        bytes.clear();
        d.poll_transmit(&mut bytes);
        a.handle_input(&bytes).expect("genuine");
        bytes.clear();
        a.poll_transmit(&mut bytes);
        d.handle_input(&bytes).expect("genuine");
    }
    bytes.clear();
    let d = d.finish(&mut bytes).expect("dialer done");
    a.handle_input(&bytes).expect("genuine");
    let a = a.finish(&mut Vec::new()).expect("acceptor done");
    (d, a)
}

fn gbps(bytes: usize, secs: f64) -> String {
    format!("{:.2} GB/s", bytes as f64 / secs / 1e9)
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// How the serving side sends the file.
#[derive(Clone, Copy)]
enum Serve {
    SendFile,
    Buffered,
    Sealed(bool),
}

/// Serves `path` whole over one loopback connection to a reader that discards (or, for
/// `Sealed`, opens) what it gets; returns the wall seconds and the sender's CPU seconds.
fn serve(path: &std::path::Path, how: Serve) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let file = Arc::new(File::open(path).expect("open"));
    let len = file.metadata().expect("stat").len();
    let (mut tx_side, mut rx_side) = match how {
        Serve::Sealed(aes) => {
            let (d, a) = pair(aes, 9);
            (Some(d), Some(a))
        }
        _ => (None, None),
    };
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 4 * CHUNK];
        let mut pending = Vec::with_capacity(4 * CHUNK + 65_537);
        let mut plain = Vec::with_capacity(8 * CHUNK);
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            match &mut rx_side {
                Some(rx) => {
                    pending.extend_from_slice(&buf[..n]);
                    let used = rx.transport.open(&pending, &mut plain).expect("open");
                    pending.drain(..used);
                    got += plain.len() as u64;
                    plain.clear();
                }
                None => got += n as u64,
            }
        }
        got
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    let (t, cpu) = (Instant::now(), thread_cpu());
    match how {
        Serve::SendFile => {
            // What the runtimes did before connections were encrypted (a blocking socket here).
            let mut off = 0u64;
            while off < len {
                let want = (len - off) as usize;
                let n = rustix::fs::sendfile(s.as_fd(), &*file, Some(&mut off), want)
                    .expect("sendfile");
                assert!(n > 0, "the file ended early");
            }
        }
        Serve::Buffered | Serve::Sealed(_) => {
            let mut buf = vec![0u8; CHUNK];
            let mut sealed = Vec::with_capacity(CHUNK + 1024);
            let mut off = 0u64;
            while off < len {
                let n = (len - off).min(CHUNK as u64) as usize;
                file.read_exact_at(&mut buf[..n], off).expect("pread");
                match &mut tx_side {
                    Some(tx) => {
                        sealed.clear();
                        tx.transport.seal(&[0; 41], &mut sealed).expect("seal");
                        tx.transport.seal(&buf[..n], &mut sealed).expect("seal");
                        s.write_all(&sealed).expect("write");
                    }
                    None => s.write_all(&buf[..n]).expect("write"),
                }
                off += n as u64;
            }
        }
    }
    let cpu = (thread_cpu() - cpu).as_secs_f64();
    drop(s);
    let got = reader.join().expect("reader");
    let wall = t.elapsed().as_secs_f64();
    let want = match how {
        Serve::Sealed(_) => len + 41 * len.div_ceil(CHUNK as u64),
        _ => len,
    };
    assert_eq!(got, want, "every byte arrived");
    (wall, cpu)
}

fn main() {
    let rounds = env_usize("CRYPTO_ROUNDS", 5).max(1);
    let serve_mib = env_usize("CRYPTO_SERVE_MIB", 256).max(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "crypto bench: {rounds} rounds, medians; this CPU has AES instructions: {}; load average at start: {}",
        cpu_has_aes(),
        load.split_whitespace().next().unwrap_or("?")
    );
    println!();
    println!("| what | time | throughput |");
    println!("|---|---|---|");
    let record: Vec<u8> = (0..MAX_RECORD_PLAINTEXT).map(|i| (i % 251) as u8).collect();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 253) as u8).collect();
    for (name, aes) in [("AES-256-GCM", true), ("ChaCha20-Poly1305", false)] {
        let (mut d, _) = pair(aes, 1);
        assert_eq!(
            d.suite,
            if aes {
                Suite::AesGcm
            } else {
                Suite::ChaChaPoly
            }
        );
        let mut out = Vec::with_capacity(2 * CHUNK);
        let seal = per_call(rounds, 2000, || {
            out.clear();
            d.transport
                .seal(black_box(&record), &mut out)
                .expect("seal");
        });
        println!(
            "| {name}: seal one record (65,519 B) | {:.1} µs | {} |",
            seal * 1e6,
            gbps(record.len(), seal)
        );
        // Open needs the records in the order sealed: a fresh pair per round seals a batch,
        // then the opening of the batch is timed.
        let batch = 256;
        let open = median(
            (0..rounds)
                .map(|round| {
                    let (mut d, mut a) = pair(aes, 100 + 2 * round as u8);
                    let mut wire = Vec::with_capacity(batch * (record.len() + 18));
                    for _ in 0..batch {
                        d.transport.seal(&record, &mut wire).expect("seal");
                    }
                    let mut plain = Vec::with_capacity(record.len() + 64);
                    let t = Instant::now();
                    let mut at = 0;
                    for _ in 0..batch {
                        plain.clear();
                        let end = at + record.len() + 18;
                        at += a.transport.open(&wire[at..end], &mut plain).expect("open");
                    }
                    t.elapsed().as_secs_f64() / batch as f64
                })
                .collect(),
        );
        println!(
            "| {name}: open one record | {:.1} µs | {} |",
            open * 1e6,
            gbps(record.len(), open)
        );
        let frame = per_call(rounds, 100, || {
            out.clear();
            d.transport.seal(&[0; 41], &mut out).expect("seal");
            d.transport.seal(black_box(&chunk), &mut out).expect("seal");
        });
        println!(
            "| {name}: seal a 1 MiB chunk frame (18 records, +324 B) | {:.0} µs | {} |",
            frame * 1e6,
            gbps(CHUNK, frame)
        );
    }
    let mut dst = vec![0u8; record.len()];
    let copy = per_call(rounds, 20_000, || {
        dst.copy_from_slice(black_box(&record));
        black_box(&dst);
    });
    println!(
        "| baseline: memcpy of one record | {:.1} µs | {} |",
        copy * 1e6,
        gbps(record.len(), copy)
    );
    let sha = per_call(rounds, 50, || {
        black_box(sha2::Sha256::digest(black_box(&chunk)));
    });
    println!(
        "| baseline: SHA-256 of 1 MiB (every chunk pays it) | {:.0} µs | {} |",
        sha * 1e6,
        gbps(CHUNK, sha)
    );
    let (kd, ka) = (keys(1), keys(2));
    for (name, aes) in [("AES-256-GCM", true), ("ChaCha20-Poly1305", false)] {
        let mut seed = 0u8;
        let hs = per_call(rounds, 100, || {
            seed = seed.wrapping_add(2);
            black_box(pair_of(&kd, &ka, aes, seed));
        });
        println!(
            "| handshake, both sides, in memory ({name}) | {:.0} µs | – |",
            hs * 1e6
        );
    }
    let mut rng = KeyRng::new([5; 32]);
    let id = Identity::generate(&mut rng);
    let new_keys = per_call(rounds, 200, || {
        black_box(LocalKeys::new(&id, &mut rng));
    });
    println!(
        "| node start: Noise static key + its signature | {:.0} µs | – |",
        new_keys * 1e6
    );
    let a = Announcement {
        mark: Mark {
            instance: 1_700_000_000_000,
            seq: 1,
        },
        port: 10000,
        revision: 3,
        bye: false,
    };
    let data = signed::encode(&a, &id);
    let sign = per_call(rounds, 1000, || {
        black_box(signed::encode(black_box(&a), &id));
    });
    println!(
        "| discovery: encode + sign a datagram ({} B) | {:.1} µs | – |",
        data.len(),
        sign * 1e6
    );
    let dec = per_call(rounds, 100_000, || {
        black_box(signed::decode(black_box(&data)).expect("decodes").mark());
    });
    println!(
        "| discovery: decode a datagram (no signature check) | {:.2} µs | – |",
        dec * 1e6
    );
    let ver = per_call(rounds, 1000, || {
        let u = signed::decode(black_box(&data)).expect("decodes");
        black_box(u.verify().expect("verifies"));
    });
    println!(
        "| discovery: decode + verify a datagram | {:.1} µs | {:.0} /s on one core |",
        ver * 1e6,
        1.0 / ver
    );

    // Serving a file over loopback: today's two paths, and the encrypted one.
    let dir = std::env::temp_dir().join(format!("p2pshare-crypto-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("served");
    {
        let mut f = File::create(&path).expect("create");
        for _ in 0..serve_mib {
            f.write_all(&chunk).expect("write");
        }
    }
    println!();
    println!(
        "serving {serve_mib} MiB (in the page cache) over one loopback TCP connection, medians of {rounds}:"
    );
    println!();
    println!("| path | MB/s | sender CPU s per GiB |");
    println!("|---|---|---|");
    let ways = [
        ("sendfile (today, zero copy)", Serve::SendFile),
        (
            "pread + write (today, P2PSHARE_ZERO_COPY=0)",
            Serve::Buffered,
        ),
        (
            "pread + seal AES-256-GCM + write (reader opens)",
            Serve::Sealed(true),
        ),
        (
            "pread + seal ChaCha20-Poly1305 + write (reader opens)",
            Serve::Sealed(false),
        ),
    ];
    for (name, how) in ways {
        let _ = serve(&path, how); // warm-up
        let runs: Vec<(f64, f64)> = (0..rounds).map(|_| serve(&path, how)).collect();
        let wall = median(runs.iter().map(|r| r.0).collect());
        let cpu = median(runs.iter().map(|r| r.1).collect());
        let bytes = (serve_mib * CHUNK) as f64;
        println!(
            "| {name} | {:.0} | {:.3} |",
            bytes / wall / 1e6,
            cpu / (bytes / f64::from(1u32 << 30))
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
