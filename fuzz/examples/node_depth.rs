//! Replays the `node_inputs` corpus through the harness and counts, over all inputs, the outputs
//! of each kind and how many inputs reached a write and a finish: shows how deep the fuzzer got.
//!
//! `RUSTFLAGS="--cfg fuzzing" cargo run --release --example node_depth [CORPUS_DIR]`
//! (the script types derive `Arbitrary` only under `cfg(fuzzing)`, as cargo-fuzz builds them).

#[path = "../../proto/tests/support/node_harness.rs"]
mod node_harness;

#[cfg(fuzzing)]
fn main() {
    use arbitrary::{Arbitrary, Unstructured};
    use std::collections::BTreeMap;

    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/node_inputs").into());
    let origin = std::time::Instant::now();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut reached: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        let Ok(script) = node_harness::Script::arbitrary_take_rest(Unstructured::new(&data)) else {
            continue;
        };
        inputs += 1;
        let h = node_harness::Harness::run(origin, &script);
        for (k, n) in &h.counts {
            *totals.entry(k).or_default() += n;
            *reached.entry(k).or_default() += 1;
        }
    }
    println!("{inputs} inputs");
    for (k, n) in &totals {
        println!("{k:>14}: {n:>8} outputs, in {:>6} inputs", reached[k]);
    }
}

#[cfg(not(fuzzing))]
fn main() {
    eprintln!("build with RUSTFLAGS=\"--cfg fuzzing\"");
}
