//! Faults and hostile input end to end (issue 5): the real `p2pshare` binary on several hosts
//! built from network namespaces — a seeder killed, frozen or serving changed bytes, the
//! downloader killed and resumed, no holder left, a flood of garbage, hostile names, an existing
//! `dl_` file, a full disk, and rate-capped links.
//!
//! Safety rules these tests follow:
//! - every peer runs inside a namespace this test created (`p<pid>t<n>-h<i>`, on its own bridge
//!   namespace `p<pid>t<n>-br`), with the default discovery settings (255.255.255.255:9999),
//!   which reach only that bridge; no peer runs in the root namespace, nothing is sent anywhere
//!   else;
//! - the hostile clients are this test binary re-executed inside a namespace
//!   (`P2PT_HELPER=...`), talking only to 10.99.0.0/24 of that test's bridge;
//! - a guard ([`hosts::Net`]) kills the processes it started (by pid), unmounts its tmpfs and
//!   deletes its namespaces on success and on failure;
//! - without root or without `ip netns`, every test prints why and passes without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hosts;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hosts::secure::{Key, Secure};
use hosts::{Net, Rng, data, hello, ip, names, number_after, saved_secs, sources, stat};
use p2pshare_proto::wire::{CatalogEntry, ErrorCode, Frame, Message};
use p2pshare_proto::{ContentId, Manifest};

const MIB: usize = 1 << 20;
const S: fn(u64) -> Duration = Duration::from_secs;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn partials(dir: &std::path::Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".dl_") && n.ends_with(".part"))
        .collect()
}

fn peer_lines(out: &str) -> usize {
    out.lines().filter(|l| l.starts_with("10.99.0.")).count()
}

/// 1. Three hosts (mio, smol, mio; default interval) see each other within 2 s; one that quits
///    is gone at once, one that is SIGKILLed within 20 s.
#[test]
fn s01_three_hosts_discover_and_forget() {
    let Some(mut net) = Net::new(1, "s01", 3, false) else {
        return;
    };
    let start = Instant::now();
    let mut p1 = net.prompt(1, &[]);
    let mut p2 = net.prompt(2, &["--runtime", "smol"]);
    let mut p3 = net.prompt(3, &[]);
    for (i, p) in [&mut p1, &mut p2, &mut p3].into_iter().enumerate() {
        loop {
            let out = p.cmd("peers", S(5));
            if peer_lines(&out) == 2 {
                println!(
                    "host {} lists both others after {:?}",
                    i + 1,
                    start.elapsed()
                );
                break;
            }
            assert!(start.elapsed() < S(2), "host {} after 2 s: {out}", i + 1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Quit: says bye, forgotten at once.
    p3.send("quit");
    let quit = Instant::now();
    net.wait_exit(p3.proc, S(5));
    for p in [&mut p1, &mut p2] {
        while peer_lines(&p.cmd("peers", S(5))) != 1 {
            assert!(quit.elapsed() < S(20), "quit peer still listed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    println!("quit peer gone from both after {:?}", quit.elapsed());
    // SIGKILL: no bye, expires after 3.5 intervals (17.5 s by default).
    net.signal(p2.proc, "KILL");
    let killed = Instant::now();
    loop {
        let out = p1.cmd("peers", S(5));
        if out.contains("No peers found.") {
            break;
        }
        assert!(killed.elapsed() < S(20), "killed peer still listed: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("killed peer gone after {:?}", killed.elapsed());
    p1.send("quit");
    assert!(net.wait_exit(p1.proc, S(10)).success());
    net.assert_no_panic();
}

/// Starts `get` on host `i` in the background and waits until its partial file exists.
fn get_started(net: &mut Net, i: usize, name: &str, args: &[&str]) -> usize {
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["get", name, "--timeout", "120"]);
    let p = net.spawn(i, &all);
    let deadline = Instant::now() + S(15);
    while partials(&net.shared(i)).is_empty() {
        assert!(Instant::now() < deadline, "no partial: {}", net.stderr(p));
        std::thread::sleep(Duration::from_millis(5));
    }
    p
}

/// 2. Two seeders; one SIGKILLed mid-transfer; the download completes from the other.
#[test]
fn s02_seeder_killed_mid_transfer() {
    let Some(mut net) = Net::new(2, "s02", 3, false) else {
        return;
    };
    let file = data(24 * MIB, 2);
    net.cap(1, "40mbit");
    net.cap(2, "40mbit");
    let _a = net.seeder(1, &[("movie.bin", &file)], &["--interval", "1"]);
    let b = net.seeder(
        2,
        &[("movie.bin", &file)],
        &["--interval", "1", "--runtime", "smol"],
    );
    let t = Instant::now();
    let g = get_started(&mut net, 3, "movie.bin", &["--interval", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    net.signal(b, "KILL");
    let st = net.wait_exit(g, S(60));
    let out = net.stdout(g);
    println!("{out}{}", net.stderr(g));
    assert!(st.success());
    assert!(std::fs::read(net.shared(3).join("dl_movie.bin")).unwrap() == file);
    let src = sources(&out);
    let from_b = src.iter().find(|(a, _)| a.starts_with("10.99.0.2:"));
    let from_a = src
        .iter()
        .find(|(a, _)| a.starts_with("10.99.0.1:"))
        .unwrap();
    assert!(from_b.is_some_and(|b| b.1 > 0 && b.1 < 24), "{out}");
    assert_eq!(from_a.1 + from_b.unwrap().1, 24, "{out}");
    println!(
        "s02: completed in {:?} after the kill of a seeder",
        t.elapsed()
    );
    net.assert_no_panic();
}

/// 3. A seeder whose file changed after its scan serves bytes failing their hashes: rejected,
///    counted, the seeder dropped for the file, the download completes from the other.
#[test]
fn s03_changed_file_chunks_rejected() {
    let Some(mut net) = Net::new(3, "s03", 3, false) else {
        return;
    };
    let file = data(24 * MIB, 3);
    net.cap(1, "40mbit");
    let _a = net.seeder(1, &[("movie.bin", &file)], &[]);
    let b = net.seeder(2, &[("movie.bin", &file)], &["--runtime", "smol"]);
    let mut d = net.prompt(3, &["-v"]);
    let t = Instant::now();
    loop {
        let out = d.cmd("list", S(5));
        if out
            .lines()
            .any(|l| l.starts_with("movie.bin") && l.contains(" 2 "))
        {
            break;
        }
        assert!(t.elapsed() < S(10), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Freeze B, change its file in place (same size), and start the download: B's first answers
    // after it thaws come before its rescan (which must hash 24 MiB) sees the change.
    net.signal(b, "STOP");
    let mut changed = file.clone();
    for c in 0..24 {
        changed[c * MIB + 7] ^= 0xff;
    }
    std::fs::write(net.shared(2).join("movie.bin"), &changed).unwrap();
    d.send("get movie.bin");
    std::thread::sleep(Duration::from_millis(1500));
    net.signal(b, "CONT");
    let out = d.next(S(60));
    println!("{out}");
    assert!(out.starts_with("Saved "), "{out}");
    assert!(std::fs::read(net.shared(3).join("dl_movie.bin")).unwrap() == file);
    let rejected = number_after(&out, "rejected ").expect("rejected count shown");
    assert!(rejected >= 1, "{out}");
    let src = sources(&out);
    assert!(
        src.iter()
            .all(|(a, n)| !a.starts_with("10.99.0.2:") || *n == 0),
        "the changed seeder supplied chunks: {out}"
    );
    let err = net.stderr(d.proc);
    assert!(err.contains("failed its SHA-256: rejected"), "{err}");
    println!("s03: rejected {rejected} chunks; {out}");
    d.send("quit");
    net.assert_no_panic();
}

/// 4. A seeder SIGSTOPped mid-transfer: its requests time out and move to the other.
#[test]
fn s04_seeder_frozen_mid_transfer() {
    let Some(mut net) = Net::new(4, "s04", 3, false) else {
        return;
    };
    let file = data(24 * MIB, 4);
    net.cap(1, "40mbit");
    net.cap(2, "40mbit");
    let _a = net.seeder(1, &[("movie.bin", &file)], &["--runtime", "smol"]);
    let b = net.seeder(2, &[("movie.bin", &file)], &[]);
    let g = get_started(&mut net, 3, "movie.bin", &["--runtime", "smol"]);
    std::thread::sleep(Duration::from_millis(1500));
    net.signal(b, "STOP");
    let frozen = Instant::now();
    let st = net.wait_exit(g, S(60));
    let out = net.stdout(g);
    println!("s04: done {:?} after the freeze\n{out}", frozen.elapsed());
    assert!(st.success(), "{}", net.stderr(g));
    assert!(std::fs::read(net.shared(3).join("dl_movie.bin")).unwrap() == file);
    let src = sources(&out);
    let from = |ip: &str| {
        src.iter()
            .find(|(a, _)| a.starts_with(ip))
            .map_or(0, |s| s.1)
    };
    // The frozen seeder served some chunks before the freeze, the other one all the rest.
    assert!(from("10.99.0.2:") > 0 && from("10.99.0.2:") < 24, "{out}");
    assert_eq!(from("10.99.0.1:") + from("10.99.0.2:"), 24, "{out}");
    net.signal(b, "CONT");
    net.assert_no_panic();
}

/// 5. The downloader SIGKILLed mid-transfer, `get` again: resumes, fetching only what was
///    missing; `dl_NAME` never exists before the file is verified.
#[test]
fn s05_downloader_killed_and_resumed() {
    let Some(mut net) = Net::new(5, "s05", 3, false) else {
        return;
    };
    let file = data(24 * MIB, 5);
    net.cap(1, "40mbit");
    net.cap(2, "40mbit");
    let _a = net.seeder(1, &[("movie.bin", &file)], &[]);
    let _b = net.seeder(2, &[("movie.bin", &file)], &["--runtime", "smol"]);
    let dl = net.shared(3).join("dl_movie.bin");
    let g = get_started(&mut net, 3, "movie.bin", &[]);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        assert!(!dl.exists(), "dl_movie.bin exists before verification");
        std::thread::sleep(Duration::from_millis(2));
    }
    net.signal(g, "KILL");
    net.wait_exit(g, S(5));
    assert!(!dl.exists());
    let part = partials(&net.shared(3));
    assert_eq!(part.len(), 1, "{part:?}");
    // Again; watch that dl_ appears only whole.
    let g2 = net.spawn(3, &["get", "movie.bin", "--timeout", "60"]);
    loop {
        let done = net.procs[g2].child.try_wait().unwrap().is_some();
        if let Ok(m) = std::fs::metadata(&dl) {
            assert_eq!(m.len(), file.len() as u64, "dl_ visible before complete");
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = net.stdout(g2);
    println!("s05: {out}");
    assert!(std::fs::read(&dl).unwrap() == file);
    let reused = number_after(&out, "resumed: ").expect("resumed") as u32;
    let fetched: u32 = sources(&out).iter().map(|s| s.1).sum();
    assert!(reused > 0 && reused < 24, "{out}");
    assert_eq!(reused + fetched, 24, "{out}");
    assert!(partials(&net.shared(3)).is_empty());
    println!("s05: {reused} chunks reused, {fetched} fetched after the restart");
    net.assert_no_panic();
}

/// 6. The only holder killed mid-transfer: `get` stops with a clear reason within a bound and
///    keeps the partial.
#[test]
fn s06_no_holder_left() {
    let Some(mut net) = Net::new(6, "s06", 2, false) else {
        return;
    };
    let file = data(16 * MIB, 6);
    net.cap(1, "20mbit");
    let a = net.seeder(1, &[("movie.bin", &file)], &["--interval", "1"]);
    let g = get_started(&mut net, 2, "movie.bin", &["--interval", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    net.signal(a, "KILL");
    let killed = Instant::now();
    let st = net.wait_exit(g, S(20));
    let took = killed.elapsed();
    let err = net.stderr(g);
    println!("s06: get stopped {took:?} after the last holder died: {err}");
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("no peer has this file any more"), "{err}");
    assert!(took < S(10), "{took:?}");
    assert_eq!(partials(&net.shared(2)).len(), 1);
    assert!(!net.shared(2).join("dl_movie.bin").exists());
    net.assert_no_panic();
}

/// 7. Garbage to the discovery and transfer ports of both seeders while a download runs.
#[test]
fn s07_hostile_input_during_download() {
    let Some(mut net) = Net::new(7, "s07", 4, false) else {
        return;
    };
    let file = data(24 * MIB, 7);
    net.cap(1, "30mbit");
    net.cap(2, "30mbit");
    let a = net.seeder(1, &[("movie.bin", &file)], &[]);
    let b = net.seeder(2, &[("movie.bin", &file)], &["--runtime", "smol"]);
    let rss0 = (net.peak_rss_kib(a), net.peak_rss_kib(b));
    let g = get_started(&mut net, 3, "movie.bin", &[]);
    let h = net.spawn_helper(
        4,
        "flood",
        &[("P2PT_TARGETS", "10.99.0.1,10.99.0.2".into())],
    );
    let t = Instant::now();
    let st = net.wait_exit(g, S(90));
    println!(
        "s07: download finished {:?} after the flood began",
        t.elapsed()
    );
    let out = net.stdout(g);
    println!("s07: {out}");
    assert!(st.success(), "{}", net.stderr(g));
    assert!(std::fs::read(net.shared(3).join("dl_movie.bin")).unwrap() == file);
    assert!(net.wait_exit(h, S(60)).success(), "{}", net.stderr(h));
    println!("s07 flood: {}", net.stdout(h));
    std::thread::sleep(S(2)); // one more stats line
    for (p, name, before) in [(a, "mio", rss0.0), (b, "smol", rss0.1)] {
        let rss = net.peak_rss_kib(p);
        let stats = hosts::last_stats(&net.stderr(p));
        println!("s07: {name} seeder peak RSS {before} KiB before, {rss} KiB after; {stats:?}");
        assert!(rss < 200 * 1024, "{name}: peak RSS {rss} KiB");
        for key in [
            "datagrams_foreign",
            "datagrams_malformed",
            "datagrams_unknown_version",
            "frames_unreadable",
            "protocol_errors",
            "handshake_old_version",
            "handshake_failed",
            "records_failed",
        ] {
            assert!(
                stat(&stats, key) > 0,
                "{name}: {key} not counted: {stats:?}"
            );
        }
        assert!(
            net.procs[p].child.try_wait().unwrap().is_none(),
            "{name} died"
        );
    }
    net.assert_no_panic();
}

/// 8. Hostile names in catalogs are refused; a symlink to outside is not served; nothing
///    outside the shared folder is read or written.
#[test]
fn s08_hostile_names_and_symlinks() {
    let Some(mut net) = Net::new(8, "s08", 3, false) else {
        return;
    };
    let outside = net.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = data(100_000, 8);
    std::fs::write(outside.join("secret.txt"), &secret).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), net.shared(2).join("link.txt")).unwrap();
    let secret_id = Manifest::of_bytes(&secret).id();
    let v = net.seeder(2, &[("real.txt", b"real")], &[]);
    let e = net.spawn_helper(
        3,
        "evil",
        &[
            ("P2PT_VICTIM", "10.99.0.2".into()),
            ("P2PT_SECRET", secret_id.to_hex()),
        ],
    );
    std::thread::sleep(S(2));
    let o = net.run(1, &["list", "--wait", "2", "--json"]);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("s08 list: {list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let listed: Vec<String> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert!(listed.contains(&"real.txt".to_string()), "{listed:?}");
    assert!(listed.contains(&"good.txt".to_string()), "{listed:?}");
    for n in &listed {
        assert!(n == "real.txt" || n == "good.txt", "listed {n:?}");
    }
    for name in ["../x", "/etc/passwd", "a//b", "a/../../b", "link.txt"] {
        let o = net.run(1, &["get", name, "--timeout", "2"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(text(&o).contains("no peer shares"), "{name}: {}", text(&o));
    }
    assert!(net.wait_exit(e, S(30)).success(), "{}", net.stderr(e));
    let report = net.stdout(e);
    println!("s08 evil: {report}");
    assert!(report.contains("RESULT catalog-without-link"), "{report}");
    assert!(report.contains("RESULT secret-chunk-refused"), "{report}");
    assert!(
        report.contains("RESULT secret-manifest-refused"),
        "{report}"
    );
    std::thread::sleep(S(1));
    let stats = hosts::last_stats(&net.stderr(v));
    println!("s08 victim stats: {stats:?}");
    assert!(stat(&stats, "bad_names") >= 8, "{stats:?}");
    assert_eq!(names(&outside), ["secret.txt"]);
    assert!(std::fs::read(outside.join("secret.txt")).unwrap() == secret);
    for i in 1..=2 {
        for n in names(&net.shared(i)) {
            assert!(
                ["real.txt", "link.txt"].contains(&n.as_str()) || n.starts_with('.'),
                "host {i}: unexpected {n:?}"
            );
        }
    }
    assert!(!net.dir.path().join("x").exists());
    net.assert_no_panic();
}

/// 9. An existing `dl_NAME` is never overwritten: the download gets `dl_NAME (1)`.
#[test]
fn s09_existing_download_name_kept() {
    let Some(mut net) = Net::new(9, "s09", 2, false) else {
        return;
    };
    let file = data(3 * MIB, 9);
    let _a = net.seeder(1, &[("notes.txt", &file)], &["--runtime", "smol"]);
    std::fs::write(net.shared(2).join("dl_notes.txt"), b"mine, not yours").unwrap();
    let o = net.run(2, &["get", "notes.txt", "--timeout", "30"]);
    println!("s09: {}", text(&o));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_notes.txt")).unwrap(),
        b"mine, not yours"
    );
    assert!(std::fs::read(net.shared(2).join("dl_notes (1).txt")).unwrap() == file);
    assert!(text(&o).contains("dl_notes (1).txt"), "{}", text(&o));
    net.assert_no_panic();
}

/// 10. Disk full while writing: a clear error, no `dl_` file, the peer keeps running.
#[test]
fn s10_disk_full() {
    let Some(mut net) = Net::new(10, "s10", 2, false) else {
        return;
    };
    let file = data(16 * MIB, 10);
    let _a = net.seeder(1, &[("movie.bin", &file)], &[]);
    net.tmpfs(2, "6m");
    let mut d = net.prompt(2, &["--runtime", "smol"]);
    let t = Instant::now();
    loop {
        if d.cmd("list", S(5)).contains("movie.bin") {
            break;
        }
        assert!(t.elapsed() < S(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = d.cmd("get movie.bin", S(60));
    println!("s10: {out}");
    assert!(out.contains("no space left"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(
        names(&net.shared(2)).iter().all(|n| !n.starts_with("dl_")),
        "{:?}",
        names(&net.shared(2))
    );
    // Still running and answering.
    let peers = d.cmd("peers", S(5));
    assert_eq!(peer_lines(&peers), 1, "{peers}");
    assert!(d.cmd("list", S(5)).contains("movie.bin"));
    d.send("quit");
    assert!(net.wait_exit(d.proc, S(10)).success());
    net.assert_no_panic();
}

/// 11. Links like a LAN: three 100 Mbit/s seeders add up; a 5 Mbit/s one does not drag the
///     download down.
#[test]
fn s11_rate_capped_links() {
    let Some(mut net) = Net::new(11, "s11", 5, true) else {
        return;
    };
    let size = 48 * MIB;
    let file = data(size, 11);
    for i in 1..=3 {
        net.cap(i, "100mbit");
    }
    net.cap(4, "5mbit");
    let _s1 = net.seeder(1, &[("movie.bin", &file)], &[]);
    let _s2 = net.seeder(2, &[("movie.bin", &file)], &["--runtime", "smol"]);
    let s3 = net.seeder(3, &[("movie.bin", &file)], &[]);
    let get = |net: &Net, k: u32| -> f64 {
        let dl_dir = |k: u32| net.shared(5).join(format!("run{k}"));
        let o = net.run_in(5, &dl_dir(k), &["get", "movie.bin", "--timeout", "120"]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        println!("s11 run {k}: {t}");
        assert!(std::fs::read(dl_dir(k).join("dl_movie.bin")).unwrap() == file);
        std::fs::remove_file(dl_dir(k).join("dl_movie.bin")).unwrap();
        saved_secs(&t)
    };
    let t3 = get(&net, 1);
    let mbit = size as f64 * 8.0 / t3 / 1e6;
    println!(
        "s11: 3 x 100 Mbit/s: {t3:.2} s, {mbit:.0} Mbit/s = {:.2} of 300",
        mbit / 300.0
    );
    net.signal(s3, "KILL");
    let t2 = get(&net, 2);
    let _slow = net.seeder(4, &[("movie.bin", &file)], &[]);
    let t2s = get(&net, 3);
    println!(
        "s11: 2 x 100 Mbit/s: {t2:.2} s; with a 5 Mbit/s seeder added: {t2s:.2} s ({:.2}x)",
        t2s / t2
    );
    assert!(mbit >= 0.6 * 300.0, "{mbit:.0} Mbit/s");
    assert!(
        t2s <= 1.5 * t2,
        "slow seeder dragged: {t2s:.2} s vs {t2:.2} s"
    );
    net.assert_no_panic();
}

/// 12. Every interface (issue 11): hosts 1 and 2 have their default route on an empty
///     interface (a VPN's, say), so 255.255.255.255 would leave by it and nobody would hear
///     them; host 3 has legs on two LANs, host 4 is on the second LAN only. With the default
///     settings each announces on every LAN interface's directed broadcast: 1 and 2 find each
///     other and 3, and 4 finds 3, within one interval.
#[test]
fn s12_every_interface_vpn_and_two_lans() {
    let Some(mut net) = Net::new(12, "s12", 4, false) else {
        return;
    };
    let br = format!("{}br", net.prefix);
    for i in [1, 2] {
        let h = net.ns(i);
        // An interface that leads nowhere (the kernel here has no `dummy`: a veth pair
        // whose other end stays unattached).
        ip(&[
            "-n", &h, "link", "add", "vpn0", "type", "veth", "peer", "name", "vpn0p",
        ]);
        let addr = format!("172.31.0.{i}/24");
        ip(&["-n", &h, "addr", "add", &addr, "dev", "vpn0"]);
        ip(&["-n", &h, "link", "set", "vpn0p", "up"]);
        ip(&["-n", &h, "link", "set", "vpn0", "up"]);
        ip(&["-n", &h, "route", "replace", "default", "dev", "vpn0"]);
    }
    ip(&["-n", &br, "link", "add", "br1", "type", "bridge"]);
    ip(&["-n", &br, "link", "set", "br1", "up"]);
    for i in [3, 4] {
        let h = net.ns(i);
        let v = format!("w{i}");
        ip(&[
            "link", "add", "eth1", "netns", &h, "type", "veth", "peer", "name", &v, "netns", &br,
        ]);
        ip(&["-n", &br, "link", "set", &v, "master", "br1", "up"]);
        let addr = format!("10.98.0.{i}/24");
        hosts::add_ipv4(&h, &addr, "10.98.0.255", "eth1");
        ip(&["-n", &h, "link", "set", "eth1", "up"]);
    }
    // Host 4 leaves the first LAN.
    let h4 = net.ns(4);
    ip(&["-n", &h4, "link", "set", "eth0", "down"]);
    ip(&["-n", &h4, "route", "replace", "default", "dev", "eth1"]);
    let start = Instant::now();
    let mut prompts = vec![
        net.prompt(1, &["-v"]),
        net.prompt(2, &["-v", "--runtime", "smol"]),
        net.prompt(3, &["-v"]),
        net.prompt(4, &["-v", "--runtime", "smol"]),
    ];
    let want: [&[&str]; 4] = [
        &["10.99.0.2", "10.99.0.3"],
        &["10.99.0.1", "10.99.0.3"],
        &["10.99.0.1", "10.99.0.2", "10.98.0.4"],
        &["10.98.0.3"],
    ];
    for (i, p) in prompts.iter_mut().enumerate() {
        loop {
            let out = p.cmd("peers", S(5));
            if want[i].iter().all(|a| out.contains(&format!("{a}:")))
                && out.lines().count() == want[i].len()
            {
                println!("host {} after {:?}:\n{out}", i + 1, start.elapsed());
                // -v names the interface each peer is heard on.
                assert!(out.contains("(on eth"), "{out}");
                break;
            }
            assert!(start.elapsed() < S(5), "host {} after 5 s: {out}", i + 1);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for p in &mut prompts {
        p.send("quit");
    }
    for p in prompts {
        assert!(net.wait_exit(p.proc, S(10)).success());
    }
    net.assert_no_panic();
}

/// 13. A `get` whose stderr is not a terminal prints a plain progress line every 5 s (so a
///     log under CI or systemd shows it moving), and `get --json` prints its result; through a
///     running peer, `status --json` shows the download while it runs and `-q` is silent.
#[test]
fn s13_progress_lines_without_a_terminal_and_json_result() {
    let Some(mut net) = Net::new(13, "s13", 2, false) else {
        return;
    };
    let file = data(12 * MIB, 13);
    net.seeder(1, &[("slow.bin", &file)], &[]);
    net.cap(1, "16mbit");
    let start = Instant::now();
    let out = net.run(2, &["get", "slow.bin", "--json", "--timeout", "60"]);
    let took = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("slow.bin")).collect();
    println!("s13: {took:?}, progress lines:\n{}", lines.join("\n"));
    assert!(took > S(6), "the cap did not hold: {took:?}");
    assert!(
        lines.len() as u64 >= took.as_secs() / 5 - 1 && !lines.is_empty(),
        "{err}"
    );
    assert!(
        lines.iter().all(|l| l.contains("MiB") && l.contains('%')),
        "{err}"
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["size"], 12 * MIB as u64);
    assert_eq!(
        result["sha256"],
        p2pshare_proto::hex(&p2pshare_proto::sha256(&file))
    );
    assert_eq!(result["sources"].as_array().unwrap().len(), 1, "{result}");
    // The finish (the last of the whole-file hash, the sync, the rename) is part of the time.
    let (secs, finish) = (
        result["seconds"].as_f64(),
        result["finish_seconds"].as_f64(),
    );
    assert!(
        matches!((secs, finish), (Some(s), Some(f)) if (0.0..=s).contains(&f)),
        "{result}"
    );
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_slow.bin")).unwrap(),
        file
    );
    // Through a running peer: `status --json` shows the download while it runs; `-q` prints
    // no progress at all.
    std::fs::remove_file(net.shared(2).join("dl_slow.bin")).unwrap();
    let server = net.spawn(2, &["serve"]);
    net.wait_stderr(server, "sharing ", S(10));
    let sock = net.shared(2).join(".p2pshare.sock");
    let up = Instant::now();
    while !sock.exists() {
        assert!(up.elapsed() < S(10), "no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The running peer needs the seeder in its view before it can resolve the name.
    let seen = Instant::now();
    while !String::from_utf8_lossy(&net.run(2, &["list"]).stdout).contains("slow.bin") {
        assert!(
            seen.elapsed() < S(10),
            "the running peer never listed slow.bin"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let getter = net.spawn(2, &["-q", "get", "slow.bin", "--timeout", "60"]);
    let watch = Instant::now();
    let during = loop {
        let st = net.run(2, &["status", "--json"]);
        assert!(st.status.success(), "{}", text(&st));
        let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        let d = st["downloads"].as_array().unwrap();
        if let Some(d) = d.iter().find(|d| d["done"].as_u64().unwrap_or(0) > 0) {
            break d.clone();
        }
        assert!(watch.elapsed() < S(20), "no download in status: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("s13: status --json during the download: {during}");
    assert_eq!(during["size"], 12 * MIB as u64);
    assert!(during["done"].as_u64().unwrap() < 12 * MIB as u64);
    assert!(
        net.wait_exit(getter, S(60)).success(),
        "{}",
        net.stderr(getter)
    );
    assert!(!net.stderr(getter).contains('%'), "{}", net.stderr(getter));
    assert!(
        net.stdout(getter).starts_with("Saved "),
        "{}",
        net.stdout(getter)
    );
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_slow.bin")).unwrap(),
        file
    );
    net.assert_no_panic();
}

/// 14. The prompt in a pseudo-terminal, as a person uses it: history (↑ repeats `peers`), Tab
///     completes remote names, `get A B` downloads both at once with bars and a total,
///     Ctrl-C cancels them (partials kept), `get` again resumes, Ctrl-D quits with 0.
#[test]
fn s14_the_prompt_in_a_terminal() {
    let Some(mut net) = Net::new(14, "s14", 2, false) else {
        return;
    };
    let (a, b) = (data(12 * MIB, 141), data(12 * MIB, 142));
    net.seeder(1, &[("alpha.bin", &a), ("beta.bin", &b)], &[]);
    net.cap(1, "32mbit");
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &net.ns(2), hosts::BIN, "--shared"])
        .arg(net.shared(2));
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    const PROMPT: &str = "Command (list / peers / get [filename] / quit): ";
    p.exp_string(PROMPT).unwrap();
    let start = Instant::now();
    loop {
        p.send_line("peers").unwrap();
        let out = p.exp_string(PROMPT).unwrap();
        if out.contains("10.99.0.1:") {
            break;
        }
        assert!(start.elapsed() < S(10), "{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // History: ↑ brings `peers` back.
    // (send() buffers: flush, and give the editor a moment to take a key sequence whole.)
    let key = |p: &mut rexpect::session::PtySession, k: &str| {
        p.send(k).unwrap();
        p.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    };
    key(&mut p, "\x1b[A");
    p.send_line("").unwrap();
    p.exp_string("10.99.0.1:").unwrap();
    p.exp_string(PROMPT).unwrap();
    // Tab completes both names; both download at once.
    key(&mut p, "get al\t");
    p.exp_string("alpha.bin").unwrap();
    key(&mut p, " be\t");
    p.exp_string("beta.bin").unwrap();
    p.send_line("").unwrap();
    p.exp_string("total").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    p.send_control('c').unwrap();
    p.exp_string("Download cancelled").unwrap();
    p.exp_string(PROMPT).unwrap();
    assert!(
        partials(&net.shared(2)).len() == 2,
        "{:?}",
        names(&net.shared(2))
    );
    // Again: resumes.
    p.send_line("get alpha.bin").unwrap();
    let (_, saved) = p.exp_regex("Saved [^\n]*resumed[^\n]*").unwrap();
    println!("s14: {saved}");
    p.exp_string(PROMPT).unwrap();
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_alpha.bin")).unwrap(),
        a
    );
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    net.assert_no_panic();
}

// ---- hostile helpers: this binary re-executed inside a namespace ----

/// Entry of the helpers; does nothing in a normal test run.
#[test]
fn helper() {
    match std::env::var("P2PT_HELPER").as_deref() {
        Ok("flood") => flood(),
        Ok("evil") => evil(),
        Ok("liar") => liar(),
        _ => {}
    }
}

fn targets() -> Vec<Ipv4Addr> {
    std::env::var("P2PT_TARGETS")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect()
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    f.push(kind);
    f.extend_from_slice(body);
    f
}

/// The `seq`-th announcement of `key`'s instance 1 (port 10000, revision 1), signed.
fn signed_announce(key: &Key, seq: u64) -> Vec<u8> {
    use p2pshare_proto::wire::signed::{Announcement, Mark, encode};
    let a = Announcement {
        mark: Mark { instance: 1, seq },
        port: 10000,
        revision: 1,
        bye: false,
    };
    encode(
        &a,
        &p2pshare_proto::Identity::from_secret_bytes(&key.secret),
    )
}

/// Dials `to` as the holder of `key`, runs the handshake, sends `plain` sealed and then `raw`
/// as it is, then closes it.
fn send_secure(to: SocketAddr, key: &Key, plain: &[u8], raw: &[u8]) -> bool {
    let Ok(s) = TcpStream::connect_timeout(&to, S(2)) else {
        return false;
    };
    s.set_read_timeout(Some(S(2))).unwrap();
    let Ok(mut s) = Secure::dial(s, key, None) else {
        return false;
    };
    let _ = s.send(plain);
    let _ = s.stream.write_all(raw);
    std::thread::sleep(Duration::from_millis(5));
    true
}

/// Sends `bytes` on a new connection to `to`, then closes it.
fn send_conn(to: SocketAddr, bytes: &[u8]) -> bool {
    match TcpStream::connect_timeout(&to, S(2)) {
        Ok(mut s) => {
            let _ = s.write_all(bytes);
            std::thread::sleep(Duration::from_millis(5));
            true
        }
        Err(_) => false,
    }
}

fn flood() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_broadcast(true).unwrap();
    let mut dgrams = 0;
    let mut conns = 0;
    let mut idle = Vec::new();
    let start = Instant::now();
    for t in targets() {
        let disc = SocketAddr::from((t, 9999));
        let tcp = SocketAddr::from((t, 10000));
        // Datagrams: random, ours with garbage, unknown version, too long, foreign JSON.
        for k in 0..4000 {
            let d = match k % 5 {
                0 => {
                    let n = rng.below(1500) as usize;
                    rng.bytes(n)
                }
                1 => {
                    let n = rng.below(300) as usize;
                    [b"P2PS\x01".to_vec(), rng.bytes(n)].concat()
                }
                2 => [b"P2PS\x07".to_vec(), rng.bytes(40)].concat(),
                3 => [b"P2PS\x01".to_vec(), vec![0xa0; 1400]].concat(),
                _ => br#"{"type": "announce", "port": 10000, "files": ["x"]}"#.to_vec(),
            };
            let to = if k % 2 == 0 {
                disc
            } else {
                SocketAddr::from(([10, 99, 0, 255], 9999))
            };
            if udp.send_to(&d, to).is_ok() {
                dgrams += 1;
            }
            if k % 200 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Frames.
        for k in 0..200 {
            let key = Key::of(rng.bytes(32).try_into().unwrap());
            let (plain, raw) = match k % 7 {
                // Not even our preamble.
                0 => {
                    let n = 1 + rng.below(2000) as usize;
                    if send_conn(tcp, &rng.bytes(n)) {
                        conns += 1;
                    }
                    continue;
                }
                // The old, unencrypted protocol (version 2) and a frame.
                1 => {
                    let b = [b"P2PT\x02".to_vec(), frame(1, &[0xf6])].concat();
                    if send_conn(tcp, &b) {
                        conns += 1;
                    }
                    continue;
                }
                // Random frames of any kind, sealed.
                2 => {
                    let mut b = Vec::new();
                    for _ in 0..20 {
                        let n = rng.below(500) as usize;
                        b.extend(frame(rng.next() as u8, &rng.bytes(n)));
                    }
                    (b, Vec::new())
                }
                // Records that do not open: garbage after the handshake; then a truncated
                // frame (says 1000 bytes, sends 10, closes) on another.
                3 => {
                    // A whole record (its length right) whose tag cannot verify.
                    let n = 20 + rng.below(2000) as usize;
                    let garbage = [(n as u16).to_be_bytes().to_vec(), rng.bytes(n)].concat();
                    let key2 = Key::of(rng.bytes(32).try_into().unwrap());
                    let truncated = [1000u32.to_be_bytes().to_vec(), vec![1; 10]].concat();
                    if send_secure(tcp, &key2, &truncated, &[]) {
                        conns += 1;
                    }
                    (Vec::new(), garbage)
                }
                // Unknown kinds and unknown messages (valid CBOR we do not speak).
                // (after a valid hello: before it, any other frame is a protocol error).
                4 => (
                    [
                        hello(key.id, 1, 10000, 1),
                        frame(9, b"what is this"),
                        frame(1, &[0xa1, 0x65, b'B', b'o', b'g', b'u', b's', 0x01]),
                        frame(1, &rng.bytes(64)),
                    ]
                    .concat(),
                    Vec::new(),
                ),
                // A 4 GiB length prefix.
                5 => (vec![0xff, 0xff, 0xff, 0xff, 1], Vec::new()),
                // A chunk frame too short for its header.
                _ => (frame(2, &[0; 10]), Vec::new()),
            };
            if send_secure(tcp, &key, &plain, &raw) {
                conns += 1;
            }
        }
        // 1000 connections that send nothing, held open a while.
        for _ in 0..1000 {
            if let Ok(s) = TcpStream::connect_timeout(&tcp, S(2)) {
                idle.push(s);
            }
        }
    }
    let held = idle.len();
    std::thread::sleep(S(3));
    // See which were closed by the peer (refused over the limit, or timed out).
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut b = [0u8; 64];
        let r = s.read(&mut b);
        let open = matches!(&r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        if !open {
            closed += 1;
        }
    }
    drop(idle);
    println!(
        "flood: {dgrams} datagrams, {conns} garbage connections, {held} idle connections \
         ({closed} closed by the peer after 3 s), in {:?}",
        start.elapsed()
    );
}

/// A hostile peer: announces a catalog of hostile names and serves it; as a client, asks the
/// victim for its catalog and for the content behind a symlink.
fn evil() {
    use p2pshare_proto::wire::frame::encode_message;
    let key = Key::of([0xee; 32]);
    let victim: Ipv4Addr = std::env::var("P2PT_VICTIM").unwrap().parse().unwrap();
    let secret = ContentId::from_hex(&std::env::var("P2PT_SECRET").unwrap()).unwrap();
    let bad_names = [
        "../x".to_string(),
        "/etc/passwd".to_string(),
        "a//b".to_string(),
        "a/../../b".to_string(),
        "x/./y".to_string(),
        "nul\0byte".to_string(),
        "line\nfeed".to_string(),
        "bell\x07".to_string(),
        "n".repeat(100 * 1024),
    ];
    let mut files: Vec<CatalogEntry> = bad_names
        .iter()
        .enumerate()
        .map(|(k, n)| CatalogEntry {
            name: n.clone(),
            size: 1000,
            content: ContentId([k as u8 + 1; 32]),
            partial: false,
        })
        .collect();
    files.push(CatalogEntry {
        name: "good.txt".into(),
        size: 10,
        content: ContentId([0x77; 32]),
        partial: false,
    });
    let catalog = encode_message(&Message::Catalog {
        revision: 1,
        page: 0,
        pages: 1,
        files,
    });
    // Serve: answer hello and catalog requests on every connection.
    serve_catalog(key, catalog);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_broadcast(true).unwrap();
    let announcer = std::thread::spawn(move || {
        for seq in 0..40 {
            let _ = udp.send_to(&signed_announce(&key, seq), "255.255.255.255:9999");
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    // As a client of the victim.
    let client = Key::of([0xef; 32]);
    let s = TcpStream::connect((victim, 10000)).unwrap();
    s.set_read_timeout(Some(S(10))).unwrap();
    let mut s = Secure::dial(s, &client, None).unwrap();
    s.send(&hello(client.id, 1, 10000, 1)).unwrap();
    s.send(&encode_message(&Message::CatalogRequest { page: 0 }))
        .unwrap();
    s.send(&encode_message(&Message::ChunkRequest {
        content: secret,
        index: 0,
    }))
    .unwrap();
    s.send(&encode_message(&Message::ManifestRequest {
        content: secret,
    }))
    .unwrap();
    let (mut cat, mut chunk, mut manifest) = (false, false, false);
    while !(cat && chunk && manifest) {
        let Some(f) = s.read_frame() else {
            break;
        };
        match f {
            Frame::Message(Message::Catalog { files, .. }) => {
                let names: Vec<_> = files.iter().map(|f| f.name.clone()).collect();
                println!("victim catalog: {names:?}");
                if names == ["real.txt"] {
                    println!("RESULT catalog-without-link");
                }
                cat = true;
            }
            Frame::Message(Message::Error {
                code: ErrorCode::NotFound,
                content,
                index,
            }) if content == secret => {
                if index.is_some() {
                    println!("RESULT secret-chunk-refused");
                    chunk = true;
                } else {
                    println!("RESULT secret-manifest-refused");
                    manifest = true;
                }
            }
            Frame::Chunk { content, .. } if content == secret => {
                println!("LEAK: the victim served the secret");
                chunk = true;
            }
            Frame::Message(Message::Manifest { content, .. }) if content == secret => {
                println!("LEAK: the victim sent the secret's manifest");
                manifest = true;
            }
            other => println!("victim sent {other:?}"),
        }
    }
    announcer.join().unwrap();
}

// ---- folders (issue 12) ----

/// A 3-level tree `tree/dA/eB/fNNNN.bin` of `n` files in 100 folders: one of 0 B, `big` of
/// about 8 MiB, the rest from 1 B to 128 KiB; all different.
fn tree(n: usize, big: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|k| {
            let size = match k {
                0 => 0,
                k if k <= big => 8 * MIB - k,
                _ => (1usize << rng.below(18)) + rng.below(1000) as usize,
            };
            let name = format!("tree/d{}/e{}/f{k:04}.bin", k % 10, (k / 10) % 10);
            (name, data(size, seed * 10_000 + k as u64))
        })
        .collect()
}

fn plant(root: &std::path::Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Every regular file beneath `dir`, as paths relative to it (symlinks not followed).
fn files_beneath(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// Starts a seeder of the tree already planted in host `i`'s folder; waits for its scan.
fn tree_seeder(net: &mut Net, i: usize, n: usize, args: &[&str]) -> usize {
    let p = net.seeder(i, &[], args);
    net.wait_stderr(p, &format!("sharing {n} files"), S(60));
    p
}

fn json_of(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    serde_json::from_str(line).unwrap()
}

/// 15. A 3-level tree of 1,000 files (0 B to 8 MiB) on two seeders (mio, smol); `get tree/`:
///     the downloader (smol) is killed midway, the next `get` (mio) resumes and fetches only
///     what is missing while one seeder is killed midway, and the job finishes from the other:
///     every file byte-identical, the layout identical under `dl_tree/`. Then a clean `get` of
///     the whole tree on a fourth host, for the table.
#[test]
fn s15_folder_tree_two_seeders_kills_and_resume() {
    let Some(mut net) = Net::new(15, "s15", 4, false) else {
        return;
    };
    let n = 1000;
    let files = tree(n, 4, 15);
    let bytes: usize = files.iter().map(|f| f.1.len()).sum();
    plant(&net.shared(1), &files);
    plant(&net.shared(2), &files);
    net.cap(1, "200mbit");
    net.cap(2, "200mbit");
    let _a = tree_seeder(&mut net, 1, n, &[]);
    let b = tree_seeder(&mut net, 2, n, &["--runtime", "smol"]);
    let dl = net.shared(3).join("dl_tree");
    let placed = |net: &Net| files_beneath(&net.shared(3).join("dl_tree")).len();

    // 1. The downloader, killed midway.
    let g = net.spawn(
        3,
        &["--runtime", "smol", "get", "tree/", "--timeout", "120"],
    );
    let t = Instant::now();
    while placed(&net) < n / 4 {
        assert!(t.elapsed() < S(60), "{}", net.stderr(g));
        std::thread::sleep(Duration::from_millis(5));
    }
    net.signal(g, "KILL");
    net.wait_exit(g, S(5));
    let before = placed(&net);
    println!(
        "s15: downloader killed after {:?} with {before} of {n} files placed",
        t.elapsed()
    );
    assert!(before < n, "the kill came too late to test a resume");

    // 2. Again: resumes; a seeder killed midway.
    let g = net.spawn(3, &["get", "tree/", "--timeout", "120", "--json"]);
    let t = Instant::now();
    while placed(&net) < before + (n - before) / 3 {
        assert!(t.elapsed() < S(60), "{}", net.stderr(g));
        std::thread::sleep(Duration::from_millis(5));
    }
    net.signal(b, "KILL");
    let killed_at = placed(&net);
    let st = net.wait_exit(g, S(120));
    let out = net.stdout(g);
    let j = json_of(&out);
    let brief = |j: &serde_json::Value| {
        format!(
            "files {} done {} skipped {} failed {} fetched {} B in {} s",
            j["files"], j["done"], j["skipped"], j["failed"], j["fetched_bytes"], j["seconds"]
        )
    };
    println!("s15: resumed get: {}\n{}", brief(&j), net.stderr(g));
    assert!(st.success(), "{}", brief(&j));
    assert_eq!(j["files"], n);
    assert_eq!(
        j["skipped"], before as u64,
        "every file placed before the kill is kept"
    );
    assert_eq!(
        j["done"],
        (n - before) as u64,
        "only the missing files are fetched"
    );
    assert_eq!(j["failed"].as_array().unwrap().len(), 0);
    assert!(killed_at < n, "the seeder kill came too late");
    let want: Vec<String> = {
        let mut v: Vec<String> = files
            .iter()
            .map(|f| f.0["tree/".len()..].to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        files_beneath(&dl),
        want,
        "the layout under dl_tree/ is the tree's"
    );
    for (name, bytes) in &files {
        let got = std::fs::read(dl.join(&name["tree/".len()..])).unwrap();
        assert!(got == *bytes, "{name} differs");
    }
    assert!(
        partials(&net.shared(3)).is_empty(),
        "{:?}",
        partials(&net.shared(3))
    );

    // 3. A clean download of the whole tree from the remaining seeder, for the table.
    let g = net.spawn(4, &["get", "tree/", "--timeout", "120", "--json"]);
    let st = net.wait_exit(g, S(120));
    let j = json_of(&net.stdout(g));
    println!("s15: clean get: {}", brief(&j));
    assert!(st.success(), "{}{}", brief(&j), net.stderr(g));
    assert_eq!(j["done"], n);
    assert_eq!(files_beneath(&net.shared(4).join("dl_tree")), want);
    let secs = j["seconds"].as_f64().unwrap();
    println!(
        "s15 table: files {n} | bytes {bytes} | time {secs:.1} s | {:.1} MB/s (one seeder capped at 200 Mbit/s)",
        bytes as f64 / secs / 1e6
    );
    net.assert_no_panic();
}

/// 16. Hostile folders: a liar lists `../escape`, `/abs` and other escapes, an honest seeder
///     shares a folder `x` while the downloader's `dl_x` is a symlink to a folder outside:
///     nothing outside the shared folder is read, written or created, each file of `x` fails
///     with its reason, and the refused names are counted.
#[test]
fn s16_hostile_folders() {
    let Some(mut net) = Net::new(16, "s16", 3, false) else {
        return;
    };
    let outside = net.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    let x = vec![
        ("x/a.txt".to_string(), data(1000, 1)),
        ("x/sub/b.txt".to_string(), data(5000, 2)),
    ];
    plant(&net.shared(1), &x);
    let _s = tree_seeder(&mut net, 1, 2, &[]);
    let _l = net.spawn_helper(2, "liar", &[]);
    std::os::unix::fs::symlink(&outside, net.shared(3).join("dl_x")).unwrap();
    let mut d = net.prompt(3, &["--runtime", "smol"]);
    let t = Instant::now();
    loop {
        let out = d.cmd("list", S(5));
        if out.contains("x/") && out.contains("2 files") {
            break;
        }
        assert!(t.elapsed() < S(10), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let under = d.cmd("list x/", S(5));
    println!("s16 list x/: {under}");
    assert!(
        under.contains("x/a.txt") && under.contains("x/sub/"),
        "{under}"
    );
    let out = d.cmd("get x/", S(30));
    println!("s16 get x/: {out}");
    assert!(out.contains("Saved 0 of 2 files"), "{out}");
    assert!(out.contains("2 files failed"), "{out}");
    assert!(
        out.contains("x/a.txt: ") && out.contains("x/sub/b.txt: "),
        "{out}"
    );
    assert!(out.contains("not a folder"), "{out}");
    for name in ["../escape", "/abs", "escape"] {
        let o = d.cmd(&format!("get {name}"), S(5));
        assert!(o.contains("no peer shares"), "{name}: {o}");
    }
    // The refusals are counted (the running peer's counters, through its control socket),
    // once the liar's catalog came in.
    let t = Instant::now();
    loop {
        let st = net.run(3, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        let bad = status["stats"]["bad_names"].as_u64().unwrap();
        if bad >= 6 {
            println!("s16: bad_names {bad} after {:?}", t.elapsed());
            break;
        }
        assert!(t.elapsed() < S(15), "{status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    d.send("quit");
    // Nothing outside the shared folder was read, written or created.
    assert_eq!(names(&outside), ["keep"]);
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
    for n in names(&net.shared(3)) {
        assert!(n == "dl_x" || n.starts_with('.'), "unexpected {n:?}");
    }
    for n in names(net.shared(3).parent().unwrap()) {
        assert_eq!(n, "shared", "created beside the shared folder: {n}");
    }
    assert!(!std::path::Path::new("/abs").exists());
    net.assert_no_panic();
}

/// A lying peer: announces itself and serves a catalog of names that try to leave the folder.
fn liar() {
    use p2pshare_proto::wire::frame::encode_message;
    let key = Key::of([0xdd; 32]);
    let names = [
        "../escape",
        "/abs",
        "x/../../escape",
        "x//y",
        "x/./y",
        "x/.hidden/z",
    ];
    let files: Vec<CatalogEntry> = names
        .iter()
        .enumerate()
        .map(|(k, n)| CatalogEntry {
            name: (*n).to_string(),
            size: 1000,
            content: ContentId([k as u8 + 0x40; 32]),
            partial: false,
        })
        .collect();
    let catalog = encode_message(&Message::Catalog {
        revision: 1,
        page: 0,
        pages: 1,
        files,
    });
    serve_catalog(key, catalog);
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_broadcast(true).unwrap();
    for seq in 0..120 {
        let _ = udp.send_to(&signed_announce(&key, seq), "255.255.255.255:9999");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A fake peer under `key` on TCP port 10000: it accepts every connection (Noise, as the
/// acceptor), says hello and answers every catalog request with `catalog` (an encoded frame).
fn serve_catalog(key: Key, catalog: Vec<u8>) {
    let listener = std::net::TcpListener::bind("0.0.0.0:10000").unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(S(5)));
                let Ok(mut s) = Secure::accept(s, &key) else {
                    return;
                };
                let _ = s.stream.set_read_timeout(None);
                let _ = s.send(&hello(key.id, 1, 10000, 1));
                while let Some(f) = s.read_frame() {
                    if let Frame::Message(Message::CatalogRequest { .. }) = f {
                        let _ = s.send(&catalog);
                    }
                }
            });
        }
    });
}

/// tcpdump capturing in a namespace, killed (by its pid) when dropped.
struct Capture {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Capture {
    /// Starts capturing every TCP packet on host `i`'s `eth0` into a pcap file.
    fn start(net: &Net, i: usize) -> Capture {
        let file = net.dir.path().join(format!("h{i}.pcap"));
        let child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.ns(i),
                "tcpdump",
                "-i",
                "eth0",
                "-U",
                "-s",
                "0",
            ])
            // A 64 MiB buffer: a busy machine must not make it drop what it should see.
            .args(["-B", "65536"])
            .args(["-w", file.to_str().unwrap(), "tcp"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tcpdump runs (as root, install it: apt-get install tcpdump)");
        let cap = Capture { child, file };
        // tcpdump writes the file's header once it listens.
        let deadline = Instant::now() + S(10);
        while std::fs::metadata(&cap.file).map_or(true, |m| m.len() < 24) {
            assert!(Instant::now() < deadline, "tcpdump never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        cap
    }

    /// Stops it and returns the TCP payload of each flow (source, destination), in capture
    /// order, and what tcpdump said at its end (how many packets the kernel dropped).
    fn finish(mut self) -> (BTreeMap<(SocketAddr, SocketAddr), Vec<u8>>, String) {
        // tcpdump writes each packet as it takes it from the kernel: wait until the file stops
        // growing (what was received but not yet taken is lost at SIGINT), then stop it.
        let size = |f: &std::path::Path| std::fs::metadata(f).map_or(0, |m| m.len());
        let deadline = Instant::now() + S(20);
        let mut last = size(&self.file);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = size(&self.file);
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut said = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut said);
        }
        (tcp_flows(&std::fs::read(&self.file).unwrap()), said)
    }
}

/// The TCP payloads of a pcap file (Ethernet or Linux cooked link layer), by flow.
fn tcp_flows(pcap: &[u8]) -> BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> {
    assert!(pcap.len() >= 24, "no pcap header");
    let le = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let x: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let link = match u32_at(pcap, 20) {
        1 => 14,
        113 => 16,
        276 => 20,
        other => panic!("link type {other}"),
    };
    let mut flows: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32_at(pcap, at + 8) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        let Some(ip) = frame.get(link..) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let Some(tcp) = ip.get(ihl..total) else {
            continue;
        };
        if tcp.len() < 20 {
            continue;
        }
        let off = usize::from(tcp[12] >> 4) * 4;
        let src = SocketAddr::from((
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            u16::from_be_bytes([tcp[0], tcp[1]]),
        ));
        let dst = SocketAddr::from((
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        ));
        if let Some(payload) = tcp.get(off..)
            && !payload.is_empty()
        {
            flows
                .entry((src, dst))
                .or_default()
                .extend_from_slice(payload);
        }
    }
    flows
}

/// Where in `haystack` a 32-byte block of `file` at a multiple of 32 appears, if anywhere:
/// any 64 bytes of the file in a row contain such a block, so none found means no 64-byte
/// run of the file is there.
fn file_block_in(file: &[u8], haystack: &[u8]) -> Option<usize> {
    let blocks: std::collections::HashSet<&[u8]> = file.chunks_exact(32).collect();
    haystack.windows(32).position(|w| blocks.contains(w))
}

/// 17. Encrypted on the wire: a capture (tcpdump in the downloader's namespace) of a 4 MiB
///     download from a seeder holds the handshake (our `P2PT` version 3 preamble first, both
///     ways) and no 64-byte run of the file, while the download completes byte-identical.
#[test]
fn s17_a_capture_of_a_download_holds_no_plaintext() {
    let Some(mut net) = Net::new(17, "s17", 2, false) else {
        return;
    };
    let file = data(4 * MIB, 17);
    // The checker finds a 64-byte run of the file hidden in noise (it can fail).
    let mut noise = Rng(17).bytes(10_000);
    noise.splice(4321..4321, file[777_777..777_777 + 64].iter().copied());
    assert!(
        file_block_in(&file, &noise).is_some(),
        "the checker misses plaintext"
    );
    // A slow link's pace, so that the capture keeps up on a busy machine (2 s for the file).
    net.cap(1, "20mbit");
    let _seeder = net.seeder(1, &[("movie.bin", &file)], &[]);
    let cap = Capture::start(&net, 2);
    let g = net.spawn(2, &["get", "movie.bin", "--timeout", "60"]);
    let st = net.wait_exit(g, S(90));
    assert!(st.success(), "{}", net.stderr(g));
    assert!(std::fs::read(net.shared(2).join("dl_movie.bin")).unwrap() == file);
    let (flows, said) = cap.finish();
    let seeder: SocketAddr = "10.99.0.1:10000".parse().unwrap();
    let down: Vec<&Vec<u8>> = flows
        .iter()
        .filter(|((src, _), _)| *src == seeder)
        .map(|(_, p)| p)
        .collect();
    let up: Vec<&Vec<u8>> = flows
        .iter()
        .filter(|((_, dst), _)| *dst == seeder)
        .map(|(_, p)| p)
        .collect();
    let carried: usize = down.iter().map(|p| p.len()).sum();
    println!(
        "s17: {} flows, {carried} bytes from the seeder for a file of {}",
        flows.len(),
        file.len()
    );
    assert!(
        carried >= file.len(),
        "the capture missed part of the transfer (tcpdump: {said})"
    );
    assert!(!down.is_empty() && !up.is_empty());
    for p in down.iter().chain(&up) {
        assert!(
            p.starts_with(b"P2PT\x03"),
            "a connection without our handshake"
        );
    }
    for ((src, dst), p) in &flows {
        assert_eq!(
            file_block_in(&file, p),
            None,
            "{src} -> {dst} carries the file in clear"
        );
    }
    net.assert_no_panic();
}

/// The code a waiting `pair` (process `w`) printed: its first line.
fn pairing_code(net: &Net, w: usize) -> String {
    net.wait_stdout(w, "\n", S(10));
    let code = net
        .stdout(w)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert_eq!(code.len(), 9, "{code:?}");
    code
}

/// 18. Private sharing across hosts (issue 28): host 1 shares and pairs by code, its offer
///     broadcast on the LAN and the code typed on the other host. A wrong code (host 3) fails
///     on both sides after one try; the right one (host 2) adds each key to the other's allow
///     file, and the running seeder then serves host 2 and refuses host 3 (counted).
#[test]
fn s18_pairing_and_private_sharing() {
    let Some(mut net) = Net::new(18, "s18", 3, false) else {
        return;
    };
    let file = data(3 * MIB, 18);
    let _seeder = net.seeder(1, &[("private.bin", &file)], &["--interval", "1"]);
    // A wrong code: one try, and both sides stop with an error.
    let w = net.spawn(1, &["pair", "--timeout", "30"]);
    let code = pairing_code(&net, w);
    let last = code.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &code[..8],
        if last == '9' {
            '0'
        } else {
            char::from(last as u8 + 1)
        }
    );
    let out = net.run(3, &["pair", &wrong, "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong code"), "{}", text(&out));
    assert!(!net.wait_exit(w, S(10)).success());
    assert!(net.stderr(w).contains("wrong code"), "{}", net.stderr(w));
    // The right code, across the bridge.
    let w = net.spawn(1, &["pair", "--timeout", "30"]);
    let code = pairing_code(&net, w);
    let t = Instant::now();
    let out = net.run(2, &["pair", &code, "--timeout", "20"]);
    assert!(out.status.success(), "{}", text(&out));
    println!("s18: paired across the bridge in {:?}", t.elapsed());
    assert!(net.wait_exit(w, S(10)).success(), "{}", net.stderr(w));
    // The seeder follows its allow file: private, one key.
    let deadline = Instant::now() + S(10);
    loop {
        let out = net.run(1, &["status", "--json"]);
        if String::from_utf8_lossy(&out.stdout).contains("\"allowed\":1") {
            break;
        }
        assert!(Instant::now() < deadline, "never private: {}", text(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = net.run(3, &["get", "private.bin", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!net.shared(3).join("dl_private.bin").exists());
    let out = net.run(2, &["get", "private.bin", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(net.shared(2).join("dl_private.bin")).unwrap() == file);
    let out = net.run(1, &["status", "--json"]);
    let refused = number_after(
        &String::from_utf8_lossy(&out.stdout),
        "\"requests_not_allowed\":",
    );
    assert!(refused.is_some_and(|n| n >= 1), "{}", text(&out));
    net.assert_no_panic();
}
