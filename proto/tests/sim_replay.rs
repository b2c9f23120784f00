//! Replaying one seed, and determinism.
//!
//! `P2PSHARE_SIM_SEED=S cargo test -p p2pshare-proto --test sim_replay -- --nocapture` runs
//! seed S with a readable trace of every input, output and fault on stderr. Without the variable
//! the replay test runs one fixed seed quietly.
mod sim;

use p2pshare_proto::Bugs;
use sim::run_seed;

#[test]
fn replay_one_seed() {
    let (seed, tracing) = match std::env::var("P2PSHARE_SIM_SEED") {
        Ok(s) => (s.parse().expect("P2PSHARE_SIM_SEED is a number"), true),
        Err(_) => (7, false),
    };
    match run_seed(seed, Bugs::default(), tracing) {
        Ok(r) => eprintln!("{r:?}"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn a_seed_replays_to_the_same_trace_hash() {
    for seed in [3, 11, 12345] {
        let a = run_seed(seed, Bugs::default(), false).unwrap();
        let b = run_seed(seed, Bugs::default(), false).unwrap();
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} replays exactly");
        assert_eq!(a.steps, b.steps);
    }
    let x = run_seed(1, Bugs::default(), false).unwrap();
    let y = run_seed(2, Bugs::default(), false).unwrap();
    assert_ne!(
        x.trace_hash, y.trace_hash,
        "different seeds, different runs"
    );
}
