//! `bench`: p2pshare's throughput, CPU and memory, each figure next to its ratio to a reference
//! pipeline measured in the same run. Run it through `./bench.sh`, which builds release binaries
//! first. Every figure is the median of `BENCH_RUNS` runs (default 5).
//!
//! Scenarios: 1 GiB from one seeder (mio, smol); 1 GiB from three seeders; 4 GiB from one
//! seeder (peak RSS); a folder of 10,000 small files plus 1 GiB (first scan vs plain SHA-256,
//! restart scan, time to a complete `list`); three seeders in network namespaces capped at
//! 100 Mbit/s each (root only); 1 GiB from 1 and 3 seeders against libtorrent in the same run,
//! inside a namespace with only `lo` (`lt1`, `lt3`; root only, see [`lt`]). Peers broadcast on
//! 127.255.255.255 or inside their own namespaces only. Each figure of the table has its target
//! beside it, met (`ok`) or not (`MISS`).

mod cleanup;
mod lt;
mod netns;
mod proc;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proc::{Seeder, run};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

struct Ctx {
    bin: PathBuf,
    refpipe: PathBuf,
    work: PathBuf,
    dport: u16,
    runs: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Writes `size` pseudo-random bytes to `path` once (kept between runs of the bench).
fn make_file(path: &Path, size: u64) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return;
    }
    let mut f = std::fs::File::create(path).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ size;
    let mut buf = vec![0u8; 8 * MIB as usize];
    let mut left = size;
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        std::io::Write::write_all(&mut f, &buf[..n]).unwrap();
        left -= n as u64;
    }
}

/// Writes every dirty page back first, so that no run pays for the previous one's writeback.
fn settle() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
}

fn fresh_dir(p: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(p);
    std::fs::create_dir_all(p).unwrap();
    p.to_path_buf()
}

impl Ctx {
    fn net(&self, dport: u16) -> Vec<String> {
        [
            "--broadcast",
            "127.255.255.255",
            "--discovery-port",
            &dport.to_string(),
        ]
        .iter()
        .chain(&["--interval", "1", "--port", "0"])
        .map(|s| s.to_string())
        .collect()
    }

    fn seeder(&self, dir: &Path, runtime: &str, dport: u16) -> Seeder {
        Seeder::start(
            Command::new(&self.bin)
                .args(self.net(dport))
                .arg("--shared")
                .arg(dir)
                .args(["--runtime", runtime, "-v", "serve"]),
        )
    }

    /// One run of the reference pipeline on `src`: seconds.
    fn reference(&self, src: &Path) -> f64 {
        settle();
        let out = self.work.join("ref.out");
        let (stdout, cost) = run(Command::new(&self.refpipe).arg(src).arg(&out));
        assert!(cost.ok, "refpipe failed");
        let _ = std::fs::remove_file(&out);
        stdout
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// `n` seeders of `src` on a discovery port of their own (so groups do not mix).
    fn group(&self, id: usize, label: &str, src: &Path, n: usize, runtime: &str) -> Group {
        let size = std::fs::metadata(src).unwrap().len();
        let dport = self.dport + 1 + id as u16;
        let seeders = (0..n)
            .map(|i| {
                let dir = self.work.join(format!("seed-{id}-{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let link = dir.join("big.bin");
                if !std::fs::metadata(&link).is_ok_and(|m| m.len() == size) {
                    let _ = std::fs::remove_file(&link);
                    std::fs::hard_link(src, &link).unwrap();
                }
                self.seeder(&dir, runtime, dport)
            })
            .collect();
        Group {
            label: label.into(),
            runtime: runtime.into(),
            seeders,
            dport,
            size,
            samples: vec![],
        }
    }

    /// One one-shot `get` from group `g`.
    fn get_once(&self, g: &mut Group, ref_secs: f64) {
        let dl = fresh_dir(&self.work.join("dl"));
        settle();
        let before: Vec<f64> = g.seeders.iter().map(Seeder::cpu).collect();
        let (stdout, cost) = run(Command::new(&self.bin)
            .args(self.net(g.dport))
            .arg("--shared")
            .arg(&dl)
            .args([
                "--runtime",
                &g.runtime,
                "get",
                "big.bin",
                "--timeout",
                "900",
            ]));
        assert!(cost.ok, "get failed: {stdout}");
        let seed_cpu: Vec<f64> = g
            .seeders
            .iter()
            .zip(&before)
            .map(|(s, b)| s.cpu() - b)
            .collect();
        assert_eq!(
            std::fs::metadata(dl.join("dl_big.bin")).unwrap().len(),
            g.size
        );
        let secs = get_secs(&stdout).unwrap_or(cost.wall);
        let _ = std::fs::remove_dir_all(&dl);
        g.samples.push(Sample {
            secs,
            ref_secs,
            cpu: cost.cpu,
            seed_cpu,
            rss: cost.max_rss_mib,
        });
    }
}

/// Seeders of one scenario and the runs against them.
struct Group {
    label: String,
    runtime: String,
    seeders: Vec<Seeder>,
    dport: u16,
    size: u64,
    samples: Vec<Sample>,
}

struct Sample {
    secs: f64,
    /// The reference pipeline's time in the same round (NaN when not compared).
    ref_secs: f64,
    cpu: f64,
    /// Each seeder's CPU seconds during the run.
    seed_cpu: Vec<f64>,
    rss: f64,
}

impl Group {
    fn row(&self) -> Row {
        let m = |f: fn(&Sample) -> f64| median(self.samples.iter().map(f).collect());
        let secs = m(|s| s.secs);
        Row {
            label: self.label.clone(),
            runtime: self.runtime.clone(),
            secs,
            mbps: self.size as f64 / secs / 1e6,
            // Per round: this run against the reference run just before it, so both saw the
            // same machine; then the median of those ratios.
            x_ref: m(|s| s.ref_secs / s.secs),
            x_lt: f64::NAN,
            cpu: m(|s| s.cpu),
            seed_cpu: (0..self.seeders.len())
                .map(|i| median(self.samples.iter().map(|s| s.seed_cpu[i]).collect()))
                .collect(),
            rss: m(|s| s.rss),
            targets: vec![],
        }
    }
}

/// `get`'s "... from N peers in X s (...)": the download proper, without discovery.
fn get_secs(stdout: &str) -> Option<f64> {
    stdout
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split(" s").next())
        .and_then(|x| x.parse::<f64>().ok())
}

/// Each seeder's CPU seconds, `a+b+c`.
fn each(v: &[f64]) -> String {
    v.iter()
        .map(|c| format!("{c:.2}"))
        .collect::<Vec<_>>()
        .join("+")
}

/// One line of the table: medians over the rounds, and the targets on its figures.
struct Row {
    label: String,
    runtime: String,
    secs: f64,
    mbps: f64,
    x_ref: f64,
    /// p2pshare's speed over libtorrent's (NaN outside the libtorrent scenarios).
    x_lt: f64,
    cpu: f64,
    seed_cpu: Vec<f64>,
    rss: f64,
    targets: Vec<Target>,
}

/// A target on one figure: what it asks (`≥1.5× lt`) and whether the figure meets it.
struct Target {
    what: String,
    ok: bool,
}

impl Target {
    fn new(what: &str, ok: bool) -> Target {
        Target {
            what: what.into(),
            ok,
        }
    }

    fn mark(&self) -> &'static str {
        if self.ok { "ok" } else { "MISS" }
    }
}

/// `x` with `d` decimals, or `–` when there is no figure.
fn fig(x: f64, d: usize) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.d$}")
    }
}

fn main() {
    cleanup::install();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let work =
        PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp/p2pshare-bench".into()));
    std::fs::create_dir_all(&work).unwrap();
    let ctx = Ctx {
        bin: dir.join("p2pshare"),
        refpipe: dir.join("refpipe"),
        work,
        dport: 29000 + (std::process::id() % 500) as u16,
        runs,
    };
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let want = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "p2pshare benchmark: {runs} runs per figure (medians); load average at start: {}",
        load.trim()
    );

    let one_gib = ctx.work.join("src-1g.bin");
    make_file(&one_gib, GIB);
    let mut groups = Vec::new();
    if want("one") {
        groups.push(ctx.group(0, "1 GiB, 1 seeder", &one_gib, 1, "mio"));
        groups.push(ctx.group(1, "1 GiB, 1 seeder", &one_gib, 1, "smol"));
    }
    if want("three") {
        groups.push(ctx.group(2, "1 GiB, 3 seeders", &one_gib, 3, "mio"));
    }
    // Rounds: the reference, then each scenario once; the page cache and the machine's load
    // drift between rounds, so each run is compared with the reference of its own round.
    let mut refs = Vec::new();
    for _ in 0..if groups.is_empty() { 0 } else { runs } {
        let r = ctx.reference(&one_gib);
        refs.push(r);
        for g in &mut groups {
            ctx.get_once(g, r);
        }
    }
    if !refs.is_empty() {
        let reference = median(refs.clone());
        let best = refs.iter().copied().fold(f64::INFINITY, f64::min);
        let ref_mbps = GIB as f64 / reference / 1e6;
        println!(
            "\nreference pipeline (1 GiB over one loopback TCP connection, SHA-256 per 1 MiB chunk and of the whole file as it arrives, written and synced to disk): median {reference:.2} s, {ref_mbps:.0} MB/s (runs: {})\n",
            refs.iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for g in &groups {
            let runs: Vec<String> = g
                .samples
                .iter()
                .map(|x| format!("{:.2} s ({:.2} x)", x.secs, x.ref_secs / x.secs))
                .collect();
            let fastest = g
                .samples
                .iter()
                .map(|x| x.secs)
                .fold(f64::INFINITY, f64::min);
            println!(
                "{} ({}) runs: {}; best against the best reference run: {:.2} x",
                g.label,
                g.runtime,
                runs.join(", "),
                best / fastest
            );
        }
    }
    let mut rows: Vec<Row> = groups.iter().map(Group::row).collect();
    drop(groups);
    if want("four") {
        let four = ctx.work.join("src-4g.bin");
        make_file(&four, 4 * GIB);
        let mut g = ctx.group(3, "4 GiB, 1 seeder", &four, 1, "mio");
        for _ in 0..runs {
            ctx.get_once(&mut g, f64::NAN);
        }
        rows.push(g.row());
    }
    if want("lt1") || want("lt3") {
        match lt::env() {
            Err(why) => println!("\nlibtorrent rows (lt1, lt3): skipped ({why})"),
            Ok(env) => {
                for (tag, n) in [("lt1", 1), ("lt3", 3)] {
                    if !want(tag) {
                        continue;
                    }
                    match lt::scenario(&ctx, &env, tag, &one_gib, n) {
                        Ok(o) => rows.extend(lt_rows(tag, &o)),
                        Err(e) => println!("\n{tag}: skipped ({e})"),
                    }
                }
            }
        }
    }
    for r in &mut rows {
        if r.label == "1 GiB, 1 seeder" {
            r.targets.push(Target::new("≥1.0× ref", r.x_ref >= 1.0));
        }
        if r.runtime == "mio" {
            r.targets.push(Target::new("≤32 MiB", r.rss <= 32.0));
        }
    }
    println!(
        "\n{:<22} {:>10} {:>7} {:>6} {:>6} {:>6} {:>8} {:>16} {:>7}  target",
        "scenario",
        "runtime",
        "time s",
        "MB/s",
        "× ref",
        "× lt",
        "dl CPU s",
        "seed CPU s (each)",
        "RSS MiB"
    );
    for r in &rows {
        println!(
            "{:<22} {:>10} {:>7.2} {:>6.0} {:>6} {:>6} {:>8.2} {:>16} {:>7.1}  {}",
            r.label,
            r.runtime,
            r.secs,
            r.mbps,
            fig(r.x_ref, 2),
            fig(r.x_lt, 2),
            r.cpu,
            each(&r.seed_cpu),
            r.rss,
            r.targets
                .iter()
                .map(|t| format!("{} {}", t.what, t.mark()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut targets: Vec<(String, bool)> = Vec::new();
    for r in &rows {
        for t in &r.targets {
            let x = if t.what.ends_with("MiB") {
                format!("{:.1} MiB", r.rss)
            } else if t.what.ends_with("lt") {
                format!("{:.2}", r.x_lt)
            } else {
                format!("{:.2}", r.x_ref)
            };
            targets.push((format!("{} ({}) {}: {x}", r.label, r.runtime, t.what), t.ok));
        }
    }
    let one = rows
        .iter()
        .find(|r| r.label == "1 GiB, 1 seeder" && r.runtime == "mio");
    let three = rows.iter().find(|r| r.label == "1 GiB, 3 seeders");
    if let (Some(a), Some(b)) = (one, three) {
        targets.push((
            format!(
                "three seeders not slower than one: {:.2} s vs {:.2} s",
                b.secs, a.secs
            ),
            b.secs <= a.secs * 1.05,
        ));
    }

    if want("scan") {
        scan(&ctx, &one_gib, &mut targets);
    }
    if want("crowd") {
        // The classroom: a flash crowd behind one 100 Mbit/s seeder (issue 15).
        for (n, bound) in [(6, 1.5), (12, 2.0)] {
            let runs: Vec<Result<netns::Crowd, String>> = (0..ctx.runs.min(3))
                .map(|_| netns::crowd(&ctx.bin, &ctx.work, n))
                .collect();
            let ok: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(|c| c.last)
                .collect();
            match runs.iter().find_map(|r| r.as_ref().ok()) {
                Some(c) if ok.len() == runs.len() => {
                    let m = median(ok.clone()) / c.one_copy;
                    println!(
                        "\nflash crowd of {n} behind one 100 Mbit/s seeder, 60 MB: last done {:.2} s (median of {}; runs {ok:.2?}) = {m:.2} x the {:.1} s one copy takes to leave the seeder",
                        median(ok.clone()),
                        ok.len(),
                        c.one_copy
                    );
                    let _ = c.n;
                    targets.push((
                        format!("flash crowd of {n} <= {bound} x size/uplink: {m:.2}"),
                        m <= bound,
                    ));
                }
                _ => {
                    let why = runs
                        .iter()
                        .find_map(|r| r.as_ref().err())
                        .cloned()
                        .unwrap_or_default();
                    println!("\nflash crowd of {n}: skipped ({why})");
                }
            }
        }
    }
    if want("netns") {
        match netns::capped(&ctx.bin, &ctx.work, &one_gib) {
            Ok((rate, sum)) => {
                println!(
                    "\n3 seeders in namespaces, each capped at 100 Mbit/s: {:.1} MB/s of {:.1} MB/s",
                    rate / 1e6,
                    sum / 1e6
                );
                targets.push((
                    format!(
                        "three capped seeders >= 0.85 x sum of caps: {:.2}",
                        rate / sum
                    ),
                    rate >= 0.85 * sum,
                ));
            }
            Err(e) => println!("\n3 capped seeders in namespaces: skipped ({e})"),
        }
    }
    println!("\ntargets:");
    for (t, ok) in &targets {
        println!("  [{}] {t}", if *ok { "met " } else { "MISS" });
    }
}

/// The two rows of a libtorrent scenario: p2pshare's, with its median per-round ratio to
/// libtorrent and the ≥1.5× target on it, then libtorrent's.
fn lt_rows(tag: &str, o: &lt::Outcome) -> Vec<Row> {
    let label = format!(
        "{tag}: 1 GiB, {} seeder{}",
        o.seeders,
        if o.seeders == 1 { "" } else { "s" }
    );
    let x_lt = median(o.rounds.iter().map(lt::Round::ratio).collect());
    let x_before = median(
        o.rounds
            .iter()
            .map(lt::Round::ratio_before_finish)
            .collect(),
    );
    let row = |runtime: &str, runs: Vec<&lt::Run>, x_lt: f64, targets: Vec<Target>| {
        let (secs, cpu, rss, seed_cpu) = lt::medians(&runs);
        Row {
            label: label.clone(),
            runtime: runtime.into(),
            secs,
            mbps: o.size as f64 / secs / 1e6,
            x_ref: f64::NAN,
            x_lt,
            cpu,
            seed_cpu,
            rss,
            targets,
        }
    };
    let per_round = |f: fn(&lt::Round) -> f64| {
        o.rounds
            .iter()
            .map(|r| format!("{:.2}", f(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{tag}: p2pshare/libtorrent per round {}; median {x_lt:.2} (target ≥1.5: {})",
        per_round(lt::Round::ratio),
        Target::new("", x_lt >= 1.5).mark()
    );
    println!(
        "{tag}: p2pshare's finish (after the last chunk was written: the sync, the rename) per round {} s; without it, p2pshare/libtorrent {}, median {x_before:.2}",
        per_round(|r| r.p2p.finish),
        per_round(lt::Round::ratio_before_finish),
    );
    let x_synced = median(o.rounds.iter().map(lt::Round::ratio_both_synced).collect());
    println!(
        "{tag}: libtorrent with its file and folder fsynced after its last piece, as p2pshare's time includes: per round {} s; p2pshare/that {}, median {x_synced:.2}",
        per_round(|r| r.lt.synced),
        per_round(lt::Round::ratio_both_synced),
    );
    vec![
        row(
            "mio",
            o.rounds.iter().map(|r| &r.p2p).collect(),
            x_lt,
            vec![Target::new("≥1.5× lt", x_lt >= 1.5)],
        ),
        row(
            "libtorrent",
            o.rounds.iter().map(|r| &r.lt).collect(),
            f64::NAN,
            vec![],
        ),
    ]
}

/// The 10,000-file folder: scan rates and time to a complete list.
fn scan(ctx: &Ctx, one_gib: &Path, targets: &mut Vec<(String, bool)>) {
    let dir = ctx.work.join("many");
    let marker = dir.join("file-09999.bin");
    if !marker.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let mut x: u64 = 88172645463325252;
        for i in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1024 + (x % 8192) as usize;
            let bytes: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8 ^ j as u8).collect();
            std::fs::write(dir.join(format!("file-{i:05}.bin")), bytes).unwrap();
        }
    }
    let big = dir.join("big.bin");
    if !big.exists() {
        std::fs::hard_link(one_gib, &big).unwrap();
    }
    // Plain SHA-256 of the same bytes, one thread; best of three, the files already in the
    // page cache (as they are for the scans that follow).
    let mut plain = f64::INFINITY;
    let mut bytes = 0u64;
    for _ in 0..3 {
        let (secs, n) = plain_sha256(&dir);
        plain = plain.min(secs);
        bytes = n;
    }
    let (mut first, mut again, mut list) = (vec![], vec![], vec![]);
    for _ in 0..ctx.runs {
        let _ = std::fs::remove_file(dir.join(".p2pshare-cache"));
        let s = ctx.seeder(&dir, "mio", ctx.dport);
        first.push(s.scan_secs);
        drop(s);
        let s = ctx.seeder(&dir, "mio", ctx.dport);
        again.push(s.scan_secs);
        list.push(time_to_list(ctx, 10_001));
        drop(s);
    }
    let (first, again, list) = (median(first), median(again), median(list));
    let plain_rate = bytes as f64 / plain / 1e6;
    let scan_rate = bytes as f64 / first / 1e6;
    println!(
        "\nfolder of 10,000 small files + 1 GiB ({:.0} MB): plain SHA-256 {plain:.2} s ({plain_rate:.0} MB/s); first scan {first:.2} s ({scan_rate:.0} MB/s, {:.2} x, target ≥0.9× sha256: {}); restart scan {again:.3} s; another peer's list complete after {list:.2} s",
        bytes as f64 / 1e6,
        scan_rate / plain_rate,
        Target::new("", scan_rate >= 0.9 * plain_rate).mark()
    );
    targets.push((
        format!(
            "first scan >= 0.9 x plain SHA-256: {:.2}",
            scan_rate / plain_rate
        ),
        scan_rate >= 0.9 * plain_rate,
    ));
    targets.push((
        format!("restart scan of the unchanged folder < 0.5 s: {again:.3} s"),
        again < 0.5,
    ));
    targets.push((
        format!("a new peer's list complete within 2 s: {list:.2} s"),
        list <= 2.0,
    ));
}

/// Reads and SHA-256s every visible file of `dir` on one thread: (seconds, bytes).
fn plain_sha256(dir: &Path) -> (f64, u64) {
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 4 * MIB as usize];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let mut f = std::fs::File::open(&p).unwrap();
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut h, &buf[..n]);
            bytes += n as u64;
        }
        std::hint::black_box(sha2::Digest::finalize(h));
    }
    (start.elapsed().as_secs_f64(), bytes)
}

/// Starts an observer peer in this process and times how long until it lists `files` files.
fn time_to_list(ctx: &Ctx, files: usize) -> f64 {
    let mut cfg = p2pshare_host::PeerConfig::new(ctx.work.join("observer"));
    cfg.use_folder = false;
    cfg.transfer_port = 0;
    cfg.discovery_port = ctx.dport;
    cfg.broadcast = vec!["127.255.255.255".parse().unwrap()];
    cfg.interval = Duration::from_secs(1);
    let start = Instant::now();
    let handle = p2pshare_mio::start(&cfg).unwrap();
    loop {
        let snap = handle.snapshot().unwrap();
        if snap.remote.len() >= files {
            return start.elapsed().as_secs_f64();
        }
        if start.elapsed() > Duration::from_secs(60) {
            return f64::INFINITY;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
