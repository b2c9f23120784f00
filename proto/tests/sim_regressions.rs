//! Seeds on which the simulator once found a bug in proto, kept so the bug stays fixed.
mod sim;

use p2pshare_proto::Bugs;
use sim::run_seed;

fn passes(seed: u64) {
    if let Err(f) = run_seed(seed, Bugs::default(), false) {
        panic!("{f}");
    }
}

/// A holder that never answered a manifest or chunk request (it answered catalogs, so it
/// stayed a holder) kept the download waiting forever: stalled, reconnected, asked again,
/// stalled... with neither progress nor a `DownloadFailed`. Fixed: a peer that fails
/// `MAX_STRIKES` times in a row with requests outstanding is banned as unresponsive, and the
/// download stops with a reason when no usable peer is left.
#[test]
fn unresponsive_holder_no_longer_blocks_a_download_forever() {
    for seed in [169, 196, 198, 243, 318] {
        passes(seed);
    }
}
