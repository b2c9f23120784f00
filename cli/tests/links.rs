//! Links end to end (issue 29): the real `p2pshare` binary, real sockets, real files. A seeder
//! and a downloader on *different discovery ports* (so discovery can never find the seeder):
//! `p2pshare link NAME` on the seeder's side, `p2pshare get LINK` on the other downloads and
//! verifies (a file, a folder; standalone and through a running peer); a link whose key is not
//! the one at its address fails at once with one line; `peers add KEY@ADDRESS` keeps a peer.
//!
//! Why namespaces, and not the host's loopback as `e2e.rs`: a link names the addresses of the
//! host's interfaces, and this machine's are real ones. Every process here runs inside
//! namespaces this test made ([`hosts::Net`]): hosts on a test bridge (10.99.0.i), or a host
//! whose only interface left up is loopback, where a link names 127.0.0.1 (and ::1). Every peer
//! broadcasts to 127.255.255.255 only, on a discovery port of its own, and multicasts nothing.
//! The guard kills what it started (by pid) and deletes its namespaces, also on failure;
//! without root or `ip netns`, each test prints why and passes without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the helpers the other namespace tests use
mod hosts;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use hosts::{Net, data, ip};

const S: fn(u64) -> Duration = Duration::from_secs;

/// The discovery settings of side `side` (1: the seeder's, 2: the downloader's): broadcast on
/// loopback only, and a discovery port that the other side never uses.
fn side(side: u16, port: u16) -> Vec<String> {
    vec![
        "--broadcast".into(),
        "127.255.255.255".into(),
        "--discovery-port".into(),
        (29_400 + side).to_string(),
        "--interval".into(),
        "1".into(),
        "--port".into(),
        port.to_string(),
    ]
}

fn args<'a>(net: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    net.iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `link NAME` on host `i` (its folder); returns the long and the short form.
fn link(net: &Net, i: usize, opts: &[String], name: &str) -> (String, String, Output) {
    let out = net.run(i, &args(opts, &["link", name]));
    assert!(out.status.success(), "link {name}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    (lines[0].to_owned(), lines[1].to_owned(), out)
}

/// The folder's key (`p2pshare id`), made on first use.
fn key_of(net: &Net, i: usize, dir: &Path) -> String {
    let out = net.run_in(i, dir, &["id"]);
    assert!(out.status.success());
    text(&out.stdout).trim().to_owned()
}

/// Writes `files` (paths may have folders) into `dir`.
fn put(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn a_link_fetches_a_file_and_a_folder_from_beyond_discovery() {
    let Some(mut net) = Net::new(80, "links-across", 2, false) else {
        return;
    };
    let seeder_opts = side(1, 10000);
    let far = data(3 << 20, 80);
    put(
        &net.shared(1),
        &[
            ("far.bin", &far),
            ("album/a.txt", b"first"),
            ("album/sub/b.txt", b"second"),
        ],
    );
    let key = key_of(&net, 1, &net.shared(1));
    let seeder = net.seeder(1, &[], &args(&seeder_opts, &[]));
    net.wait_stderr(seeder, "(hashed", S(20));

    // The link names host 1's address on the bridge with the transfer port, and its key.
    let (long, short, _) = link(&net, 1, &seeder_opts, "far.bin");
    assert!(long.starts_with("p2pshare://"), "{long}");
    assert!(
        long.contains(&format!("peer={key}@10.99.0.1:10000")),
        "{long}"
    );
    // (Its addresses only: a hex key or id may hold "fe80" by chance.)
    let addrs: Vec<&str> = long
        .split(['?', '&'])
        .filter_map(|part| part.strip_prefix("peer="))
        .filter_map(|entry| entry.split_once('@').map(|(_, at)| at))
        .collect();
    assert!(!addrs.is_empty(), "{long}");
    assert!(
        addrs
            .iter()
            .all(|a| !a.starts_with("127.") && !a.starts_with("[::1]") && !a.starts_with("[fe80")),
        "{long}"
    );
    let id = long["p2pshare://".len()..].split('?').next().unwrap();
    assert_eq!(id.len(), 64, "{long}");
    assert_eq!(short, format!("p2pshare://{id}?peer={key}"));

    // Host 2 hears nobody (another discovery port). The short form alone (before host 2 has
    // ever met host 1) reaches nobody from there: one line that says so.
    let down = side(2, 10000);
    let t = Instant::now();
    let out = net.run(2, &args(&down, &["get", &short, "--timeout", "30"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("gives no address"), "{err}");
    assert!(
        t.elapsed() < S(15),
        "said within the grace, not at --timeout"
    );
    // The long form fetches it (how long, from the start of the process to the verified file
    // in place: `--nocapture`, `grep LINKS`).
    let t = Instant::now();
    let out = net.run(2, &args(&down, &["get", &long, "--timeout", "30"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    println!(
        "LINKS get LINK of 3 MiB, one-shot: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_far.bin")).unwrap(),
        far
    );

    // A folder, through host 2's running peer (its control socket).
    let (folder_link, _, _) = link(&net, 1, &seeder_opts, "album/");
    assert!(
        folder_link.starts_with("p2pshare://album/?peer="),
        "{folder_link}"
    );
    let downloader = net.spawn(2, &args(&down, &["serve"]));
    net.wait_stderr(downloader, "sharing ", S(10));
    let out = net.run(2, &args(&down, &["get", &folder_link, "--timeout", "30"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dl = net.shared(2).join("dl_album");
    assert_eq!(std::fs::read(dl.join("a.txt")).unwrap(), b"first");
    assert_eq!(std::fs::read(dl.join("sub/b.txt")).unwrap(), b"second");

    // Another key in the link: the dial is refused by the handshake, and said at once (from
    // a folder on a discovery port of its own, which has met nobody).
    let wrong = long.replace(&key, &"ab".repeat(32));
    let fresh = net.dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let t = Instant::now();
    let lone = side(3, 10002);
    let out = net.run_in(2, &fresh, &args(&lone, &["get", &wrong, "--timeout", "30"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("another key answered at 10.99.0.1:10000"),
        "{err}"
    );
    assert!(t.elapsed() < S(10), "at once, not at --timeout");
    assert!(!fresh.join("dl_far.bin").exists());
    // The same link where a LAN peer holds the content (host 2's running peer, heard on its
    // discovery port): the content is what counts, and it comes from there, under the name
    // that peer lists it by.
    let out = net.run_in(
        2,
        &fresh,
        &args(&side(2, 10002), &["get", &wrong, "--timeout", "30"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(fresh.join("dl_dl_far.bin")).unwrap(), far);
    net.assert_no_panic();
}

#[test]
fn a_loopback_only_host_links_to_loopback_and_a_link_made_before_the_peer_starts() {
    let Some(mut net) = Net::new(81, "links-loopback", 1, false) else {
        return;
    };
    // Host 1 keeps only its loopback interface up.
    ip(&["-n", &net.ns(1), "link", "set", "eth0", "down"]);
    let seeder_opts = side(1, 10000);
    put(&net.shared(1), &[("near.txt", b"right here")]);
    // No peer runs on the folder yet: the link is made from the folder itself, with the port
    // the options give.
    let (long, _, out) = link(&net, 1, &seeder_opts, "near.txt");
    assert!(long.contains("@127.0.0.1:10000"), "{long}");
    assert!(long.contains("@[::1]:10000"), "{long}");
    let err = text(&out.stderr);
    assert!(err.contains("no peer runs on"), "{err}");
    assert!(err.contains("works on this host only"), "{err}");
    let seeder = net.seeder(1, &[], &args(&seeder_opts, &[]));
    net.wait_stderr(seeder, "(hashed", S(20));
    // Through the running peer, the same link.
    let (again, _, out) = link(&net, 1, &seeder_opts, "near.txt");
    assert_eq!(again, long);
    assert!(text(&out.stderr).contains("works on this host only"));
    // Another folder on the same host, another discovery port.
    let other = net.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let down = side(2, 10001);
    let out = net.run_in(1, &other, &args(&down, &["get", &long, "--timeout", "30"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(other.join("dl_near.txt")).unwrap(),
        b"right here"
    );
    // An unknown name: one line, exit 1.
    let out = net.run(1, &args(&seeder_opts, &["link", "nothing.txt"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "p2pshare: you share no file or folder named \"nothing.txt\""
    );
    net.assert_no_panic();
}

#[test]
fn peers_add_keeps_a_peer_no_broadcast_reaches() {
    let Some(mut net) = Net::new(82, "links-peers-add", 2, false) else {
        return;
    };
    let seeder_opts = side(1, 10000);
    put(&net.shared(1), &[("kept.txt", b"kept")]);
    let key = key_of(&net, 1, &net.shared(1));
    let seeder = net.seeder(1, &[], &args(&seeder_opts, &[]));
    net.wait_stderr(seeder, "(hashed", S(20));
    let down = side(2, 10000);

    // No peer runs on host 2: the peer is remembered in its folder.
    let spec = format!("{key}@10.99.0.1:10000");
    let out = net.run(2, &args(&down, &["peers", "add", &spec]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the next start looks for it there"));
    let known = std::fs::read_to_string(net.shared(2).join(".p2pshare-known")).unwrap();
    assert!(known.contains(&format!("{key} ")), "{known}");
    assert!(known.contains("10.99.0.1:10000"), "{known}");

    // At the prompt: added now, and listed although no broadcast reaches it.
    let mut prompt = net.prompt(2, &args(&down, &[]));
    let said = prompt.cmd(&format!("peers add {spec}"), S(10));
    assert!(said.contains("keeping"), "{said}");
    let deadline = Instant::now() + S(10);
    loop {
        let peers = prompt.cmd("peers", S(10));
        if peers.contains("10.99.0.1:10000") {
            break;
        }
        assert!(Instant::now() < deadline, "never listed: {peers}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // And through its control socket: a bad spec is one line.
    let out = net.run(2, &args(&down, &["peers", "add", "10.99.0.1:10000"]));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("KEY@ADDRESS"), "{err}");
    // A link at the prompt: fetched from the kept peer.
    let (long, _, _) = link(&net, 1, &seeder_opts, "kept.txt");
    let got = prompt.cmd(&format!("get {long}"), S(30));
    assert!(got.contains("Saved"), "{got}");
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_kept.txt")).unwrap(),
        b"kept"
    );
    net.assert_no_panic();
}
