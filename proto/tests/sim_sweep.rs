//! The default sweep: hundreds of seeds of mixed workloads and faults, every invariant checked
//! after every step. `P2PSHARE_SIM_SEEDS=N` sweeps N seeds instead (from
//! `P2PSHARE_SIM_BASE`, default 0); a failure prints its seed and how to replay it.
mod sim;

use p2pshare_proto::Bugs;
use sim::{Sim, sweep};

/// Seeds in the default sweep, split over parallel tests.
const DEFAULT_SEEDS: u64 = 600;
const PARTS: u64 = 4;

fn part(i: u64) {
    let (base, n) = match std::env::var("P2PSHARE_SIM_SEEDS") {
        Ok(n) => {
            let n: u64 = n.parse().expect("P2PSHARE_SIM_SEEDS is a number");
            let base = std::env::var("P2PSHARE_SIM_BASE")
                .ok()
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            (base, n)
        }
        Err(_) => (0, DEFAULT_SEEDS),
    };
    let per = n.div_ceil(PARTS);
    let start = base + i * per;
    let end = (start + per).min(base + n);
    let s = sweep(start..end, Bugs::default());
    eprintln!(
        "sweep {start}..{end}: {} seeds, {} steps, {} of {} downloads, {:.1} seeds/s",
        s.runs, s.steps, s.done, s.wanted, s.per_sec
    );
    if let Some(f) = s.failure {
        panic!("{f}");
    }
}

#[test]
fn sweep_part_0() {
    part(0);
}

#[test]
fn sweep_part_1() {
    part(1);
}

#[test]
fn sweep_part_2() {
    part(2);
}

#[test]
fn sweep_part_3() {
    part(3);
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
