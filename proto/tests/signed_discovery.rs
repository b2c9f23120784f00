//! Signed discovery through a node: what a datagram must be to be believed, and what each kind
//! of bad one costs (counted, never believed): a forged or altered one, a replay, an old
//! instance's, a flood of bad signatures from one address next to an honest peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use p2pshare_proto::{Config, Event, Identity, Input, Node, Output, PeerId};

fn node(now: Instant) -> Node {
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], now).unwrap()
}

fn datagram(who: &Identity, instance: u64, seq: u64, bye: bool) -> Vec<u8> {
    let a = Announcement {
        mark: Mark { instance, seq },
        port: 10000,
        revision: 1,
        bye,
    };
    signed::encode(&a, who)
}

/// Feeds a datagram from `from`; returns the peers found and lost by it.
fn feed(n: &mut Node, now: Instant, from: &str, data: Vec<u8>) -> (Vec<PeerId>, Vec<PeerId>) {
    let from: SocketAddr = from.parse().unwrap();
    n.handle_input(now, Input::Datagram { from, data });
    let (mut found, mut lost) = (Vec::new(), Vec::new());
    while let Some(o) = n.poll_output() {
        match o {
            Output::Event(Event::PeerFound { peer, .. }) => found.push(peer),
            Output::Event(Event::PeerLost { peer, .. }) => lost.push(peer),
            _ => {}
        }
    }
    (found, lost)
}

#[test]
fn only_newer_genuine_datagrams_are_believed() {
    let t0 = Instant::now();
    let mut n = node(t0);
    while n.poll_output().is_some() {}
    let alice = Identity::from_secret_bytes(&[2; 32]);
    let at = "10.0.0.2:9999";
    let first = datagram(&alice, 100, 0, false);
    assert_eq!(feed(&mut n, t0, at, first.clone()).0, [alice.key()]);
    // The same datagram again (a duplicate, or a replay): dropped before its signature is
    // checked, whoever sends it, its own address included.
    let t1 = t0 + Duration::from_secs(1);
    let seen = n.peers()[0].last_seen;
    feed(&mut n, t1, at, first.clone());
    feed(&mut n, t1, "10.0.0.66:9999", first.clone());
    assert_eq!(n.stats().announcements_stale, 2);
    assert_eq!(n.peers()[0].last_seen, seen, "a replay refreshes nothing");
    // A later one is believed; an earlier one (reordered) is not.
    feed(&mut n, t1, at, datagram(&alice, 100, 2, false));
    assert_eq!(n.peers()[0].last_seen, t1);
    feed(&mut n, t1, at, datagram(&alice, 100, 1, false));
    assert_eq!(n.stats().announcements_stale, 3);
    // Altered: a bit flipped anywhere (here in the key it names) fails the signature.
    let mut altered = datagram(&alice, 100, 3, false);
    altered[20] ^= 1;
    feed(&mut n, t1, at, altered);
    assert_eq!(n.stats().datagrams_forged, 1);
    // Another key cannot say goodbye for it: the body names alice, the signature is eve's.
    let eve = Identity::from_secret_bytes(&[3; 32]);
    let mut forged = datagram(&alice, 100, 4, true);
    let theirs = datagram(&eve, 100, 4, true);
    let sig = forged.len() - 64;
    forged[sig..].copy_from_slice(&theirs[theirs.len() - 64..]);
    assert_eq!(feed(&mut n, t1, at, forged).1, Vec::<PeerId>::new());
    assert_eq!(n.stats().datagrams_forged, 2);
    assert_eq!(n.peers().len(), 1);
    // A restart is a later instance: believed; the old instance's goodbye, replayed after it,
    // changes nothing.
    let old_bye = datagram(&alice, 100, 9, true);
    feed(&mut n, t1, at, datagram(&alice, 200, 0, false));
    assert_eq!(feed(&mut n, t1, at, old_bye).1, Vec::<PeerId>::new());
    assert_eq!(n.peers().len(), 1);
    // Its own goodbye is believed.
    assert_eq!(
        feed(&mut n, t1, at, datagram(&alice, 200, 1, true)).1,
        [alice.key()]
    );
    // An unsigned datagram of the previous version is an old peer's: counted, ignored.
    let old = p2pshare_proto::wire::Announce {
        peer: eve.key(),
        instance: 1,
        port: 10000,
        revision: 0,
        bye: false,
    }
    .encode();
    feed(&mut n, t1, at, old);
    assert_eq!(n.stats().datagrams_unknown_version, 1);
    assert!(n.peers().is_empty());
}

#[test]
fn a_flood_of_bad_signatures_spends_only_its_own_address_budget() {
    let t0 = Instant::now();
    let mut n = node(t0);
    while n.poll_output().is_some() {}
    let bob = Identity::from_secret_bytes(&[4; 32]);
    let mut now = t0;
    let mut found = Vec::new();
    for k in 0..50u64 {
        // A thousand forgeries a round from one address, each of a fresh mark (so not
        // dropped as stale), then the honest peer's announcement.
        for j in 0..1000u64 {
            let mut d = datagram(&bob, 1, k * 1000 + j + 1_000_000, false);
            let last = d.len() - 1;
            d[last] ^= 0x40;
            feed(&mut n, now, "10.0.0.66:9999", d);
        }
        found.extend(feed(&mut n, now, "10.0.0.4:9999", datagram(&bob, 1, k, false)).0);
        now += Duration::from_millis(100);
    }
    let s = n.stats();
    assert_eq!(
        found,
        [bob.key()],
        "the honest peer was heard from its first datagram"
    );
    assert_eq!(
        n.peers()[0].mark,
        Some(Mark {
            instance: 1,
            seq: 49
        })
    );
    // Its burst, then its rate (20 a second) over the 4.9 s: no more were checked.
    assert!(s.datagrams_forged <= 40 + 20 * 5, "{s:?}");
    assert!(s.datagrams_forged >= 40, "{s:?}");
    assert_eq!(s.datagrams_forged + s.datagrams_unverified, 50_000, "{s:?}");
}

#[path = "support/peer.rs"]
mod peer;

/// A dial to a peer we know by its key, answered by a host holding another key (an impostor
/// at its address, or another peer there now), ends after the impostor's message 2: closed,
/// counted, and our own message 3, which names us, never sent.
#[test]
fn a_dial_answered_under_another_key_is_closed_before_we_say_who_we_are() {
    let t0 = Instant::now();
    let mut n = node(t0);
    while n.poll_output().is_some() {}
    let alice = Identity::from_secret_bytes(&[2; 32]);
    let from: SocketAddr = "10.0.0.2:9999".parse().unwrap();
    n.handle_input(
        t0,
        Input::Datagram {
            from,
            data: datagram(&alice, 1, 0, false),
        },
    );
    let mut dial = None;
    while let Some(o) = n.poll_output() {
        if let Output::Net(p2pshare_proto::NetOp::Connect { conn, .. }) = o {
            dial = Some(conn);
        }
    }
    let conn = dial.expect("the node dials the peer it found (for its catalog)");
    n.handle_input(t0, Input::Connected { conn });
    let mut impostor = peer::TestPeer::acceptor([9; 32]);
    let (_, others) = impostor.handshake(&mut n, t0, conn, 1);
    assert!(
        others.iter().any(
            |o| matches!(o, Output::Net(p2pshare_proto::NetOp::Close { conn: c }) if *c == conn)
        ),
        "{others:?}"
    );
    assert!(!impostor.is_open(), "the impostor never got our message 3");
    assert_eq!(n.stats().handshake_wrong_peer, 1);
}
