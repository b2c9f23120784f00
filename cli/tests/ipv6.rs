//! IPv6 end to end (issue 29): the real `p2pshare` binary on hosts built from network
//! namespaces — hosts with only an IPv6 link-local address find each other by multicast and
//! download a 64 MiB file (each runtime on each side once); a `--peer` naming a link-local
//! address with its interface is dialled there; a peer heard over IPv4 and IPv6 is one peer;
//! two such hosts pair over IPv6 alone.
//!
//! Safety rules these tests follow (as `netns.rs`):
//! - every peer runs inside a namespace this test created (`p<pid>t<n>-h<i>`, on its own bridge
//!   namespace), with the default discovery settings: broadcast to 255.255.255.255:9999 and
//!   multicast to `ff12::7032:7073` on every interface of that namespace (its `eth0` on the
//!   test's bridge); no peer runs in the root namespace, nothing is sent anywhere else;
//! - a guard ([`hosts::Net`]) kills the processes it started (by pid) and deletes its
//!   namespaces on success and on failure;
//! - without root or without `ip netns`, every test prints why and passes without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the helpers the other namespace tests use
mod hosts;

use std::process::Command;
use std::time::{Duration, Instant};

use hosts::{Net, data, ip, last_stats, stat};

const MIB: usize = 1 << 20;
const S: fn(u64) -> Duration = Duration::from_secs;

/// Sets `key=value` with sysctl inside namespace `ns`.
fn sysctl(ns: &str, kv: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-qw", kv])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sysctl {kv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `ip ARGS` prints.
fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {}", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Gives host `i` the link-local address `fe80::i/64` on `eth0`, usable at once (no duplicate
/// address detection); with `only`, it is the host's only address: every IPv4 address (`lo`'s
/// too) and route and every other IPv6 address of `eth0` are gone.
fn link_local(net: &Net, i: usize, only: bool) {
    let h = net.ns(i);
    sysctl(&h, "net.ipv6.conf.all.disable_ipv6=0");
    sysctl(&h, "net.ipv6.conf.eth0.disable_ipv6=0");
    sysctl(&h, "net.ipv6.conf.eth0.accept_dad=0");
    if only {
        ip(&["-n", &h, "addr", "flush", "dev", "eth0"]);
        ip(&["-n", &h, "-4", "addr", "flush", "dev", "lo"]);
        ip(&["-n", &h, "-4", "route", "flush", "table", "main"]);
    }
    let addr = format!("fe80::{i}/64");
    ip(&["-n", &h, "addr", "add", &addr, "dev", "eth0", "nodad"]);
    if only {
        let v4 = ip_out(&["-n", &h, "-4", "addr", "show"]);
        assert!(!v4.contains("inet "), "host {i} kept IPv4: {v4}");
        let v6 = ip_out(&["-n", &h, "-6", "addr", "show", "dev", "eth0"]);
        let inet6: Vec<&str> = v6.lines().filter(|l| l.contains("inet6")).collect();
        assert_eq!(inet6.len(), 1, "host {i}: {v6}");
        assert!(inet6[0].contains(&format!("fe80::{i}/64")), "{v6}");
    }
}

/// Polls `peers` on the prompt until a line starts with `prefix`; returns the line and when.
fn listed(
    p: &mut hosts::Prompt,
    prefix: &str,
    since: Instant,
    within: Duration,
) -> (String, Duration) {
    loop {
        let out = p.cmd("peers", S(5));
        if let Some(l) = out.lines().find(|l| l.starts_with(prefix)) {
            return (l.to_string(), since.elapsed());
        }
        assert!(
            since.elapsed() < within,
            "not listed after {within:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `list` on the prompt until a line starts with `name`; returns the line and when.
fn listed_file(
    p: &mut hosts::Prompt,
    name: &str,
    since: Instant,
    within: Duration,
) -> (String, Duration) {
    loop {
        let out = p.cmd("list", S(5));
        if let Some(l) = out.lines().find(|l| l.starts_with(name)) {
            return (l.to_string(), since.elapsed());
        }
        assert!(
            since.elapsed() < within,
            "{name} not listed after {within:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two hosts with only IPv6 link-local addresses: the downloader (`rt_get`) finds the seeder
/// (`rt_serve`) by multicast, lists it as `[fe80::1%eth0]:10000`, and downloads 64 MiB from it,
/// byte for byte.
fn link_local_only(test: u32, name: &str, rt_serve: &str, rt_get: &str) {
    let Some(mut net) = Net::new(test, name, 2, false) else {
        return;
    };
    net.multicast = true;
    link_local(&net, 1, true);
    link_local(&net, 2, true);
    let file = data(64 * MIB, u64::from(test));
    let _seeder = net.seeder(
        1,
        &[("big.bin", &file)],
        &["--no-web", "--runtime", rt_serve],
    );
    let start = Instant::now();
    let mut d = net.prompt(2, &["--no-web", "--runtime", rt_get]);
    let (line, after) = listed(&mut d, "[fe80::1%eth0]:10000", start, S(10));
    println!("{name}: {line} listed {after:?} after the downloader started");
    // Listed is not yet heard out: its catalog comes over the first connection.
    let (_, after) = listed_file(&mut d, "big.bin", start, S(10));
    println!("{name}: big.bin listed {after:?} after the downloader started");
    d.send("get big.bin");
    let out = d.next(S(240));
    println!("{name}: {out}");
    assert!(out.starts_with("Saved "), "{out}");
    assert!(out.contains("[fe80::1%eth0]:10000: 64 chunks"), "{out}");
    let got = std::fs::read(net.shared(2).join("dl_big.bin")).unwrap();
    assert!(got == file, "the download differs from the file");
    d.send("quit");
    assert!(net.wait_exit(d.proc, S(10)).success());
    net.assert_no_panic();
}

#[test]
fn i1_link_local_only_hosts_find_each_other_and_download_mio() {
    link_local_only(61, "i1", "smol", "mio");
}

#[test]
fn i2_link_local_only_hosts_find_each_other_and_download_smol() {
    link_local_only(62, "i2", "mio", "smol");
}

/// A `--peer` with a link-local address and its interface is dialled there (multicast off on
/// both sides, so the peer is known only from the flag), over IPv6 only, on both runtimes.
#[test]
fn i3_a_static_link_local_peer_is_dialled_with_its_interface() {
    let Some(mut net) = Net::new(63, "i3", 2, false) else {
        return;
    };
    net.multicast = true;
    link_local(&net, 1, true);
    link_local(&net, 2, true);
    let file = data(3 * MIB + 5, 63);
    let _seeder = net.seeder(
        1,
        &[("small.bin", &file)],
        &["--no-web", "--no-multicast", "--port", "10001"],
    );
    for rt in ["mio", "smol"] {
        let out = net.run(
            2,
            &[
                "--no-multicast",
                "--runtime",
                rt,
                "--peer",
                "[fe80::1%eth0]:10001",
                "get",
                "small.bin",
                "--timeout",
                "60",
                "--json",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{rt}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("\"addr\":\"[fe80::1%eth0]:10001\""),
            "{rt}: {text}"
        );
        let got = std::fs::read(net.shared(2).join("dl_small.bin")).unwrap();
        assert!(got == file, "{rt}: the download differs");
        std::fs::remove_file(net.shared(2).join("dl_small.bin")).unwrap();
    }
    // A link-local address without its interface is refused in one line.
    let out = net.run(2, &["--no-multicast", "--peer", "[fe80::1]:10001", "peers"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("needs its interface"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    net.assert_no_panic();
}

/// A peer heard over IPv4 (broadcast) and IPv6 (multicast) is one peer: listed once, at the
/// address of the family heard first (IPv4: it goes out first), while every IPv6 copy arrives
/// and is recognised as a copy (counted stale, not a second peer).
#[test]
fn i4_a_peer_heard_on_both_families_is_listed_once() {
    let Some(mut net) = Net::new(64, "i4", 2, false) else {
        return;
    };
    net.multicast = true;
    link_local(&net, 1, false);
    link_local(&net, 2, false);
    let a = net.seeder(1, &[], &["--no-web", "--interval", "1"]);
    let _b = net.seeder(2, &[("x.bin", b"x")], &["--no-web", "--interval", "1"]);
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < S(6) {
        let out = net.run(1, &["peers", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let peers = v["peers"].as_array().unwrap();
        if !peers.is_empty() {
            assert_eq!(peers.len(), 1, "{text}");
            let addr = peers[0]["addr"].as_str().unwrap();
            assert!(addr.starts_with("10.99.0.2:"), "{text}");
            rounds += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(rounds >= 10, "listed in only {rounds} looks");
    // Host 1 heard the IPv6 copies too: each one carried a mark it already held.
    let stats = last_stats(&net.stderr(a));
    let stale = stat(&stats, "announcements_stale");
    println!(
        "i4: stale copies {stale}, claims elsewhere {}",
        stat(&stats, "claims_elsewhere")
    );
    assert!(stale >= 3, "no IPv6 copy arrived: {stats:?}");
    net.assert_no_panic();
}

/// A dual-stack peer whose IPv4 address goes away is found again over IPv6: listed at its IPv4
/// address first, it is forgotten there after the expiry (3½ intervals: its IPv6 copies do not
/// keep an entry at another address alive) and listed at its link-local address with its next
/// datagram, and a download from it works there.
#[test]
fn i5_a_dual_stack_peer_that_loses_ipv4_is_found_again_over_ipv6() {
    let Some(mut net) = Net::new(65, "i5", 2, false) else {
        return;
    };
    net.multicast = true;
    link_local(&net, 1, false);
    link_local(&net, 2, false);
    let file = data(2 * MIB + 3, 65);
    let _seeder = net.seeder(
        2,
        &[("f.bin", &file)],
        &["--no-web", "--interval", "1", "--runtime", "smol"],
    );
    let start = Instant::now();
    let mut d = net.prompt(1, &["--no-web", "--interval", "1"]);
    let (line, after) = listed(&mut d, "10.99.0.2:10000", start, S(10));
    println!("i5: {line} listed {after:?} after start");
    let h2 = net.ns(2);
    ip(&["-n", &h2, "-4", "addr", "flush", "dev", "eth0"]);
    ip(&["-n", &h2, "-4", "route", "flush", "table", "main"]);
    let cut = Instant::now();
    let (line, after) = listed(&mut d, "[fe80::2%eth0]:10000", cut, S(10));
    println!("i5: {line} listed {after:?} after host 2 lost IPv4 (expiry 3.5 s)");
    let out = d.cmd("peers", S(5));
    assert_eq!(
        out.lines().filter(|l| l.contains(":10000")).count(),
        1,
        "{out}"
    );
    listed_file(&mut d, "f.bin", cut, S(15));
    d.send("get f.bin");
    let out = d.next(S(60));
    assert!(out.contains("[fe80::2%eth0]:10000: 3 chunks"), "{out}");
    assert!(std::fs::read(net.shared(1).join("dl_f.bin")).unwrap() == file);
    d.send("quit");
    assert!(net.wait_exit(d.proc, S(10)).success());
    net.assert_no_panic();
}

/// Pairing on a link with IPv6 only: the waiter's offer goes to the multicast group, the
/// joiner hears it on its IPv6 discovery socket and connects to the waiter's link-local
/// address on the interface it came in on; each side ends with the other's key allowed.
#[test]
fn i6_pairing_over_link_local_ipv6_only() {
    let Some(mut net) = Net::new(66, "i6", 2, false) else {
        return;
    };
    net.multicast = true;
    link_local(&net, 1, true);
    link_local(&net, 2, true);
    let waiter = net.spawn(1, &["pair", "--timeout", "30"]);
    net.wait_stderr(waiter, "pairing code ", S(10));
    let err = net.stderr(waiter);
    let code = err
        .split("pairing code ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_owned();
    let start = Instant::now();
    let joiner = net.spawn(2, &["pair", &code, "--timeout", "30"]);
    assert!(
        net.wait_exit(joiner, S(30)).success(),
        "joiner: {}",
        net.stderr(joiner)
    );
    assert!(
        net.wait_exit(waiter, S(30)).success(),
        "waiter: {}",
        net.stderr(waiter)
    );
    println!("i6: paired over IPv6 in {:?}", start.elapsed());
    assert!(
        net.stderr(joiner).contains("at [fe80::1%"),
        "{}",
        net.stderr(joiner)
    );
    let key_of = |i: usize| {
        let out = net.run(i, &["id"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let allowed = |i: usize| {
        std::fs::read_to_string(net.shared(i).join(".p2pshare-allow")).unwrap_or_default()
    };
    assert!(allowed(1).contains(&key_of(2)), "{}", allowed(1));
    assert!(allowed(2).contains(&key_of(1)), "{}", allowed(2));
    net.assert_no_panic();
}
