//! The libtorrent scenarios (`lt1`, `lt3`): 1 GiB from 1 or 3 seeders, p2pshare (mio) against
//! libtorrent (Debian's python3-libtorrent, driven by `bench/lt_driver.py`) in the same run.
//!
//! Invariants:
//! - Every peer of a scenario, of both tools, runs inside one network namespace that has only
//!   `lo` ([`LoOnly`]), created here and removed on every exit path. p2pshare's peers get
//!   `--broadcast 127.255.255.255`; libtorrent's listen and connect on their own 127.x address
//!   (downloader 127.0.0.1, seeder i 127.0.1.i) with DHT, LSD, UPnP, NAT-PMP and uTP off, no
//!   tracker, and the seeders given to the downloader directly.
//! - The seeders of both tools start once per scenario and stay until it ends; they serve hard
//!   links of one source file (one inode, so both tools' seeders see the same page cache).
//! - Each round runs both downloaders into fresh directories, the order alternating from one
//!   round to the next, with the page cache dropped (`sync; echo 3 > drop_caches`) before each.
//! - A download's cost is its downloader's CPU seconds and peak RSS (wait4) and each of its
//!   tool's seeders' CPU seconds over the download (deltas of /proc/PID/stat).
//! - p2pshare's time is `get --json`'s `seconds`, and of that its `finish_seconds` (after the
//!   last chunk was written: the rest of the whole-file hash, the `fsync`, the rename) is
//!   reported on its own, since libtorrent has no such step. libtorrent's time is its own
//!   (`done`); the driver then fsyncs the file and its folder, and that time (`synced`) gives
//!   a second, like-for-like ratio, printed beside the one the target is on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netns::LoOnly;
use crate::proc::{Seeder, run};
use crate::{Ctx, median};

/// The listening port of every libtorrent peer (each has its own 127.x address).
const LT_PORT: u16 = 6881;

/// How to run libtorrent here: a python3 that imports it, and the driver script.
pub struct LtEnv {
    python: PathBuf,
    driver: PathBuf,
}

/// Finds libtorrent and mktorrent (`bench.sh` installs them and names the python3 in
/// `BENCH_LT_PYTHON`, or says why not in `BENCH_LT_SKIP`). Err: why the rows are skipped.
pub fn env() -> Result<LtEnv, String> {
    if let Ok(why) = std::env::var("BENCH_LT_SKIP") {
        return Err(why);
    }
    // Debian's package installs into /usr/bin/python3's dist-packages, which a pyenv or venv
    // python3 earlier on PATH does not see.
    let candidates = match std::env::var("BENCH_LT_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    let imports = |p: &String| {
        Command::new(p)
            .args(["-c", "import libtorrent"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let Some(python) = candidates.iter().find(|p| imports(p)).map(PathBuf::from) else {
        return Err(format!(
            "{} cannot import libtorrent (run through ./bench.sh, which installs python3-libtorrent)",
            candidates.join(" or ")
        ));
    };
    if Command::new("mktorrent").arg("-h").output().is_err() {
        return Err("mktorrent is missing (run through ./bench.sh, which installs it)".into());
    }
    Ok(LtEnv {
        python,
        driver: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/lt_driver.py")),
    })
}

/// One download: its time, the downloader's cost and its seeders' CPU.
#[derive(Debug, Clone)]
pub struct Run {
    /// The tool's own figure: p2pshare's `seconds` (request to a verified, synced file),
    /// libtorrent's from adding the torrent to the last piece passing its check.
    pub secs: f64,
    /// p2pshare's finish, part of `secs` (NaN for libtorrent, which does not sync, and if
    /// p2pshare's `finish_seconds` is null).
    pub finish: f64,
    /// libtorrent's time to the same point with the file and its folder fsynced afterwards
    /// by the driver, as p2pshare's `secs` includes (NaN for p2pshare).
    pub synced: f64,
    /// The downloader process from spawn to exit.
    pub wall: f64,
    pub cpu: f64,
    pub rss_mib: f64,
    /// CPU seconds of each seeder of the same tool during this download.
    pub seed_cpu: Vec<f64>,
}

/// One round: both tools, in the order they ran.
pub struct Round {
    pub p2p: Run,
    pub lt: Run,
    pub p2p_first: bool,
}

impl Round {
    /// p2pshare's speed over libtorrent's in this round.
    pub fn ratio(&self) -> f64 {
        self.lt.secs / self.p2p.secs
    }

    /// The same ratio with p2pshare's finish left out: what the sync at the end costs it.
    pub fn ratio_before_finish(&self) -> f64 {
        self.lt.secs / (self.p2p.secs - self.p2p.finish)
    }

    /// p2pshare's speed over libtorrent's with libtorrent's file synced too: like with like.
    pub fn ratio_both_synced(&self) -> f64 {
        self.lt.synced / self.p2p.secs
    }
}

/// A finished scenario.
pub struct Outcome {
    pub seeders: usize,
    pub size: u64,
    pub rounds: Vec<Round>,
}

/// Medians of one tool's runs: (secs, cpu, rss, each seeder's cpu).
pub fn medians(runs: &[&Run]) -> (f64, f64, f64, Vec<f64>) {
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(|r| f(r)).collect());
    let n = runs.first().map_or(0, |r| r.seed_cpu.len());
    (
        m(&|r| r.secs),
        m(&|r| r.cpu),
        m(&|r| r.rss_mib),
        (0..n).map(|i| m(&|r| r.seed_cpu[i])).collect(),
    )
}

/// Writes dirty pages back, then drops the page cache, so that each download starts cold.
fn drop_caches() -> Result<(), String> {
    crate::settle();
    std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| format!("drop_caches: {e}"))
}

/// `dir/name`, hard-linked to `src` (kept between runs when it already is `src`'s size).
fn link_into(src: &Path, dir: &Path, name: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let link = dir.join(name);
    let size = std::fs::metadata(src).map_err(|e| e.to_string())?.len();
    if !std::fs::metadata(&link).is_ok_and(|m| m.len() == size) {
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(src, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(())
}

/// The torrent of `work/lt-src/big.bin` (1 MiB pieces, no announce URL), made once.
fn torrent(work: &Path, src: &Path) -> Result<PathBuf, String> {
    let dir = work.join("lt-src");
    link_into(src, &dir, "big.bin")?;
    let t = work.join("big.torrent");
    if t.exists() {
        return Ok(t);
    }
    let out = Command::new("mktorrent")
        .args(["-l", "20", "-o"])
        .arg(&t)
        .arg(dir.join("big.bin"))
        .output()
        .map_err(|e| format!("mktorrent: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&t);
        return Err(format!(
            "mktorrent: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(t)
}

/// The seeders of both tools in one namespace.
struct Swarm<'a> {
    ctx: &'a Ctx,
    env: &'a LtEnv,
    torrent: PathBuf,
    dport: u16,
    size: u64,
    p2p: Vec<Seeder>,
    lt: Vec<Seeder>,
    // Dropped last: the peers above die before their namespace goes.
    ns: LoOnly,
}

fn seed_addr(i: usize) -> String {
    format!("127.0.1.{}:{LT_PORT}", i + 1)
}

impl Swarm<'_> {
    fn p2p_get(&self) -> Result<Run, String> {
        let dl = crate::fresh_dir(&self.ctx.work.join("lt-dl-p2p"));
        drop_caches()?;
        let before: Vec<f64> = self.p2p.iter().map(Seeder::cpu).collect();
        let (stdout, cost) = run(self
            .ns
            .exec(&self.ctx.bin)
            .args(self.ctx.net(self.dport))
            .arg("--shared")
            .arg(&dl)
            .args([
                "--runtime",
                "mio",
                "get",
                "big.bin",
                "--json",
                "--timeout",
                "900",
            ]));
        let seed_cpu = deltas(&self.p2p, &before);
        let got = ["dl_big.bin", "big.bin"]
            .iter()
            .filter_map(|n| std::fs::metadata(dl.join(n)).ok())
            .any(|m| m.len() == self.size);
        let _ = std::fs::remove_dir_all(&dl);
        let result = serde_json::from_str::<serde_json::Value>(&stdout).ok();
        let field = |k: &str| result.as_ref().and_then(|r| r[k].as_f64());
        let Some(secs) = field("seconds") else {
            return Err(format!("p2pshare get failed: {stdout}"));
        };
        let finish = field("finish_seconds").unwrap_or(f64::NAN);
        if !cost.ok || !got {
            return Err(format!("p2pshare get failed: {stdout}"));
        }
        Ok(Run {
            secs,
            finish,
            synced: f64::NAN,
            wall: cost.wall,
            cpu: cost.cpu,
            rss_mib: cost.max_rss_mib,
            seed_cpu,
        })
    }

    fn lt_get(&self) -> Result<Run, String> {
        let dl = crate::fresh_dir(&self.ctx.work.join("lt-dl-lt"));
        drop_caches()?;
        let before: Vec<f64> = self.lt.iter().map(Seeder::cpu).collect();
        let (stdout, cost) = run(self
            .ns
            .exec(&self.env.python)
            .arg(&self.env.driver)
            .arg("get")
            .arg(&self.torrent)
            .arg(&dl)
            .arg(format!("127.0.0.1:{LT_PORT}"))
            .args((0..self.lt.len()).map(seed_addr)));
        let seed_cpu = deltas(&self.lt, &before);
        let got = std::fs::metadata(dl.join("big.bin")).is_ok_and(|m| m.len() == self.size);
        let _ = std::fs::remove_dir_all(&dl);
        let secs = parse_done(&stdout);
        match secs {
            Some(secs) if cost.ok && got => Ok(Run {
                secs,
                finish: f64::NAN,
                synced: parse_line(&stdout, "synced ").unwrap_or(f64::NAN),
                wall: cost.wall,
                cpu: cost.cpu,
                rss_mib: cost.max_rss_mib,
                seed_cpu,
            }),
            _ => Err(format!("libtorrent get failed: {stdout}")),
        }
    }
}

fn deltas(seeders: &[Seeder], before: &[f64]) -> Vec<f64> {
    seeders
        .iter()
        .zip(before)
        .map(|(s, b)| s.cpu() - b)
        .collect()
}

/// The driver's `done SECONDS` line.
pub fn parse_done(stdout: &str) -> Option<f64> {
    parse_line(stdout, "done ")
}

/// The seconds on the driver's line that starts with `prefix`.
fn parse_line(stdout: &str, prefix: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|s| s.trim().parse().ok())
}

/// Runs scenario `tag` (`lt1`, `lt3`): `seeders` seeders of `src` per tool, `ctx.runs` rounds.
/// Prints each round's figures and ratio as it goes.
pub fn scenario(
    ctx: &Ctx,
    env: &LtEnv,
    tag: &str,
    src: &Path,
    seeders: usize,
) -> Result<Outcome, String> {
    let torrent = torrent(&ctx.work, src)?;
    let size = std::fs::metadata(src).map_err(|e| e.to_string())?.len();
    let ns = LoOnly::new(tag)?;
    let dport = ctx.dport + 20;
    let mut swarm = Swarm {
        ctx,
        env,
        torrent,
        dport,
        size,
        p2p: vec![],
        lt: vec![],
        ns,
    };
    // Every link first: adding a name to the file changes its ctime, which would make a
    // p2pshare seeder already running see a changed file and hash it again mid-round.
    let dir = |tool: &str, i: usize| ctx.work.join(format!("lt-{tool}-seed-{i}"));
    for i in 0..seeders {
        link_into(src, &dir("p2p", i), "big.bin")?;
        link_into(src, &dir("lt", i), "big.bin")?;
    }
    let wait = Duration::from_secs(300);
    for i in 0..seeders {
        swarm.p2p.push(Seeder::start_until(
            swarm
                .ns
                .exec(&ctx.bin)
                .args(ctx.net(dport))
                .arg("--shared")
                .arg(dir("p2p", i))
                .args(["--runtime", "mio", "-v", "serve"]),
            crate::proc::SCANNED,
            wait,
        )?);
        swarm.lt.push(Seeder::start_until(
            swarm
                .ns
                .exec(&env.python)
                .arg(&env.driver)
                .arg("seed")
                .arg(&swarm.torrent)
                .arg(dir("lt", i))
                .arg(seed_addr(i)),
            "seeding",
            wait,
        )?);
    }
    println!(
        "\n{tag}: 1 GiB from {seeders} seeder{} per tool in namespace {} (only lo), caches dropped before each download",
        if seeders == 1 { "" } else { "s" },
        swarm.ns.name()
    );
    let mut rounds = Vec::new();
    for r in 0..ctx.runs {
        let p2p_first = r % 2 == 0;
        let (p2p, lt) = if p2p_first {
            let p = swarm.p2p_get()?;
            (p, swarm.lt_get()?)
        } else {
            let l = swarm.lt_get()?;
            (swarm.p2p_get()?, l)
        };
        let round = Round { p2p, lt, p2p_first };
        println!(
            "  round {} ({} first): p2pshare {:.2} s (finish {:.2}, wall {:.2}, CPU {:.2}, seeders {}, RSS {:.1} MiB); libtorrent {:.2} s (wall {:.2}, CPU {:.2}, seeders {}, RSS {:.1} MiB); p2pshare/libtorrent {:.2}, {:.2} before p2pshare's finish",
            r + 1,
            if round.p2p_first {
                "p2pshare"
            } else {
                "libtorrent"
            },
            round.p2p.secs,
            round.p2p.finish,
            round.p2p.wall,
            round.p2p.cpu,
            crate::each(&round.p2p.seed_cpu),
            round.p2p.rss_mib,
            round.lt.secs,
            round.lt.wall,
            round.lt.cpu,
            crate::each(&round.lt.seed_cpu),
            round.lt.rss_mib,
            round.ratio(),
            round.ratio_before_finish()
        );
        rounds.push(round);
    }
    Ok(Outcome {
        seeders,
        size,
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_drivers_line() {
        assert_eq!(parse_done("done 4.2500\nsynced 5.5000\n"), Some(4.25));
        assert_eq!(
            parse_line("done 4.2500\nsynced 5.5000\n", "synced "),
            Some(5.5)
        );
        assert_eq!(parse_done("lt_driver: not complete\n"), None);
    }

    /// A scratch directory of this test process, removed first.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("p2pb-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn the_namespace_has_only_lo_and_goes_away() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let ns = LoOnly::new("t-lo").unwrap();
        let name = ns.name().to_string();
        let links = ns
            .exec(Path::new("ip"))
            .args(["-o", "link"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&links.stdout);
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(str::trim)
            .collect();
        assert_eq!(names, ["lo"], "{links}");
        assert!(links.contains("UP"), "lo is not up: {links}");
        let list = || {
            String::from_utf8_lossy(
                &Command::new("ip")
                    .args(["netns", "list"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .to_string()
        };
        assert!(list().contains(&name));
        drop(ns);
        assert!(!list().contains(&name), "{name} still exists");
    }

    /// The driver seeds and downloads a real torrent in a namespace with only `lo`.
    #[test]
    fn the_driver_moves_a_file_between_two_libtorrent_peers() {
        let env = match env() {
            Ok(e) if root() => e,
            Ok(_) => return eprintln!("skipped: needs root"),
            Err(why) => return eprintln!("skipped: {why}"),
        };
        let work = scratch("lt");
        let src = work.join("src.bin");
        crate::make_file(&src, 9 * crate::MIB + 12_345);
        let t = torrent(&work, &src).unwrap();
        link_into(&src, &work.join("seed"), "big.bin").unwrap();
        let ns = LoOnly::new("t-lt").unwrap();
        let _seeder = Seeder::start_until(
            ns.exec(&env.python)
                .arg(&env.driver)
                .arg("seed")
                .arg(&t)
                .arg(work.join("seed"))
                .arg(seed_addr(0)),
            "seeding",
            Duration::from_secs(60),
        )
        .unwrap();
        let dl = work.join("dl");
        std::fs::create_dir_all(&dl).unwrap();
        let (stdout, cost) = run(ns
            .exec(&env.python)
            .arg(&env.driver)
            .arg("get")
            .arg(&t)
            .arg(&dl)
            .arg(format!("127.0.0.1:{LT_PORT}"))
            .arg(seed_addr(0)));
        assert!(cost.ok, "{stdout}");
        let done = parse_done(&stdout);
        assert!(done.is_some_and(|s| s > 0.0), "{stdout}");
        let synced = parse_line(&stdout, "synced ");
        assert!(
            matches!((done, synced), (Some(d), Some(s)) if s >= d),
            "{stdout}"
        );
        assert!(cost.cpu > 0.0 && cost.max_rss_mib > 1.0);
        assert!(std::fs::read(dl.join("big.bin")).unwrap() == std::fs::read(&src).unwrap());
        drop(_seeder);
        drop(ns);
        let _ = std::fs::remove_dir_all(&work);
    }
}
