//! Discovery over both families through a node: an IPv6 link-local peer keeps its scope (the
//! interface it was heard on) in the address it is listed and dialled at; one key heard over
//! IPv4 and IPv6 is one peer; an IPv4 peer reported as an IPv4-mapped address is that IPv4
//! address; the Python protocol stays IPv4.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use p2pshare_proto::{Config, Event, Identity, Input, NetOp, Node, Output, PeerId};

fn node(now: Instant, announce_to: &[&str]) -> Node {
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to = announce_to.iter().map(|a| a.parse().unwrap()).collect();
    Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], now).unwrap()
}

fn datagram(who: &Identity, seq: u64) -> Vec<u8> {
    let a = Announcement {
        mark: Mark { instance: 7, seq },
        port: 10001,
        revision: 1,
        bye: false,
    };
    signed::encode(&a, who)
}

/// What one datagram from `from` made the node do: peers found, connections dialled.
fn feed(
    n: &mut Node,
    now: Instant,
    from: &str,
    data: Vec<u8>,
) -> (Vec<(PeerId, SocketAddr)>, Vec<SocketAddr>) {
    let from: SocketAddr = from.parse().unwrap();
    n.handle_input(now, Input::Datagram { from, data });
    let (mut found, mut dials) = (Vec::new(), Vec::new());
    while let Some(o) = n.poll_output() {
        match o {
            Output::Event(Event::PeerFound { peer, addr }) => found.push((peer, addr)),
            Output::Net(NetOp::Connect { addr, .. }) => dials.push(addr),
            _ => {}
        }
    }
    (found, dials)
}

fn drain(n: &mut Node) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut sent = Vec::new();
    while let Some(o) = n.poll_output() {
        if let Output::Net(NetOp::Datagram { to, data }) = o {
            sent.push((to, data));
        }
    }
    sent
}

#[test]
fn a_link_local_peer_is_listed_and_dialled_on_the_interface_it_was_heard_on() {
    let t0 = Instant::now();
    let mut n = node(t0, &[]);
    drain(&mut n);
    let alice = Identity::from_secret_bytes(&[2; 32]);
    let (found, dials) = feed(&mut n, t0, "[fe80::2%3]:9999", datagram(&alice, 0));
    let at: SocketAddr = "[fe80::2%3]:10001".parse().unwrap();
    assert_eq!(found, [(alice.key(), at)]);
    assert_eq!(
        dials,
        [at],
        "the catalog is fetched over a dial with the scope"
    );
    assert_eq!(n.peers()[0].addr.to_string(), "[fe80::2%3]:10001");
}

#[test]
fn one_key_heard_over_both_families_is_one_peer() {
    let t0 = Instant::now();
    let mut n = node(t0, &[]);
    drain(&mut n);
    let bob = Identity::from_secret_bytes(&[4; 32]);
    // Each round the peer sends one signed datagram to every destination: broadcast first,
    // then multicast on each interface; the copies carry one mark.
    for round in 0..3u64 {
        let now = t0 + Duration::from_secs(5 * round);
        feed(&mut n, now, "10.0.0.4:9999", datagram(&bob, round));
        feed(&mut n, now, "[fe80::4%2]:9999", datagram(&bob, round));
        assert_eq!(n.peers().len(), 1);
        assert_eq!(n.peers()[0].addr, "10.0.0.4:10001".parse().unwrap());
        assert_eq!(n.peers()[0].last_seen, now);
    }
    // The second copy of each round changed nothing (its mark was not newer).
    assert_eq!(n.stats().announcements_stale, 3);
}

#[test]
fn a_datagram_from_no_address_lists_nobody() {
    let t0 = Instant::now();
    let mut n = node(t0, &[]);
    drain(&mut n);
    let dave = Identity::from_secret_bytes(&[6; 32]);
    for (seq, from) in ["0.0.0.0:9999", "[::]:9999", "[::ffff:0.0.0.0]:9999"]
        .into_iter()
        .enumerate()
    {
        let (found, dials) = feed(&mut n, t0, from, datagram(&dave, seq as u64));
        assert!(found.is_empty() && dials.is_empty(), "{from}");
    }
    assert_eq!(n.stats().datagrams_unanswerable, 3);
    assert!(n.peers().is_empty());
}

#[test]
fn an_ipv4_mapped_source_is_its_ipv4_address() {
    let t0 = Instant::now();
    let mut n = node(t0, &[]);
    drain(&mut n);
    let carol = Identity::from_secret_bytes(&[5; 32]);
    let (found, _) = feed(&mut n, t0, "[::ffff:10.0.0.5]:9999", datagram(&carol, 0));
    assert_eq!(found, [(carol.key(), "10.0.0.5:10001".parse().unwrap())]);
    // The same host's next datagram over IPv4 is the same address: no rival, no claim.
    feed(&mut n, t0, "10.0.0.5:9999", datagram(&carol, 1));
    assert_eq!(n.peers()[0].mark.unwrap().seq, 1);
    assert_eq!(n.stats().claims_elsewhere, 0);
}

#[test]
fn announcements_go_to_both_families_and_json_only_to_ipv4() {
    let t0 = Instant::now();
    let mut n = node(t0, &["10.0.0.255:9999", "[ff12::7032:7073%2]:9999"]);
    drain(&mut n);
    n.handle_timeout(t0);
    let sent = drain(&mut n);
    let to: Vec<String> = sent.iter().map(|(to, _)| to.to_string()).collect();
    assert_eq!(to, ["10.0.0.255:9999", "[ff12::7032:7073%2]:9999"]);
    assert_eq!(
        sent[0].1, sent[1].1,
        "one signed datagram, one mark, both families"
    );
    // A JSON announcement is a Python peer's over IPv4 only: over IPv6 it is foreign.
    let from: SocketAddr = "[fe80::9%2]:9999".parse().unwrap();
    let data = PY.as_bytes().to_vec();
    n.handle_input(t0, Input::Datagram { from, data });
    drain(&mut n);
    assert_eq!(n.stats().datagrams_foreign, 1);
    assert!(!n.python_around());
    // Over IPv4 it is a Python peer, and from then on our JSON goes out too, to IPv4 only.
    let from: SocketAddr = "10.0.0.9:9999".parse().unwrap();
    let data = PY.as_bytes().to_vec();
    n.handle_input(t0, Input::Datagram { from, data });
    drain(&mut n);
    assert!(n.python_around());
    let json: Vec<SocketAddr> = loop {
        let now = n.poll_timeout().unwrap();
        n.handle_timeout(now);
        let sent = drain(&mut n);
        if !sent.is_empty() {
            break sent
                .iter()
                .filter(|(_, d)| d.first() == Some(&b'{'))
                .map(|(to, _)| *to)
                .collect();
        }
    };
    assert_eq!(json, ["10.0.0.255:9999".parse().unwrap()]);
}

const PY: &str = r#"{"type": "P2P_PEER_DISCOVERY", "port": 10001, "files": {"a.txt": {"total_chunks": 3, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}"#;
