//! End to end with the original Python peers (issue 16), on loopback: the real `p2pshare`
//! binary on both runtimes against fake Python peers (`fake_python`, the protocol of main.py):
//! it lists their files, downloads from two of them while one lies, serves them, and a file
//! held by both kinds is listed once and fetched natively. Broadcasts go to 127.255.255.255 on
//! a discovery port of each test's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_python;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fake_python::{FakePython, Lie};

const BIN: &str = env!("CARGO_BIN_EXE_p2pshare");

/// A discovery port of its own for test `n` of this binary (apart from e2e.rs's).
fn dport(n: u16) -> u16 {
    31000 + (std::process::id() % 1500) as u16 * 20 + n
}

fn bcast(dport: u16) -> SocketAddr {
    SocketAddr::from(([127, 255, 255, 255], dport))
}

fn net_args(dport: u16, port: u16) -> Vec<String> {
    [
        "--broadcast",
        "127.255.255.255",
        "--discovery-port",
        &dport.to_string(),
        "--interval",
        "1",
        "--port",
        &port.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn p2pshare(dport: u16, shared: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(net_args(dport, 0))
        .arg("--shared")
        .arg(shared)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `p2pshare serve` on `port`, killed by its pid when dropped.
struct Serve {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(dport: u16, port: u16, files: &[(&str, &[u8])], runtime: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let child = Command::new(BIN)
            .args(net_args(dport, port))
            .arg("--shared")
            .arg(dir.path())
            .args(["--runtime", runtime, "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lock = dir.path().join(".p2pshare.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&lock).map_or(true, |b| b.is_empty()) {
            assert!(Instant::now() < deadline, "peer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child, _dir: dir }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn list_json(dport: u16, dir: &Path) -> serde_json::Value {
    let out = p2pshare(dport, dir, &["list", "--wait", "1.5", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn get(dport: u16, dir: &Path, runtime: &str, name: &str) -> Output {
    p2pshare(
        dport,
        dir,
        &["--runtime", runtime, "get", name, "--timeout", "60"],
    )
}

fn no_partials(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn lists_and_downloads_with_a_liar(n: u16, runtime: &str) {
    let d = dport(n);
    let file = data(300 * 1024 + 77, u64::from(n));
    let every = Duration::from_millis(200);
    let honest = FakePython::start(
        "127.0.0.1",
        bcast(d),
        &[("report.pdf", &file)],
        Lie::Honest,
        every,
        None,
    );
    let liar = FakePython::start(
        "127.0.0.1",
        bcast(d),
        &[("report.pdf", &file)],
        Lie::BadHash,
        every,
        None,
    );
    let dl = tempfile::tempdir().unwrap();

    // Listed once (same hash), marked, size as its upper bound, held by both.
    let list = list_json(d, dl.path());
    let files = list["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{list}");
    assert_eq!(files[0]["names"][0], "report.pdf");
    assert_eq!(files[0]["python"], true);
    assert_eq!(files[0]["peers"], 2);
    assert_eq!(files[0]["size"], 301 * 1024);
    let out = p2pshare(d, dl.path(), &["peers", "--wait", "1.5"]);
    let peers = String::from_utf8_lossy(&out.stdout).into_owned();
    for p in [&honest, &liar] {
        assert!(
            peers.contains(&format!("{}  (python, unauthenticated)", p.addr)),
            "{peers}"
        );
    }

    // One lies about every chunk's hash: banned, its chunks fetched from the other.
    let out = get(d, dl.path(), runtime, "report.pdf");
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("rejected"),
        "the liar's chunks were not rejected: {said}"
    );
    assert!(std::fs::read(dl.path().join("dl_report.pdf")).unwrap() == file);
    no_partials(dl.path());
    drop(liar);

    // Another serves a different file under the same name and hash, with true chunk hashes:
    // only the whole-file check can tell; the file is fetched again from one holder alone.
    let other = data(file.len(), 999);
    let liar = FakePython::start(
        "127.0.0.1",
        bcast(d),
        &[("report.pdf", &file)],
        Lie::WrongFile(other),
        every,
        None,
    );
    let dl2 = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while list_json(d, dl2.path())["files"][0]["peers"] != 2 {
        assert!(
            Instant::now() < deadline,
            "the first liar was not forgotten"
        );
    }
    let out = get(d, dl2.path(), runtime, "report.pdf");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        liar.served.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the liar was never asked: {}",
        text(&out)
    );
    assert!(std::fs::read(dl2.path().join("dl_report.pdf")).unwrap() == file);
    no_partials(dl2.path());
    assert!(honest.served.load(std::sync::atomic::Ordering::Relaxed) > 0);
    drop((honest, liar));
}

#[test]
fn python_files_listed_and_fetched_despite_a_liar_mio() {
    lists_and_downloads_with_a_liar(0, "mio");
}

#[test]
fn python_files_listed_and_fetched_despite_a_liar_smol() {
    lists_and_downloads_with_a_liar(1, "smol");
}

fn mixed(n: u16, runtime: &str) {
    let d = dport(n);
    let file = data(200 * 1024 + 5, 40 + u64::from(n));
    let seeder = Serve::start(d, 0, &[("both.bin", &file)], runtime);
    let py = FakePython::start(
        "127.0.0.1",
        bcast(d),
        &[("both.bin", &file)],
        Lie::Honest,
        Duration::from_millis(200),
        None,
    );
    let dl = tempfile::tempdir().unwrap();
    // The seeder hears the Python peer and vouches, in its own JSON, that its both.bin has
    // that SHA-256: one entry, native.
    let deadline = Instant::now() + Duration::from_secs(15);
    let list = loop {
        let list = list_json(d, dl.path());
        if list["files"].as_array().is_some_and(|f| f.len() == 1) {
            break list;
        }
        assert!(Instant::now() < deadline, "not listed once: {list}");
    };
    assert_eq!(list["files"][0]["python"], false, "{list}");
    assert_eq!(list["files"][0]["size"], file.len(), "{list}");
    let out = get(d, dl.path(), runtime, "both.bin");
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(dl.path().join("dl_both.bin")).unwrap() == file);
    assert_eq!(
        py.served.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "fetched from the Python peer: {}",
        text(&out)
    );
    drop((seeder, py));
}

#[test]
fn a_file_on_both_kinds_is_listed_once_and_fetched_natively_mio() {
    mixed(2, "mio");
}

#[test]
fn a_file_on_both_kinds_is_listed_once_and_fetched_natively_smol() {
    mixed(3, "smol");
}

/// Waits until the fake heard `name` in a p2pshare JSON announcement.
fn heard(py: &FakePython, name: &str) -> (u64, String, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(f) = py.heard.lock().unwrap().get(name) {
            return f.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never announced to Python peers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serves_python(n: u16, runtime: &str) {
    let d = dport(n);
    let small = data(10 * 1024 + 3, 5);
    let big = data(1 << 20, 6);
    let s = Serve::start(
        d,
        0,
        &[
            ("small.txt", &small),
            ("big.bin", &big),
            ("has space.txt", b"x"),
        ],
        runtime,
    );
    // A Python peer is heard: from then on the seeder announces in JSON too.
    let py = FakePython::start(
        "127.0.0.1",
        bcast(d),
        &[("mine.txt", b"python's own")],
        Lie::Honest,
        Duration::from_millis(300),
        Some(d),
    );
    let (chunks, hash, at) = heard(&py, "small.txt");
    assert_eq!(
        (chunks, hash.as_str()),
        (11, fake_python::sha(&small).as_str())
    );
    assert!(
        !py.heard.lock().unwrap().contains_key("has space.txt"),
        "a name Python cannot ask for"
    );
    assert_eq!(
        fake_python::fetch_file(at, "small.txt", chunks).unwrap(),
        small
    );

    // 1 MiB the Python way: 1,024 connections opened at once, far past the per-IP budget; the
    // burst waits to be served instead of being reset.
    let (chunks, hash, at) = heard(&py, "big.bin");
    assert_eq!(
        (chunks, hash.as_str()),
        (1024, fake_python::sha(&big).as_str())
    );
    let start = Instant::now();
    let got = fake_python::fetch_file(at, "big.bin", chunks).expect("a chunk failed 5 times");
    assert!(got == big, "1 MiB differs");
    eprintln!("1 MiB the Python way from {runtime}: {:?}", start.elapsed());

    // Malformed, unknown, a path, a chunk past the end: closed without a byte.
    for bad in [
        "chunk ../small.txt 1",
        "chunk nothing.txt 1",
        "chunk small.txt 12",
        "chunk small.txt 0",
    ] {
        let mut c = std::net::TcpStream::connect(at).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut c, bad.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut got);
        assert!(got.is_empty(), "{bad:?} was answered {} bytes", got.len());
    }
    drop((s, py));
}

#[test]
fn python_peers_fetch_from_us_mio() {
    serves_python(4, "mio");
}

#[test]
fn python_peers_fetch_from_us_smol() {
    serves_python(5, "smol");
}

/// The download rate from one and from two fake Python peers, for a 10 MiB file (printed;
/// run with `P2PSHARE_PY_RATE=1 cargo test --release -p p2pshare --test python rate --
/// --nocapture`). Skipped otherwise: it measures, it does not check more than the others.
#[test]
fn rate_from_python_peers_10_mib() {
    if std::env::var_os("P2PSHARE_PY_RATE").is_none() {
        return;
    }
    let file = data(10 << 20, 77);
    for (k, holders) in [(6, 1), (7, 2)] {
        let d = dport(k);
        let every = Duration::from_millis(300);
        let fakes: Vec<FakePython> = (0..holders)
            .map(|_| {
                FakePython::start(
                    "127.0.0.1",
                    bcast(d),
                    &[("ten.bin", &file)],
                    Lie::Honest,
                    every,
                    None,
                )
            })
            .collect();
        for runtime in ["mio", "smol"] {
            let dl = tempfile::tempdir().unwrap();
            let start = Instant::now();
            let out = get(d, dl.path(), runtime, "ten.bin");
            let secs = start.elapsed().as_secs_f64();
            assert!(out.status.success(), "{}", text(&out));
            assert!(std::fs::read(dl.path().join("dl_ten.bin")).unwrap() == file);
            let line = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            eprintln!(
                "10 MiB from {holders} fake Python peer(s), {runtime}: {secs:.2} s for the whole get ({:.1} MB/s); {line}",
                10.0 * 1.048_576 / secs
            );
        }
        drop(fakes);
    }
}
