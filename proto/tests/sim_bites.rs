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
    // Since keys, an impersonator's hello naming the holder is refused (its handshake proved
    // another key): the rule that answers count only on our own link is the second line, and
    // bites only with the first one down too.
    let bugs = Bugs {
        answers_from_any_conn: true,
        skip_identity_check: true,
        ..Bugs::default()
    };
    // The session opened to the impersonator under the holder's id is caught first (the
    // identity check is down); otherwise the junk is caught as such (a holder rejected or
    // banned for what it never sent), or, when the ban ended the download at once, by its
    // consequence. With the identity check up, this bug alone survives: no impersonator gets
    // a session under another's id to send answers on.
    finds(bugs, &[Kind::Impersonated, Kind::Framed, Kind::Liveness]);
}

#[test]
fn skipping_the_identity_check_opens_a_session_to_an_impersonator() {
    let bugs = Bugs {
        skip_identity_check: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Impersonated]);
}

#[test]
fn believing_a_stale_mark_lets_a_replay_turn_back_a_peer() {
    let bugs = Bugs {
        accept_stale_mark: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Evicted]);
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
fn refusals_that_cost_nothing_let_a_claim_liar_be_asked_at_every_round_trip() {
    let bugs = Bugs {
        no_claim_strike: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Unpunished]);
}

#[test]
fn skipping_a_known_peers_probe_while_it_is_listed_leaves_it_not_listing_us() {
    let bugs = Bugs {
        probe_only_unlisted: true,
        ..Bugs::default()
    };
    finds(bugs, &[Kind::Unlisted]);
}
