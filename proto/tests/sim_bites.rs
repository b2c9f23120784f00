//! The checks bite: each test plants one bug in every node (proto's `bugs` feature, enabled
//! for proto's own tests by its self-dev-dependency) and asserts that a bounded sweep finds a
//! seed on which the invariant guarding against it fails.
mod sim;

use p2pshare_proto::Bugs;
use sim::{Kind, sweep};

/// The most seeds a planted bug may survive.
const BOUND: u64 = 100;

fn finds(bugs: Bugs, expected: &[Kind]) {
    let s = sweep(0..BOUND, bugs);
    let f = s
        .first_failure()
        .unwrap_or_else(|| panic!("{bugs:?} survived {BOUND} seeds"));
    eprintln!("{bugs:?} caught after {} seeds: {f}", s.runs);
    assert!(
        expected.contains(&f.kind),
        "{bugs:?} caught, but by {:?} instead of {expected:?}: {f}",
        f.kind
    );
}

#[test]
fn skipping_the_chunk_hash_writes_a_corrupt_chunk() {
    let bugs = Bugs {
        skip_chunk_hash: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::CorruptWrite]);
}

#[test]
fn never_expiring_keeps_a_silent_peer_listed() {
    let bugs = Bugs {
        never_expire: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::PeerNotExpired]);
}

#[test]
fn finishing_early_asks_to_finish_an_incomplete_file() {
    let bugs = Bugs {
        finish_early: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::EarlyFinish]);
}

#[test]
fn keeping_chunks_of_dead_peers_stalls_the_download() {
    let bugs = Bugs {
        keep_chunks_of_dead_peers: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Stuck, Kind::Liveness]);
}

#[test]
fn asking_one_holder_for_the_manifest_starves_a_download_an_honest_holder_could_serve() {
    let bugs = Bugs {
        one_manifest_source: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Liveness]);
}

#[test]
fn taking_answers_on_any_connection_lets_an_impersonator_frame_an_honest_holder() {
    let bugs = Bugs {
        answers_from_any_conn: true,
        ..Bugs::default()
    };
    // The junk is caught as such (a holder rejected or banned for what it never sent), or, when
    // the ban ended the download at once, by its consequence.
    finds(bugs, &[Kind::Framed, Kind::Liveness]);
}

#[test]
fn never_pausing_keeps_reading_a_connection_whose_queues_are_full() {
    let bugs = Bugs {
        never_pause: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::NotPaused]);
}

#[test]
fn no_read_deadline_keeps_a_connection_whose_reader_never_reads() {
    let bugs = Bugs {
        no_read_deadline: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::NotReadingKept]);
}

#[test]
fn no_cap_per_address_lets_a_flooder_fill_the_peer_table() {
    let bugs = Bugs {
        no_table_cap_per_ip: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::OverBudget]);
}

#[test]
fn no_request_deadline_lets_a_drip_feeder_hold_a_download_forever() {
    let bugs = Bugs {
        no_request_deadline: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Stuck, Kind::Liveness]);
}

#[test]
fn serving_an_unverified_chunk_of_a_download_is_seen() {
    let bugs = Bugs {
        serve_unverified: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::UnverifiedServe]);
}

#[test]
fn never_announcing_have_leaves_verified_chunks_unannounced() {
    let bugs = Bugs {
        never_have: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::NodeInvariant]);
}

#[test]
fn moving_unmet_peers_to_any_claim_lets_a_spoofer_evict_them() {
    let bugs = Bugs {
        claims_move_unmet_peers: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Evicted]);
}

#[test]
fn refusals_that_cost_nothing_let_a_claim_liar_be_asked_at_every_round_trip() {
    let bugs = Bugs {
        no_claim_strike: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Unpunished]);
}
