//! Known peers across a router end to end (issue 29): the real `p2pshare` binary on hosts in
//! network namespaces, on two IPv4 subnets joined by a router namespace that forwards unicast
//! and no broadcast. Peer A (subnet 1) meets peer B (subnet 2) once through `--peer KEY@HOST:PORT`;
//! both quit; started again with no flag, each finds the other from its folder's known peers
//! within two intervals, while a third peer on A's subnet that never met B hears A by broadcast
//! and never lists B. And a link made on one subnet fetches its file on the other (r3: `link`
//! through the seeder's running peer, a one-shot `get LINK` from a folder that never met it).
//! The time each path took is printed (`--nocapture`, `grep ROUTED`).
//!
//! Safety rules these tests follow (as `netns.rs`):
//! - every peer runs inside a namespace this test created (`p<pid>t<n>-h<i>`, on its own bridge
//!   namespace `p<pid>t<n>-br`, and the router `p<pid>t<n>-r`), with the default discovery
//!   settings: each host's directed broadcast (`10.99.0.255` or `10.98.0.255`), which reaches
//!   only its own bridge, and `--no-multicast`; no peer runs in the root namespace, nothing is
//!   sent anywhere else;
//! - a guard ([`hosts::Net`]) kills the processes it started (by pid) and deletes its
//!   namespaces, the router's too, on success and on failure;
//! - without root or without `ip netns`, every test prints why and passes without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the helpers the other namespace tests use
mod hosts;

use std::time::{Duration, Instant};

use hosts::Net;

const S: fn(u64) -> Duration = Duration::from_secs;

/// The announcement interval of every peer here: short, so that "within two intervals" is
/// a few seconds.
const INTERVAL: u64 = 2;

/// Host `i`'s key, whole, from `p2pshare id` (made on first use).
fn key_of(net: &Net, i: usize) -> String {
    let out = net.run(i, &["id"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(key.len(), 64, "{key}");
    key
}

/// The peers the running peer of host `i` lists now (`p2pshare status --json`, answered
/// through its control socket), or `None` while no peer runs there (a one-shot `peers` would
/// run a peer of its own then).
fn peers(net: &Net, i: usize) -> Option<Vec<serde_json::Value>> {
    let out = net.run(i, &["status", "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["peers"].as_array().cloned()
}

/// The entry of `key` in `list`, if listed.
fn entry<'a>(list: &'a [serde_json::Value], key: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|p| p["id"] == key)
}

/// Starts `p2pshare serve` on host `i` and waits until it answers through its control socket
/// (so its known peers were given to its node); returns the process and when it answered.
fn serve(net: &mut Net, i: usize, args: &[&str]) -> (usize, Instant) {
    let interval = INTERVAL.to_string();
    let mut all = vec!["--interval", interval.as_str()];
    all.extend_from_slice(args);
    all.push("serve");
    let p = net.spawn(i, &all);
    let deadline = Instant::now() + S(10);
    while peers(net, i).is_none() {
        assert!(
            Instant::now() < deadline,
            "host {i} never answered: {}",
            net.stderr(p)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (p, Instant::now())
}

/// Waits until each host `i` of `wanted` lists its `key`, asking them in turn (so that each
/// time is its own, not the time the others took); returns each entry and how long after
/// `since` it was first seen.
fn until_listed(
    net: &Net,
    wanted: &[(usize, &str)],
    since: Instant,
    within: Duration,
) -> Vec<(serde_json::Value, Duration)> {
    let mut seen: Vec<Option<(serde_json::Value, Duration)>> = vec![None; wanted.len()];
    while seen.iter().any(Option::is_none) {
        for (k, &(i, key)) in wanted.iter().enumerate() {
            if seen[k].is_some() {
                continue;
            }
            let list = peers(net, i).unwrap_or_default();
            if let Some(e) = entry(&list, key) {
                seen[k] = Some((e.clone(), since.elapsed()));
                continue;
            }
            assert!(
                since.elapsed() < within,
                "host {i} does not list {key} after {within:?}: {list:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.into_iter().flatten().collect()
}

/// Ends process `p` with SIGTERM (a goodbye, the known peers written) and waits for it.
fn stop(net: &mut Net, p: usize) {
    net.signal(p, "TERM");
    let st = net.wait_exit(p, S(10));
    assert_eq!(st.code(), Some(143), "{}", net.stderr(p));
}

/// Hosts 1 (A) and 3 (C) on subnet 1, host 2 (B) on subnet 2 behind the router. A runs on
/// `rt_a`, B on `rt_b`.
fn known_across_a_router(test: u32, name: &str, rt_a: &str, rt_b: &str) {
    let Some(mut net) = Net::new(test, name, 3, false) else {
        return;
    };
    net.route_between(&[2]);
    let (a_key, b_key, c_key) = (key_of(&net, 1), key_of(&net, 2), key_of(&net, 3));

    // Once: A is told where B is (and which key it must present).
    let (b, _) = serve(&mut net, 2, &["--runtime", rt_b]);
    let b_spec = format!("{b_key}@10.98.0.2:10000");
    let (a, a_up) = serve(&mut net, 1, &["--runtime", rt_a, "--peer", &b_spec]);
    let within = S(10);
    let got = until_listed(&net, &[(1, &b_key), (2, &a_key)], a_up, within);
    let [(ab, t_ab), (ba, t_ba)] = <[_; 2]>::try_from(got).unwrap();
    println!("ROUTED {name}: --peer: A lists B after {t_ab:?}, B lists A after {t_ba:?}");
    assert_eq!(ab["addr"], "10.98.0.2:10000", "{ab}");
    assert_eq!(ab["found"], "static", "{ab}");
    assert_eq!(ba["addr"], "10.99.0.1:10000", "{ba}");
    assert_eq!(ba["found"], "inbound", "{ba}");
    for e in [&ab, &ba] {
        assert_eq!(e["new"], true, "met for the first time: {e}");
        assert_eq!(e["interface"], "eth0", "{e}");
        assert_eq!(e["routed"], true, "{e}");
    }
    stop(&mut net, a);
    stop(&mut net, b);
    for (i, other) in [(1, &b_key), (2, &a_key)] {
        let known = std::fs::read_to_string(net.shared(i).join(".p2pshare-known")).unwrap();
        assert!(known.contains(other.as_str()), "host {i}: {known}");
    }

    // Again, with no flag at all: the known peers bring them together; C, on A's subnet and
    // never told of B, hears A by broadcast only.
    let (c, c_up) = serve(&mut net, 3, &["--runtime", rt_a]);
    let (b, _) = serve(&mut net, 2, &["--runtime", rt_b]);
    let (a, both_up) = serve(&mut net, 1, &["--runtime", rt_a]);
    let two = S(2 * INTERVAL);
    let got = until_listed(&net, &[(1, &b_key), (2, &a_key), (3, &a_key)], both_up, two);
    let [(ab, t_ab), (ba, t_ba), (ca, t_ca)] = <[_; 3]>::try_from(got).unwrap();
    println!(
        "ROUTED {name}: known peers (interval {INTERVAL} s; A on {rt_a}, B on {rt_b}): A lists B \
         {t_ab:?} and B lists A {t_ba:?} after both were up; broadcast: C lists A {t_ca:?} \
         after A was up ({:?} after C was)",
        t_ca + both_up.duration_since(c_up)
    );
    for e in [&ab, &ba] {
        assert_eq!(e["new"], false, "met before this run: {e}");
        let found = e["found"].as_str().unwrap_or_default();
        // Whichever side's probe connects first: the other hears it as inbound.
        assert!(found == "known" || found == "inbound", "{e}");
        assert_eq!(e["routed"], true, "{e}");
    }
    assert!(
        [&ab, &ba].iter().any(|e| e["found"] == "known"),
        "neither was found by a probe: {ab} {ba}"
    );
    assert_eq!(ab["addr"], "10.98.0.2:10000", "{ab}");
    assert_eq!(ba["addr"], "10.99.0.1:10000", "{ba}");
    assert_eq!(ca["found"], "broadcast", "{ca}");
    assert_eq!(ca["interface"], "eth0", "{ca}");
    assert_eq!(ca["routed"], false, "{ca}");
    // The control: two more intervals on, C still lists A alone and B does not list C.
    std::thread::sleep(two);
    let c_list = peers(&net, 3).unwrap();
    let c_ids: Vec<&str> = c_list.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(c_ids, [a_key.as_str()], "C lists only A: {c_list:?}");
    let b_list = peers(&net, 2).unwrap();
    assert!(entry(&b_list, &c_key).is_none(), "B lists C: {b_list:?}");
    // The text view says how each was found and over which interface.
    let text = net.run(1, &["-v", "peers"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    println!("ROUTED {name}: A's `peers -v`:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("10.98.0.2:10000") && l.contains("routed via eth0")),
        "{text}"
    );
    // C: on A's subnet; heard by broadcast, or by its hello if C heard A first and dialled.
    assert!(
        text.lines().any(|l| l.starts_with("10.99.0.3:10000")
            && (l.ends_with("(on eth0, broadcast)") || l.ends_with("(on eth0, inbound)"))),
        "{text}"
    );
    for p in [a, b, c] {
        stop(&mut net, p);
    }
    net.assert_no_panic();
}

/// 1. A on mio, B on smol.
#[test]
fn r1_known_peers_meet_again_across_a_router_mio_smol() {
    known_across_a_router(70, "r1", "mio", "smol");
}

/// 2. A on smol, B on mio.
#[test]
fn r2_known_peers_meet_again_across_a_router_smol_mio() {
    known_across_a_router(71, "r2", "smol", "mio");
}

/// A link across the router (3.): B (subnet 2) shares 16 MiB and makes a link through its
/// running peer; A (subnet 1), a fresh folder that never met B and hears no broadcast of it,
/// fetches the file with a one-shot `get LINK`, byte for byte. Both runtimes, one each side.
#[test]
fn r3_get_link_across_a_router() {
    let Some(mut net) = Net::new(72, "r3", 2, false) else {
        return;
    };
    net.route_between(&[2]);
    let bytes = hosts::data(16 << 20, 29);
    let b = net.seeder(2, &[("across.bin", &bytes)], &["--runtime", "smol"]);
    let out = net.run(2, &["link", "across.bin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let long = stdout.lines().next().unwrap_or_default().to_owned();
    assert!(long.starts_with("p2pshare://"), "{stdout}");
    assert!(
        long.contains("@10.98.0.2:10000"),
        "names B's address: {long}"
    );
    let t0 = Instant::now();
    let got = net.run(1, &["--runtime", "mio", "get", &long, "--timeout", "60"]);
    let took = t0.elapsed();
    assert!(
        got.status.success(),
        "get LINK: {}{}",
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&got.stderr)
    );
    let saved = std::fs::read(net.shared(1).join("dl_across.bin")).unwrap();
    assert!(saved == bytes, "the file arrived byte for byte");
    println!("ROUTED r3: get LINK of 16 MiB across the router, one-shot: {took:?}");
    stop(&mut net, b);
    net.assert_no_panic();
}
