//! The random world of one seed: hosts and their misbehaviour, files (plain names and paths of
//! a shared tree) and who holds them, who
//! wants what and when, and a schedule of faults.
//!
//! Invariants: everything is drawn from the run's one RNG; every fault ends by `heal_at` (a
//! crashed host is back by then unless it departed for good; partitions, pauses, stalls, slow
//! or failing disks and a bad network all end), while misbehaving peers stay misbehaving; most
//! runs are small (2 to 6 hosts, files of up to 7 chunks of 16 KiB) so that hundreds of seeds
//! run in seconds; a run may be given its number of hosts (up to 50), and then has no
//! adversaries; otherwise [`super::adversary::populate`] may add some after the rest.

use p2pshare_proto::Bugs;
use p2pshare_proto::manifest::MIN_CHUNK_SIZE;

use super::{Act, Behaviour, EXPIRY, MS, SEC, Sim};

/// The path of file `f` in the shared trees: a plain name, a file in a folder, one three
/// folders deep (issue 12). Taken from the index, not the RNG, so every seed's world is drawn
/// as before and pinned seeds keep their meaning.
fn tree_name(f: usize) -> String {
    match f % 3 {
        0 => format!("file{f}.bin"),
        1 => format!("album/file{f}.bin"),
        _ => format!("album/2024/raw/file{f}.bin"),
    }
}

/// Fills `sim` with the world of its seed; `hosts` forces the number of hosts.
pub fn populate(sim: &mut Sim, bugs: Bugs, hosts: Option<usize>) {
    let r = &mut sim.rng;
    let n = match r.below(100) {
        _ if hosts.is_some() => hosts.unwrap_or(2).clamp(2, 50),
        0..=10 => r.range(7, 12) as usize,
        11..=45 => r.range(4, 6) as usize,
        46..=72 => 3,
        _ => 2,
    };
    let nfiles = if n >= 20 { 3 } else { r.range(1, 3) as usize };
    for f in 0..nfiles {
        let r = &mut sim.rng;
        let size = if r.chance(0.05) {
            0
        } else {
            let chunks = r.range(0, 6) as usize;
            chunks * MIN_CHUNK_SIZE as usize + r.range(1, u64::from(MIN_CHUNK_SIZE)) as usize
        };
        let data = r.bytes(size);
        sim.add_file(tree_name(f), data);
    }
    for i in 0..n {
        let r = &mut sim.rng;
        let behaviour = if i > 0 && r.chance(0.15) {
            match r.below(5) {
                0 => Behaviour::Corrupt(r.float(0.2, 1.0)),
                1 => Behaviour::CatalogLiar,
                2 => Behaviour::ManifestLiar,
                3 => Behaviour::Mute,
                _ => Behaviour::Closer(r.float(0.2, 0.9)),
            }
        } else {
            Behaviour::Honest
        };
        sim.add_host(behaviour, bugs);
    }
    // Holders, and a catalog liar's extra lie.
    let mut holds = vec![Vec::new(); n];
    for f in 0..nfiles {
        let k = sim.rng.range(1, 3.min(n as u64 - 1)) as usize;
        for _ in 0..k {
            let h = sim.rng.below(n);
            if !holds[h].contains(&f) {
                holds[h].push(f);
                let bytes = sim.hosts[h].behaviour != Behaviour::CatalogLiar;
                sim.hold(h, f, bytes);
            }
        }
    }
    for (h, held) in holds.iter_mut().enumerate() {
        if sim.hosts[h].behaviour == Behaviour::CatalogLiar {
            let f = sim.rng.below(nfiles);
            if !held.contains(&f) {
                held.push(f);
                sim.hold(h, f, false);
            }
        }
    }
    // Wants.
    for f in 0..nfiles {
        let d = sim.rng.range(1, 2);
        for _ in 0..d {
            let h = sim.rng.below(n);
            if holds[h].contains(&f) || sim.wants.iter().any(|w| w.host == h && w.file == f) {
                continue;
            }
            let at = sim.rng.range(300 * MS, 4 * SEC);
            sim.want(h, f, at);
        }
    }
    // Faults, all healed by `heal_at`.
    let r = &mut sim.rng;
    let heal = r.range(3 * SEC, 25 * SEC);
    let count = if r.chance(0.2) { 0 } else { r.range(1, 6) };
    let mut min_end = heal;
    let mut faults = Vec::new();
    for _ in 0..count {
        let r = &mut sim.rng;
        let at = r.range(500 * MS, heal);
        let left = heal - at;
        let host = r.below(n);
        let act = match r.below(12) {
            0 | 1 => Act::Crash {
                host,
                graceful: r.chance(0.3),
                down_for: Some(r.range(200 * MS, left.max(200 * MS))),
            },
            2 => {
                min_end = min_end.max(at + EXPIRY + 2 * SEC);
                Act::Crash {
                    host,
                    graceful: r.chance(0.3),
                    down_for: None,
                }
            }
            3 => Act::Pause {
                host,
                dur: r.range(200 * MS, 25 * SEC).min(left.max(200 * MS)),
            },
            4 => Act::Partition {
                groups: (0..n).map(|_| r.below(2) as u8).collect(),
                dur: r.range(SEC, 20 * SEC).min(left.max(SEC)),
            },
            5 => Act::ResetConn,
            6 => Act::HalfClose,
            7 => Act::Stall {
                dur: r.range(SEC, 10 * SEC).min(left.max(SEC)),
            },
            8 => Act::SlowDisk {
                host,
                lat: r.range(5 * MS, 300 * MS),
            },
            9 => Act::WriteFail {
                host,
                p: r.float(0.1, 1.0),
            },
            10 => Act::BadNet {
                loss: r.float(0.0, 0.4),
                dup: r.float(0.0, 0.2),
                jitter: r.range(0, 50 * MS),
            },
            _ => Act::Garbage,
        };
        faults.push((at, act));
    }
    sim.faults = faults.len();
    for (at, act) in faults {
        sim.act(at, act);
    }
    sim.act(heal, Act::Heal);
    sim.heal_at = heal;
    sim.min_end = min_end;
    // Last, from a stream of their own: a world without adversaries is as it always was.
    if hosts.is_none() {
        super::adversary::populate(sim, bugs);
    }
    super::crowd::populate(sim, bugs, hosts.is_some());
    super::subnets::populate(sim);
}
