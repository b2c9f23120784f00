//! End to end through the real `p2pshare` binary: real processes, real sockets, real files, on
//! one host. Every peer broadcasts to 127.255.255.255 only and each test takes its own discovery
//! port, so tests neither leak onto the LAN nor hear each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // its relay; the rest is the namespace tests'
mod hosts;

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_p2pshare");

/// A discovery port of its own for test `n` of this binary.
fn dport(n: u16) -> u16 {
    30000 + (std::process::id() % 1500) as u16 * 20 + n
}

fn net_args(dport: u16) -> Vec<String> {
    vec![
        "--broadcast".into(),
        "127.255.255.255".into(),
        "--discovery-port".into(),
        dport.to_string(),
        "--interval".into(),
        "1".into(),
        "--port".into(),
        "0".into(),
    ]
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

/// A `p2pshare serve` process with its own folder; killed (by its pid) when dropped.
struct Peer {
    child: Child,
    dir: tempfile::TempDir,
}

impl Peer {
    fn serve(dport: u16, files: &[(&str, &[u8])], extra: &[&str]) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let child = Command::new(BIN)
            .args(net_args(dport))
            .arg("--shared")
            .arg(dir.path())
            .args(extra)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Up once it holds the folder lock (it writes its pid into the lock file after locking).
        let lock = dir.path().join(".p2pshare.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&lock).map_or(true, |b| b.is_empty()) {
            assert!(Instant::now() < deadline, "peer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Peer { child, dir }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn p2pshare(dport: u16, shared: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(net_args(dport))
        .arg("--shared")
        .arg(shared)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The address of the one peer a `peers` one-shot on discovery port `port` hears (`ip:port  id`:
/// the first word), which must be on loopback.
fn lone_peer(port: u16, dir: &Path) -> String {
    let out = p2pshare(port, dir, &["peers", "--wait", "1.5"]);
    let addr = stdout(&out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    addr
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn three_peers_see_each_other_within_two_seconds() {
    let d = dport(0);
    let a = Peer::serve(d, &[("alpha.txt", b"alpha")], &[]);
    let b = Peer::serve(
        d,
        &[("beta.bin", &data(3 << 20, 2))],
        &["--runtime", "smol"],
    );
    let c = Peer::serve(d, &[("gamma.txt", b"gamma gamma")], &[]);
    let observer = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = p2pshare(d, observer.path(), &["list", "--wait", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(4));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["version"], 1);
    let list = &list["files"];
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["names"][0].as_str().unwrap().into())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha.txt", "beta.bin", "gamma.txt"]);
    let beta = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["names"][0] == "beta.bin")
        .unwrap();
    assert_eq!(beta["size"], 3 << 20);

    let out = p2pshare(d, observer.path(), &["peers", "--wait", "2"]);
    assert!(out.status.success());
    let peers: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(peers.len(), 3, "{peers:?}");
    assert!(
        peers.iter().all(|p| p.starts_with("127.0.0.1:")),
        "{peers:?}"
    );

    // Human list: name, size, peers, short id.
    let out = p2pshare(d, observer.path(), &["list", "--wait", "2"]);
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("beta.bin") && text.contains("3.0 MiB"),
        "{text}"
    );
    drop((a, b, c));
}

fn get_from_two(d: u16, runtimes: [&str; 3]) {
    // 64 MiB: on loopback a 24 MiB file took 0.25 s, a race the second seeder's link (dialled
    // as the download starts, as it should be) sometimes lost; both must take part.
    let file = data(64 << 20, 7);
    let s1 = Peer::serve(d, &[("movie.bin", &file)], &["--runtime", runtimes[0]]);
    let s2 = Peer::serve(d, &[("movie.bin", &file)], &["--runtime", runtimes[1]]);
    let dl = tempfile::tempdir().unwrap();
    // Wait until both seeders are known, so both take part from the start.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = p2pshare(d, dl.path(), &["list", "--wait", "1", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        if list["files"][0]["peers"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "seeders not listed: {list}");
    }
    let out = p2pshare(
        d,
        dl.path(),
        &[
            "--runtime",
            runtimes[2],
            "get",
            "movie.bin",
            "--timeout",
            "60",
        ],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let got = std::fs::read(dl.path().join("dl_movie.bin")).unwrap();
    assert!(got == file, "downloaded file differs");
    let text = stdout(&out);
    assert!(text.contains("from 2 peers"), "{text}");
    // One line per source, each with a positive chunk count.
    let counts: Vec<u32> = text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_suffix(" chunks")
                .or(l.trim().strip_suffix(" chunk"))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{text}");
    assert!(counts.iter().all(|&c| c > 0), "{text}");
    assert_eq!(counts.iter().sum::<u32>(), 64);
    // No partial left behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dl.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop((s1, s2));
}

#[test]
fn get_from_two_seeders_is_byte_identical_and_both_serve() {
    get_from_two(dport(1), ["mio", "mio", "mio"]);
}

#[test]
fn mio_and_smol_peers_mixed() {
    get_from_two(dport(2), ["smol", "mio", "smol"]);
}

#[test]
fn cli_errors_are_one_line_and_non_zero() {
    let d = dport(3);
    let dir = tempfile::tempdir().unwrap();
    // A port out of range, a get without a name, an unknown subcommand: usage errors (2).
    for args in [&["70000"][..], &["get"], &["fly"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("p2pshare: "), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    // A folder that is a file.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let out = p2pshare(d, &file, &["get", "x", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // A second peer on the same folder is refused with a clear message (a one-shot `get`
    // there goes through the running peer instead, and says what it says).
    let first = Peer::serve(d, &[], &[]);
    let out = p2pshare(d, first.dir.path(), &["serve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already uses"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = p2pshare(d, first.dir.path(), &["get", "x", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // A name nobody shares.
    let out = p2pshare(d, dir.path(), &["get", "nothing-here", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no peer shares a file named"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("dl_nothing-here").exists());
    // --help documents every option.
    let help = stdout(&Command::new(BIN).arg("--help").output().unwrap());
    for opt in [
        "--shared",
        "--discovery-port",
        "--broadcast",
        "--peer",
        "--runtime",
        "--interval",
        "--verbose",
        "--port",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}

#[test]
fn the_prompt_driven_through_stdin() {
    let d = dport(4);
    let seeder = Peer::serve(d, &[("notes.txt", b"hello from the seeder\n")], &[]);
    let mut p = PromptProc::start(d);
    // Wait for the seeder to be listed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = p.cmd("l");
        if listed.contains("notes.txt") {
            break;
        }
        assert!(Instant::now() < deadline, "never listed: {listed}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let peers = p.cmd("peers");
    assert_eq!(peers.lines().count(), 1, "{peers}");
    assert!(peers.starts_with("127.0.0.1:"), "{peers}");
    assert!(p.cmd("get").starts_with("Usage: get"));
    assert!(p.cmd("fly away").starts_with("Unknown command"));
    let status = p.cmd("status");
    assert!(
        status.starts_with("peer ") && status.contains("\npeers: 1\n"),
        "{status}"
    );
    assert!(p.cmd("get missing.txt").contains("no peer shares"));
    let saved = p.cmd("get notes.txt");
    assert!(saved.starts_with("Saved "), "{saved}");
    assert_eq!(
        std::fs::read(p.dir.path().join("dl_notes.txt")).unwrap(),
        b"hello from the seeder\n"
    );
    assert_eq!(p.cmd("quit"), "");
    assert!(p.child.wait().unwrap().success());
    drop(seeder);

    // End of input also ends the prompt cleanly.
    let out = Command::new(BIN)
        .args(net_args(d))
        .arg("--shared")
        .arg(p.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(PromptProc::PROMPT));
}

#[test]
fn a_static_peer_beyond_the_broadcast_domain() {
    // Two discovery ports: the peers cannot hear each other's broadcasts, only --peer joins them.
    let seeder = Peer::serve(dport(5), &[("far.txt", b"from far away")], &[]);
    // The seeder's transfer port (it took a free one): ask its own broadcast domain.
    let dir = tempfile::tempdir().unwrap();
    let addr = lone_peer(dport(5), dir.path());
    let out = p2pshare(
        dport(6),
        dir.path(),
        &["--peer", &addr, "get", "far.txt", "--timeout", "10"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("dl_far.txt")).unwrap(),
        b"from far away"
    );
    drop(seeder);
}

/// The interactive prompt of a peer, driven through its stdin.
struct PromptProc {
    child: Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    dir: tempfile::TempDir,
}

impl PromptProc {
    const PROMPT: &str = "Command (list / peers / get [filename] / quit): ";

    fn start(dport: u16) -> PromptProc {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(net_args(dport))
            .arg("--shared")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = PromptProc {
            child,
            stdin,
            out,
            dir,
        };
        assert_eq!(p.next(), "", "the prompt comes first");
        p
    }

    /// What the program printed up to its next prompt (or its end).
    fn next(&mut self) -> String {
        let mut got = Vec::new();
        loop {
            let mut byte = [0u8];
            if self.out.read(&mut byte).unwrap() == 0 {
                return String::from_utf8(got).unwrap();
            }
            got.push(byte[0]);
            if got.ends_with(Self::PROMPT.as_bytes()) {
                got.truncate(got.len() - Self::PROMPT.len());
                return String::from_utf8(got).unwrap();
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.next()
    }

    /// Runs `peers` until `done` holds of its output; returns how long it took.
    fn peers_until(&mut self, within: Duration, done: impl Fn(usize) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let n = self
                .cmd("peers")
                .lines()
                .filter(|l| l.starts_with("127."))
                .count();
            if done(n) {
                return start.elapsed();
            }
            assert!(start.elapsed() < within, "{n} peers after {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PromptProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits up to `within` for `child` to exit; its status and how long it took.
fn exit_within(child: &mut Child, within: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, start.elapsed());
        }
        assert!(start.elapsed() < within, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM to a `serve` and SIGINT to an idle prompt: each says goodbye and exits within a
/// second (143, 130), and the others drop it at once, not after 3½ intervals.
#[test]
fn sigterm_and_sigint_say_goodbye_and_exit_within_a_second() {
    let d = dport(7);
    let mut seeder = Peer::serve(d, &[("a.txt", b"a")], &[]);
    let mut watcher = PromptProc::start(d);
    let mut leaver = PromptProc::start(d);
    watcher.peers_until(Duration::from_secs(10), |n| n == 2);

    kill(seeder.child.id(), "-TERM");
    let (st, took) = exit_within(&mut seeder.child, Duration::from_secs(1));
    assert_eq!(st.code(), Some(143), "serve after SIGTERM");
    println!("serve exited {took:?} after SIGTERM");
    let dropped = watcher.peers_until(Duration::from_secs(1), |n| n == 1);
    println!("the others dropped it {dropped:?} later");
    // Its folder lock is released: a one-shot on that folder can take it at once.
    let out = p2pshare(
        d,
        seeder.dir.path(),
        &["get", "nothing.txt", "--timeout", "0"],
    );
    assert!(!stderr(&out).contains("lock"), "{}", stderr(&out));

    kill(leaver.child.id(), "-INT");
    let (st, took) = exit_within(&mut leaver.child, Duration::from_secs(1));
    assert_eq!(st.code(), Some(130), "idle prompt after SIGINT");
    println!("prompt exited {took:?} after SIGINT");
    watcher.peers_until(Duration::from_secs(1), |n| n == 0);
    assert_eq!(watcher.cmd("quit"), "");
    assert!(watcher.child.wait().unwrap().success());
}

/// Two different files named alike: a one-shot `get` lists them numbered and exits 1; with a
/// partial of one of them in the folder it resumes that one; the prompt asks which one and
/// takes a number.
#[test]
fn same_name_different_files() {
    use p2pshare_proto::Manifest;
    let d = dport(8);
    let (a, b) = (data(300_000, 81), data(200_000, 82));
    let _sa = Peer::serve(d, &[("same.bin", &a)], &[]);
    let _sb = Peer::serve(d, &[("same.bin", &b)], &["--runtime", "smol"]);
    let (ida, idb) = (Manifest::of_bytes(&a).id(), Manifest::of_bytes(&b).id());
    let dir = tempfile::tempdir().unwrap();
    let out = p2pshare(d, dir.path(), &["get", "same.bin", "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains("  1. ") && listed.contains("  2. "),
        "{listed}"
    );
    assert!(
        stderr(&out).contains("2 different files are named"),
        "{}",
        stderr(&out)
    );

    // A partial of b: `get` resumes it.
    let part = p2pshare_host::store::partial_file_name("same.bin", &idb);
    std::fs::write(dir.path().join(&part), &b[..100_000]).unwrap();
    let out = p2pshare(d, dir.path(), &["get", "same.bin", "--timeout", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("dl_same.bin")).unwrap(), b);

    // The prompt asks, and takes the number of a.
    let mut p = PromptProc::start(d);
    p.peers_until(Duration::from_secs(10), |n| n == 2);
    // Both catalogs in: the prompt's `get` sees both files (else it would just take one).
    let listed = Instant::now();
    while p.cmd("l").matches("same.bin").count() < 2 {
        assert!(
            listed.elapsed() < Duration::from_secs(10),
            "both files never listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    writeln!(p.stdin, "get same.bin").unwrap();
    let question = "Which one? (number or id prefix; empty: none): ";
    let mut got = Vec::new();
    while !got.ends_with(question.as_bytes()) {
        let mut byte = [0u8];
        assert_eq!(
            p.out.read(&mut byte).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    let number = if ida < idb { "1" } else { "2" };
    let saved = p.cmd(number);
    assert!(saved.starts_with("Saved "), "{saved}");
    let dl: Vec<_> = std::fs::read_dir(p.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("dl_same"))
        .collect();
    assert_eq!(dl.len(), 1);
    assert_eq!(std::fs::read(dl[0].path()).unwrap(), a);
    assert_eq!(p.cmd("quit"), "");
}

/// With `serve` running on a folder, the one-shots given that folder go through it: `get`
/// exits 0 once the running peer placed the verified file; `status --json` and `list` answer
/// at once from its view; the socket is owner-only and gone when the peer stops.
#[test]
fn a_running_peer_is_driven_through_its_folder() {
    use std::os::unix::fs::PermissionsExt;
    let d = dport(9);
    let file = data(3 << 20, 91);
    let _seeder = Peer::serve(d, &[("movie.bin", &file)], &[]);
    let mut runner = Peer::serve(d, &[], &["--runtime", "smol"]);
    let folder = runner.dir.path().to_path_buf();
    let sock = folder.join(".p2pshare.sock");
    // The socket is bound just after the folder lock is taken (which `serve` waited for).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Wait until the running peer lists the file (its view, through the socket).
    let start = Instant::now();
    loop {
        let out = p2pshare(d, &folder, &["list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        if stdout(&out).contains("movie.bin") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            stdout(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The JSON of the list, asked for through the socket, holds every file.
    let out = p2pshare(d, &folder, &["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["files"][0]["names"][0], "movie.bin", "{j}");
    let t = Instant::now();
    let out = p2pshare(d, &folder, &["get", "movie.bin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Saved "), "{}", stdout(&out));
    println!("get through the running peer: {:?}", t.elapsed());
    assert_eq!(std::fs::read(folder.join("dl_movie.bin")).unwrap(), file);
    // `status --json` parses; the next scan shares the new file.
    let start = Instant::now();
    loop {
        let out = p2pshare(d, &folder, &["status", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let st: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(st["version"], 1);
        assert_eq!(st["peers"].as_array().unwrap().len(), 1, "{st}");
        let shared = st["shared"].as_array().unwrap();
        if shared.iter().any(|f| f["name"] == "dl_movie.bin") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A name nobody shares: one line, exit 1, as standalone.
    let out = p2pshare(d, &folder, &["get", "nothing.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no peer shares"), "{}", stderr(&out));
    // The peer stops (SIGTERM): the socket goes; a one-shot works standalone again.
    kill(runner.child.id(), "-TERM");
    exit_within(&mut runner.child, Duration::from_secs(2));
    assert!(!sock.exists());
    let out = p2pshare(d, &folder, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no peer runs"), "{}", stderr(&out));
}

/// A folder (issue 12): listed in one row, listed under its name, fetched whole through a
/// running peer and standalone, layout kept under `dl_album/`; a second `get` fetches nothing.
#[test]
fn a_folder_is_listed_and_fetched_whole() {
    let d = dport(10);
    let files: Vec<(String, Vec<u8>)> = [
        ("album/a.jpg", 70_000),
        ("album/2024/b.jpg", 1),
        ("album/2024/raw/c.raw", 300_000),
        ("album/empty", 0),
    ]
    .iter()
    .enumerate()
    .map(|(i, (n, len))| (n.to_string(), data(*len, 100 + i as u64)))
    .collect();
    let mut planted: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    planted.push(("top.txt", b"top"));
    let _seeder = Peer::serve(d, &planted, &["--runtime", "smol"]);
    let runner = Peer::serve(d, &[], &[]);
    let folder = runner.dir.path().to_path_buf();
    let start = Instant::now();
    let listed = loop {
        let out = stdout(&p2pshare(d, &folder, &["list"]));
        if out.contains("album/") && out.contains("4 files") {
            break out;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        listed.contains("top.txt") && !listed.contains("a.jpg"),
        "{listed}"
    );
    let under = stdout(&p2pshare(d, &folder, &["list", "album/2024/"]));
    assert!(
        under.contains("album/2024/b.jpg") && under.contains("album/2024/raw/"),
        "{under}"
    );
    // Through the running peer.
    let out = p2pshare(d, &folder, &["get", "album/"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("Saved 4 of 4 files of album/"),
        "{}",
        stdout(&out)
    );
    for (name, bytes) in &files {
        let got = std::fs::read(folder.join(format!("dl_{name}"))).unwrap();
        assert!(got == *bytes, "{name}");
    }
    let again = p2pshare(d, &folder, &["get", "album"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("Nothing to fetch: all 4 files"),
        "{}",
        stdout(&again)
    );
    // Standalone, into a fresh folder, with --json.
    let fresh = tempfile::tempdir().unwrap();
    let out = p2pshare(d, fresh.path(), &["get", "album/2024/", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (j["files"].as_u64(), j["done"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );
    assert_eq!(
        std::fs::read(fresh.path().join("dl_album/2024/raw/c.raw")).unwrap(),
        files[2].1
    );
    assert!(
        !fresh.path().join("dl_album/a.jpg").exists(),
        "only what lies under album/2024/"
    );
}

/// Runs `args` of p2pshare as user `nobody` (65534); `None` when `setpriv` cannot (not root).
fn as_nobody(dport: u16, shared: &Path, args: &[&str]) -> Option<Command> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|r| r.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let setpriv = Path::new("/usr/bin/setpriv");
    if !uid || !setpriv.exists() {
        println!("SKIPPED: needs root and setpriv(1) to run a process as another user");
        return None;
    }
    let mut c = Command::new(setpriv);
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(net_args(dport))
        .arg("--shared")
        .arg(shared)
        .args(args);
    Some(c)
}

/// Issue 27, item 9: the control socket talks only to our own user (or root), both ways, and
/// a peer that cannot bind it says so in one line and runs on.
#[test]
fn the_control_socket_talks_only_to_our_own_user() {
    use std::os::unix::fs::PermissionsExt;
    let d = dport(11);
    // A peer of another user: a one-shot of ours does not take its word.
    let theirs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(theirs.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let Some(mut c) = as_nobody(d, theirs.path(), &["--no-web", "serve"]) else {
        return;
    };
    let mut other = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = theirs.path().join(".p2pshare.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p2pshare(d, theirs.path(), &["status"]);
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("another user's (uid 65534)") && err.lines().count() == 1,
        "{err}"
    );
    // Our peer, its socket opened to everyone (as a careless chmod would): another user's
    // one-shot is closed unanswered; ours is served.
    let ours = Peer::serve(d, &[], &[]);
    let sock = ours.dir.path().join(".p2pshare.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::set_permissions(ours.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(d, ours.dir.path(), &["status"])
        .unwrap()
        .output()
        .unwrap();
    // (Closed before the request was written, or after: "Broken pipe" or "without an
    // answer".)
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("p2pshare: the running peer") && stdout(&out).is_empty(),
        "{}",
        stderr(&out)
    );
    let out = p2pshare(d, ours.dir.path(), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Something in the way of the socket: one line, and the peer runs on.
    let blocked = tempfile::tempdir().unwrap();
    std::fs::create_dir(blocked.path().join(".p2pshare.sock")).unwrap();
    let mut child = Command::new(BIN)
        .args(net_args(d))
        .arg("--shared")
        .arg(blocked.path())
        .args(["--no-web", "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the peer runs on");
    kill(child.id(), "-TERM");
    exit_within(&mut child, Duration::from_secs(2));
    let err = reader.join().unwrap();
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("control socket"))
        .collect();
    assert_eq!(warned.len(), 1, "{err}");
    assert!(
        warned[0].contains("one-shot commands cannot reach this peer"),
        "{err}"
    );
}

/// True when this test runs as root (mounts, other users).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|r| r.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Issue 27, item 7: a folder `get` says what it is about to fetch; one over 1,000 files (or
/// 1 GiB) is asked about at the prompt and refused by a one-shot without `--yes`; one the
/// disk has no room for is refused.
#[test]
fn a_big_folder_is_shown_and_confirmed_and_one_without_room_is_refused() {
    let d = dport(12);
    let tiny: Vec<(String, Vec<u8>)> = (0..1001)
        .map(|k| (format!("big/f{k:04}.txt"), data(16, 500 + k)))
        .collect();
    let small = data(1 << 20, 77);
    let mut files: Vec<(&str, &[u8])> = tiny
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    files.push(("small/one.bin", &small));
    let _seeder = Peer::serve(d, &files, &[]);
    let mut p = PromptProc::start(d);
    let start = Instant::now();
    while !p.cmd("list").contains("1001 files") {
        assert!(start.elapsed() < Duration::from_secs(20), "never listed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // At the prompt: shown, asked, declined.
    writeln!(p.stdin, "get big/\nn").unwrap();
    let out = p.next();
    assert!(
        out.contains("big/: 1001 files, 15.6 KiB to fetch from 1 peer")
            && out.contains("Fetch it? [y/N]")
            && out.contains("Nothing downloaded."),
        "{out}"
    );
    assert!(!p.dir.path().join("dl_big").exists());
    // A one-shot through the running prompt, without --yes: refused, one line.
    let out = p2pshare(d, p.dir.path(), &["get", "big/"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("big/ is 15.6 KiB in 1001 files (over 1.0 GiB or 1000 files); pass --yes"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("big/: 1001 files"),
        "shown first: {}",
        stderr(&out)
    );
    // Standalone with --yes: fetched whole.
    let fresh = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = p2pshare(
        d,
        fresh.path(),
        &["get", "big/", "--yes", "--timeout", "120"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    println!("1001 small files standalone: {:?}", t.elapsed());
    for (n, b) in tiny.iter().step_by(97) {
        assert_eq!(
            &std::fs::read(fresh.path().join(format!("dl_{n}"))).unwrap(),
            b
        );
    }
    // No room: a folder on an 8 MiB file system is refused a 1 MiB folder (64 MiB are kept
    // free), before anything is written.
    if !root() {
        println!("SKIPPED the room check: mounting a small file system needs root");
        return;
    }
    let tight = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(tight.path())
        .status()
        .unwrap();
    assert!(mounted.success());
    let out = p2pshare(d, tight.path(), &["get", "small/", "--yes"]);
    let listing: Vec<String> = std::fs::read_dir(tight.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = Command::new("umount").arg(tight.path()).status();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not enough room for small/: it needs 1.0 MiB"),
        "{}",
        stderr(&out)
    );
    assert!(
        !listing
            .iter()
            .any(|n| n.starts_with("dl_") || n.ends_with(".part")),
        "{listing:?}"
    );
}

/// Issue 27, item 7: a partial file nobody wrote for a week goes when a peer starts (the disk
/// thread sweeps at start and every hour); a recent one stays.
#[test]
fn partials_nobody_completes_are_removed() {
    let d = dport(13);
    let dir = tempfile::tempdir().unwrap();
    let old = dir
        .path()
        .join(format!(".dl_gone.bin.{}.part", "ab".repeat(32)));
    let recent = dir
        .path()
        .join(format!(".dl_kept.bin.{}.part", "cd".repeat(32)));
    for f in [&old, &recent] {
        std::fs::write(f, b"half a file").unwrap();
    }
    let week = std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(week)
        .unwrap();
    let mut child = Command::new(BIN)
        .args(net_args(d))
        .arg("--shared")
        .arg(dir.path())
        .args(["--no-web", "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while old.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the stale partial stayed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(recent.exists(), "a recent partial stays");
}

/// A `p2pshare serve` on the folder `dir` (which outlives it: a restart keeps its state),
/// with `extra` options; killed (by its pid) when dropped.
struct Served(Child);

impl Served {
    fn start(dport: u16, dir: &Path, extra: &[&str]) -> Served {
        let lock = dir.join(".p2pshare.lock");
        let _ = std::fs::remove_file(&lock);
        let child = Command::new(BIN)
            .args(net_args(dport))
            .arg("--shared")
            .arg(dir)
            .args(extra)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&lock).map_or(true, |b| b.is_empty()) {
            assert!(Instant::now() < deadline, "peer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served(child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The folder's key, whole, from `p2pshare id` (made on first use). A peer that has just
/// taken the folder may not have written its key file yet: asked again until it has.
fn key_of(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = Command::new(BIN)
            .arg("--shared")
            .arg(dir)
            .arg("id")
            .output()
            .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).trim().to_string();
    assert_eq!(key.len(), 64, "{key}");
    key
}

/// Asks the running peer of `dir` for `peers --json` until `done` holds of it.
fn peers_until(d: u16, dir: &Path, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = p2pshare(d, dir, &["peers", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn peers_met_for_the_first_time_are_new_and_remembered() {
    let d = dport(14);
    let a = Peer::serve(d, &[("a.txt", b"a")], &[]);
    let a_key = key_of(a.dir.path());
    let root = tempfile::tempdir().unwrap();
    let b_dir = root.path().join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let b = Served::start(d, &b_dir, &[]);
    let listed = |v: &serde_json::Value, new: bool| {
        v["peers"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["id"] == a_key.as_str() && p["new"] == new)
        })
    };
    peers_until(d, &b_dir, |v| listed(v, true));
    // The text view says so too.
    let text = stdout(&p2pshare(d, &b_dir, &["peers"]));
    assert!(text.lines().any(|l| l.ends_with("  new")), "{text}");
    // Remembered within a moment (owner-only, hidden: never shared), so a peer killed
    // without a goodbye keeps it too.
    let known = b_dir.join(".p2pshare-known");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&known).is_ok_and(|t| t.contains(&a_key)) {
        assert!(Instant::now() < deadline, "never saved");
        std::thread::sleep(Duration::from_millis(50));
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&known).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(b);
    // After a restart, A is an old friend.
    let _b = Served::start(d, &b_dir, &[]);
    let v = peers_until(d, &b_dir, |v| listed(v, false));
    assert!(!listed(&v, true));
    let text = stdout(&p2pshare(d, &b_dir, &["peers"]));
    assert!(!text.contains(" new"), "{text}");
    // A damaged file is a counted reset with a warning, never a failed start.
    drop(_b);
    std::fs::write(&known, "not ours\n").unwrap();
    let out = Command::new(BIN)
        .args(net_args(d))
        .arg("--shared")
        .arg(&b_dir)
        .args(["get", "a.txt", "--timeout", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("known peers"), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&known).unwrap().contains(&a_key));
}

#[test]
fn a_static_peer_given_with_its_key_must_present_it() {
    // Two discovery ports: only --peer joins them.
    let seeder = Peer::serve(dport(15), &[("far.txt", b"from far away")], &[]);
    let key = key_of(seeder.dir.path());
    let dir = tempfile::tempdir().unwrap();
    let addr = lone_peer(dport(15), dir.path());
    // Another key expected there: nothing is fetched from it.
    let wrong = format!("{}@{addr}", "ab".repeat(32));
    let out = p2pshare(
        dport(16),
        dir.path(),
        &["--peer", &wrong, "get", "far.txt", "--timeout", "3"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dir.path().join("dl_far.txt").exists());
    // Its own key: fetched.
    let right = format!("{key}@{addr}");
    let out = p2pshare(
        dport(16),
        dir.path(),
        &["--peer", &right, "get", "far.txt", "--timeout", "10"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("dl_far.txt")).unwrap(),
        b"from far away"
    );
    // A bad spec is one line and a non-zero exit.
    for bad in ["zz@127.0.0.1:1", "@127.0.0.1:1", "abc@nowhere"] {
        let out = p2pshare(dport(16), dir.path(), &["--peer", bad, "peers"]);
        assert_ne!(out.status.code(), Some(0), "{bad}");
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(stderr(&out).contains("--peer"), "{}", stderr(&out));
    }
    drop(seeder);
}

#[test]
fn a_peer_with_allow_serves_its_friend_and_refuses_a_third() {
    let d = dport(17);
    let friend = tempfile::tempdir().unwrap();
    let stranger = tempfile::tempdir().unwrap();
    let friend_key = key_of(friend.path());
    let seeder = Peer::serve(
        d,
        &[("secret.txt", b"for friends only\n")],
        &["--allow", &friend_key],
    );
    // The stranger sees the peer, but no file: its catalog is empty for it.
    let out = p2pshare(d, stranger.path(), &["get", "secret.txt", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no peer shares a file named"),
        "{}",
        stderr(&out)
    );
    assert!(!stranger.path().join("dl_secret.txt").exists());
    let out = p2pshare(d, stranger.path(), &["list", "--json", "--wait", "1.5"]);
    assert!(!stdout(&out).contains("secret.txt"), "{}", stdout(&out));
    // The friend fetches it.
    let out = p2pshare(d, friend.path(), &["get", "secret.txt", "--timeout", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(friend.path().join("dl_secret.txt")).unwrap(),
        b"for friends only\n"
    );
    // The refusals were counted.
    let out = p2pshare(d, seeder.dir.path(), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        v["stats"]["requests_not_allowed"].as_u64() >= Some(1),
        "{}",
        v["stats"]
    );
    // A bad key is one line and a usage error.
    let out = p2pshare(d, stranger.path(), &["--allow", "nope", "peers"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// `p2pshare pair` (the waiting side) on folder `dir`, and the code it printed.
fn pair_waiter(d: u16, dir: &Path) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .args(net_args(d))
        .arg("--shared")
        .arg(dir)
        .args(["pair", "--timeout", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let code = line.trim().to_string();
    assert_eq!(code.len(), 9, "{code:?}");
    (child, code)
}

fn allow_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".p2pshare-allow")).unwrap_or_default()
}

#[test]
fn pairing_lets_the_paired_peer_download_from_a_private_peer() {
    let d = dport(18);
    let seeder = Peer::serve(d, &[("secret.txt", b"paired only\n")], &[]);
    let (a, b, c) = (
        seeder.dir.path(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a_key, b_key) = (key_of(a), key_of(b.path()));
    // The seeder's folder waits (beside its running peer); B joins with the code.
    let (waiter, code) = pair_waiter(d, a);
    let t = Instant::now();
    let out = p2pshare(d, b.path(), &["pair", &code, "--timeout", "10"]);
    let took = t.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        a_key,
        "the joiner learned the waiter's key"
    );
    let w = waiter.wait_with_output().unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    assert!(stdout(&w).contains(&b_key), "{}", stdout(&w));
    eprintln!("pairing took {took:?} (joiner start to exit; offers every 250 ms)");
    // Each side's allow file has the other's key (owner-only, hidden).
    assert!(allow_file(a).contains(&b_key));
    assert!(allow_file(b.path()).contains(&a_key));
    // The running seeder follows its allow file: private now, with one key.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = p2pshare(d, a, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        if v["allowed"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never private: {}", stdout(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    // A third peer gets nothing; the paired one its file.
    let out = p2pshare(d, c.path(), &["get", "secret.txt", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!c.path().join("dl_secret.txt").exists());
    let out = p2pshare(d, b.path(), &["get", "secret.txt", "--timeout", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(b.path().join("dl_secret.txt")).unwrap(),
        b"paired only\n"
    );
}

#[test]
fn pairing_with_a_wrong_code_fails_on_both_sides_after_one_try() {
    let d = dport(19);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (waiter, code) = pair_waiter(d, a.path());
    // One digit off.
    let last = code.chars().last().unwrap();
    let other = if last == '9' {
        '0'
    } else {
        char::from(last as u8 + 1)
    };
    let wrong = format!("{}{other}", &code[..code.len() - 1]);
    let out = p2pshare(d, b.path(), &["pair", &wrong, "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrong code"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // The waiter stops at that one try, with an error of its own.
    let w = waiter.wait_with_output().unwrap();
    assert_eq!(w.status.code(), Some(1));
    let werr = String::from_utf8_lossy(&w.stderr);
    assert!(werr.contains("wrong code"), "{werr}");
    assert!(allow_file(a.path()).is_empty() && allow_file(b.path()).is_empty());
    // A code that is not one is a usage error of one line.
    let out = p2pshare(d, b.path(), &["pair", "12-34", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a pairing code"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_links_and_unknown_names_are_one_line_before_any_peer_starts() {
    // Nothing here starts a peer (so its discovery port is never bound): a link is read, and
    // a name looked up, first.
    let d = dport(19);
    let dir = tempfile::tempdir().unwrap();
    let id = "ab".repeat(32);
    let key = "01".repeat(32);
    for (link, says) in [
        (
            "p2pshare://zz".to_owned(),
            "bad link: bad content id at char 12",
        ),
        (
            "https://example.com/a".to_owned(),
            "bad link: unknown scheme \"https\"",
        ),
        (
            format!("p2pshare://{id}?peer=12"),
            "bad link: bad key at char 82",
        ),
        (
            format!("p2pshare://{id}?peer={key}@10.0.0.1"),
            "bad link: bad address at char 147",
        ),
        (
            format!("p2pshare://{id}?peer={key}@[fe80::1]:1"),
            "needs its interface",
        ),
        (
            format!("p2pshare://{id}?peer={key}@[fe80::1%25nosuch9]:1"),
            "no interface \"nosuch9\"",
        ),
        (
            format!("p2pshare://{id}?name=x"),
            "bad link: unknown parameter at char 77",
        ),
        (
            "p2pshare://.hidden/".to_owned(),
            "bad link: bad folder name at char 12",
        ),
        (
            format!("p2pshare://{}/", "a".repeat(9000)),
            "bad link: the link is 9012 bytes long; at most 8192",
        ),
    ] {
        let out = p2pshare(d, dir.path(), &["get", &link, "--timeout", "5"]);
        assert_eq!(out.status.code(), Some(1), "{link}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        let out = p2pshare(d, dir.path(), &["peers", "add", &link]);
        assert_eq!(out.status.code(), Some(1), "{link}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
    }
    assert!(
        !dir.path().join(".p2pshare.lock").exists(),
        "no peer started"
    );
    // `link` of a name the folder does not share, and `link` without a name (usage: 2).
    let out = p2pshare(d, dir.path(), &["link", "nothing.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "p2pshare: you share no file or folder named \"nothing.txt\"\n"
    );
    let out = p2pshare(d, dir.path(), &["link"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // A bad `--at` is said before the folder is locked or scanned.
    let fresh = tempfile::tempdir().unwrap();
    let out = p2pshare(
        d,
        fresh.path(),
        &["link", "x.bin", "--at", "[fe80::1%eth0]:1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "p2pshare: bad --at \"[fe80::1%eth0]:1\": a link-local address means nothing on \
         another machine\n"
    );
    assert!(!fresh.path().join(".p2pshare.lock").exists());
}

/// `link --at`: an address no interface of the host shows (here a relay on 127.0.0.2, standing
/// for a router's forwarded port) is named first in the link, and a get of a link that names
/// only it fetches the file through it; a bad `--at` is one line and a non-zero exit.
#[test]
fn link_at_names_a_forwarded_address_first_and_a_get_goes_through_it() {
    let d = dport(6);
    let bytes = data(1 << 20, 61);
    let seeder = Peer::serve(d, &[("fwd.bin", &bytes)], &[]);
    let status = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&stdout(&p2pshare(d, dir, &["status", "--json"]))).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        let s = status(seeder.dir.path());
        if s["shared"][0]["content"].is_string() && s["transfer_port"].as_u64() > Some(0) {
            break u16::try_from(s["transfer_port"].as_u64().unwrap()).unwrap();
        }
        assert!(Instant::now() < deadline, "seeder not ready: {s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let forwarded: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let (fport, dials) = hosts::counting_relay(forwarded, (forwarded, port).into());
    let at = format!("127.0.0.2:{fport}");
    let out = p2pshare(d, seeder.dir.path(), &["link", "fwd.bin", "--at", &at]);
    assert!(out.status.success(), "{}", stderr(&out));
    let long = stdout(&out).lines().next().unwrap().to_owned();
    // The first peer of the link is the forwarded address; keep only it.
    let only = long.split('&').next().unwrap();
    assert!(only.ends_with(&format!("@{at}")), "{long}");
    // A downloader that hears no broadcast of the seeder (a discovery port of its own).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "--broadcast",
            "127.255.255.255",
            "--discovery-port",
            "0",
            "--port",
            "0",
        ])
        .arg("--shared")
        .arg(dir.path())
        .args(["get", only, "--timeout", "20"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("dl_fwd.bin")).unwrap(), bytes);
    assert!(
        dials.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "fetched without the forwarded address?"
    );
    // A bad --at: one line, exit 1, through the running peer.
    let out = p2pshare(
        d,
        seeder.dir.path(),
        &["link", "fwd.bin", "--at", "nowhere"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("bad --at"), "{}", stderr(&out));
}
