//! Three nodes wired together by hand: every output of one is pumped into the others' inputs
//! through the tests' one checked pump (`support/checked.rs`, as in the simulator: every
//! post-condition after every call), with the tests' one in-memory disk per node
//! (`support/mem_store.rs`) and a manual clock; sends arrive and flush at once. Node A discovers B and C and downloads
//! a multi-chunk file held by both; C serves one corrupt chunk, which A rejects and refetches.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is the manual clock's offset.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, ManifestBuilder};
use p2pshare_proto::{
    Config, ConnId, ContentId, DiskOp, Event, Identity, Input, LocalFile, NetOp, Node, Output,
    PeerId, ReadSource,
};

#[path = "support/checked.rs"]
mod checked;
#[path = "support/mem_store.rs"]
mod mem_store;
use checked::Checked;
use mem_store::Store;
use p2pshare_proto::net::Network;

#[path = "support/peer.rs"]
mod peer;
use peer::TestPeer;

/// The peer id of host `k - 1` (its key, made from the secret `[k; 32]`).
fn key(k: u8) -> PeerId {
    Identity::from_secret_bytes(&[k; 32]).key()
}

const BROADCAST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)), 9999);

struct Host {
    /// The node, every call checked (`support/checked.rs`).
    node: Checked,
    ip: IpAddr,
    store: Store,
    events: Vec<Event>,
    /// Serve the n-th next chunk (0: the next one) with a flipped byte, once.
    corrupt_nth: Option<u32>,
    /// What the node asked for and the world has not done yet, in order.
    pending: VecDeque<Output>,
}

/// The partial file of `content` on `store`, for the checked pump's finish check.
fn partial(store: &Store) -> impl Fn(&ContentId, u64) -> Option<Vec<u8>> + '_ {
    |c, _| store.partial.get(c).cloned()
}

struct Net {
    hosts: Vec<Host>,
    now: Instant,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    inbox: VecDeque<(usize, Input)>,
    /// Sizes of the sends so far, by sending host.
    sent: Vec<(usize, usize)>,
}

/// Host `h`'s network card: every send arrives at once and is flushed at once.
struct Wire<'a> {
    net: &'a mut Net,
    h: usize,
}

impl Network for Wire<'_> {
    fn datagram(&mut self, to: SocketAddr, data: Vec<u8>) {
        assert_eq!(to, BROADCAST);
        let from = SocketAddr::new(self.net.hosts[self.h].ip, 9999);
        for t in 0..self.net.hosts.len() {
            self.net.inbox.push_back((
                t,
                Input::Datagram {
                    from,
                    data: data.clone(),
                },
            ));
        }
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        let (net, h) = (&mut *self.net, self.h);
        let Some(t) = net.hosts.iter().position(|x| x.ip == addr.ip()) else {
            net.inbox.push_back((h, Input::ConnectFailed { conn }));
            return;
        };
        let remote = SocketAddr::new(net.hosts[h].ip, 40000);
        let target = &mut net.hosts[t];
        let (admission, outs) = target
            .node
            .accept(net.now, remote, &partial(&target.store))
            .unwrap_or_else(|v| panic!("host {t}: {v}"));
        target.pending.extend(outs);
        match admission.conn() {
            Some(tconn) => {
                net.links.insert((h, conn), (t, tconn));
                net.links.insert((t, tconn), (h, conn));
                net.inbox.push_back((h, Input::Connected { conn }));
            }
            None => net.inbox.push_back((h, Input::ConnectFailed { conn })),
        }
    }

    fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        let (net, h) = (&mut *self.net, self.h);
        net.sent.push((h, data.len()));
        if let Some(&(t, tconn)) = net.links.get(&(h, conn)) {
            net.inbox
                .push_back((t, Input::Received { conn: tconn, data }));
        }
        net.inbox.push_back((h, Input::Flushed { conn }));
    }

    // Every send is flushed at once here, so no budget fills up and nobody is paused for long:
    // reading on is as good as honouring the pause.
    fn pause(&mut self, _: ConnId) {}

    fn resume(&mut self, _: ConnId) {}

    fn close(&mut self, conn: ConnId) {
        let (net, h) = (&mut *self.net, self.h);
        if let Some((t, tconn)) = net.links.remove(&(h, conn)) {
            net.links.remove(&(t, tconn));
            net.inbox.push_back((t, Input::Closed { conn: tconn }));
        }
    }
}

impl Net {
    fn new(n: usize) -> Net {
        let now = Instant::now();
        let hosts = (0..n)
            .map(|i| {
                let mut cfg = Config::new(100 + i as u64, i as u64, 10000);
                let me = Identity::from_secret_bytes(&[i as u8 + 1; 32]);
                cfg.announce_to = vec![BROADCAST];
                Host {
                    node: Checked::new(Node::new(cfg, me, [i as u8; 32], now).unwrap(), []),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)),
                    store: Store::default(),
                    events: Vec::new(),
                    corrupt_nth: None,
                    pending: VecDeque::new(),
                }
            })
            .collect();
        Net {
            hosts,
            now,
            links: BTreeMap::new(),
            inbox: VecDeque::new(),
            sent: Vec::new(),
        }
    }

    fn share(&mut self, h: usize, name: &str, data: &[u8]) -> ContentId {
        self.share_chunked(h, name, data, MIN_CHUNK_SIZE)
    }

    /// Host `h` shares `data` as `name`, in chunks of `chunk` bytes.
    fn share_chunked(&mut self, h: usize, name: &str, data: &[u8], chunk: u32) -> ContentId {
        let mut b = ManifestBuilder::new(chunk);
        b.update(data);
        let m = b.finish().unwrap();
        let id = m.id();
        for x in &mut self.hosts {
            x.node.know(m.clone());
        }
        self.hosts[h]
            .store
            .shared
            .insert(id, Rc::new(data.to_vec()));
        let files = vec![LocalFile {
            name: name.into(),
            manifest: m,
        }];
        self.inbox.push_back((h, Input::CatalogChanged { files }));
        id
    }

    /// Hands `input` to host `h` (its outputs wait in `pending`).
    fn input(&mut self, h: usize, input: Input) {
        let host = &mut self.hosts[h];
        let outs = host
            .node
            .input(self.now, input, &partial(&host.store))
            .unwrap_or_else(|v| panic!("host {h}: {v}"));
        host.pending.extend(outs);
    }

    /// Performs every output of host `h`.
    fn drain(&mut self, h: usize) {
        while let Some(out) = self.hosts[h].pending.pop_front() {
            let host = &mut self.hosts[h];
            match out {
                Output::Net(op) => p2pshare_proto::net::perform(op, &mut Wire { net: self, h }),
                Output::Disk(op) => {
                    let shared_read = matches!(
                        op,
                        DiskOp::Read {
                            source: ReadSource::Shared(_),
                            ..
                        }
                    );
                    let Some(mut input) = p2pshare_proto::disk::perform(&mut host.store, op) else {
                        continue;
                    };
                    if let (true, Input::ReadDone { result: Ok(d), .. }) = (shared_read, &mut input)
                    {
                        match host.corrupt_nth {
                            Some(0) => {
                                host.corrupt_nth = None;
                                d[0] ^= 0xff;
                            }
                            Some(n) => host.corrupt_nth = Some(n - 1),
                            None => {}
                        }
                    }
                    self.inbox.push_back((h, input));
                }
                Output::Event(e) => host.events.push(e),
            }
        }
    }

    /// Runs until host 0 lists one file, held by `holders` peers.
    fn listed_by(&mut self, holders: usize) {
        self.run_until(Duration::from_secs(3), |n| {
            n.hosts[0]
                .node
                .remote_files()
                .first()
                .is_some_and(|f| f.holders.len() == holders)
        });
    }

    /// Host 0 asks for `id` and runs until it is done; returns who delivered what.
    fn get_until_done(&mut self, id: ContentId) -> Vec<p2pshare_proto::Source> {
        self.inbox.push_back((
            0,
            Input::Command(p2pshare_proto::Command::Get {
                content: id,
                name: None,
            }),
        ));
        let done = |n: &Net| {
            n.hosts[0].events.iter().find_map(|e| match e {
                Event::DownloadDone { sources, .. } => Some(sources.clone()),
                _ => None,
            })
        };
        self.run_until(Duration::from_secs(30), |n| done(n).is_some());
        done(self).unwrap_or_default()
    }

    /// Host 0 sees `id` listed, asks for it, and runs until some of it is on its disk.
    fn download_under_way(&mut self, id: ContentId) {
        self.run_until(Duration::from_secs(3), |n| {
            !n.hosts[0].node.remote_files().is_empty()
        });
        self.inbox.push_back((
            0,
            Input::Command(p2pshare_proto::Command::Get {
                content: id,
                name: None,
            }),
        ));
        self.run_until(Duration::from_secs(5), |n| {
            n.hosts[0]
                .node
                .downloads()
                .first()
                .is_some_and(|d| d.done > 0)
        });
    }

    /// Delivers everything pending; when idle, jumps the clock to the next deadline.
    fn step(&mut self) {
        for h in 0..self.hosts.len() {
            self.drain(h);
        }
        if let Some((h, input)) = self.inbox.pop_front() {
            self.input(h, input);
            self.drain(h);
            return;
        }
        let next = self
            .hosts
            .iter()
            .filter_map(|x| x.node.poll_timeout())
            .min()
            .unwrap();
        assert!(next >= self.now, "a deadline in the past");
        self.now = next;
        for (h, x) in self.hosts.iter_mut().enumerate() {
            if x.node.poll_timeout() <= Some(self.now) {
                let heard = |p: &p2pshare_proto::PeerView| p.last_seen;
                let outs = x
                    .node
                    .timeout(self.now, &partial(&x.store), &heard)
                    .unwrap_or_else(|v| panic!("host {h}: {v}"));
                x.pending.extend(outs);
            }
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now < end, "not done within {limit:?}");
            self.step();
        }
    }
}

fn file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

#[test]
fn discovers_and_downloads_from_two_peers_rejecting_a_corrupt_chunk() {
    let mut net = Net::new(3);
    let data = file(20 * MIN_CHUNK_SIZE as usize + 123);
    let id = net.share(1, "movie.bin", &data);
    assert_eq!(net.share(2, "movie.bin", &data), id);
    net.hosts[2].corrupt_nth = Some(2);

    // Discovery: A sees B and C, and both catalogs, within a couple of seconds; A's view has
    // settled once both catalogs are in and the newcomer's answer time has passed.
    let t0 = net.now;
    assert!(!net.hosts[0].node.is_settled(t0));
    net.run_until(Duration::from_secs(3), |n| {
        n.hosts[0].node.peers().len() == 2
            && n.hosts[0]
                .node
                .remote_files()
                .first()
                .is_some_and(|f| f.holders.len() == 2)
    });
    assert!(net.now - t0 < Duration::from_secs(2));
    net.run_until(Duration::from_secs(1), |n| {
        n.hosts[0].node.is_settled(n.now)
    });
    let files = net.hosts[0].node.remote_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].names, vec!["movie.bin".to_string()]);
    assert_eq!(files[0].size, data.len() as u64);

    net.inbox.push_back((
        0,
        Input::Command(p2pshare_proto::Command::Get {
            content: id,
            name: None,
        }),
    ));
    net.run_until(Duration::from_secs(30), |n| {
        n.hosts[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::DownloadDone { .. }))
    });

    let a = &net.hosts[0];
    assert_eq!(
        a.store.finished.get("dl_movie.bin").map(|(_, d)| d),
        Some(&data),
        "byte-identical copy"
    );
    let rejected: Vec<_> = a
        .events
        .iter()
        .filter(|e| matches!(e, Event::ChunkRejected { .. }))
        .collect();
    assert_eq!(rejected.len(), 1, "the corrupt chunk was rejected");
    assert!(matches!(rejected[0], Event::ChunkRejected { peer, .. } if *peer == key(3)));
    let done = a.events.iter().find_map(|e| match e {
        Event::DownloadDone {
            sources,
            rejected,
            fetched,
            ..
        } => Some((sources.clone(), *rejected, *fetched)),
        _ => None,
    });
    let (sources, rejected, fetched) = done.expect("a DownloadDone event");
    assert_eq!(rejected, 1);
    assert_eq!(fetched, data.len() as u64);
    // Both delivered: C two good chunks before its corrupt third, B the rest (the refetched
    // chunk among them, since C was no longer asked).
    let by = |p: u8| {
        sources
            .iter()
            .find(|s| s.peer == key(p))
            .map_or(0, |s| s.chunks)
    };
    assert_eq!(by(3), 2);
    assert_eq!(by(2), 19);
    assert_eq!(sources.iter().map(|s| s.chunks).sum::<u32>(), 21);
}

#[test]
fn download_stops_with_a_reason_when_the_only_holder_leaves() {
    let mut net = Net::new(2);
    let data = file(64 * MIN_CHUNK_SIZE as usize);
    let id = net.share(1, "big", &data);
    // Let a few chunks arrive, then the holder says goodbye.
    net.download_under_way(id);
    net.inbox
        .push_back((1, Input::Command(p2pshare_proto::Command::Shutdown)));
    net.run_until(Duration::from_secs(30), |n| {
        n.hosts[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::DownloadFailed { .. }))
    });
    let reason = net.hosts[0].events.iter().find_map(|e| match e {
        Event::DownloadFailed { reason, .. } => Some(reason.to_string()),
        _ => None,
    });
    assert!(reason.unwrap().contains("no peer has this file"));
    assert!(net.hosts[0].store.finished.is_empty());
}

/// A host that connects in and claims the holder's peer id in its hello cannot answer for
/// it: its handshake proved its own key, so the hello naming another is refused and its
/// connection closed before any of its answers is read; the holder is neither banned nor
/// blamed, and the download completes from the real holder.
#[test]
fn an_impostor_cannot_answer_for_the_holder() {
    use p2pshare_proto::wire::frame::{ErrorCode, Message, encode_chunk_header, encode_message};
    let mut net = Net::new(2);
    let data = file(40 * MIN_CHUNK_SIZE as usize);
    let id = net.share(1, "movie.bin", &data);
    net.download_under_way(id);
    let now = net.now;
    let impostor = "10.0.0.66:40000".parse().unwrap();
    let a = &mut net.hosts[0];
    // (What the node asks for now is dropped: the impostor reads nothing but its handshake.)
    let (admission, _) = a.node.accept(now, impostor, &partial(&a.store)).unwrap();
    let conn = admission.conn().unwrap();
    let mut imp = TestPeer::dialer([0x66; 32], None);
    let mut to_node = imp.transmit();
    let mut closed = false;
    for _ in 0..8 {
        if to_node.is_empty() {
            break;
        }
        let a = &mut net.hosts[0];
        let outs = a
            .node
            .received(now, conn, &std::mem::take(&mut to_node), &partial(&a.store))
            .unwrap();
        for o in outs {
            match o {
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    imp.receive(&data);
                    to_node.extend(imp.transmit());
                }
                Output::Net(NetOp::Close { conn: c }) if c == conn => closed = true,
                _ => {}
            }
        }
    }
    assert!(
        imp.is_open() && !closed,
        "the impostor's own handshake completes"
    );
    let holder = key(2);
    let mut bytes = encode_message(&Message::Hello {
        peer: holder,
        instance: 101,
        port: 10000,
        revision: 1,
    });
    for index in [None, Some(0), Some(39)] {
        bytes.extend(encode_message(&Message::Error {
            code: ErrorCode::NotFound,
            content: id,
            index,
        }));
    }
    bytes.extend(encode_chunk_header(&id, 39, MIN_CHUNK_SIZE as usize));
    bytes.extend(vec![0u8; MIN_CHUNK_SIZE as usize]);
    let sealed = imp.seal(&bytes);
    let a = &mut net.hosts[0];
    let outs = a
        .node
        .received(now, conn, &sealed, &partial(&a.store))
        .unwrap();
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Net(NetOp::Close { conn: c }) if *c == conn)),
        "the hello naming another key than the one proven closes the connection: {outs:?}"
    );
    let stats = net.hosts[0].node.stats();
    assert_eq!(
        stats.frames_unsolicited, 0,
        "nothing after the hello was read: {stats:?}"
    );
    net.run_until(Duration::from_secs(30), |n| {
        n.hosts[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::DownloadDone { .. } | Event::DownloadFailed { .. }))
    });
    let a = &net.hosts[0];
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::DownloadDone { rejected: 0, .. })),
        "{:?}",
        a.events.last()
    );
    assert_eq!(
        a.store.finished.get("dl_movie.bin").map(|(_, d)| d),
        Some(&data)
    );
}

#[test]
fn a_folder_of_100000_files_is_listed_whole_in_pages() {
    use p2pshare_proto::wire::{CATALOG_PAGE_BYTES, MAX_FRAME_LEN};
    const FILES: usize = 100_000;
    let mut net = Net::new(2);
    let files: Vec<LocalFile> = (0..FILES)
        .map(|i| {
            let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
            b.update(&(i as u64).to_be_bytes());
            LocalFile {
                name: format!("img_{i:06}.jpg"),
                manifest: b.finish().unwrap(),
            }
        })
        .collect();
    net.inbox.push_back((1, Input::CatalogChanged { files }));
    // Host 1's catalog would be one ~8 MiB frame, over the frame limit; in pages it is listed.
    let mut biggest = 0;
    let end = net.now + Duration::from_secs(10);
    while net.hosts[0].node.remote_files().len() < FILES {
        assert!(
            net.now < end,
            "the catalog did not arrive: {} listed, {:?}, {:?}",
            net.hosts[0].node.remote_files().len(),
            net.hosts[0].node.stats(),
            net.hosts[1].node.stats()
        );
        net.step();
        for (_, data) in net.sent.drain(..) {
            biggest = biggest.max(data);
        }
    }
    assert!(
        biggest <= CATALOG_PAGE_BYTES + 1024,
        "a page of {biggest} bytes"
    );
    assert!(biggest < MAX_FRAME_LEN);
    let listed = net.hosts[0].node.remote_files();
    assert_eq!(listed.len(), FILES);
    assert!(listed.iter().all(|f| f.names.len() == 1));
    assert_eq!(net.hosts[0].node.stats().catalog_entries_dropped, 0);
}

/// The name a download is saved under is the one the user asked for or, without one, the one
/// most holders use: the peer with the lowest id (here a liar) does not pick it.
#[test]
fn a_download_is_saved_under_the_name_most_holders_use_or_the_one_asked() {
    let mut net = Net::new(4);
    let data = file(3 * MIN_CHUNK_SIZE as usize);
    let id = net.share(1, "aaa_liar.exe", &data);
    net.share(2, "movie.bin", &data);
    net.share(3, "movie.bin", &data);
    net.listed_by(3);
    let started = |n: &Net| {
        n.hosts[0].events.iter().find_map(|e| match e {
            Event::DownloadStarted { name, .. } => Some(name.clone()),
            _ => None,
        })
    };
    for (asked, saved) in [(None, "movie.bin"), (Some("aaa_liar.exe"), "aaa_liar.exe")] {
        net.hosts[0].events.clear();
        net.inbox.push_back((
            0,
            Input::Command(p2pshare_proto::Command::Get {
                content: id,
                name: asked.map(str::to_owned),
            }),
        ));
        net.run_until(Duration::from_secs(5), |n| started(n).is_some());
        assert_eq!(started(&net).as_deref(), Some(saved));
        net.inbox
            .push_back((0, Input::Command(p2pshare_proto::Command::Cancel(id))));
        net.run_until(Duration::from_secs(1), |n| {
            n.hosts[0].node.downloads().is_empty()
        });
    }
}

#[test]
fn the_write_budget_is_shared_among_the_holders() {
    // 40 chunks of 1 MiB: the write budget (16 MiB asked for or being written) is what limits
    // the requests, not the holders' windows. Each write that frees room must not go to
    // whichever holder comes first: both deliver a fair part.
    let mut net = Net::new(3);
    let cs = 1u32 << 20;
    let data = file(40 * cs as usize);
    let id = net.share_chunked(1, "big.bin", &data, cs);
    assert_eq!(net.share_chunked(2, "big.bin", &data, cs), id);
    net.listed_by(2);
    let sources = net.get_until_done(id);
    assert_eq!(
        net.hosts[0]
            .store
            .finished
            .get("dl_big.bin")
            .map(|(_, d)| d),
        Some(&data)
    );
    let chunks: Vec<u32> = sources.iter().map(|s| s.chunks).collect();
    assert_eq!(chunks.iter().sum::<u32>(), 40, "{sources:?}");
    assert!(
        chunks.len() == 2 && chunks.iter().all(|&c| c >= 12),
        "one holder got (almost) everything: {sources:?}"
    );
}
