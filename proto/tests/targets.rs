//! Addresses a node dials without having heard them (`Command::AddPeer`, issue 29): a known
//! peer is probed only while no connection with its key is open, first after `PROBE_DELAY`, again with a
//! backoff; a probe answered by another key is counted and lists nobody; a link's or a static
//! peer is dialled at once; and what no one may ask (our own key, a port 0, a known peer
//! without a key, a found-by that only discovery sets) is counted and ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare_proto::wire::frame::{Frame, Message};
use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use p2pshare_proto::{
    Command, Config, ConnId, Found, Identity, Input, NetOp, Node, Output, PeerId, Reach,
};

#[path = "support/peer.rs"]
mod peer;
use peer::TestPeer;

const INTERVAL: Duration = Duration::from_secs(5);

fn identity(secret: u8) -> Identity {
    Identity::from_secret_bytes(&[secret; 32])
}

fn key(secret: u8) -> PeerId {
    identity(secret).key()
}

fn node(now: Instant) -> Node {
    let mut cfg = Config::new(1, 1, 10000);
    cfg.announce_to = vec!["10.0.0.255:9999".parse().unwrap()];
    cfg.interval = INTERVAL;
    Node::new(cfg, identity(1), [1; 32], now).unwrap()
}

fn add(n: &mut Node, now: Instant, addr: &str, key: Option<PeerId>, found: Found) {
    let addr = addr.parse().unwrap();
    drain(n);
    n.handle_input(now, Input::Command(Command::AddPeer { addr, key, found }));
}

fn drain(n: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

/// The signed announcement of the holder of `secret` (instance 7, port 10000) with sequence
/// number `seq` and catalog `revision`.
fn announcement(secret: u8, seq: u64, revision: u64) -> Vec<u8> {
    let a = Announcement {
        mark: Mark { instance: 7, seq },
        port: 10000,
        revision,
        bye: false,
    };
    signed::encode(&a, &identity(secret))
}

/// Our catalog changes at `at`: a hello with the new revision goes on `conn` (asserted).
fn assert_revision_told(n: &mut Node, at: Instant, conn: ConnId, them: &mut TestPeer) {
    let mut b = p2pshare_proto::ManifestBuilder::new(p2pshare_proto::manifest::MIN_CHUNK_SIZE);
    b.update(b"new file");
    let files = vec![p2pshare_proto::LocalFile {
        name: "new.bin".into(),
        manifest: b.finish().unwrap(),
    }];
    drain(n);
    n.handle_input(at, Input::CatalogChanged { files });
    let told: Vec<Frame> = sent_to(n, conn, them);
    assert!(
        told.iter().any(|f| matches!(
            f,
            Frame::Message(Message::Hello { revision, .. }) if *revision > 0
        )),
        "{told:?}"
    );
}

/// Runs the node's timers up to `until`: the connections it dialled, with when and where.
fn run_until(n: &mut Node, from: Instant, until: Instant) -> Vec<(Instant, ConnId, SocketAddr)> {
    let mut dials = Vec::new();
    let mut at = from;
    loop {
        while let Some(o) = n.poll_output() {
            if let Output::Net(NetOp::Connect { conn, addr }) = o {
                dials.push((at, conn, addr));
            }
        }
        let next = n.poll_timeout().unwrap();
        if next > until {
            return dials;
        }
        at = next.max(at);
        n.handle_timeout(at);
    }
}

/// Runs the node's timers until it dials (before `until`): when, which, where.
fn next_dial(n: &mut Node, from: Instant, until: Instant) -> Option<(Instant, ConnId, SocketAddr)> {
    let mut at = from;
    loop {
        for o in drain(n) {
            if let Output::Net(NetOp::Connect { conn, addr }) = o {
                return Some((at, conn, addr));
            }
        }
        let next = n.poll_timeout().unwrap();
        if next > until {
            return None;
        }
        at = next.max(at);
        n.handle_timeout(at);
    }
}

/// The frames of what the node sent on `conn` among its outputs now, opened by `them` (the
/// other outputs are dropped).
fn sent_to(n: &mut Node, conn: ConnId, them: &mut TestPeer) -> Vec<Frame> {
    drain(n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Net(NetOp::Send { conn: c, data }) if c == conn => Some(them.receive(&data)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The node's dial `conn` is connected and answered by the holder of `secret`: its handshake
/// and hellos, with the frames it sent and its other outputs.
fn answered_by(
    n: &mut Node,
    at: Instant,
    conn: ConnId,
    secret: u8,
) -> (TestPeer, Vec<Frame>, Vec<Output>) {
    n.handle_input(at, Input::Connected { conn });
    let mut them = TestPeer::acceptor([secret; 32]);
    let (frames, others) = them.handshake(n, at, conn, 7);
    (them, frames, others)
}

/// Answers what the node sent on `conn` as a live peer with an empty catalog does (and what
/// it sends on in turn): reads it all (`Flushed`), pongs its pings, gives it the catalog.
fn answer(n: &mut Node, now: Instant, conn: ConnId, them: &mut TestPeer, frames: Vec<Frame>) {
    let mut frames = frames;
    while !frames.is_empty() {
        for f in std::mem::take(&mut frames) {
            let reply = match f {
                Frame::Message(Message::Ping) => Message::Pong,
                Frame::Message(Message::CatalogRequest { page }) => Message::Catalog {
                    revision: 0,
                    page,
                    pages: 1,
                    files: Vec::new(),
                },
                _ => continue,
            };
            let sealed = them.seal_msg(&reply);
            n.handle_received(now, conn, &sealed);
        }
        frames.extend(sent_to(n, conn, them));
        n.handle_input(now, Input::Flushed { conn });
    }
}

#[test]
fn a_known_peer_is_probed_after_the_lans_answers_and_listed_as_known() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), Found::Known);
    let (at, conn, addr) = next_dial(&mut n, t0, t0 + Duration::from_secs(2)).expect("probed");
    assert_eq!(addr, "192.168.9.2:10000".parse().unwrap());
    assert!(
        at >= t0 + Duration::from_millis(500),
        "not before the LAN answered"
    );
    let (mut them, frames, others) = answered_by(&mut n, at, conn, 2);
    assert!(
        !others
            .iter()
            .any(|o| matches!(o, Output::Net(NetOp::Connect { .. }))),
        "the probe's connection carries the catalog too: no second one"
    );
    answer(&mut n, at, conn, &mut them, frames);
    assert!(
        !others
            .iter()
            .any(|o| matches!(o, Output::Net(NetOp::Close { conn: c }) if *c == conn)),
        "the probe's connection is kept"
    );
    let listed = n.peers();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, key(2));
    assert_eq!(listed[0].found, Found::Known);
    // Kept: no idle close, so a peer no broadcast reaches stays listed.
    let later = at + INTERVAL * 10;
    let mut closes = 0;
    let mut dials = 0;
    let mut t = at;
    while t < later {
        t += Duration::from_secs(1);
        n.handle_timeout(t);
        for o in drain(&mut n) {
            match o {
                Output::Net(NetOp::Close { conn: c }) if c == conn => closes += 1,
                Output::Net(NetOp::Connect { .. }) => dials += 1,
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    let frames = them.receive(&data);
                    answer(&mut n, t, conn, &mut them, frames);
                }
                _ => {}
            }
        }
    }
    assert_eq!((closes, dials), (0, 0), "one connection carries it all");
    assert_eq!(n.peers().len(), 1, "still listed after ten intervals");
}

#[test]
fn a_known_peer_connected_on_the_lan_is_not_probed() {
    let t0 = Instant::now();
    let mut n = node(t0);
    let from: SocketAddr = "10.0.0.2:9999".parse().unwrap();
    add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), Found::Known);
    n.handle_input(
        t0,
        Input::Datagram {
            from,
            data: announcement(2, 1, 1),
        },
    );
    // Heard on the LAN: dialled there for its catalog, and that connection opens.
    let (at, conn, addr) = next_dial(&mut n, t0, t0 + Duration::from_millis(100)).expect("link");
    assert_eq!(addr.ip(), from.ip());
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    let dials = run_until(&mut n, at, t0 + Duration::from_secs(3));
    assert!(
        dials.is_empty(),
        "no probe while a connection is open: {dials:?}"
    );
    assert_eq!(n.peers()[0].found, Found::Broadcast);
}

#[test]
fn a_probe_answered_by_another_key_is_counted_and_backs_off() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), Found::Known);
    let mut dial_times = Vec::new();
    let mut at = t0;
    for _ in 0..3 {
        let (when, conn, _) = next_dial(&mut n, at, at + INTERVAL * 8).expect("probed again");
        dial_times.push(when);
        n.handle_input(when, Input::Connected { conn });
        let mut impostor = TestPeer::acceptor([9; 32]);
        let (frames, _) = impostor.handshake(&mut n, when, conn, 7);
        assert!(frames.is_empty(), "we never said who we are");
        at = when;
    }
    assert_eq!(n.stats().handshake_wrong_peer, 3);
    assert!(n.peers().is_empty(), "nobody listed");
    let gaps: Vec<Duration> = dial_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= INTERVAL, "{gaps:?}");
    assert!(
        gaps[1] >= gaps[0] * 2 - Duration::from_millis(1),
        "{gaps:?}"
    );
}

#[test]
fn a_links_peer_is_dialled_at_once_and_listed_as_link() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "[2001:db8::2]:10000", Some(key(2)), Found::Link);
    // The same target twice is one target.
    add(&mut n, t0, "[2001:db8::2]:10000", Some(key(2)), Found::Link);
    let dials = run_until(&mut n, t0, t0 + Duration::from_millis(100));
    assert_eq!(dials.len(), 1, "one target, dialled at once: {dials:?}");
    let (at, conn, _) = dials[0];
    answered_by(&mut n, at, conn, 2);
    assert_eq!(n.peers()[0].found, Found::Link);
    assert_eq!(n.stats().peers_add_refused, 0);
}

#[test]
fn a_kept_connection_whose_pings_go_unanswered_is_closed_and_dialled_again() {
    // The connection's other end is gone without a word (a NAT or firewall forgot it, the
    // peer's end was reset unseen): our pings flush without error and nothing comes back on
    // it. The peer's announcements still arrive (or an old one is replayed to us), so the
    // table keeps it: only the connection itself can tell it is dead.
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), Found::Link);
    let (at, conn, addr) = next_dial(&mut n, t0, t0 + Duration::from_millis(100)).unwrap();
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    assert_eq!(n.peers().len(), 1);
    // Its announcements, each newer than the last (a replay of an old one is refused).
    let mut first_ping = None;
    let mut closed_at = None;
    let mut t = at;
    while closed_at.is_none() && t < at + INTERVAL * 10 {
        t += Duration::from_millis(100);
        let since = (t - at).as_millis();
        if since % INTERVAL.as_millis() == 0 {
            let seq = u64::try_from(since / INTERVAL.as_millis()).unwrap();
            n.handle_input(
                t,
                Input::Datagram {
                    from: "192.168.9.2:9999".parse().unwrap(),
                    data: announcement(2, seq, 0),
                },
            );
        }
        n.handle_timeout(t);
        for o in drain(&mut n) {
            match o {
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    if them.receive(&data).contains(&Frame::Message(Message::Ping)) {
                        first_ping.get_or_insert(t);
                    }
                    n.handle_input(t, Input::Flushed { conn });
                }
                Output::Net(NetOp::Close { conn: c }) if c == conn => closed_at = Some(t),
                _ => {}
            }
        }
    }
    let first_ping = first_ping.expect("a kept connection is pinged");
    let closed_at = closed_at.expect("closed once its pings went unanswered");
    assert_eq!(
        closed_at - first_ping,
        INTERVAL * p2pshare_proto::session::UNANSWERED_PINGS,
        "closed {UNANSWERED} intervals after the first unanswered ping",
        UNANSWERED = p2pshare_proto::session::UNANSWERED_PINGS
    );
    assert_eq!(n.stats().closed_unanswered, 1);
    let (_, again, to) = next_dial(&mut n, closed_at, closed_at + INTERVAL * 2)
        .expect("its target is dialled again");
    assert_ne!(again, conn);
    assert_eq!(to, addr);
}

#[test]
fn a_dht_holder_is_dialled_at_once_then_at_most_twice_per_lookup() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.0.2.7:10000", None, Found::Dht);
    // Its dials fail (nothing there): the first at once, then one more, then none, however
    // long we wait.
    let mut at = t0;
    let mut dials = Vec::new();
    while let Some((when, conn, addr)) = next_dial(&mut n, at, t0 + INTERVAL * 40) {
        n.handle_input(when, Input::ConnectFailed { conn });
        dials.push((when, addr));
        at = when;
    }
    assert_eq!(dials.len(), 2, "{dials:?}");
    assert_eq!(dials[0].0, t0, "dialled at once");
    // A later lookup that names it again gives it its dials again, at once.
    let later = t0 + INTERVAL * 41;
    add(&mut n, later, "192.0.2.7:10000", None, Found::Dht);
    let again = run_until(&mut n, later, later + Duration::from_millis(1));
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(n.stats().peers_add_refused, 0);
}

#[test]
fn a_dht_holder_that_answers_is_listed_as_dht() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.0.2.8:10000", None, Found::Dht);
    let (at, conn, _) = next_dial(&mut n, t0, t0 + INTERVAL).expect("dialled");
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    assert_eq!(n.peers()[0].found, Found::Dht);
    assert_eq!(Found::Dht.as_str(), "dht");
    // Not pinned: no ping keeps it. Once nothing passes on it (its download done), the peer
    // that only it listed expires and the connection closes; the holder is not dialled again
    // until a lookup names it again.
    let mut closed = None;
    let mut t = at;
    while closed.is_none() && t < at + Duration::from_secs(120) {
        t += Duration::from_millis(500);
        n.handle_timeout(t);
        for o in drain(&mut n) {
            match o {
                Output::Net(NetOp::Close { conn: c }) if c == conn => closed = Some(t),
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    let sent = them.receive(&data);
                    assert!(!sent.contains(&Frame::Message(Message::Ping)), "{sent:?}");
                }
                Output::Net(NetOp::Connect { .. }) => panic!("dialled again"),
                _ => {}
            }
        }
    }
    let closed = closed.expect("closed once quiet");
    assert!(closed >= at + INTERVAL * 3, "{:?}", closed - at);
    assert!(n.peers().is_empty());
    assert_eq!(run_until(&mut n, closed, closed + INTERVAL * 10), vec![]);
    add(&mut n, closed, "192.0.2.8:10000", None, Found::Dht);
    assert!(
        next_dial(&mut n, closed, closed + INTERVAL).is_some(),
        "a new lookup that names it re-arms it"
    );
}

#[test]
fn dht_holders_take_at_most_their_share_of_the_targets() {
    let t0 = Instant::now();
    let mut n = node(t0);
    // 64 holders that never open: their dials go within the 8-at-once limit; then each is
    // spent, and a new one takes a spent one's slot.
    for i in 0..64u16 {
        add(
            &mut n,
            t0,
            &format!("192.0.2.9:{}", 1000 + i),
            None,
            Found::Dht,
        );
    }
    add(&mut n, t0, "192.0.2.9:2000", None, Found::Dht);
    assert_eq!(
        n.stats().peers_add_refused,
        1,
        "all 64 still have dials left"
    );
    // Every dial fails as soon as it is made.
    let mut at = t0;
    let mut dials = 0;
    let until = t0 + INTERVAL * 100;
    loop {
        let failed: Vec<ConnId> = drain(&mut n)
            .into_iter()
            .filter_map(|o| match o {
                Output::Net(NetOp::Connect { conn, .. }) => Some(conn),
                _ => None,
            })
            .collect();
        dials += failed.len();
        for conn in failed {
            n.handle_input(at, Input::ConnectFailed { conn });
        }
        match n.poll_timeout() {
            Some(next) if next <= until => {
                at = next.max(at);
                n.handle_timeout(at);
            }
            _ => break,
        }
    }
    assert_eq!(dials, 64 * 2);
    add(&mut n, at, "192.0.2.9:2000", None, Found::Dht);
    assert_eq!(n.stats().peers_add_refused, 1, "a spent slot was taken");
    assert_eq!(
        run_until(&mut n, at, at + Duration::from_millis(1)).len(),
        1
    );
    // A user's target is not refused for them.
    add(&mut n, at, "192.0.2.10:10000", Some(key(2)), Found::Static);
    assert_eq!(n.stats().peers_add_refused, 1);
}

#[test]
fn what_no_one_may_ask_is_counted_and_never_dialled() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.168.9.2:10000", Some(key(1)), Found::Static); // our own key
    add(&mut n, t0, "192.168.9.2:0", Some(key(2)), Found::Static); // port 0
    add(&mut n, t0, "0.0.0.0:10000", None, Found::Link); // unspecified
    add(&mut n, t0, "[ff12::1]:10000", None, Found::Link); // multicast
    add(&mut n, t0, "192.168.9.2:10000", None, Found::Known); // a known peer has a key
    for found in [Found::Broadcast, Found::Multicast, Found::Inbound] {
        add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), found);
    }
    assert_eq!(n.stats().peers_add_refused, 8);
    assert!(run_until(&mut n, t0, t0 + INTERVAL * 4).is_empty());
}

#[test]
fn a_targets_view_says_what_came_of_its_dials() {
    let t0 = Instant::now();
    let mut n = node(t0);
    let right = "10.1.0.2:10000";
    let wrong = "10.1.0.3:10000";
    let silent = "10.1.0.4:10000";
    for addr in [right, wrong, silent] {
        add(&mut n, t0, addr, Some(key(2)), Found::Link);
    }
    let reach = |n: &Node, addr: &str| {
        let addr: SocketAddr = addr.parse().unwrap();
        n.targets().into_iter().find(|t| t.addr == addr).unwrap()
    };
    assert_eq!(reach(&n, right).reach, Reach::Trying);
    assert_eq!(reach(&n, right).found, Found::Link);
    assert_eq!(reach(&n, right).key, Some(key(2)));
    let dials = run_until(&mut n, t0, t0 + Duration::from_millis(100));
    assert_eq!(dials.len(), 3, "{dials:?}");
    for (at, conn, addr) in dials {
        match addr.to_string().as_str() {
            a if a == right => {
                n.handle_input(at, Input::Connected { conn });
                TestPeer::acceptor([2; 32]).handshake(&mut n, at, conn, 7);
            }
            a if a == wrong => {
                n.handle_input(at, Input::Connected { conn });
                TestPeer::acceptor([9; 32]).handshake(&mut n, at, conn, 7);
            }
            _ => n.handle_input(at, Input::ConnectFailed { conn }),
        }
        drain(&mut n);
    }
    assert_eq!(reach(&n, right).reach, Reach::Open);
    assert_eq!(reach(&n, wrong).reach, Reach::WrongKey);
    assert_eq!(reach(&n, silent).reach, Reach::Failed);
    assert_eq!(n.stats().handshake_wrong_peer, 1);
}

#[test]
fn a_new_revision_reaches_a_peer_known_only_over_its_connection() {
    let t0 = Instant::now();
    let mut n = node(t0);
    add(&mut n, t0, "192.168.9.2:10000", Some(key(2)), Found::Known);
    let (at, conn, _) = next_dial(&mut n, t0, t0 + Duration::from_secs(2)).expect("probed");
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    // Our catalog changes: no datagram of ours reaches it beyond its router, so a hello with
    // the new revision goes on its connection.
    assert_revision_told(&mut n, at, conn, &mut them);
    // Its own new revision, told the same way, makes us fetch its catalog again.
    let later = at + Duration::from_secs(30);
    let hello = them.seal_msg(&Message::Hello {
        peer: key(2),
        instance: 7,
        port: 10000,
        revision: 5,
    });
    n.handle_received(later, conn, &hello);
    let asked: Vec<Frame> = sent_to(&mut n, conn, &mut them);
    assert!(
        asked
            .iter()
            .any(|f| matches!(f, Frame::Message(Message::CatalogRequest { .. }))),
        "{asked:?}"
    );
    assert_eq!(n.stats().frames_unsolicited, 0);
    n.handle_input(later, Input::Flushed { conn });
    drain(&mut n);
    // A hello naming another instance on that connection is nobody's news: counted.
    let odd = them.seal_msg(&Message::Hello {
        peer: key(2),
        instance: 8,
        port: 10000,
        revision: 6,
    });
    n.handle_received(later, conn, &odd);
    assert_eq!(n.stats().frames_unsolicited, 1);
}

#[test]
fn a_full_table_gives_a_new_links_peer_the_oldest_links_place_and_keeps_the_users() {
    let t0 = Instant::now();
    let mut n = node(t0);
    let addr = |i: usize| format!("10.1.{}.{}:10000", i / 200, i % 200 + 1);
    // A peer that runs for weeks fetches more links than it can keep: the oldest link's
    // peer gives way to the newest.
    add(&mut n, t0, &addr(0), Some(key(2)), Found::Link);
    let (at, conn, _) = next_dial(&mut n, t0, t0 + INTERVAL).unwrap();
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    for i in 1..256 {
        add(&mut n, at, &addr(i), Some(key(3)), Found::Link);
    }
    assert_eq!(n.targets().len(), 256);
    add(&mut n, at, "10.9.9.9:10000", Some(key(3)), Found::Link);
    let held: Vec<SocketAddr> = n.targets().iter().map(|t| t.addr).collect();
    assert_eq!(held.len(), 256);
    assert!(
        !held.contains(&addr(0).parse().unwrap()),
        "the oldest gave way"
    );
    assert!(held.contains(&"10.9.9.9:10000".parse().unwrap()));
    assert_eq!(n.stats().peers_add_refused, 0);
    // Its connection is no longer pinned: no ping keeps it, and it closes once quiet.
    let mut closed = false;
    let mut t = at;
    while !closed && t < at + Duration::from_secs(120) {
        t += Duration::from_millis(500);
        n.handle_timeout(t);
        for o in drain(&mut n) {
            match o {
                Output::Net(NetOp::Close { conn: c }) if c == conn => closed = true,
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    let sent = them.receive(&data);
                    assert!(!sent.contains(&Frame::Message(Message::Ping)), "{sent:?}");
                }
                _ => {}
            }
        }
    }
    assert!(closed, "the link that gave way still holds its connection");
    // What the user added is never pushed out: a table of `--peer`s refuses a link.
    let mut n = node(t0);
    for i in 0..256 {
        add(&mut n, t0, &addr(i), Some(key(2)), Found::Static);
    }
    add(&mut n, t0, "10.9.9.9:10000", Some(key(2)), Found::Link);
    assert_eq!(n.stats().peers_add_refused, 1);
    assert!(n.targets().iter().all(|t| t.found == Found::Static));
}

#[test]
fn a_new_revision_reaches_a_peer_heard_by_broadcast_over_its_connection_too() {
    // Its datagrams reach us (or a host relays them to us), ours may not reach it: the news
    // goes on the connection as well as in our announcement.
    let t0 = Instant::now();
    let mut n = node(t0);
    n.handle_input(
        t0,
        Input::Datagram {
            from: "10.0.0.2:9999".parse().unwrap(),
            data: announcement(2, 1, 1),
        },
    );
    let (at, conn, _) = next_dial(&mut n, t0, t0 + Duration::from_millis(100)).expect("link");
    let (mut them, frames, _) = answered_by(&mut n, at, conn, 2);
    answer(&mut n, at, conn, &mut them, frames);
    assert_eq!(n.peers()[0].found, Found::Broadcast);
    assert_revision_told(&mut n, at, conn, &mut them);
}
