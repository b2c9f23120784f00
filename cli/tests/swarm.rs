//! Swarming end to end (issue 15): a flash crowd fetching one file from one rate-capped seeder,
//! the real `p2pshare` binary on hosts built from network namespaces.
//!
//! Host 1 seeds a 60 MB file with its upload capped at 100 Mbit/s (a LAN link); hosts 2… run
//! `serve` (a peer left running, as at the prompt) and are asked to `get` the file through
//! their control sockets, all at once. One copy takes `size / uplink` = 4.8 s to leave the
//! seeder, plus the start of a download: measured first, by one downloader alone. The crowd
//! must be done (every copy verified and byte-identical) with the seeder sending at most a
//! third of the copies (two of six, four of twelve), which only works if the downloaders trade
//! the chunks they verified; with `P2PT_SWARM_BOUNDS=1` also within 1.5× that time for six
//! downloaders and 2× for twelve, and at most 2 copies from the seeder (speed targets, like
//! the benchmark's: the seeder's uplink is busy for the whole crowd, so its copies follow the
//! crowd's time; not asserted by default on a shared 2-core machine).
//! Each test prints one `CROWD` row: N, the time the last one took, its multiple of the
//! one-copy time, and the chunks the seeder and the downloaders served.
//!
//! The six then fetch a second file of the same size with a claim liar among them (issue 27,
//! item 1: a helper on one more host that lists the file as partial, claims every chunk but
//! the last and answers every request `Busy`): every copy verified, the seeder sending at
//! most 2 copies, and the downloaders counting the claims they dropped, always; with
//! `P2PT_SWARM_BOUNDS=1` also within 2× the time the crowd took without it.
//!
//! The same safety rules as `netns.rs`: every peer runs inside a namespace this test created,
//! with default discovery settings that reach only that test's bridge; the guard kills what it
//! started and deletes its namespaces, also on failure; without root or `ip netns` the tests
//! print why and pass without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod hosts;

use std::path::Path;
use std::time::{Duration, Instant};

use hosts::{Net, data, last_stats, stat};
use p2pshare_proto::Manifest;
use p2pshare_proto::wire::ErrorCode;

const MB: usize = 1_000_000;
const S: fn(u64) -> Duration = Duration::from_secs;
/// The crowd's file, and the seeder's uplink in bits per second.
const SIZE: usize = 60 * MB;
const UPLINK: f64 = 100e6;
const CHUNK: usize = 1 << 20;

/// Starts the seeder (with `also`, more files); measures the time one copy takes to leave it
/// (one downloader alone, on host `n + 2`, which then quits); starts `n` downloader peers
/// and waits until every one lists the file. Returns the net (of `n + 3` hosts: the last is
/// free), the seeder, the downloader peers and that time.
fn crowd(
    test: u32,
    label: &str,
    n: usize,
    file: &[u8],
    also: &[(&str, &[u8])],
) -> Option<(Net, usize, Vec<usize>, f64)> {
    let mut net = Net::new(test, label, n + 3, true)?;
    net.cap(1, "100mbit");
    let mut files = vec![("lecture.bin", file)];
    files.extend_from_slice(also);
    let seeder = net.seeder(1, &files, &[]);
    let wait_listed = |net: &Net, i: usize| {
        let t = Instant::now();
        loop {
            let o = net.run(i, &["list"]);
            if String::from_utf8_lossy(&o.stdout).contains("lecture.bin") {
                break;
            }
            assert!(t.elapsed() < S(30), "host {i} never listed the file");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let alone = n + 2;
    let first = net.seeder(alone, &[], &[]);
    wait_listed(&net, alone);
    let t = Instant::now();
    let o = net.run(alone, &["-q", "get", "lecture.bin", "--timeout", "120"]);
    let one_copy = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "the lone download failed");
    net.signal(first, "TERM");
    net.wait_exit(first, S(10));
    let peers: Vec<usize> = (2..=n + 1)
        .map(|i| {
            let rt = if i % 2 == 0 { "mio" } else { "smol" };
            net.seeder(i, &[], &["--runtime", rt])
        })
        .collect();
    for i in 2..=n + 1 {
        wait_listed(&net, i);
    }
    Some((net, seeder, peers, one_copy))
}

/// Chunks served by the process `p` (a `serve -v`), from its last stats line.
fn served(net: &Net, p: usize) -> (u64, u64) {
    let s = last_stats(&net.stderr(p));
    (stat(&s, "chunks_served"), stat(&s, "chunks_served_partial"))
}

/// Asks every downloader at once for `name`; returns each one's time to its verified file.
fn get_all(net: &mut Net, n: usize, name: &str, file: &[u8]) -> Vec<f64> {
    let t = Instant::now();
    let gets: Vec<usize> = (2..=n + 1)
        .map(|i| net.spawn(i, &["-q", "get", name, "--timeout", "120"]))
        .collect();
    let mut took = vec![0.0; n];
    let mut left: Vec<usize> = (0..n).collect();
    while !left.is_empty() {
        assert!(t.elapsed() < S(150), "the crowd did not finish");
        left.retain(|&k| {
            if net.running(gets[k]) {
                return true;
            }
            took[k] = t.elapsed().as_secs_f64();
            false
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    for (k, &g) in gets.iter().enumerate() {
        let st = net.wait_exit(g, S(1));
        assert!(
            st.success(),
            "host {} failed: {}{}",
            k + 2,
            net.stdout(g),
            net.stderr(g)
        );
        let got = std::fs::read(net.shared(k + 2).join(format!("dl_{name}"))).unwrap();
        assert!(got == file, "host {}: the copy differs", k + 2);
    }
    took
}

/// A crowd of `n`, the last of whom must be done within `bound` times one copy; with `liar`,
/// the same crowd then fetches a second file with a claim liar among them (see the module
/// doc).
fn flash_crowd(test: u32, n: usize, bound: f64, liar: bool) {
    let label = format!("crowd of {n}");
    let file = data(SIZE, 15 + n as u64);
    let second = data(SIZE, 115 + n as u64);
    let also: &[(&str, &[u8])] = if liar {
        &[("lecture-2.bin", &second)]
    } else {
        &[]
    };
    let Some((mut net, seeder, peers, one_copy)) = crowd(test, &label, n, &file, also) else {
        return;
    };
    let (before, _) = served(&net, seeder);
    let took = get_all(&mut net, n, "lecture.bin", &file);
    let last = took.iter().copied().fold(0.0, f64::max);
    std::thread::sleep(Duration::from_millis(1200)); // one more stats line
    let by_seeder = served(&net, seeder).0 - before;
    let by_crowd: u64 = peers.iter().map(|&p| served(&net, p).0).sum();
    let chunks = SIZE.div_ceil(CHUNK) as u64;
    let copies = by_seeder as f64 / chunks as f64;
    println!(
        "CROWD | N {n:2} | last done {last:5.2} s | {:.2}x of the {one_copy:.2} s one copy took \
         alone ({:.2}x of size/uplink {:.1} s; bound {bound}x) | chunks served: seeder \
         {by_seeder} ({copies:.2} copies), downloaders {by_crowd} | times {took:.2?}",
        last / one_copy,
        last / (SIZE as f64 * 8.0 / UPLINK),
        SIZE as f64 * 8.0 / UPLINK,
    );
    // The time bound is a speed target: checked when asked for (`P2PT_SWARM_BOUNDS=1`, and by
    // `BENCH_ONLY=crowd ./bench.sh` on release builds), printed always. This machine's two
    // cores run all 13 debug-built peers of the twelve-crowd at once.
    //
    // The seeder's uplink is busy for the whole crowd (it serves what no counted claim
    // covers), so the copies it sends are about the crowd's time over the one copy's: "at
    // most 2 copies" is the twelve's time bound again, and is checked with it. Debug builds of 13 encrypting peers on two cores
    // took 1.78-1.93 copies quiet and 2.17-2.41 at load 10 and more.
    if std::env::var_os("P2PT_SWARM_BOUNDS").is_some() {
        assert!(
            last <= bound * one_copy,
            "the last of {n} took {last:.2} s, over {bound} x {one_copy:.2} s"
        );
        assert!(copies <= 2.0, "the seeder sent {copies:.2} copies");
    }
    // Without trading, every copy (n) would leave the seeder; always, whatever the load: the
    // crowd carried at least two thirds of them.
    let most = n as f64 / 3.0;
    assert!(copies <= most, "the seeder sent {copies:.2} copies of {n}");
    assert!(by_crowd > 0, "the downloaders served nothing to each other");
    if liar {
        with_a_liar(&mut net, n, seeder, &second, last);
    }
    net.assert_no_panic();
}

/// The crowd of `n` (hosts 2 to `n + 1`, behind `seeder`) fetches `file` as `lecture-2.bin` with a claim
/// liar on host `n + 3`: done within 2× `without` (the time it took without the liar) when
/// `P2PT_SWARM_BOUNDS` is set; every copy verified, at most 2 copies from the seeder and the
/// liar's refusals counted, always.
fn with_a_liar(net: &mut Net, n: usize, seeder: usize, file: &[u8], without: f64) {
    let m = Manifest::of_bytes(file);
    let manifest = net.dir.path().join("manifest-2");
    std::fs::write(&manifest, m.encode()).unwrap();
    let env = [
        ("P2PT_CONTENT", m.id().to_hex()),
        ("P2PT_SIZE", file.len().to_string()),
        ("P2PT_MANIFEST", manifest.display().to_string()),
    ];
    let liar = net.spawn_helper(n + 3, "liar", &env);
    net.wait_stdout(liar, "ENGAGED", S(30));
    // Every downloader lists the liar as a holder of the file before the crowd asks.
    for i in 2..=n + 1 {
        let t = Instant::now();
        loop {
            let o = net.run(i, &["list", "--json"]);
            let out = String::from_utf8_lossy(&o.stdout);
            // The seeder and the liar.
            if holders_of(&out, &m.id().to_hex()) >= 2 {
                break;
            }
            assert!(t.elapsed() < S(30), "host {i} never listed the liar: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (before, _) = served(net, seeder);
    let took = get_all(net, n, "lecture-2.bin", file);
    let last = took.iter().copied().fold(0.0, f64::max);
    std::thread::sleep(Duration::from_millis(1200)); // one more stats line
    let by_seeder = served(net, seeder).0 - before;
    let copies = by_seeder as f64 / SIZE.div_ceil(CHUNK) as f64;
    // Each downloader's (strikes against claims, claimants no longer believed).
    let seen: Vec<(u64, u64)> = (2..=n + 1)
        .map(|i| {
            let o = net.run(i, &["status"]);
            let stats = last_stats(&String::from_utf8_lossy(&o.stdout));
            (
                stat(&stats, "claim_strikes"),
                stat(&stats, "claimants_disbelieved"),
            )
        })
        .collect();
    let progress = net.stdout(liar);
    let progress = progress
        .lines()
        .rfind(|l| l.starts_with("PROGRESS"))
        .unwrap_or("");
    let refused: u64 = progress
        .split("\"refused_busy\": ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    println!(
        "CROWD | N {n:2} with a claim liar | last done {last:5.2} s | {:.2}x of the {without:.2} \
         s the crowd took without it (bound 2x) | seeder {by_seeder} chunks ({copies:.2} \
         copies) | (claim strikes, claimants disbelieved) per downloader {seen:?} | liar \
         refused {refused} requests | {progress}",
        last / without,
    );
    if std::env::var_os("P2PT_SWARM_BOUNDS").is_some() {
        assert!(
            last <= 2.0 * without,
            "with a liar the last of {n} took {last:.2} s, over 2 x {without:.2} s"
        );
    }
    assert!(
        copies <= 2.0,
        "with a liar the seeder sent {copies:.2} copies"
    );
    // Each downloader let the liar go after a few refused requests (MAX_CLAIM_STRIKES, a
    // window in flight), instead of asking it again at every round trip.
    assert!(
        seen.iter()
            .all(|&(strikes, disbelieved)| strikes > 0 && disbelieved > 0),
        "every downloader struck the liar's claims and stopped believing it: {seen:?}"
    );
    assert!(
        refused > 0 && refused <= 16 * n as u64,
        "the liar refused {refused} requests (at most 16 per downloader)"
    );
}

/// How many holders `list --json` gives the file with content id `hex`.
fn holders_of(json: &str, hex: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["content"].as_str() == Some(hex))
        .filter_map(|f| f["holders"].as_array().map(Vec::len))
        .max()
        .unwrap_or(0)
}

#[test]
fn w01_six_downloaders_within_1_5x_one_copy_and_2x_with_a_claim_liar() {
    flash_crowd(70, 6, 1.5, true);
}

#[test]
fn w02_twelve_downloaders_within_2x_one_copy() {
    flash_crowd(71, 12, 2.0, false);
}

/// The claim liar: this test binary re-executed on a host of its own (`P2PT_HELPER=liar`);
/// does nothing in a normal test run.
#[test]
fn helper() {
    if std::env::var("P2PT_HELPER").as_deref() != Ok("liar") {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let content = p2pshare_proto::ContentId::from_hex(&var("P2PT_CONTENT")).unwrap();
    let size: u64 = var("P2PT_SIZE").parse().unwrap();
    let manifest = std::fs::read(var("P2PT_MANIFEST")).unwrap();
    let chunks = size.div_ceil(CHUNK as u64) as u32;
    // A key of its own: it speaks Noise and signs its announcements, as any peer must.
    let me = hosts::secure::Key::of([0x1a; 32]);
    let identity = p2pshare_proto::Identity::from_secret_bytes(&me.secret);
    let file = ("lecture-2.bin", content, size, chunks);
    hosts::claim_liar(me, 10000, file, manifest, ErrorCode::Busy, false, tally);
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_broadcast(true).unwrap();
    println!("ENGAGED");
    for seq in 0u64.. {
        let a = p2pshare_proto::wire::signed::Announcement {
            mark: p2pshare_proto::wire::signed::Mark { instance: 1, seq },
            port: 10000,
            revision: 1,
            bye: false,
        };
        let data = p2pshare_proto::wire::signed::encode(&a, &identity);
        let _ = udp.send_to(&data, "255.255.255.255:9999");
        println!(
            "PROGRESS {}",
            TALLY.lock().map(|t| format!("{t:?}")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn tally(what: &str, n: u64) {
    if let Ok(mut t) = TALLY.lock() {
        *t.entry(what.to_owned()).or_default() += n;
    }
}

/// Which chunks of the file a partial (or finished) download in `dir` already holds: a chunk
/// whose first bytes match the file's (the data is random, and unwritten parts read as zeros).
fn chunks_on_disk(dir: &Path, file: &[u8]) -> Vec<bool> {
    use std::os::unix::fs::FileExt;
    let n = file.len().div_ceil(CHUNK);
    let mut have = vec![false; n];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return have;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(".dl_lecture") || name.starts_with("dl_lecture")) {
            continue;
        }
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        for (k, h) in have.iter_mut().enumerate() {
            let mut buf = [0u8; 32];
            let off = k * CHUNK;
            let want = &file[off..(off + 32).min(file.len())];
            if f.read_exact_at(&mut buf[..want.len()], off as u64).is_ok()
                && buf[..want.len()] == *want
            {
                *h = true;
            }
        }
    }
    have
}

/// The seeder quits (SIGTERM) as soon as every chunk is on some downloader's disk: the crowd
/// still completes from itself.
#[test]
fn w03_seeder_quits_once_every_chunk_left_it() {
    let n = 6;
    let file = data(SIZE, 33);
    let Some((mut net, seeder, _, _)) = crowd(72, "seeder quits", n, &file, &[]) else {
        return;
    };
    let t = Instant::now();
    let gets: Vec<usize> = (2..=n + 1)
        .map(|i| net.spawn(i, &["-q", "get", "lecture.bin", "--timeout", "120"]))
        .collect();
    loop {
        let mut union = vec![false; SIZE.div_ceil(CHUNK)];
        for i in 2..=n + 1 {
            for (k, h) in chunks_on_disk(&net.shared(i), &file)
                .into_iter()
                .enumerate()
            {
                union[k] |= h;
            }
        }
        if union.iter().all(|&h| h) {
            break;
        }
        assert!(t.elapsed() < S(60), "the chunks never all left the seeder");
        std::thread::sleep(Duration::from_millis(20));
    }
    let quit_at = t.elapsed().as_secs_f64();
    net.signal(seeder, "TERM");
    for (k, &g) in gets.iter().enumerate() {
        let st = net.wait_exit(g, S(90));
        assert!(
            st.success(),
            "host {} failed after the seeder quit: {}{}",
            k + 2,
            net.stdout(g),
            net.stderr(g)
        );
        let got = std::fs::read(net.shared(k + 2).join("dl_lecture.bin")).unwrap();
        assert!(got == file, "host {}: the copy differs", k + 2);
    }
    println!(
        "CROWD | seeder quit at {quit_at:.2} s | all {n} done at {:.2} s",
        t.elapsed().as_secs_f64()
    );
    net.assert_no_panic();
}
