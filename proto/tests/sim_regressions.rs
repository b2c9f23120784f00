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

/// A download failed with "no peer has this file" while an honest holder was on the LAN: the
/// downloader never learned that holder's catalog. Two causes met: a peer that restarted
/// connected at once, and the other side, hearing the new instance in that connection's own
/// hello, closed every connection of the peer, the new one included; and a catalog request
/// that died with its connection was never asked again. Fixed: a restart closes only the
/// connections whose hello named an older instance, late announcements of a retired instance
/// are ignored, and a catalog request lost with its connection is asked again on the next.
/// The manifest is now asked of the open holder with the fewest failures, with links opened
/// to every other holder meanwhile.
#[test]
fn a_restarted_peer_keeps_its_new_connections_and_lost_catalog_requests_are_asked_again() {
    for seed in [101770, 112026, 115039, 204521] {
        passes(seed);
    }
}

/// Failures of the simulator's own model, found by the first sweeps of a million seeds, that
/// reported a liveness failure where the real peer would have been fine: a rescan of a paused
/// host was never shown to its node (so it never shared what the oracle said it held); a
/// finish whose answer a crash swallowed left `dl_<name>` behind and the model, unlike the
/// real store, refused every later finish instead of taking the next free name; and a host
/// that shares the wanted bytes under another name counted as its own honest source.
#[test]
fn the_models_paused_rescan_finish_names_and_self_source_match_the_real_peer() {
    for seed in [1018417, 1035056, 1061065, 1072770] {
        passes(seed);
    }
}

/// A download stuck in its manifest phase for good: a late "not found" for a chunk of an
/// earlier attempt at the same file (held back by a stalled connection) banned the holder the
/// new attempt had asked for the manifest, and that manifest request was dropped without being
/// asked of the other holder. Fixed: an error about a chunk counts only if that chunk is in
/// flight to that peer, and a ban that takes a manifest request with it asks another holder.
#[test]
fn a_stale_refusal_cannot_strand_a_download_before_its_manifest() {
    passes(30545166);
}

/// Seed 60933731290300 (CI window of b598bf6): h1 became an honest holder of a file (having
/// downloaded it from a corrupt holder) 23 s after the user of h4 had stopped asking for it;
/// the liveness oracle counted h1 as a source h4 should have used. It now counts only hosts
/// that shared the file before the retry window closed.
#[test]
fn a_holder_that_appeared_after_the_user_stopped_asking_is_no_missed_source() {
    passes(60933731290300);
}

/// Seed 60175696575535 (CI window of b35669b): while h1 was down, h0 kept dialling it (a late
/// announcement of the old instance had re-added it); those failures counted against h1's
/// next instance, which was forgotten as unreachable and then ignored. A restart now clears
/// the link's failures.
#[test]
fn a_restarted_peer_is_not_unreachable_for_its_old_instance_s_failures() {
    passes(60175696575535);
}

/// Seed 37064063316422 (CI window of 6e75a2d): h2 finished a download, shared it from memory
/// (swarming's finish into sharing), crashed, and came back sharing nothing, since the
/// simulator's restart did not scan the finished file as a real host's scanner does; h0, with
/// h2's old catalog, was refused and banned it as not found. A restart now shares the host's
/// finished downloads.
#[test]
fn a_restarted_host_shares_what_it_finished_before() {
    passes(37064063316422);
}

/// Seed 17156201201390 (a CI rehearsal's window of this stop): a host wanting the two files
/// of a folder nobody shares asked for the folder once per file and failure, and each `Get`
/// of the folder failed both files at once: the folder's `Get`s doubled every round (600,000
/// events per simulated second at 36 s) and the sweep ran for hours. The simulator now keeps
/// at most one scheduled `Get` per want, and fails a world whose queue runs away
/// (`Kind::Runaway`) instead of running on.
#[test]
fn a_folder_nobody_shares_is_asked_for_once_per_round() {
    passes(17156201201390);
}
