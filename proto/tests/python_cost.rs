//! What Python peers' announcements cost a node (issue 27, item 2): a benchmark of a listing
//! under a flood of Python peers. Ignored by default; run it in release:
//!
//!     cargo test --release -p p2pshare-proto --test python_cost -- --ignored --nocapture
//!
//! Its flood: 16 addresses, 16 Python peers each (one per announced port, as many as an
//! address may hold), each announcing 600 files of one content under names all different
//! (issue 27 measured one listing at 42.6 s under such a flood).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; the timings are what this prints.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use p2pshare_proto::python::wire::{LegacyAnnounce, LegacyFile};
use p2pshare_proto::{Config, Identity, Input, Node};

fn node(t0: Instant) -> Node {
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to = vec!["10.99.0.255:9999".parse().unwrap()];
    Node::new(cfg, Identity::from_secret_bytes(&[7; 32]), [7; 32], t0).unwrap()
}

fn drain(n: &mut Node) {
    while n.poll_output().is_some() {}
}

fn datagram(port: u16, files: Vec<LegacyFile>) -> Vec<u8> {
    LegacyAnnounce {
        port,
        files,
        rejected: 0,
        origin: None,
    }
    .encode()
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, in release"]
fn a_listing_under_a_flood_of_python_peers() {
    let t0 = Instant::now();
    let mut n = node(t0);
    let hash = p2pshare_proto::sha256(b"the flood");
    let mut datagrams = Vec::new();
    for ip in 0..16u8 {
        for port in 0..16u16 {
            let files = (0..600)
                .map(|k| LegacyFile {
                    name: format!("p{ip:02}{port:02}-{k:04}.bin"),
                    total_chunks: 1000,
                    file_hash: hash,
                })
                .collect();
            let from = SocketAddr::from(([10, 99, 0, 100 + ip], 9999));
            datagrams.push((from, datagram(20000 + port, files)));
        }
    }
    let start = Instant::now();
    for (from, data) in &datagrams {
        n.handle_input(
            t0,
            Input::Datagram {
                from: *from,
                data: data.clone(),
            },
        );
        drain(&mut n);
    }
    let per = start.elapsed().as_secs_f64() / datagrams.len() as f64;
    let start = Instant::now();
    let files = n.remote_files();
    let listing = start.elapsed().as_secs_f64();
    let names: usize = files.iter().map(|f| f.names.len()).sum();
    let s = n.stats();
    println!(
        "PYTHON | {} datagrams of 600 names from 16 addresses: {:.2} ms each; a listing: \
         {:.1} ms ({} files, {names} names); python_files_over_budget={}",
        datagrams.len(),
        per * 1e3,
        listing * 1e3,
        files.len(),
        s.python_files_over_budget
    );
    assert!(names > 0);
}
