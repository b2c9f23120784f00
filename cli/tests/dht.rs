//! `--dht` end to end through the real binary (issue 30): a local mainline DHT testnet in this
//! process (nodes on 127.0.0.1 only), a seeder and a downloader on 127.0.0.1 with different
//! discovery ports, so no broadcast of one reaches the other: the downloader finds the seeder
//! through the DHT alone. Every peer is given `--dht-bootstrap` at the testnet: no test here
//! reaches the public DHT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the test data and the helpers of the namespace tests
mod hosts;

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mainline::Testnet;
use p2pshare_proto::ContentId;

const BIN: &str = env!("CARGO_BIN_EXE_p2pshare");

/// A discovery port of its own for test `n` of this binary (as e2e.rs picks them).
fn dport(n: u16) -> u16 {
    30000 + (std::process::id() % 1500) as u16 * 20 + n
}

fn net_args(dport: u16) -> Vec<String> {
    [
        "--broadcast",
        "127.255.255.255",
        "--no-multicast",
        "--discovery-port",
        &dport.to_string(),
        "--interval",
        "1",
        "--port",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// `--dht` and the testnet's nodes as its only bootstrap nodes.
fn dht_args(testnet: &Testnet) -> Vec<String> {
    let mut a = vec!["--dht".to_owned()];
    for b in &testnet.bootstrap {
        assert!(
            b.starts_with("127.0.0.1:"),
            "a testnet node off loopback: {b}"
        );
        a.push("--dht-bootstrap".into());
        a.push(b.clone());
    }
    a
}

/// A testnet of `n` DHT nodes, all on 127.0.0.1.
fn testnet(n: usize) -> Testnet {
    Testnet::builder(n)
        .bind_address(Ipv4Addr::LOCALHOST)
        .build()
        .unwrap()
}

/// A `p2pshare serve` with its own folder, its stderr in a file there; killed (by its pid)
/// when dropped.
struct Peer {
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
    _logs: tempfile::TempDir,
}

impl Peer {
    fn serve(dport: u16, files: &[(&str, &[u8])], extra: &[String]) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("serve.log");
        let child = Command::new(BIN)
            .args(net_args(dport))
            .arg("--shared")
            .arg(dir.path())
            .args(extra)
            .args(["-v", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let lock = dir.path().join(".p2pshare.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&lock).map_or(true, |b| b.is_empty()) {
            assert!(Instant::now() < deadline, "peer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Peer {
            child,
            dir,
            log,
            _logs: logs,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `status --json` through its control socket (`None` while the socket is not up yet).
    fn status(&self) -> Option<serde_json::Value> {
        let out = Command::new(BIN)
            .arg("--shared")
            .arg(self.dir.path())
            .args(["status", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_str(&stdout(&out)).unwrap())
    }

    /// Waits until its status satisfies `done` (10 s at most).
    fn status_until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status();
            if let Some(s) = s.as_ref().filter(|s| done(s)) {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 10 s: {s:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A seeder sharing `bytes` as `name`, announced in the testnet: the seeder and the content id.
fn announced_seeder(dport: u16, testnet: &Testnet, name: &str, bytes: &[u8]) -> (Peer, String) {
    let seeder = Peer::serve(dport, &[(name, bytes)], &dht_args(testnet));
    let s = seeder.status_until("announce", |s| {
        s["dht"]["announced"].as_u64().unwrap_or(0) >= 1
    });
    let content = s["shared"][0]["content"].as_str().unwrap().to_owned();
    // Its routing table holds testnet nodes (the size is read every 5 s).
    seeder.status_until("routing table", |s| {
        s["dht"]["routing"].as_u64().unwrap_or(0) > 0
    });
    (seeder, content)
}

/// A one-shot `get` of `what` in a new folder on discovery port `dport`, with `--dht` at the
/// testnet: its output and folder.
fn get(dport: u16, testnet: &Testnet, what: &str) -> (Output, tempfile::TempDir, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(net_args(dport))
        .arg("--shared")
        .arg(dir.path())
        .args(dht_args(testnet))
        .args(["get", what, "--json", "--timeout", "60"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out, dir, start.elapsed())
}

/// The seconds of the first `dht: N holders of … after S s` line.
fn first_holder_after(err: &str) -> Option<f64> {
    err.lines()
        .find(|l| l.starts_with("dht: ") && l.contains(" after "))
        .and_then(|l| l.split(" after ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
}

fn file_equals(dir: &Path, name: &str, bytes: &[u8]) {
    let mut got = Vec::new();
    File::open(dir.join(format!("dl_{name}")))
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(got == bytes, "dl_{name} differs from what was shared");
}

#[test]
fn a_get_by_content_id_finds_its_holder_through_the_dht() {
    let testnet = testnet(10);
    let bytes = hosts::data(3 << 20, 30);
    let (seeder, content) = announced_seeder(dport(0), &testnet, "far.bin", &bytes);
    // Another discovery port: no broadcast of the seeder reaches the downloader.
    let (out, dir, took) = get(dport(1), &testnet, &content);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "get failed: {err}\nseeder:\n{}",
        seeder.log()
    );
    assert!(err.contains("looking in the DHT"), "{err}");
    let first = first_holder_after(&err).expect("a dht holders line");
    let announce = seeder
        .log()
        .lines()
        .find_map(|l| l.find("dht: announced").map(|i| l[i..].to_owned()))
        .unwrap_or_default();
    println!("DHT_ANNOUNCE seeder: {announce}");
    println!(
        "DHT_FIRST_HOLDER seconds={first:.3} get_seconds={:.3} (lookup start to first holder; \
         the get waits {:?} for the LAN first)",
        took.as_secs_f64(),
        p2pshare_dht_after()
    );
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["content"], content);
    let port = seeder.status().unwrap()["transfer_port"].as_u64().unwrap();
    assert_eq!(j["sources"][0]["addr"], format!("127.0.0.1:{port}"), "{j}");
    file_equals(dir.path(), "far.bin", &bytes);
}

/// What the CLI waits before asking the DHT (`commands::DHT_AFTER`), for the line printed.
fn p2pshare_dht_after() -> Duration {
    Duration::from_secs(1)
}

/// A liar's DHT node on the testnet that announces 127.0.0.1:`port` as a holder of `content`
/// (hex): what a lying DHT node makes a lookup return. Keep it alive while it should answer.
#[allow(deprecated)] // mainline's blocking API: the test's own announce of a fake holder
fn announce_fake(testnet: &Testnet, content: &str, port: u16) -> mainline::Dht {
    let liar = mainline::Dht::builder()
        .bootstrap(&testnet.bootstrap)
        .bind_address(Ipv4Addr::LOCALHOST)
        .build()
        .unwrap();
    let id = ContentId::from_hex(content).unwrap();
    let key = mainline::Id::from(p2pshare_host::dht::content_key(&id));
    liar.announce_peer(key, Some(port)).unwrap();
    liar
}

/// A TCP listener on loopback that accepts and drops every connection (speaks nothing),
/// counting them.
fn mute_holder() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

#[test]
fn a_fake_holder_in_the_dht_costs_a_bounded_number_of_dials() {
    let testnet = testnet(10);
    let bytes = hosts::data(1 << 20, 31);
    // The file's content id, from a peer that shares it without the DHT.
    let content = {
        let p = Peer::serve(dport(4), &[("honest.bin", &bytes)], &[]);
        let s = p.status_until("scan", |s| s["shared"][0]["content"].is_string());
        s["shared"][0]["content"].as_str().unwrap().to_owned()
    };
    // A liar announces an address that speaks nothing under its key.
    let (fake_port, dials) = mute_holder();
    let _liar = announce_fake(&testnet, &content, fake_port);
    // Only the liar holds it: the get finds the fake holder, dials it at most twice for its
    // one lookup (a kept target would be dialled every interval: 4 times in these 4 s), and
    // gives up at its deadline.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(net_args(dport(3)))
        .arg("--shared")
        .arg(dir.path())
        .args(dht_args(&testnet))
        .args(["get", &content, "--timeout", "4"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "got it from a holder that speaks nothing? {err}"
    );
    assert!(
        err.contains(&format!("127.0.0.1:{fake_port}")),
        "the fake holder was not found: {err}"
    );
    let alone = dials.load(Ordering::SeqCst);
    println!("DHT_FAKE_HOLDER alone: dials={alone} in a 4 s get (1 lookup)");
    assert!(
        (1..=2).contains(&alone),
        "{alone} dials of a holder that speaks nothing"
    );
    // Now the honest seeder is announced too: the download completes from it.
    let (seeder, honest) = announced_seeder(dport(2), &testnet, "honest.bin", &bytes);
    assert_eq!(honest, content);
    let (out, dir, took) = get(dport(3), &testnet, &content);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "get failed: {err}\nseeder:\n{}",
        seeder.log()
    );
    file_equals(dir.path(), "honest.bin", &bytes);
    let n = dials.load(Ordering::SeqCst) - alone;
    println!(
        "DHT_FAKE_HOLDER beside an honest one: dials={n} get_seconds={:.3}",
        took.as_secs_f64()
    );
    let lookups = 1 + (took.as_secs() / p2pshare_host::dht::LOOKUP_AGAIN_AFTER.as_secs()) as usize;
    assert!(
        n <= 2 * lookups,
        "{n} dials of a holder that speaks nothing"
    );
}

#[test]
fn a_holder_that_presents_another_key_costs_bounded_dials_beside_the_honest_one() {
    let testnet = testnet(10);
    let bytes = hosts::data(1 << 20, 34);
    // A real p2pshare peer with another key and other files, behind a relay that counts the
    // connections made to it; not on the downloader's discovery port.
    let other = Peer::serve(dport(12), &[("other.bin", &hosts::data(4096, 35))], &[]);
    let other_port =
        other.status_until("its port", |s| s["transfer_port"].as_u64() > Some(0))["transfer_port"]
            .as_u64()
            .unwrap();
    let (fake_port, dials) = hosts::counting_relay(
        Ipv4Addr::LOCALHOST.into(),
        (Ipv4Addr::LOCALHOST, u16::try_from(other_port).unwrap()).into(),
    );
    let (seeder, content) = announced_seeder(dport(13), &testnet, "true.bin", &bytes);
    // A liar announces the other peer under the content's key, beside the honest seeder.
    let _liar = announce_fake(&testnet, &content, fake_port);
    let (out, dir, took) = get(dport(14), &testnet, &content);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "get failed: {err}\nseeder:\n{}\nother:\n{}",
        seeder.log(),
        other.log()
    );
    file_equals(dir.path(), "true.bin", &bytes);
    assert!(
        err.contains(&format!("127.0.0.1:{fake_port}")),
        "the lookup did not name the other peer: {err}"
    );
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let seeder_port = seeder.status().unwrap()["transfer_port"].as_u64().unwrap();
    for src in j["sources"].as_array().unwrap() {
        assert_eq!(src["addr"], format!("127.0.0.1:{seeder_port}"), "{j}");
    }
    let n = dials.load(Ordering::SeqCst);
    let lookups = 1 + (took.as_secs() / p2pshare_host::dht::LOOKUP_AGAIN_AFTER.as_secs()) as usize;
    println!(
        "DHT_OTHER_KEY dials={n} lookups={lookups} get_seconds={:.3} (a real peer with \
         another key, announced beside the honest seeder)",
        took.as_secs_f64()
    );
    assert!(
        // At most DHT_DIALS (2) a lookup; one when its connection opens and stays.
        (1..=2 * lookups).contains(&n),
        "{n} dials of a peer without the file"
    );
}

#[test]
fn the_prompt_asks_the_dht_and_peers_v_says_dht() {
    let testnet = testnet(10);
    let bytes = hosts::data(1 << 20, 32);
    let (_seeder, content) = announced_seeder(dport(5), &testnet, "prompt.bin", &bytes);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(net_args(dport(6)))
        .arg("--shared")
        .arg(dir.path())
        .args(dht_args(&testnet))
        .args(["--no-web", "-v"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("get {content}\npeers\nstatus\nquit\n");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("looking in the DHT"), "{text}");
    assert!(text.contains("Saved "), "{text}");
    file_equals(dir.path(), "prompt.bin", &bytes);
    assert!(
        text.lines()
            .any(|l| l.contains("127.0.0.1:") && l.ends_with(", dht)")),
        "peers -v does not say dht: {text}"
    );
    assert!(text.contains("dht: node on UDP"), "{text}");
}

#[test]
fn a_link_or_an_id_through_a_running_peer_finds_its_holder_through_the_dht() {
    let testnet = testnet(10);
    let bytes = hosts::data(2 << 20, 33);
    let (seeder, content) = announced_seeder(dport(7), &testnet, "linked.bin", &bytes);
    let link = format!("p2pshare://{content}");
    // A one-shot with a peer of its own.
    let (out, dir, _) = get(dport(8), &testnet, &link);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "get LINK failed: {err}\nseeder:\n{}",
        seeder.log()
    );
    assert!(err.contains("looking in the DHT"), "{err}");
    file_equals(dir.path(), "linked.bin", &bytes);
    // Through a running peer's control socket: the link, and the bare content id.
    for (n, what) in [(9, link.as_str()), (10, content.as_str())] {
        let mut extra = dht_args(&testnet);
        extra.push("--no-web".into());
        let running = Peer::serve(dport(n), &[], &extra);
        running.status_until("control socket", |_| true);
        let out = Command::new(BIN)
            .arg("--shared")
            .arg(running.dir.path())
            .args(["get", what, "--timeout", "60"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            out.status.success(),
            "get {what}: {text}\n{}",
            running.log()
        );
        assert!(text.contains("looking in the DHT"), "{text}");
        file_equals(running.dir.path(), "linked.bin", &bytes);
    }
}

#[test]
fn bad_dht_flags_are_one_line_and_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--dht", "--dht-bootstrap", "nonsense"],
            "--dht-bootstrap nonsense",
        ),
        (
            vec!["--dht", "--dht-bootstrap", "[::1]:6881"],
            "the DHT is IPv4",
        ),
        (vec!["--dht-bootstrap", "127.0.0.1:1"], "--dht"),
    ] {
        let out = Command::new(BIN)
            .args(net_args(dport(11)))
            .arg("--shared")
            .arg(dir.path())
            .args(&args)
            .arg("serve")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} started: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.trim().lines().count() <= 3, "{args:?}: {err}");
    }
}
