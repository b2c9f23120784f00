//! The sweep: many seeds of mixed workloads and faults, every invariant checked after every
//! step, spread over every core.
//!
//! Without variables it runs [`DEFAULT_SEEDS`] seeds from 0. `P2PSHARE_SIM_SEEDS=N` sweeps N
//! seeds from `P2PSHARE_SIM_BASE` (default 0) instead, on `P2PSHARE_SIM_THREADS` threads
//! (default: one per core). The sweep runs to the end: every failing seed is printed with its
//! replay line as it is found (the first 100; all are counted), then a summary (seeds, steps,
//! seeds/s, failures), and the test fails if any seed did. `./sim-sweep.sh N [BASE]` runs it in
//! release. `P2PSHARE_SIM_HASHES=FILE` also writes `seed trace-hash steps` of every seed that
//! passed to FILE, one line each in seed order, so that two builds compare run by run
//! (`diff` the files: a change that claims no behaviour change leaves them identical).
mod sim;

use p2pshare_proto::Bugs;
use sim::{Sim, Until, sweep_on};

/// Seeds in the default sweep.
const DEFAULT_SEEDS: u64 = 600;
/// Failures printed again in the closing panic message (all are printed as they happen).
const LISTED_FAILURES: usize = 20;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

#[test]
fn sweep_seeds() {
    let n = env_u64("P2PSHARE_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let base = env_u64("P2PSHARE_SIM_BASE").unwrap_or(0);
    let threads = env_u64("P2PSHARE_SIM_THREADS").map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let end = base
        .checked_add(n)
        .expect("P2PSHARE_SIM_BASE + P2PSHARE_SIM_SEEDS overflows");
    eprintln!("sweep {base}..{end} on {threads} threads");
    let s = sweep_on(base..end, Bugs::default(), threads, Until::End);
    eprintln!(
        "sweep {base}..{end}: {} seeds, {} steps, {} of {} downloads, {:.1} seeds/s, {} failures",
        s.runs,
        s.steps,
        s.done,
        s.wanted,
        s.per_sec,
        s.failures.len()
    );
    if let Ok(path) = std::env::var("P2PSHARE_SIM_HASHES") {
        let lines: String = s
            .hashes
            .iter()
            .map(|(seed, hash, steps)| format!("{seed} {hash:016x} {steps}\n"))
            .collect();
        // The test's own output file, not the node's: proto's no-file-I/O lint is for src/.
        #[allow(clippy::disallowed_methods)]
        std::fs::write(&path, lines).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        eprintln!("{} trace hashes written to {path}", s.hashes.len());
    }
    if !s.failures.is_empty() {
        let list: Vec<String> = s
            .failures
            .iter()
            .take(LISTED_FAILURES)
            .map(|f| f.to_string())
            .collect();
        panic!(
            "{} of {} seeds failed; the first {}:\n{}",
            s.failures.len(),
            s.runs,
            list.len(),
            list.join("\n")
        );
    }
}

/// One whole LAN of 50 hosts (the sweep's worlds have 2 to 12).
#[test]
fn fifty_hosts() {
    let seed = 50;
    eprintln!("sim seed={seed} hosts=50");
    let r = Sim::with_hosts(seed, Bugs::default(), Some(50)).run();
    match r {
        Ok(r) => {
            assert_eq!(r.hosts, 50);
            assert!(r.wanted > 0 && r.done > 0, "{r:?}");
        }
        Err(f) => panic!("{f}"),
    }
}
