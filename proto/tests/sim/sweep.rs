//! Running seeds: one with its trace, or many on every core with a summary.

use super::*;

/// Runs one seed: prints the seed first, then runs the world of that seed.
pub fn run_seed(seed: u64, bugs: Bugs, tracing: bool) -> Result<Report, Failure> {
    eprintln!("sim seed={seed}");
    let mut sim = Sim::new(seed, bugs);
    sim.tracing = tracing;
    sim.run()
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Seeds run.
    pub runs: u64,
    /// Steps over all runs.
    pub steps: u64,
    /// Downloads wanted over all runs.
    pub wanted: usize,
    /// Downloads completed over all runs.
    pub done: usize,
    /// Seeds per second of wall time.
    pub per_sec: f64,
    /// Every failure, in seed order.
    pub failures: Vec<Failure>,
    /// `(seed, trace hash, steps)` of every seed that passed, in seed order: two sweeps of one
    /// range compare run by run (`P2PSHARE_SIM_HASHES` in `sim_sweep` writes them out).
    pub hashes: Vec<(u64, u64, u64)>,
}

impl Sweep {
    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failures.first()
    }
}

/// When a sweep stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the first failure (the bite tests: one is enough).
    FirstFailure,
    /// At the end of the range, whatever failed.
    End,
}

/// Failures printed as they are found; past this many, only counted (a planted bug or a broken
/// build fails every seed).
pub const PRINTED_FAILURES: u64 = 100;

/// Runs `seeds` on `threads` threads (each takes the next seed not yet taken). With
/// [`Until::End`] each failure is printed as it is found (the first [`PRINTED_FAILURES`]); with
/// [`Until::FirstFailure`] every thread stops once any failed, and the failure reported is the
/// lowest seed that failed.
pub fn sweep_on(seeds: std::ops::Range<u64>, bugs: Bugs, threads: usize, until: Until) -> Sweep {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let t0 = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let printed = AtomicU64::new(0);
    let total = Mutex::new(Sweep::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut mine = Sweep::default();
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    mine.runs += 1;
                    let mut sim = Sim::new(seed, bugs);
                    match sim.run() {
                        Ok(r) => {
                            mine.hashes.push((seed, r.trace_hash, r.steps));
                            mine.steps += r.steps;
                            mine.wanted += r.wanted;
                            mine.done += r.done;
                        }
                        Err(f) => {
                            mine.steps += f.step;
                            match until {
                                Until::FirstFailure => stop.store(true, Ordering::Relaxed),
                                Until::End => match printed.fetch_add(1, Ordering::Relaxed) {
                                    n if n < PRINTED_FAILURES => eprintln!("FAILED {f}"),
                                    n if n == PRINTED_FAILURES => eprintln!(
                                        "(more failures: only the first {PRINTED_FAILURES} are printed; the summary counts all)"
                                    ),
                                    _ => {}
                                },
                            }
                            mine.failures.push(f);
                        }
                    }
                }
                let mut t = total.lock().unwrap();
                t.runs += mine.runs;
                t.steps += mine.steps;
                t.wanted += mine.wanted;
                t.done += mine.done;
                t.failures.append(&mut mine.failures);
                t.hashes.append(&mut mine.hashes);
            });
        }
    });
    let mut s = total.into_inner().unwrap();
    s.failures.sort_by_key(|f| f.seed);
    s.hashes.sort_unstable();
    s.per_sec = s.runs as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    s
}

/// Runs `seeds` in order on this thread until the first failure.
pub fn sweep(seeds: std::ops::Range<u64>, bugs: Bugs) -> Sweep {
    sweep_on(seeds, bugs, 1, Until::FirstFailure)
}
