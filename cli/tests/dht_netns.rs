//! `--dht` between hosts in network namespaces (issue 30): a mainline DHT testnet runs on a host
//! of its own (this test binary as a helper), a seeder on one IPv4 subnet and a downloader on
//! another behind a router namespace (unicast forwarded, no broadcast across), with no known
//! peers and no `--peer`: the downloader's `get <content id>` can only find the seeder through
//! the DHT. `grep DHT_NETNS` prints how long it took.
//!
//! `P2PSHARE_DHT_COST=SECS` also runs the cost measurement: a peer sharing 1,000 files with
//! `--dht` for SECS seconds, its DHT traffic counted on its only interface (discovery stays on
//! its loopback), the figures for an hour printed (`grep DHT_COST`); and what a put of the
//! address record costs (a peer sharing nothing, given a new address twice; `grep
//! DHT_RECORD_COST`).
//!
//! A link by key alone (`?peer=KEY`, no address) finds its peer through the peer's address
//! record, five times (`grep DHT_RESOLVE`: get to first address, median), and so does a
//! folder's short link, every file under it fetched; then the peer moves
//! (stopped, renumbered, started again on the same folder) and the old full link still finds
//! it at its new address (`grep DHT_MOVED`).
//!
//! Safety (as the other namespace tests): every process runs in a namespace this test made,
//! the DHT nodes know only each other (every peer is given `--dht-bootstrap` at the testnet),
//! and a guard ([`hosts::Net`]) kills what it started (by pid) and removes the namespaces, on
//! success and on failure; without root or `ip netns` the tests print why and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the helpers the other namespace tests use
mod hosts;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hosts::Net;

const S: fn(u64) -> Duration = Duration::from_secs;

/// Starts the testnet helper on host `i` (`nodes` DHT nodes bound to `ip`, for `secs`
/// seconds): its bootstrap arguments for p2pshare.
fn testnet_on(net: &mut Net, i: usize, ip: &str, nodes: usize, secs: u64) -> Vec<String> {
    let p = net.spawn_helper(
        i,
        "testnet",
        &[
            ("P2PT_BIND", ip.to_owned()),
            ("P2PT_NODES", nodes.to_string()),
            ("P2PT_SECS", secs.to_string()),
        ],
    );
    net.wait_stdout(p, "BOOTSTRAP ", S(20));
    let out = net.stdout(p);
    // After the test harness's own words on that line.
    let line = out
        .lines()
        .find_map(|l| l.find("BOOTSTRAP ").map(|k| &l[k..]))
        .unwrap();
    let mut args = vec!["--dht".to_owned()];
    for b in line.split_whitespace().skip(1) {
        assert!(b.starts_with(ip), "a testnet node off its host: {b}");
        args.push("--dht-bootstrap".into());
        args.push(b.to_owned());
    }
    args
}

/// The status of host `i`'s running peer, once `done` holds (`within` at most).
fn status_until(
    net: &Net,
    i: usize,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let out = net.run(i, &["status", "--json"]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "host {i}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_holder_on_another_subnet_is_found_through_the_dht_alone() {
    let Some(mut net) = Net::new(1, "a_holder_on_another_subnet_…", 3, false) else {
        return;
    };
    // Hosts 1 (the seeder) and 3 (the DHT) on 10.99.0.0/24, host 2 on 10.98.0.0/24.
    net.route_between(&[2]);
    let dht = testnet_on(&mut net, 3, "10.99.0.3", 12, 120);
    let dht: Vec<&str> = dht.iter().map(String::as_str).collect();
    let bytes = hosts::data(64 << 20, 40);
    let seeder = net.seeder(1, &[("far.bin", &bytes)], &dht);
    drop(bytes);
    let s = status_until(&net, 1, S(20), |s| {
        s["dht"]["announced"].as_u64().unwrap_or(0) >= 1
    });
    let content = s["shared"][0]["content"].as_str().unwrap().to_owned();
    let mut args = dht.clone();
    args.extend(["get", &content, "--json", "--timeout", "60"]);
    let start = Instant::now();
    let out = net.run(2, &args);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "get failed: {err}\nseeder: {}",
        net.stderr(seeder)
    );
    assert!(err.contains("looking in the DHT"), "{err}");
    let first = err
        .lines()
        .find(|l| l.starts_with("dht: ") && l.contains(" after "))
        .and_then(|l| {
            l.split(" after ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .expect("a dht holders line");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["sources"][0]["addr"], "10.99.0.1:10000", "{j}");
    let got = std::fs::read(net.shared(2).join("dl_far.bin")).unwrap();
    let shared = std::fs::read(net.shared(1).join("far.bin")).unwrap();
    assert!(got == shared, "dl_far.bin differs from far.bin");
    println!(
        "DHT_NETNS first_holder={first:.3}s get={:.3}s (64 MiB across a router, found by the DHT only)",
        took.as_secs_f64()
    );
    net.assert_no_panic();
}

/// The median of `v` (sorted in place).
fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn a_link_by_key_alone_finds_its_peer_and_finds_it_again_after_it_moved() {
    let Some(mut net) = Net::new(3, "a_link_by_key_alone_finds_its_peer_…", 3, false) else {
        return;
    };
    // The holder (host 1) and the DHT (host 3) on 10.99.0.0/24, the downloader (host 2) on
    // 10.98.0.0/24 behind the router: no broadcast between them, no known peers.
    net.route_between(&[2]);
    let dht = testnet_on(&mut net, 3, "10.99.0.3", 12, 180);
    let dht: Vec<&str> = dht.iter().map(String::as_str).collect();
    let bytes = hosts::data(1 << 20, 41);
    let album = [
        ("a.jpg", hosts::data(300_000, 42)),
        ("b.jpg", hosts::data(200_000, 43)),
    ];
    std::fs::create_dir_all(net.shared(1).join("album")).unwrap();
    for (name, b) in &album {
        std::fs::write(net.shared(1).join("album").join(name), b).unwrap();
    }
    let holder = net.seeder(1, &[("moving.bin", &bytes)], &dht);
    let s = status_until(&net, 1, S(20), |s| s["dht"]["record"]["seq"].is_i64());
    let first_seq = s["dht"]["record"]["seq"].as_i64().unwrap();
    assert_eq!(s["dht"]["record"]["addrs"], 1, "10.99.0.1 only: {s}");
    let key = s["me"].as_str().unwrap().to_owned();
    let link = net.run(1, &["link", "moving.bin", "--json"]);
    assert!(link.status.success(), "{link:?}");
    let link: serde_json::Value = serde_json::from_slice(&link.stdout).unwrap();
    let (long, short) = (
        link["link"].as_str().unwrap().to_owned(),
        link["short"].as_str().unwrap().to_owned(),
    );
    assert!(long.contains("@10.99.0.1:10000"), "{long}");
    assert!(short.ends_with(&format!("?peer={key}")), "{short}");
    let looking = format!("looking up {} in the DHT", &key[..12]);

    // The short link, five times (a new folder each): get to the first address of the record.
    let mut firsts = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut args = dht.clone();
        args.extend(["get", &short, "--json", "--timeout", "30"]);
        let start = Instant::now();
        let p = net.spawn_in(2, dir.path(), &args);
        net.wait_stderr(p, " is at 10.99.0.1:10000 (its record", S(20));
        firsts.push(start.elapsed());
        let st = net.wait_exit(p, S(30));
        let err = net.stderr(p);
        assert!(st.success(), "get of the short link failed: {err}");
        assert!(err.contains(&looking), "{err}");
        let j: serde_json::Value = serde_json::from_str(&net.stdout(p)).unwrap();
        assert_eq!(j["sources"][0]["addr"], "10.99.0.1:10000", "{j}");
        let got = std::fs::read(dir.path().join("dl_moving.bin")).unwrap();
        assert!(got == bytes, "dl_moving.bin differs from moving.bin");
    }
    let listed: Vec<String> = firsts
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect();
    println!(
        "DHT_RESOLVE get_to_first_address median={:.3}s runs=[{}] (short link, across a router)",
        median(&mut firsts).as_secs_f64(),
        listed.join(" ")
    );

    // At the prompt: it says it looks the key up, saves the file, and `peers -v` says the
    // peer was found through the DHT; `status` counts the lookup.
    let mut args = vec!["-v"];
    args.extend(dht.iter().copied());
    let mut prompt = net.prompt(2, &args);
    let got = prompt.cmd(&format!("get {short}"), S(30));
    assert!(got.contains(&looking), "{got}");
    assert!(got.contains("Saved "), "{got}");
    let peers = prompt.cmd("peers", S(5));
    assert!(
        peers
            .lines()
            .any(|l| l.contains("10.99.0.1:10000") && l.ends_with(", dht)")),
        "peers -v does not say dht: {peers}"
    );
    let status = prompt.cmd("status", S(5));
    assert!(status.contains("1 peers looked up"), "{status}");
    prompt.send("quit");
    net.wait_exit(prompt.proc, S(10));
    let got = std::fs::read(net.shared(2).join("dl_moving.bin")).unwrap();
    assert!(
        got == bytes,
        "the prompt's dl_moving.bin differs from moving.bin"
    );

    // A folder's short link: its peer is found by its key alone the same way, and every file
    // under the folder is fetched from it.
    let folder = net.run(1, &["link", "album/", "--json"]);
    assert!(folder.status.success(), "{folder:?}");
    let folder: serde_json::Value = serde_json::from_slice(&folder.stdout).unwrap();
    let folder_short = folder["short"].as_str().unwrap().to_owned();
    assert!(
        folder_short.ends_with(&format!("album/?peer={key}")),
        "{folder_short}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut args = dht.clone();
    args.extend(["get", &folder_short, "--timeout", "30"]);
    let out = net.run_in(2, dir.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "get of the folder's short link failed: {err}"
    );
    assert!(err.contains(&looking), "{err}");
    for (name, b) in &album {
        let got = std::fs::read(dir.path().join("dl_album").join(name)).unwrap();
        assert!(got == *b, "dl_album/{name} differs");
    }

    // The holder moves: stopped, its host renumbered (10.99.0.1 is no one's now), started
    // again on the same folder (so the same key) at 10.99.0.7.
    net.signal(holder, "TERM");
    net.wait_exit(holder, S(10));
    let h1 = net.ns(1);
    hosts::ip(&["-n", &h1, "-4", "addr", "flush", "dev", "eth0"]);
    hosts::add_ipv4(&h1, "10.99.0.7/24", "10.99.0.255", "eth0");
    hosts::ip(&[
        "-n",
        &h1,
        "route",
        "replace",
        "default",
        "via",
        "10.99.0.254",
        "dev",
        "eth0",
    ]);
    net.seeder(1, &[], &dht);
    let s = status_until(&net, 1, S(20), |s| {
        s["dht"]["record"]["seq"]
            .as_i64()
            .is_some_and(|q| q > first_seq)
    });
    assert_eq!(s["me"], key.as_str(), "the same folder, the same key");
    // The old, full link (its address 10.99.0.1) still finds it, through its record.
    let dir = tempfile::tempdir().unwrap();
    let mut args = dht.clone();
    args.extend(["get", &long, "--json", "--timeout", "30"]);
    let start = Instant::now();
    let out = net.run_in(2, dir.path(), &args);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "get of the old link failed: {err}");
    assert!(err.contains(&looking), "{err}");
    assert!(err.contains(" is at 10.99.0.7:10000 (its record"), "{err}");
    // The record found it: the content's holders were not looked up (that comes only
    // KEYS_FIRST later).
    assert!(!err.contains("looking in the DHT too"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["sources"][0]["addr"], "10.99.0.7:10000", "{j}");
    let got = std::fs::read(dir.path().join("dl_moving.bin")).unwrap();
    assert!(got == bytes, "dl_moving.bin differs from moving.bin");
    println!(
        "DHT_MOVED get_seconds={:.3} (old link, the peer found at its new address)",
        took.as_secs_f64()
    );
    net.assert_no_panic();
}

/// Host `i`'s eth0 counters: (rx packets, rx bytes, tx packets, tx bytes).
fn eth0(net: &Net, i: usize) -> [u64; 4] {
    let path = |what: &str| format!("/sys/class/net/eth0/statistics/{what}");
    let read = |what: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &net.ns(i), "cat", &path(what)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"].map(read)
}

#[test]
fn what_announcing_1000_files_costs() {
    let Ok(secs) = std::env::var("P2PSHARE_DHT_COST") else {
        println!("SKIPPED what_announcing_1000_files_costs: set P2PSHARE_DHT_COST=SECS");
        return;
    };
    let secs: u64 = secs.parse().unwrap();
    let Some(mut net) = Net::new(2, "what_announcing_1000_files_costs", 2, false) else {
        return;
    };
    let dht = testnet_on(&mut net, 2, "10.99.0.2", 50, secs + 120);
    for k in 0..1000u32 {
        let name = format!("f{k:04}.txt");
        std::fs::write(net.shared(1).join(name), format!("file {k}\n")).unwrap();
    }
    let mut args: Vec<&str> = vec!["--broadcast", "127.255.255.255"];
    args.extend(dht.iter().map(String::as_str));
    let seeder = net.seeder(1, &[], &args);
    // From the first announce on: the burst, then the hourly rate.
    let s0 = status_until(&net, 1, S(30), |s| {
        s["dht"]["announced"].as_u64().unwrap_or(0) >= 1
    });
    let (t0, c0) = (Instant::now(), eth0(&net, 1));
    std::thread::sleep(S(secs));
    let s1 = status_until(&net, 1, S(5), |_| true);
    let (dt, c1) = (t0.elapsed().as_secs_f64(), eth0(&net, 1));
    let d: Vec<u64> = c0.iter().zip(c1).map(|(a, b)| b - a).collect();
    let announces =
        s1["dht"]["announced"].as_u64().unwrap() - s0["dht"]["announced"].as_u64().unwrap();
    let failed = s1["dht"]["announce_failures"].as_u64().unwrap();
    let per = |x: u64| x as f64 / announces.max(1) as f64;
    let hour = |x: u64| x as f64 * 3600.0 / dt;
    println!(
        "DHT_COST window={dt:.0}s shared={} announces={announces} failed={failed}; \
         packets out={} in={} ({:.1} out, {:.1} in per announce); bytes out={} in={} \
         ({:.0} out, {:.0} in per announce)",
        s1["dht"]["shared"],
        d[2],
        d[0],
        per(d[2]),
        per(d[0]),
        d[3],
        d[1],
        per(d[3]),
        per(d[1]),
    );
    println!(
        "DHT_COST per hour at this rate: {:.0} announces, {:.0} packets out, {:.0} in, \
         {:.0} KiB out, {:.0} KiB in",
        announces as f64 * 3600.0 / dt,
        hour(d[2]),
        hour(d[0]),
        hour(d[3]) / 1024.0,
        hour(d[1]) / 1024.0,
    );
    assert!(announces > 0, "{}", net.stderr(seeder));
    net.assert_no_panic();
}

#[test]
fn what_publishing_the_address_record_costs() {
    if std::env::var("P2PSHARE_DHT_COST").is_err() {
        println!("SKIPPED what_publishing_the_address_record_costs: set P2PSHARE_DHT_COST");
        return;
    }
    let Some(mut net) = Net::new(4, "what_publishing_the_address_record_costs", 2, false) else {
        return;
    };
    let dht = testnet_on(&mut net, 2, "10.99.0.2", 50, 300);
    // Nothing shared: no announces, the record's puts alone (and the node's upkeep).
    let mut args: Vec<&str> = vec!["--broadcast", "127.255.255.255"];
    args.extend(dht.iter().map(String::as_str));
    let peer = net.seeder(1, &[], &args);
    let puts = |s: &serde_json::Value| s["dht"]["record_puts"].as_u64().unwrap_or(0);
    status_until(&net, 1, S(30), |s| puts(s) >= 1);
    std::thread::sleep(S(3));
    // The upkeep alone, over as long as a put's window below.
    let window = S(8);
    let (q0, q1) = (eth0(&net, 1), {
        std::thread::sleep(window);
        eth0(&net, 1)
    });
    let quiet: Vec<u64> = q0.iter().zip(q1).map(|(a, b)| b - a).collect();
    // Each new address is a change: the record is put within HEALTH_EVERY (5 s); the burst
    // leaves room for two more at once.
    let mut per_put = Vec::new();
    for (k, cidr) in ["10.99.0.50/24", "10.99.0.51/24"].iter().enumerate() {
        let c0 = eth0(&net, 1);
        let t0 = Instant::now();
        hosts::add_ipv4(&net.ns(1), cidr, "10.99.0.255", "eth0");
        let s = status_until(&net, 1, S(20), |s| puts(s) >= 2 + k as u64);
        std::thread::sleep(window.saturating_sub(t0.elapsed()));
        let c1 = eth0(&net, 1);
        let d: Vec<u64> = c0.iter().zip(c1).map(|(a, b)| b - a).collect();
        println!(
            "DHT_RECORD_COST put {} ({} addresses, {} bytes): packets out={} in={}, bytes \
             out={} in={} in {:.0} s; upkeep alone in as long: packets out={} in={}, bytes \
             out={} in={}",
            k + 2,
            s["dht"]["record"]["addrs"],
            s["dht"]["record"]["bytes"],
            d[2],
            d[0],
            d[3],
            d[1],
            window.as_secs_f64(),
            quiet[2],
            quiet[0],
            quiet[3],
            quiet[1]
        );
        per_put.push([
            d[2] - quiet[2].min(d[2]),
            d[3] - quiet[3].min(d[3]),
            d[0] - quiet[0].min(d[0]),
            d[1] - quiet[1].min(d[1]),
        ]);
    }
    let n = per_put.len() as u64;
    let avg = |i: usize| per_put.iter().map(|p| p[i]).sum::<u64>() / n;
    for (what, per_hour) in [("steady (2 puts/h)", 2), ("at the bound (12 puts/h)", 12)] {
        println!(
            "DHT_RECORD_COST per hour, {what}: {} packets out, {} in, {} KiB out, {} KiB in \
             (per put: {} packets out, {} in, {} bytes out, {} in)",
            avg(0) * per_hour,
            avg(2) * per_hour,
            avg(1) * per_hour / 1024,
            avg(3) * per_hour / 1024,
            avg(0),
            avg(2),
            avg(1),
            avg(3)
        );
    }
    assert!(
        net.stderr(peer).contains("dht: record put"),
        "{}",
        net.stderr(peer)
    );
    net.assert_no_panic();
}

/// The helper this binary runs on a host (`P2PT_HELPER=testnet`): a testnet of `P2PT_NODES`
/// DHT nodes bound to `P2PT_BIND`, its addresses printed, kept for `P2PT_SECS`.
#[test]
fn helper() {
    let Ok(mode) = std::env::var("P2PT_HELPER") else {
        return;
    };
    assert_eq!(mode, "testnet");
    let var = |k: &str| std::env::var(k).unwrap();
    let bind: Ipv4Addr = var("P2PT_BIND").parse().unwrap();
    let nodes: usize = var("P2PT_NODES").parse().unwrap();
    let secs: u64 = var("P2PT_SECS").parse().unwrap();
    let testnet = mainline::Testnet::builder(nodes)
        .bind_address(bind)
        .build()
        .unwrap();
    println!("BOOTSTRAP {}", testnet.bootstrap.join(" "));
    std::thread::sleep(S(secs));
}
