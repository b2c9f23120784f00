//! Connection limits of a node: per IP address and in total, `Node::accept` refuses what is
//! over the limit (the runtime drops the socket) and counts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use p2pshare_proto::{Config, Identity, Input, NetOp, Node, Output};

#[path = "support/peer.rs"]
mod peer;
use peer::TestPeer;

/// Calls `f` on the node and keeps the outputs it leaves in `out`, in order: the node wants its
/// outputs drained after every call, and these tests read them a few calls later.
fn call(node: &mut Node, out: &mut Vec<Output>, f: impl FnOnce(&mut Node)) {
    f(node);
    while let Some(o) = node.poll_output() {
        out.push(o);
    }
}

/// The `seq`-th announcement of instance 1 of peer `i`'s key (its secret derived from `i`),
/// at `port`, signed.
fn announced(i: u64, seq: u64, port: u16) -> Vec<u8> {
    use p2pshare_proto::wire::signed::{Announcement, Mark, encode};
    let key = Identity::from_secret_bytes(&p2pshare_proto::sha256(&i.to_be_bytes()));
    let a = Announcement {
        mark: Mark { instance: 1, seq },
        port,
        revision: 1,
        bye: false,
    };
    encode(&a, &key)
}

fn closes(node: &mut Node) -> usize {
    let mut n = 0;
    while let Some(o) = node.poll_output() {
        if matches!(o, Output::Net(NetOp::Close { .. })) {
            n += 1;
        }
    }
    n
}

#[test]
fn one_address_cannot_take_every_connection() {
    let now = Instant::now();
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    let per_ip = cfg.max_connections_per_ip;
    let mut node = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], now).unwrap();
    let hostile: SocketAddr = "10.0.0.66:40000".parse().unwrap();
    let mut refused = 0;
    for _ in 0..(per_ip + 50) {
        match node.accept(now, hostile).conn() {
            Some(conn) => assert!(conn.is_inbound()),
            None => refused += 1,
        }
        assert_eq!(
            closes(&mut node),
            0,
            "a refused connection is never the node's to close"
        );
    }
    assert_eq!(refused, 50);
    assert_eq!(node.connections(), per_ip);
    assert_eq!(node.stats().connections_refused, 50);
    // Another host still gets in.
    let friend: SocketAddr = "10.0.0.7:40000".parse().unwrap();
    assert!(node.accept(now, friend).conn().is_some());
    assert_eq!(node.connections(), per_ip + 1);
}

/// Hundreds of announced peers (each from its own address) do not take every slot: outbound
/// connections stop at `max_outbound`, the rest are put off and counted, and inbound slots stay.
#[test]
fn announced_peers_cannot_use_up_the_inbound_slots() {
    let now = Instant::now();
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    let max_outbound = cfg.max_outbound;
    let mut node = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], now).unwrap();
    let mut connects = 0;
    for i in 0..(max_outbound + 100) {
        let from = SocketAddr::from(([10, 1, (i / 200) as u8, (i % 200) as u8 + 1], 9999));
        node.handle_input(
            now,
            Input::Datagram {
                from,
                data: announced(i as u64 + 2, 0, 10000),
            },
        );
        while let Some(o) = node.poll_output() {
            if matches!(o, Output::Net(NetOp::Connect { .. })) {
                connects += 1;
            }
        }
    }
    assert_eq!(connects, max_outbound);
    assert_eq!(node.stats().connects_deferred, 100);
    assert!(
        node.accept(now, "10.9.9.9:40000".parse().unwrap())
            .conn()
            .is_some()
    );
}

/// One address announcing many ids that point at a port that refuses (or speaks another
/// protocol) gets at most `MAX_DIALS_PER_IP` connection attempts at a time; each id is
/// forgotten after `MAX_DIAL_FAILURES` failures in a row, and its address is ignored for a
/// while: a reflection, not a storm.
#[test]
fn announced_ids_that_refuse_get_a_trickle_of_attempts_and_are_forgotten() {
    use p2pshare_proto::budget::{MAX_DIAL_FAILURES, MAX_DIALS_PER_IP, UNREACHABLE_FOR};
    use std::time::Duration;
    let t0 = Instant::now();
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    let mut node = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], t0).unwrap();
    let ids = 32;
    let mut out = Vec::new();
    let mut round = 0;
    let mut announce = |node: &mut Node, out: &mut Vec<Output>, now: Instant| {
        round += 1;
        for i in 0..ids {
            let from: SocketAddr = "10.0.0.66:9999".parse().unwrap();
            let data = announced(i as u64 + 2, round, 22 + i as u16);
            call(node, out, |n| {
                n.handle_input(now, Input::Datagram { from, data })
            });
        }
    };
    announce(&mut node, &mut out, t0);
    let mut attempts = 0;
    let mut now = t0;
    let end = t0 + Duration::from_secs(120);
    while now < end {
        let mut dialing = Vec::new();
        for o in out.drain(..) {
            if let Output::Net(NetOp::Connect { conn, .. }) = o {
                dialing.push(conn);
            }
        }
        assert!(
            dialing.len() <= MAX_DIALS_PER_IP,
            "{} at once",
            dialing.len()
        );
        attempts += dialing.len();
        for conn in dialing {
            node.handle_input(now, Input::ConnectFailed { conn });
            while node.poll_output().is_some() {}
        }
        // The attacker keeps announcing.
        if (now - t0).as_secs().is_multiple_of(5) {
            announce(&mut node, &mut out, now);
        }
        now = node
            .poll_timeout()
            .unwrap()
            .min(now + Duration::from_secs(1));
        call(&mut node, &mut out, |n| n.handle_timeout(now));
    }
    assert!(attempts >= ids, "each id was tried: {attempts}");
    assert!(node.peers().is_empty(), "every unreachable id is forgotten");
    assert!(
        attempts <= ids * MAX_DIAL_FAILURES as usize,
        "{attempts} attempts in {:?} (the address is ignored for {UNREACHABLE_FOR:?})",
        end - t0
    );
    assert!(node.stats().peers_unreachable > 0);
}

/// A reader that asks only for what we do not share and never reads: its refusals spend its
/// send budget like answers, so it is paused, and closed at its read deadline (which bytes
/// that keep coming cannot push away).
#[test]
fn a_reader_that_asks_for_nothing_we_have_is_paused_and_closed() {
    use p2pshare_proto::budget::{CONN_SEND_BUDGET, read_deadline};
    use p2pshare_proto::wire::frame::{Message, encode_message};
    use std::time::Duration;
    let t0 = Instant::now();
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to.clear();
    let stall = cfg.timeouts.stall;
    let mut node = Node::new(cfg, Identity::from_secret_bytes(&[1; 32]), [1; 32], t0).unwrap();
    let mut out = Vec::new();
    let mut conn = None;
    call(&mut node, &mut out, |n| {
        conn = n.accept(t0, "10.0.0.66:40000".parse().unwrap()).conn()
    });
    let conn = conn.unwrap();
    let mut reader = TestPeer::dialer([6; 32], None);
    let (_, others) = reader.handshake(&mut node, t0, conn, 1);
    out.extend(others);
    let reader_id = reader.id;
    // The node's own link to that peer opens and says hello (it stays up; it is not what
    // this test is about).
    let outputs = |node: &mut Node, out: &mut Vec<Output>, now: Instant| -> (bool, bool, usize) {
        let (mut paused, mut closed, mut sent) = (false, false, 0);
        let mut dial = Vec::new();
        for o in out.drain(..) {
            match o {
                Output::Net(NetOp::Pause { conn: c }) if c == conn => paused = true,
                Output::Net(NetOp::Close { conn: c }) if c == conn => closed = true,
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => sent += data.len(),
                Output::Net(NetOp::Connect { conn: c, .. }) => dial.push(c),
                _ => {}
            }
        }
        for c in dial {
            node.handle_input(now, Input::Connected { conn: c });
            TestPeer::acceptor([6; 32]).handshake(node, now, c, 1);
            while node.poll_output().is_some() {}
        }
        (paused, closed, sent)
    };
    // (What it sent during the handshake, its hello included, is owed too.)
    let hello_sent = reader.received_bytes + outputs(&mut node, &mut out, t0).2;
    let burst_of = |reader: &mut TestPeer, burst: &[u8]| reader.seal(burst);
    let mut burst = Vec::new();
    for i in 0..1000u32 {
        burst.extend(encode_message(&Message::ChunkRequest {
            content: p2pshare_proto::ContentId([9; 32]),
            index: i,
        }));
    }
    let (mut paused, mut sent) = (false, hello_sent);
    let mut now = t0;
    while !paused {
        assert!(
            sent < 4 * CONN_SEND_BUDGET,
            "never paused after {sent} bytes"
        );
        call(&mut node, &mut out, |n| {
            n.handle_received(now, conn, &burst_of(&mut reader, &burst))
        });
        let (p, _, n) = outputs(&mut node, &mut out, now);
        paused = p;
        sent += n;
        now += Duration::from_millis(10);
    }
    assert!(sent >= CONN_SEND_BUDGET, "paused at {sent} bytes");
    // It never reads: closed by its deadline; it keeps announcing, so it is not forgotten.
    let deadline = t0 + read_deadline(stall, CONN_SEND_BUDGET) + Duration::from_secs(1);
    let mut closed = false;
    let mut next_announce = now;
    while !closed && now <= deadline {
        if now >= next_announce {
            next_announce = now + Duration::from_secs(4);
            let a = p2pshare_proto::wire::Announce {
                peer: reader_id,
                instance: 1,
                port: 10000,
                revision: 0,
                bye: false,
            };
            let from = "10.0.0.66:9999".parse().unwrap();
            call(&mut node, &mut out, |n| {
                n.handle_input(
                    now,
                    Input::Datagram {
                        from,
                        data: a.encode(),
                    },
                )
            });
        }
        now = node
            .poll_timeout()
            .unwrap()
            .min(deadline)
            .min(next_announce);
        call(&mut node, &mut out, |n| n.handle_timeout(now));
        closed = outputs(&mut node, &mut out, now).1;
    }
    assert!(closed, "still open at {:?}", now - t0);
    assert_eq!(node.stats().closed_not_reading, 1, "{:?}", node.stats());
}
