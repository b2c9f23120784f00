//! Address records (issue 30) between two DHT nodes of ours on a local mainline testnet (all on
//! 127.0.0.1; nothing reaches the public DHT): a record put from a clock that was ahead is
//! outgrown, the key alone finds the newest record, and a record signed by the key but not in
//! our encoding is reported, never dialled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mainline::{Dht, MutableItem, SigningKey, Testnet};
use p2pshare_host::addr_record;
use p2pshare_host::dht::{DhtConfig, DhtNode, Report, our_addrs};
use p2pshare_proto::Identity;

fn config(testnet: &Testnet) -> DhtConfig {
    DhtConfig {
        bootstrap: testnet
            .bootstrap
            .iter()
            .map(|b| b.parse::<SocketAddrV4>().unwrap())
            .inspect(|b| assert!(b.ip().is_loopback(), "a testnet node off loopback: {b}"))
            .collect(),
    }
}

/// The first report of `node` that `pick` takes, within `within`.
fn wait_for<T>(node: &mut DhtNode, within: Duration, pick: impl Fn(&Report) -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        while let Some(r) = node.try_report() {
            if let Some(t) = pick(&r) {
                return t;
            }
            seen.push(r);
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Puts `value` as `id`'s record with sequence number `seq`, from a DHT node of the test's own.
fn put(dht: &Dht, id: &Identity, value: &[u8], seq: i64) {
    let signer = SigningKey::from_bytes(&id.secret_bytes());
    let item = MutableItem::new(signer, value, seq, Some(addr_record::SALT));
    futures_lite::future::block_on(dht.clone().as_async().put_mutable(item, None)).unwrap();
}

#[test]
fn a_record_is_found_by_the_key_alone_newest_first_and_a_foreign_one_is_reported() {
    let testnet = Testnet::builder(10)
        .bind_address(Ipv4Addr::LOCALHOST)
        .build()
        .unwrap();
    let cfg = config(&testnet);
    let test_dht = Dht::builder()
        .bootstrap(&testnet.bootstrap)
        .bind_address(Ipv4Addr::LOCALHOST)
        .build()
        .unwrap();
    let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
    let unix = p2pshare_host::driver::unix_now() as i64;

    // A record of A's from a clock that was a day ahead (since set back).
    let a = Identity::from_secret_bytes(&[21; 32]);
    let ahead = unix + 86_400;
    put(
        &test_dht,
        &a,
        &addr_record::encode(&["127.0.0.1:1".parse().unwrap()]),
        ahead,
    );
    let mut node_a = DhtNode::start(&cfg, 10000, &a, wake.clone()).unwrap();
    // Its first put is refused as not the newest; it reads that one back and goes above it.
    let seq = wait_for(&mut node_a, Duration::from_secs(30), |r| match r {
        Report::Published { seq, .. } => Some(*seq),
        _ => None,
    });
    assert!(seq > ahead, "{seq} is not above {ahead}");
    assert_eq!(node_a.status().record.unwrap().seq, seq);

    // B finds A by its key alone: the newest record, A's addresses now.
    let b = Identity::from_secret_bytes(&[22; 32]);
    let mut node_b = DhtNode::start(&cfg, 10001, &b, wake.clone()).unwrap();
    node_b.resolve(a.key(), Instant::now()).unwrap();
    let (got_seq, addrs) = wait_for(&mut node_b, Duration::from_secs(20), |r| match r {
        Report::PeerAddrs {
            key,
            seq: got,
            addrs,
            ..
        } if *key == a.key() && *got == seq => Some((*got, addrs.clone())),
        Report::ResolveDone { key, .. } if *key == a.key() => {
            panic!("A's resolve ended without its newest record: {r:?}")
        }
        _ => None,
    });
    assert_eq!(got_seq, seq);
    assert_eq!(addrs, our_addrs(10000, false));

    // C's record is signed by C but is not ours (another version): reported, no address.
    let c = Identity::from_secret_bytes(&[23; 32]);
    put(&test_dht, &c, b"\x07not ours", unix);
    node_b.resolve(c.key(), Instant::now()).unwrap();
    let error = wait_for(&mut node_b, Duration::from_secs(20), |r| match r {
        Report::BadRecord { key, error } if *key == c.key() => Some(*error),
        Report::PeerAddrs { key, .. } if *key == c.key() => panic!("dialled: {r:?}"),
        _ => None,
    });
    assert_eq!(error, addr_record::RecordError::Version(7));
    assert_eq!(node_b.status().resolves, 2);
}
