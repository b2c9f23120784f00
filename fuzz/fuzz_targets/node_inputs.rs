//! A structured sequence of inputs, with time only moving forward, into one `Node`.
//!
//! The script and the runtime around the node are `proto/tests/support/node_harness.rs`, shared
//! with the proptest and regression tests. It checks, after every input: no panic; the node's
//! invariants hold; `poll_timeout()` after `handle_timeout(now)` is later than `now`; no
//! `Output::Disk(DiskOp::Write)` whose bytes fail the manifest of that content (the harness keeps every
//! manifest it made); no `Finish` before the partial file matches; outputs and buffers bounded.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/support/node_harness.rs"]
mod node_harness;

fuzz_target!(|script: node_harness::Script| {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    node_harness::Harness::run(origin, &script);
});
