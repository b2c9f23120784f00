//! Connection limits of a node: per IP address and in total, `Node::accept` refuses what is
//! over the limit (the runtime drops the socket) and counts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use p2pshare_proto::{Config, NetOp, Node, Output, PeerId};

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
    let mut cfg = Config::new(PeerId([1; 16]), 1, 1, 10000);
    cfg.announce_to.clear();
    let per_ip = cfg.max_connections_per_ip;
    let mut node = Node::new(cfg, now).unwrap();
    let hostile: SocketAddr = "10.0.0.66:40000".parse().unwrap();
    let mut refused = 0;
    for _ in 0..(per_ip + 50) {
        match node.accept(now, hostile) {
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
    assert!(node.accept(now, friend).is_some());
    assert_eq!(node.connections(), per_ip + 1);
}
