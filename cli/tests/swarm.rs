//! Swarming end to end (issue 15): a flash crowd fetching one file from one rate-capped seeder,
//! the real `p2pshare` binary on hosts built from network namespaces.
//!
//! Host 1 seeds a 60 MB file with its upload capped at 100 Mbit/s (a LAN link); hosts 2… run
//! `serve` (a peer left running, as at the prompt) and are asked to `get` the file through
//! their control sockets, all at once. One copy takes `size / uplink` = 4.8 s to leave the
//! seeder, plus the start of a download: measured first, by one downloader alone. The crowd
//! must be done (every copy verified and byte-identical) with the seeder sending at most 2
//! copies, which only works if the downloaders trade the chunks they verified; with
//! `P2PT_SWARM_BOUNDS=1` also within 1.5× that time for six downloaders and 2× for twelve (a
//! speed target, like the benchmark's: not asserted by default on a shared 2-core machine). Each test prints one `CROWD` row: N, the time the last one took, its multiple
//! of the one-copy time, and the chunks the seeder and the downloaders served.
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

const MB: usize = 1_000_000;
const S: fn(u64) -> Duration = Duration::from_secs;
/// The crowd's file, and the seeder's uplink in bits per second.
const SIZE: usize = 60 * MB;
const UPLINK: f64 = 100e6;
const CHUNK: usize = 1 << 20;

/// Starts the seeder; measures the time one copy takes to leave it (one downloader alone, on
/// host `n + 2`, which then quits); starts `n` downloader peers and waits until every one
/// lists the file. Returns the net, the seeder, the downloader peers and that time.
fn crowd(test: u32, label: &str, n: usize, file: &[u8]) -> Option<(Net, usize, Vec<usize>, f64)> {
    let mut net = Net::new(test, label, n + 2, true)?;
    net.cap(1, "100mbit");
    let seeder = net.seeder(1, &[("lecture.bin", file)], &[]);
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

/// Asks every downloader at once; returns each one's time to its verified file.
fn get_all(net: &mut Net, n: usize, file: &[u8]) -> Vec<f64> {
    let t = Instant::now();
    let gets: Vec<usize> = (2..=n + 1)
        .map(|i| net.spawn(i, &["-q", "get", "lecture.bin", "--timeout", "120"]))
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
        let got = std::fs::read(net.shared(k + 2).join("dl_lecture.bin")).unwrap();
        assert!(got == file, "host {}: the copy differs", k + 2);
    }
    took
}

fn flash_crowd(test: u32, n: usize, bound: f64) {
    let label = format!("crowd of {n}");
    let file = data(SIZE, 15 + n as u64);
    let Some((mut net, seeder, peers, one_copy)) = crowd(test, &label, n, &file) else {
        return;
    };
    let (before, _) = served(&net, seeder);
    let took = get_all(&mut net, n, &file);
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
    if std::env::var_os("P2PT_SWARM_BOUNDS").is_some() {
        assert!(
            last <= bound * one_copy,
            "the last of {n} took {last:.2} s, over {bound} x {one_copy:.2} s"
        );
    }
    // Without trading, every copy would leave the seeder.
    assert!(copies <= 2.0, "the seeder sent {copies:.2} copies");
    assert!(by_crowd > 0, "the downloaders served nothing to each other");
    net.assert_no_panic();
}

#[test]
fn w01_six_downloaders_within_1_5x_one_copy() {
    flash_crowd(70, 6, 1.5);
}

#[test]
fn w02_twelve_downloaders_within_2x_one_copy() {
    flash_crowd(71, 12, 2.0);
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
    let Some((mut net, seeder, _, _)) = crowd(72, "seeder quits", n, &file) else {
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
