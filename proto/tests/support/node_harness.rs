//! A scripted runtime around one [`Node`], shared by the proptest `node_inputs` test, the
//! `node_inputs` fuzz target and the fuzz regression tests.
//!
//! A [`Script`] is a list of [`Op`]s: inputs a real runtime could deliver (datagrams, connection
//! events, bytes, disk results, catalog changes, commands) plus the passing of time. Some ops are
//! "valid by construction" (a real announcement, a hello, the answer to the node's oldest request
//! on a connection, the result of a read the node asked for), so that a short script reaches deep
//! states (a download running, chunks being written); others are raw bytes or stale ids.
//!
//! Every call into the node goes through the tests' one checked pump (`support/checked.rs`),
//! which checks every post-condition after each call: no panic, `Node::check_invariants`, no
//! busy loop after `handle_timeout`, every write verifies against the manifest the harness made
//! for that content (the node can only know manifests the harness made: a manifest is trusted
//! only when it hashes to the content id), every finish comes when the partial file the harness
//! keeps hashes to the file, reads and opens stay inside known files, outputs and receive
//! buffers stay bounded. Performing the outputs, the harness checks its side of the network:
//! no `Send`, `Pause`, `Resume` or `Close` on a connection the node never had or already
//! closed, and every byte the node sends is a handshake the remote peer's own [`Channel`]
//! completes, then records that open and frame.
//!
//! Each connection has a remote end with a real key: peer `k`'s (`[k + 1; 32]` as its secret)
//! at its address, a stranger's at the impostor's or the static peer's. Its handshake runs by
//! itself: the node's handshake bytes are answered as they come (outbound: from `Connected`;
//! inbound: from the first payload that is not raw bytes), and every payload after it is
//! sealed. Raw bytes go unsealed, wherever they fall.
//!
//! With `--cfg fuzzing` (cargo-fuzz) the types derive `arbitrary::Arbitrary`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mem_store::Store;
use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, ManifestBuilder};
use p2pshare_proto::noise::{Channel, LocalKeys};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::MAX_FRAME_LEN;
use p2pshare_proto::wire::frame::{
    CatalogEntry, ErrorCode, Frame, FrameDecoder, Message, encode_chunk_header, encode_message,
};
use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use p2pshare_proto::{
    Command, Config, ConnId, ContentId, DiskError, DiskOp, FinishError, Found, Identity, Input,
    LocalFile, Manifest, NetOp, Node, Output, PeerId, ReadId, ReadSource,
};

#[path = "checked.rs"]
mod checked;
#[path = "mem_store.rs"]
mod mem_store;

use checked::Checked;

/// Our node's secret key (its id is the public half: [`me`]).
pub const ME_SECRET: [u8; 32] = [0xaa; 32];

/// Our node's id.
pub fn me() -> PeerId {
    Identity::from_secret_bytes(&ME_SECRET).key()
}
/// Remote peers the script can speak as.
pub const PEERS: u8 = 4;
/// Most files a script shares.
pub const MAX_FILES: usize = 3;
/// Largest file: a few chunks of the smallest chunk size plus a tail.
pub const MAX_FILE_LEN: u32 = 3 * MIN_CHUNK_SIZE + 100;
/// Most outputs one call may produce.
pub const MAX_OUTPUTS_PER_CALL: usize = 20_000;

/// A whole run: the files the remote peers (and we) may share, then the inputs.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone)]
pub struct Script {
    /// The files (at most [`MAX_FILES`] are used; none means one default file).
    pub files: Vec<FileSpec>,
    /// Configure one static peer (`--peer`) at 10.0.0.9:10000.
    pub static_peer: bool,
    /// A head start, so that short scripts reach deep states: see [`prologue`]; bit 2 also
    /// makes the node say its CPU has AES (the remote ends alternate).
    pub prologue: u8,
    /// The inputs.
    pub ops: Vec<Op>,
}

/// A file: `len % (MAX_FILE_LEN + 1)` bytes of a pattern drawn from `seed`.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// Pattern seed.
    pub seed: u8,
    /// Length (reduced modulo `MAX_FILE_LEN + 1`).
    pub len: u32,
}

/// One step. Small integers select among what the harness knows (connections, reads, files),
/// modulo how many there are.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone)]
pub enum Op {
    /// Time passes (milliseconds).
    Advance(u16),
    /// Jump to the node's deadline and run its timers.
    Deadline,
    /// Run the timers now (often spurious).
    Timeout,
    /// A valid announcement from remote peer `peer % PEERS`.
    Announce {
        /// Which peer.
        peer: u8,
        /// Its instance.
        instance: u8,
        /// Its catalog revision.
        revision: u8,
        /// A goodbye.
        bye: bool,
    },
    /// The echo of our own announcement.
    Echo,
    /// Arbitrary bytes on the discovery port.
    RawDatagram(Vec<u8>),
    /// A datagram about peer `peer % PEERS` from the address of another host (the
    /// impostor's, 10.0.0.66): a relay of that peer's last signed datagram (or, with `bye`,
    /// a forgery of it: a bit of its signature flipped), which must change nothing. (The
    /// instance and port claimed are no longer the impostor's to choose.)
    Claim {
        /// About which peer.
        peer: u8,
        /// The instance claimed.
        instance: u8,
        /// The port claimed.
        port: u8,
        /// A goodbye.
        bye: bool,
    },
    /// A connection accepted from peer `peer`'s address (`peer % (PEERS + 1) == PEERS`: the
    /// impostor's address, whose hellos may claim anyone), from port 40000 + `n`; the node
    /// names it (or refuses it).
    Accept {
        /// The remote port's offset.
        n: u8,
        /// Whose address.
        peer: u8,
    },
    /// `Connected` for a connection.
    Connected(u8),
    /// `ConnectFailed` for a connection.
    ConnectFailed(u8),
    /// `Closed` for a connection.
    Closed(u8),
    /// `Flushed` for a connection.
    Flushed(u8),
    /// Bytes on a connection, in one piece or (split > 0) two.
    Receive {
        /// Which connection.
        conn: u8,
        /// What.
        payload: Payload,
        /// Where to cut it, in 256ths of its length (0: not cut).
        split: u8,
    },
    /// The result of a read the node asked for.
    ReadDone {
        /// Which pending read.
        read: u8,
        /// How it went.
        how: ReadHow,
    },
    /// The result of opening a partial file.
    PartialOpened {
        /// Which pending open.
        which: u8,
        /// How it went.
        how: OpenHow,
    },
    /// The result of a write the node asked for (success applies it to the partial file).
    Written {
        /// Which pending write.
        which: u8,
        /// Success.
        ok: bool,
    },
    /// A failed write result for any content and index (stale or made up).
    WrittenStale {
        /// Which file's content (or a made-up id past the files).
        file: u8,
        /// Which chunk.
        index: u8,
    },
    /// The result of a finish the node asked for.
    Finished {
        /// Which pending finish.
        which: u8,
        /// Success.
        ok: bool,
    },
    /// We now share the files in this bit mask (bit 7: plus one with a bad name).
    Share(u8),
    /// `get` a file (or a made-up id past the files).
    Get(u8),
    /// `cancel` a file's download.
    Cancel(u8),
    /// Private sharing changes: serve only the remote peers in this bit mask (bits 0 to
    /// `PEERS - 1`), or everyone (bit 7).
    Allow(u8),
    /// `Command::AddPeer`: dial the host at `at` (`at % (PEERS + 1) == PEERS`: the
    /// impostor's), expecting the key of peer `key % (PEERS + 2)` (`PEERS`: a stranger's,
    /// `PEERS + 1`: none), found as `found % 6` says (the first three are discovery's own and
    /// refused).
    AddPeer {
        /// Whose address.
        at: u8,
        /// Which key is expected.
        key: u8,
        /// Which `Found`.
        found: u8,
    },
    /// Shut down.
    Shutdown,
}

/// What a remote peer sends.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone)]
pub enum Payload {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// The preamble of the previous, unencrypted protocol (version 2): an old peer.
    Preamble,
    /// A hello.
    Hello {
        /// As which peer (`PEERS` or more: our own id).
        peer: u8,
        /// Its instance.
        instance: u8,
    },
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A request for a catalog page (0 to 2).
    CatalogRequest {
        /// Which page, modulo 3.
        page: u8,
    },
    /// A catalog page with the files in the mask.
    Catalog {
        /// Which files.
        files: u8,
        /// Add an entry with a bad name.
        bad_name: bool,
        /// Which page of how many (each modulo 3): an out-of-turn page must be dropped.
        page: u8,
        /// How many pages.
        pages: u8,
    },
    /// A manifest request.
    ManifestRequest {
        /// Which file.
        file: u8,
    },
    /// A manifest, maybe with a byte flipped.
    Manifest {
        /// Which file.
        file: u8,
        /// Flip a byte.
        tamper: bool,
    },
    /// A chunk request.
    ChunkRequest {
        /// Which file.
        file: u8,
        /// Which chunk.
        index: u8,
    },
    /// A chunk frame, maybe corrupt.
    Chunk {
        /// Which file.
        file: u8,
        /// Which chunk.
        index: u8,
        /// Flip a byte.
        corrupt: bool,
    },
    /// An error message.
    Error {
        /// Which code (mod 4).
        code: u8,
        /// Which file.
        file: u8,
        /// Which chunk.
        index: Option<u8>,
    },
    /// Asks which chunks of a file the node has.
    Interested {
        /// Which file.
        file: u8,
    },
    /// Claims chunks of a file: a bitfield of `bits` (cut or padded by `len_skew` bytes, so
    /// that some do not fit the manifest).
    Bitfield {
        /// Which file.
        file: u8,
        /// The claimed chunks, one bit each.
        bits: u8,
        /// Bytes off the right length (0: right).
        len_skew: u8,
    },
    /// Claims chunks of a file one by one (indices may lie past its end).
    Have {
        /// Which file.
        file: u8,
        /// Which chunks.
        indices: Vec<u8>,
    },
    /// The answer to the oldest request the node sent on this connection (a corrupt chunk,
    /// `Busy`, `NotFound` per `how`).
    Answer {
        /// 0..=3 good, 4 corrupt, 5 busy, 6 not found, 7 drop the request unanswered.
        how: u8,
    },
}

/// How a read ends.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum ReadHow {
    /// The right bytes.
    Good,
    /// One byte short.
    Short,
    /// A byte flipped.
    Corrupt,
    /// The read failed.
    Fail,
    /// An answer to a read id the node never asked for.
    Stray(u8),
}

/// How opening a partial file ends.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum OpenHow {
    /// Opened with what the harness holds for it.
    Existing,
    /// Opened, claiming this many bytes (the missing ones read back as zeros).
    Claim(u32),
    /// Failed.
    Fail,
}

/// A file the harness knows.
#[derive(Debug, Clone)]
pub struct HFile {
    /// Its name.
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its manifest.
    pub manifest: Manifest,
}

#[derive(Debug, Default)]
struct HConn {
    /// The remote end's handshake and records (made when its handshake starts).
    remote: Option<Channel>,
    /// Which key the remote end has: peer `k`, or `PEERS` for a stranger.
    who: u8,
    /// Bytes from the node, opened, decoded.
    from_node: FrameDecoder,
    /// Requests the node sent and the script has not answered.
    requests: Vec<Message>,
    /// The node closed it (or was told it closed).
    closed: bool,
    /// The node asked not to read it (`NetOp::Pause`): bytes for it wait in `held`.
    paused: bool,
    /// Bytes that arrived while paused, delivered on `NetOp::Resume`.
    held: Vec<Vec<u8>>,
}

/// The scripted runtime.
pub struct Harness {
    /// The node under test, every call checked.
    checked: Checked,
    /// The current time.
    pub now: Instant,
    /// The files.
    pub files: Vec<HFile>,
    manifests: BTreeMap<ContentId, Manifest>,
    conn_order: Vec<ConnId>,
    conns: BTreeMap<ConnId, HConn>,
    reads: Vec<(ReadId, ReadSource, u64, u32)>,
    opens: Vec<ContentId>,
    writes: Vec<(ContentId, u32, u64, Vec<u8>)>,
    finishes: Vec<ContentId>,
    /// The partial files, in the tests' one in-memory disk.
    disk: Store,
    /// Outputs seen, by kind (for tests that want to know how deep a run went).
    pub counts: BTreeMap<&'static str, u64>,
    /// Bytes held while a connection was paused, to deliver now that it was resumed.
    resumed: Vec<(ConnId, Vec<u8>)>,
    /// Each remote peer's announcements so far (its next one's `seq`) and its last datagram.
    announced: BTreeMap<u8, (u64, Vec<u8>)>,
    /// Announcements of our own (for the echo).
    echoes: u64,
}

/// The ops a script starts with (`level` modulo 4): 0, none; 1, peer 0 is found, our link to it
/// is open and its catalog (every file) arrived; 2, and we `get` file 0, its manifest arrived and
/// the partial file is open, so chunk requests are in flight; 3, as 2, and we share every file
/// and peer 1 has connected to us and said hello (so it can ask us for chunks).
pub fn prologue(level: u8) -> Vec<Op> {
    let level = level % 4;
    let mut ops = Vec::new();
    if level >= 1 {
        ops.extend([
            Op::Announce {
                peer: 0,
                instance: 1,
                revision: 1,
                bye: false,
            },
            Op::Connected(0),
            Op::Receive {
                conn: 0,
                payload: Payload::Hello {
                    peer: 0,
                    instance: 1,
                },
                split: 0,
            },
            Op::Receive {
                conn: 0,
                payload: Payload::Answer { how: 0 },
                split: 0,
            },
        ]);
    }
    if level >= 2 {
        ops.extend([
            Op::Get(0),
            Op::Receive {
                conn: 0,
                payload: Payload::Answer { how: 0 },
                split: 0,
            },
            Op::PartialOpened {
                which: 0,
                how: OpenHow::Existing,
            },
        ]);
    }
    if level >= 3 {
        ops.extend([
            Op::Share(0x7f),
            Op::Accept { n: 1, peer: 1 },
            Op::Receive {
                conn: 1,
                payload: Payload::Hello {
                    peer: 1,
                    instance: 1,
                },
                split: 0,
            },
        ]);
    }
    ops
}

/// Remote peer `k`'s identity (`PEERS` or more: a stranger's, the impostor's or the static
/// peer's).
pub fn remote_identity(k: u8) -> Identity {
    if k >= PEERS {
        Identity::from_secret_bytes(&[0x66; 32])
    } else {
        Identity::from_secret_bytes(&[k + 1; 32])
    }
}

/// Remote peer `k`'s id (`PEERS` or more: our own id, which a hello may claim).
pub fn peer_id(k: u8) -> PeerId {
    if k >= PEERS {
        me()
    } else {
        remote_identity(k).key()
    }
}

/// Whose key the host at `ip` holds.
fn who_at(ip: IpAddr) -> u8 {
    (0..PEERS).find(|&k| peer_ip(k) == ip).unwrap_or(PEERS)
}

fn peer_ip(k: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, k % PEERS + 2))
}

/// The address of another host, which claims the peers' ids.
const IMPOSTOR_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));

fn accept_ip(k: u8) -> IpAddr {
    match k % (PEERS + 1) {
        k if k == PEERS => IMPOSTOR_IP,
        k => peer_ip(k),
    }
}

fn file_bytes(spec: FileSpec) -> Vec<u8> {
    let len = spec.len % (MAX_FILE_LEN + 1);
    let mut x = u32::from(spec.seed) | 0x100;
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345 + i);
            (x >> 16) as u8
        })
        .collect()
}

/// A file's manifest, with the smallest chunk size so small files have several chunks.
pub fn manifest_of(data: &[u8]) -> Manifest {
    let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
    b.update(data);
    b.finish().expect("small files fit")
}

impl Harness {
    /// A node at `origin` and the script's files.
    pub fn new(origin: Instant, script: &Script) -> Harness {
        let mut specs: Vec<FileSpec> = script.files.iter().take(MAX_FILES).copied().collect();
        if specs.is_empty() {
            specs.push(FileSpec {
                seed: 1,
                len: 2 * MIN_CHUNK_SIZE + 7,
            });
        }
        let files: Vec<HFile> = specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let data = file_bytes(s);
                let manifest = manifest_of(&data);
                HFile {
                    // Plain names and paths of a shared tree (issue 12).
                    name: match i % 3 {
                        0 => format!("f{i}.bin"),
                        1 => format!("dir/f{i}.bin"),
                        _ => format!("dir/sub{i}/deeper/f{i}.bin"),
                    },
                    data,
                    manifest,
                }
            })
            .collect();
        let manifests = files
            .iter()
            .map(|f| (f.manifest.id(), f.manifest.clone()))
            .collect();
        let mut cfg = Config::new(1, 7, 10000);
        cfg.announce_to = vec![SocketAddr::from(([10, 0, 0, 255], 9999))];
        cfg.aes = script.prologue & 4 != 0;
        if script.static_peer {
            cfg.static_peers = vec![SocketAddr::from(([10, 0, 0, 9], 10000)).into()];
        }
        let me = Identity::from_secret_bytes(&ME_SECRET);
        let node = Node::new(cfg, me, [0xab; 32], origin).expect("a valid configuration");
        let mut checked = Checked::new(node, files.iter().map(|f| f.manifest.clone()));
        checked.max_outputs = MAX_OUTPUTS_PER_CALL;
        // One incomplete frame plus one push (at most 64 KiB here) per connection, and one
        // incomplete record.
        checked.buffered_per_conn = 4 + MAX_FRAME_LEN + (1 << 16) + 2 + 65_535;
        Harness {
            checked,
            now: origin,
            files,
            manifests,
            conn_order: Vec::new(),
            conns: BTreeMap::new(),
            reads: Vec::new(),
            opens: Vec::new(),
            writes: Vec::new(),
            finishes: Vec::new(),
            disk: Store::default(),
            counts: BTreeMap::new(),
            resumed: Vec::new(),
            announced: BTreeMap::new(),
            echoes: 0,
        }
    }

    /// The node under test.
    pub fn node(&self) -> &Node {
        self.checked.node()
    }

    /// Runs a whole script, checking after every step.
    pub fn run(origin: Instant, script: &Script) -> Harness {
        let mut h = Harness::new(origin, script);
        for op in prologue(script.prologue).iter().chain(&script.ops) {
            h.apply(op);
            h.deliver_resumed();
        }
        h
    }

    /// Delivers what waited on resumed connections, in order, as a runtime reading again
    /// would (what arrives for a connection paused again meanwhile waits once more).
    pub fn deliver_resumed(&mut self) {
        while !self.resumed.is_empty() {
            for (conn, data) in std::mem::take(&mut self.resumed) {
                match self.conns.get_mut(&conn) {
                    Some(c) if c.closed => {}
                    Some(c) if c.paused => c.held.push(data),
                    Some(_) => self.input(Input::Received { conn, data }),
                    None => {}
                }
            }
        }
    }

    fn file(&self, sel: u8) -> Option<&HFile> {
        self.files.get(usize::from(sel))
    }

    fn content(&self, sel: u8) -> ContentId {
        match self.file(sel) {
            Some(f) => f.manifest.id(),
            None => ContentId([sel; 32]),
        }
    }

    fn conn(&self, sel: u8) -> ConnId {
        if self.conn_order.is_empty() {
            ConnId(u64::from(sel))
        } else {
            self.conn_order[usize::from(sel) % self.conn_order.len()]
        }
    }

    fn track_conn(&mut self, conn: ConnId) {
        if !self.conns.contains_key(&conn) {
            self.conn_order.push(conn);
        }
        // A new connection under a reused id starts afresh.
        self.conns.insert(conn, HConn::default());
    }

    /// The partial file of `content` as the harness's disk reads it: what was written, zeros
    /// past it (an open may claim more bytes than were written).
    fn partial(disk: &Store, content: &ContentId, size: u64) -> Option<Vec<u8>> {
        let mut f = disk.partial.get(content).cloned().unwrap_or_default();
        f.resize(size as usize, 0);
        Some(f)
    }

    fn input(&mut self, input: Input) {
        let disk = &self.disk;
        let partial = |c: &ContentId, size| Self::partial(disk, c, size);
        let outs = self.checked.input(self.now, input, &partial);
        self.perform(outs.unwrap_or_else(|v| panic!("{v}")));
    }

    fn timeout(&mut self) {
        let disk = &self.disk;
        let partial = |c: &ContentId, size| Self::partial(disk, c, size);
        let heard = |p: &p2pshare_proto::PeerView| p.last_seen;
        let outs = self.checked.timeout(self.now, &partial, &heard);
        self.perform(outs.unwrap_or_else(|v| panic!("{v}")));
    }

    /// Applies one op and checks the invariants.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(*ms)),
            Op::Deadline => {
                if let Some(t) = self.checked.node().poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timeout();
            }
            Op::Timeout => self.timeout(),
            Op::Announce {
                peer,
                instance,
                revision,
                bye,
            } => {
                let k = peer % PEERS;
                let seq = self.announced.get(&k).map_or(0, |(n, _)| *n);
                let a = Announcement {
                    mark: Mark {
                        instance: u64::from(*instance),
                        seq,
                    },
                    port: 10000,
                    revision: u64::from(*revision),
                    bye: *bye,
                };
                let data = signed::encode(&a, &remote_identity(k));
                self.announced.insert(k, (seq + 1, data.clone()));
                let from = SocketAddr::new(peer_ip(k), 9999);
                self.input(Input::Datagram { from, data });
            }
            Op::Claim { peer, bye, .. } => {
                let k = peer % PEERS;
                let Some((_, mut data)) = self.announced.get(&k).cloned() else {
                    return;
                };
                if *bye && let Some(x) = data.last_mut() {
                    *x ^= 1;
                }
                let id = peer_id(k);
                let before = self.checked.node().peers();
                // (At the impostor's own address, the claims are its own entry's.)
                let firm = before
                    .iter()
                    .any(|p| p.id == id && p.confirmed && p.addr.ip() != IMPOSTOR_IP);
                self.input(Input::Datagram {
                    from: SocketAddr::new(IMPOSTOR_IP, 9999),
                    data,
                });
                let after = self.checked.node().peers();
                let known = |v: &[p2pshare_proto::PeerView]| -> Vec<_> {
                    v.iter()
                        .filter(|p| p.id == id)
                        .map(|p| (p.addr, p.last_seen))
                        .collect()
                };
                // Only an entry a connection at its address confirmed is firm (one announced or
                // claimed but never met may still move).
                if firm {
                    assert_eq!(
                        known(&before),
                        known(&after),
                        "a claim from another address changed a known peer"
                    );
                }
            }
            Op::Echo => {
                let a = Announcement {
                    mark: Mark {
                        instance: 1,
                        seq: self.echoes,
                    },
                    port: 10000,
                    revision: 0,
                    bye: false,
                };
                self.echoes += 1;
                let from = SocketAddr::from(([10, 0, 0, 1], 9999));
                self.input(Input::Datagram {
                    from,
                    data: signed::encode(&a, &Identity::from_secret_bytes(&ME_SECRET)),
                });
            }
            Op::RawDatagram(data) => {
                let from = SocketAddr::from(([10, 0, 0, 3], 9999));
                self.input(Input::Datagram {
                    from,
                    data: data.clone(),
                });
            }
            Op::Accept { n, peer } => {
                let remote = SocketAddr::new(accept_ip(*peer), 40000 + u16::from(*n));
                let disk = &self.disk;
                let partial = |c: &ContentId, size| Self::partial(disk, c, size);
                let (admission, outs) = self
                    .checked
                    .accept(self.now, remote, &partial)
                    .unwrap_or_else(|v| panic!("{v}"));
                if let Some(conn) = admission.conn() {
                    assert!(!self.conns.contains_key(&conn), "the node reused {conn:?}");
                    self.track_conn(conn);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.who = who_at(remote.ip());
                    }
                }
                self.perform(outs);
            }
            Op::Connected(c) => {
                let conn = self.conn(*c);
                self.input(Input::Connected { conn });
            }
            Op::ConnectFailed(c) => {
                let conn = self.conn(*c);
                self.mark_closed(conn);
                self.input(Input::ConnectFailed { conn });
            }
            Op::Closed(c) => {
                let conn = self.conn(*c);
                self.mark_closed(conn);
                self.input(Input::Closed { conn });
            }
            Op::Flushed(c) => {
                let conn = self.conn(*c);
                self.input(Input::Flushed { conn });
            }
            Op::Receive {
                conn,
                payload,
                split,
            } => {
                let conn = self.conn(*conn);
                let data = self.payload_bytes(conn, payload);
                if data.is_empty() {
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn)
                    && c.paused
                {
                    // As a runtime would: the bytes wait in the kernel until it reads again.
                    c.held.push(data);
                    return;
                }
                let cut = data.len() * usize::from(*split) / 256;
                // A connection opened to us may claim any id: whatever its bytes say, no
                // listed peer moves to another address (a dialled hello alone decides).
                let inbound = conn.is_inbound();
                let where_before: Vec<_> = if inbound {
                    self.checked
                        .node()
                        .peers()
                        .iter()
                        .map(|p| (p.id, p.addr.ip()))
                        .collect()
                } else {
                    Vec::new()
                };
                if cut == 0 {
                    self.input(Input::Received { conn, data });
                } else {
                    self.input(Input::Received {
                        conn,
                        data: data[..cut].to_vec(),
                    });
                    self.input(Input::Received {
                        conn,
                        data: data[cut..].to_vec(),
                    });
                }
                if inbound {
                    for p in self.checked.node().peers() {
                        let before = where_before.iter().find(|(id, _)| *id == p.id);
                        assert!(
                            before.is_none_or(|(_, ip)| *ip == p.addr.ip()),
                            "bytes on a connection opened to us moved {:?} to {}",
                            p.id,
                            p.addr
                        );
                    }
                }
            }
            Op::ReadDone { read, how } => self.read_done(*read, *how),
            Op::PartialOpened { which, how } => {
                if self.opens.is_empty() {
                    return;
                }
                let content = self.opens.remove(usize::from(*which) % self.opens.len());
                let result = match how {
                    OpenHow::Existing => Ok(self
                        .disk
                        .partial
                        .get(&content)
                        .map_or(0, |p| p.len() as u64)),
                    OpenHow::Claim(n) => Ok(u64::from(*n)),
                    OpenHow::Fail => Err(DiskError::NoSpace),
                };
                self.input(Input::PartialOpened { content, result });
            }
            Op::Written { which, ok } => {
                if self.writes.is_empty() {
                    return;
                }
                let (content, index, offset, data) =
                    self.writes.remove(usize::from(*which) % self.writes.len());
                let result = if *ok {
                    self.disk.write(content, offset, &data);
                    Ok(())
                } else {
                    Err(DiskError::Other("disk on fire".into()))
                };
                self.input(Input::Written {
                    content,
                    index,
                    result,
                });
            }
            Op::WrittenStale { file, index } => {
                let content = self.content(*file);
                self.input(Input::Written {
                    content,
                    index: u32::from(*index),
                    result: Err(DiskError::NotFound),
                });
            }
            Op::Finished { which, ok } => {
                if self.finishes.is_empty() {
                    return;
                }
                let content = self
                    .finishes
                    .remove(usize::from(*which) % self.finishes.len());
                let result = if *ok {
                    Ok(format!("dl_{}", content.short()))
                } else {
                    Err(FinishError::HashMismatch)
                };
                self.input(Input::Finished { content, result });
            }
            Op::Share(mask) => {
                let mut files: Vec<LocalFile> = self
                    .files
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, f)| LocalFile {
                        name: f.name.clone(),
                        manifest: f.manifest.clone(),
                    })
                    .collect();
                if mask & 0x80 != 0
                    && let Some(f) = self.files.first()
                {
                    files.push(LocalFile {
                        name: "../escape".into(),
                        manifest: f.manifest.clone(),
                    });
                }
                self.input(Input::CatalogChanged { files });
            }
            Op::Get(f) => {
                let c = self.content(*f);
                self.input(Input::Command(Command::Get {
                    content: c,
                    name: None,
                }));
            }
            Op::Cancel(f) => {
                let c = self.content(*f);
                self.input(Input::Command(Command::Cancel(c)));
            }
            Op::Allow(mask) => {
                let keys = (mask & 0x80 == 0).then(|| {
                    (0..PEERS)
                        .filter(|k| mask & (1 << k) != 0)
                        .map(|k| remote_identity(k).key())
                        .collect()
                });
                self.input(Input::Allow { keys });
            }
            Op::AddPeer { at, key, found } => {
                let addr = SocketAddr::new(accept_ip(*at), 10000);
                let key = match key % (PEERS + 2) {
                    k if k < PEERS => Some(remote_identity(k).key()),
                    k if k == PEERS => Some(PeerId([0xee; 32])),
                    _ => None,
                };
                let found = [
                    Found::Broadcast,
                    Found::Multicast,
                    Found::Inbound,
                    Found::Known,
                    Found::Link,
                    Found::Static,
                    Found::Dht,
                ][usize::from(found % 7)];
                self.input(Input::Command(Command::AddPeer { addr, key, found }));
            }
            Op::Shutdown => self.input(Input::Command(Command::Shutdown)),
        }
    }

    fn mark_closed(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closed = true;
        }
    }

    fn read_done(&mut self, sel: u8, how: ReadHow) {
        if let ReadHow::Stray(n) = how {
            let read = ReadId(u64::from(n) + 1_000_000);
            self.input(Input::ReadDone {
                read,
                result: Ok(vec![n; 3]),
            });
            return;
        }
        if self.reads.is_empty() {
            return;
        }
        let (read, source, offset, len) = self.reads.remove(usize::from(sel) % self.reads.len());
        let bytes = match source {
            ReadSource::Shared(c) => self
                .files
                .iter()
                .find(|f| f.manifest.id() == c)
                .map(|f| f.data.clone()),
            ReadSource::Partial(c) => self.disk.partial.get(&c).cloned(),
        };
        let (o, l) = (offset as usize, len as usize);
        let result = match (bytes, how) {
            (_, ReadHow::Fail) | (None, _) => Err(DiskError::NotFound),
            (Some(mut b), how) => {
                if b.len() < o + l {
                    b.resize(o + l, 0);
                }
                let mut d = b[o..o + l].to_vec();
                match how {
                    ReadHow::Short => {
                        d.pop();
                    }
                    ReadHow::Corrupt => {
                        if let Some(x) = d.first_mut() {
                            *x ^= 0x55;
                        }
                    }
                    _ => {}
                }
                Ok(d)
            }
        };
        self.input(Input::ReadDone { read, result });
    }

    fn frame_of_file(&self, file: u8, index: u8, corrupt: bool) -> Vec<u8> {
        let content = self.content(file);
        let (off, len) = self
            .file(file)
            .and_then(|f| f.manifest.chunk_range(u32::from(index)))
            .unwrap_or((0, 5));
        let mut data = match self.file(file) {
            Some(f) if (off as usize + len as usize) <= f.data.len() => {
                f.data[off as usize..off as usize + len as usize].to_vec()
            }
            _ => vec![7; len as usize],
        };
        if corrupt {
            match data.last_mut() {
                Some(x) => *x ^= 1,
                None => data.push(0),
            }
        }
        let mut out = encode_chunk_header(&content, u32::from(index), data.len());
        out.extend_from_slice(&data);
        out
    }

    fn catalog(&self, mask: u8, bad_name: bool) -> Message {
        let mut files: Vec<CatalogEntry> = self
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, f)| CatalogEntry {
                name: f.name.clone(),
                size: f.manifest.size(),
                content: f.manifest.id(),
                partial: false,
            })
            .collect();
        if bad_name {
            for (k, name) in ["a/../../etc", "/abs", "a//b", "dir/.hidden/x", "dir/"]
                .into_iter()
                .enumerate()
            {
                files.push(CatalogEntry {
                    name: name.into(),
                    size: 1,
                    content: ContentId([1 + k as u8; 32]),
                    partial: false,
                });
            }
        }
        Message::Catalog {
            revision: 1,
            page: 0,
            pages: 1,
            files,
        }
    }

    fn manifest_msg(&self, content: ContentId, tamper: bool) -> Message {
        let mut bytes = self
            .manifests
            .get(&content)
            .map_or_else(|| b"P2PSMAN1".to_vec(), Manifest::encode);
        if tamper && let Some(x) = bytes.last_mut() {
            *x ^= 0x80;
        }
        Message::Manifest { content, bytes }
    }

    /// Starts the remote end's handshake on a connection opened to the node (the remote
    /// dials), and runs it as far as it goes now.
    fn ensure_handshake(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !conn.is_inbound() || c.closed {
            return;
        }
        let who = c.who;
        let remote = c
            .remote
            .get_or_insert_with(|| remote_channel(who, true, conn));
        let mut first = Vec::new();
        remote.poll_transmit(&mut first);
        if !first.is_empty() {
            self.resumed.push((conn, first));
        }
        self.deliver_resumed();
    }

    fn payload_bytes(&mut self, conn: ConnId, p: &Payload) -> Vec<u8> {
        if !matches!(p, Payload::Raw(_) | Payload::Preamble) {
            self.ensure_handshake(conn);
        }
        let mut out = Vec::new();
        match p {
            Payload::Raw(b) => return b.clone(),
            Payload::Preamble => return b"P2PT\x02".to_vec(),
            Payload::Hello { peer, instance } => {
                out.extend(encode_message(&Message::Hello {
                    peer: peer_id(*peer % (PEERS + 1)),
                    instance: u64::from(*instance),
                    port: 10000,
                    revision: 0,
                }));
            }
            Payload::Ping => out.extend(encode_message(&Message::Ping)),
            Payload::Pong => out.extend(encode_message(&Message::Pong)),
            Payload::CatalogRequest { page } => {
                out.extend(encode_message(&Message::CatalogRequest {
                    page: u32::from(*page % 3),
                }))
            }
            Payload::Catalog {
                files,
                bad_name,
                page,
                pages,
            } => {
                let mut m = self.catalog(*files, *bad_name);
                if let Message::Catalog {
                    page: p, pages: n, ..
                } = &mut m
                {
                    *p = u32::from(*page % 3);
                    *n = u32::from(*pages % 3);
                }
                out.extend(encode_message(&m));
            }
            Payload::ManifestRequest { file } => {
                let content = self.content(*file);
                out.extend(encode_message(&Message::ManifestRequest { content }));
            }
            Payload::Manifest { file, tamper } => {
                let content = self.content(*file);
                out.extend(encode_message(&self.manifest_msg(content, *tamper)));
            }
            Payload::ChunkRequest { file, index } => {
                let content = self.content(*file);
                out.extend(encode_message(&Message::ChunkRequest {
                    content,
                    index: u32::from(*index),
                }));
            }
            Payload::Interested { file } => {
                let content = self.content(*file);
                out.extend(encode_message(&Message::Interested { content }));
            }
            Payload::Bitfield {
                file,
                bits,
                len_skew,
            } => {
                let content = self.content(*file);
                let mut b = vec![*bits];
                b.resize(1 + usize::from(*len_skew % 3), 0);
                if *len_skew % 5 == 4 {
                    b.clear();
                }
                out.extend(encode_message(&Message::Bitfield { content, bits: b }));
            }
            Payload::Have { file, indices } => {
                let content = self.content(*file);
                let indices = indices.iter().map(|&i| u32::from(i)).collect();
                out.extend(encode_message(&Message::Have { content, indices }));
            }
            Payload::Chunk {
                file,
                index,
                corrupt,
            } => out.extend(self.frame_of_file(*file, *index, *corrupt)),
            Payload::Error { code, file, index } => {
                let code = match code % 5 {
                    0 => ErrorCode::NotFound,
                    1 => ErrorCode::ReadFailed,
                    2 => ErrorCode::Busy,
                    3 => ErrorCode::Taken,
                    _ => ErrorCode::BadRequest,
                };
                out.extend(encode_message(&Message::Error {
                    code,
                    content: self.content(*file),
                    index: index.map(u32::from),
                }));
            }
            Payload::Answer { how } => {
                let req = self
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| (!c.requests.is_empty()).then(|| c.requests.remove(0)));
                if let Some(req) = req {
                    out.extend(self.answer(&req, *how % 8));
                }
            }
        }
        // Sealed once the handshake is done; before it, the frames go in clear (and break it).
        match self.conns.get_mut(&conn).and_then(|c| c.remote.as_mut()) {
            Some(r) if r.is_open() => {
                let mut sealed = Vec::new();
                r.seal(&out, &mut sealed).expect("the remote end seals");
                sealed
            }
            _ => out,
        }
    }

    fn answer(&self, req: &Message, how: u8) -> Vec<u8> {
        let refuse = |code, content, index| {
            encode_message(&Message::Error {
                code,
                content,
                index,
            })
        };
        match (req, how) {
            (_, 7) => Vec::new(),
            (Message::Ping, _) => encode_message(&Message::Pong),
            (Message::CatalogRequest { .. }, _) => encode_message(&self.catalog(0xff, how == 4)),
            (Message::ManifestRequest { content }, 5 | 6) => {
                refuse(ErrorCode::NotFound, *content, None)
            }
            (Message::ManifestRequest { content }, _) => {
                encode_message(&self.manifest_msg(*content, how == 4))
            }
            (Message::ChunkRequest { content, index }, 5) => {
                refuse(ErrorCode::Busy, *content, Some(*index))
            }
            (Message::ChunkRequest { content, index }, 6) => {
                refuse(ErrorCode::NotFound, *content, Some(*index))
            }
            (Message::ChunkRequest { content, index }, _) => {
                let file = self.files.iter().position(|f| f.manifest.id() == *content);
                match (file, u8::try_from(*index)) {
                    (Some(f), Ok(i)) => self.frame_of_file(f as u8, i, how == 4),
                    _ => refuse(ErrorCode::BadRequest, *content, Some(*index)),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Performs what the node asked for (the checked pump checked it), as the harness's
    /// network and disk, and records it.
    fn perform(&mut self, outs: Vec<Output>) {
        for out in outs {
            let kind = match &out {
                Output::Net(NetOp::Datagram { .. }) => "datagram",
                Output::Net(NetOp::Connect { .. }) => "connect",
                Output::Net(NetOp::Send { .. }) => "send",
                Output::Net(NetOp::Pause { .. }) => "pause",
                Output::Net(NetOp::Resume { .. }) => "resume",
                Output::Net(NetOp::Close { .. }) => "close",
                Output::Disk(DiskOp::Read { .. }) => "read",
                Output::Disk(DiskOp::OpenPartial { .. }) => "open_partial",
                Output::Disk(DiskOp::Write { .. }) => "write",
                Output::Disk(DiskOp::Finish { .. }) => "finish",
                Output::Disk(DiskOp::ClosePartial { .. }) => "close_partial",
                Output::Event(_) => "event",
            };
            *self.counts.entry(kind).or_default() += 1;
            match out {
                Output::Net(NetOp::Datagram { data, .. }) => {
                    assert!(
                        signed::decode(&data).is_ok_and(|u| u.verify().is_ok()),
                        "we send what we accept"
                    );
                }
                Output::Net(NetOp::Connect { conn, addr }) => {
                    assert!(
                        self.conns.get(&conn).is_none_or(|c| c.closed),
                        "connect on an id in use"
                    );
                    self.track_conn(conn);
                    let who = who_at(addr.ip());
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.who = who;
                        c.remote = Some(remote_channel(who, false, conn));
                    }
                }
                Output::Net(NetOp::Send { conn, data }) => {
                    let c = self.conns.get_mut(&conn);
                    let c = c.unwrap_or_else(|| panic!("send on unknown {conn:?}"));
                    assert!(!c.closed, "send on closed {conn:?}");
                    // (An accepted connection's remote end starts when the node speaks first.)
                    let who = c.who;
                    let remote = c
                        .remote
                        .get_or_insert_with(|| remote_channel(who, conn.is_inbound(), conn));
                    let mut plain = Vec::new();
                    if let Err(e) = remote.receive(&data, &mut plain) {
                        panic!("the node's handshake or records on {conn:?} fail: {e}");
                    }
                    let mut reply = Vec::new();
                    remote.poll_transmit(&mut reply);
                    if !reply.is_empty() {
                        self.resumed.push((conn, reply));
                    }
                    c.from_node.push(&plain);
                    loop {
                        match c.from_node.next_frame() {
                            Ok(Some(Frame::Message(m))) => {
                                if matches!(
                                    m,
                                    Message::Ping
                                        | Message::CatalogRequest { .. }
                                        | Message::ManifestRequest { .. }
                                        | Message::ChunkRequest { .. }
                                ) {
                                    c.requests.push(m);
                                }
                            }
                            Ok(Some(Frame::Chunk { .. })) => {}
                            Ok(Some(Frame::Unreadable)) => panic!("the node sent a bad frame"),
                            Ok(None) => break,
                            Err(e) => panic!("the node's stream does not frame: {e}"),
                        }
                    }
                }
                Output::Net(NetOp::Pause { conn }) => {
                    let c = self.conns.get_mut(&conn);
                    let c = c.unwrap_or_else(|| panic!("pause of unknown {conn:?}"));
                    assert!(!c.closed, "pause of closed {conn:?}");
                    assert!(!c.paused, "pause of paused {conn:?}");
                    c.paused = true;
                }
                Output::Net(NetOp::Resume { conn }) => {
                    let c = self.conns.get_mut(&conn);
                    let c = c.unwrap_or_else(|| panic!("resume of unknown {conn:?}"));
                    assert!(!c.closed, "resume of closed {conn:?}");
                    assert!(c.paused, "resume of a connection not paused {conn:?}");
                    c.paused = false;
                    let held = std::mem::take(&mut c.held);
                    self.resumed.extend(held.into_iter().map(|d| (conn, d)));
                }
                Output::Net(NetOp::Close { conn }) => {
                    let c = self.conns.get_mut(&conn);
                    let c = c.unwrap_or_else(|| panic!("close of unknown {conn:?}"));
                    assert!(!c.closed, "double close of {conn:?}");
                    c.closed = true;
                }
                Output::Disk(DiskOp::Read {
                    read,
                    source,
                    offset,
                    len,
                }) => {
                    self.reads.push((read, source, offset, len));
                }
                Output::Disk(DiskOp::OpenPartial { content, .. }) => self.opens.push(content),
                Output::Disk(DiskOp::Write {
                    content,
                    index,
                    offset,
                    data,
                }) => self.writes.push((content, index, offset, data)),
                Output::Disk(DiskOp::Finish { content, .. }) => self.finishes.push(content),
                Output::Disk(DiskOp::ClosePartial { .. }) | Output::Event(_) => {}
            }
        }
    }
}

/// The remote end of `conn` with peer `who`'s key: the dialer (expecting our key) on a
/// connection opened to the node, the acceptor on one the node opened. Its AES flag and
/// its handshake's randomness come from the connection's id, so a run replays exactly.
fn remote_channel(who: u8, dials: bool, conn: ConnId) -> Channel {
    let mut seed = [who; 32];
    seed[..8].copy_from_slice(&conn.0.to_le_bytes());
    let mut rng = KeyRng::new(seed);
    let keys = LocalKeys::new(&remote_identity(who), &mut rng);
    let aes = conn.0.is_multiple_of(2);
    if dials {
        Channel::dial(&keys, Some(me()), aes, rng.seed())
    } else {
        Channel::accept(&keys, aes, rng.seed())
    }
}
