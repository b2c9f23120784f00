//! Adversaries: hosts on the LAN that speak the protocol and misbehave on purpose (issue 10).
//!
//! Three are no node at all: the simulator speaks for them, on connections whose end 0 is
//! theirs (`SimConn::raw`: a real handshake under the adversary's own key, then sealed
//! records) and with datagrams from their address.
//! - [`Behaviour::Impersonator`] connects to hosts that still want a file, each time saying
//!   hello under the id of a holder of that file (the holder's real instance, or a fresh one)
//!   after a handshake that proved its own key (it holds no other),
//!   and every few milliseconds while the victim downloads answers what it has in flight to
//!   that holder (it peeks: an
//!   attacker that times its junk perfectly) with junk: a corrupt chunk and then a "not
//!   found" for each chunk, a manifest that does not hash and a "not found" for the
//!   manifest. It reads and discards what it is sent.
//! - [`Behaviour::AskNoRead`] connects to a host (one that shares something, if any does), says
//!   hello, and asks in a loop — chunks of the biggest file the victim shares, its manifest,
//!   its catalog — without ever reading: what the victim sends stays in the asker's kernel
//!   buffer ([`KERNEL_BUF`]), so the victim's `Flushed` stops coming. It writes a burst of
//!   16–48 requests every 30–80 ms while the bytes the victim has not read fit in a kernel
//!   buffer too (TCP pushes back), and connects again once the victim has closed.
//! - [`Behaviour::TableFlood`] announces batches of [`FLOOD_IDS`] fresh peer ids from its
//!   address, half of the batches with a port nothing listens on.
//!
//! - [`Behaviour::Spoofer`] holds no honest host's key: every 2–12 ms in the first second and
//!   every 40–120 ms after, it replays one honest host's captured signed datagrams after
//!   another: the oldest it kept and the latest from its own address, a goodbye in the
//!   victim's name newer than its latest but signed by the spoofer's own key (a forgery), and
//!   the oldest from the victim's own address (a spoofed
//!   source: what no address rule can stop; only the marks do). It is drawn from a stream of
//!   its own ([`SPOOFER_STREAM`]), so the worlds that do not draw it run as before it
//!   existed.
//!
//! The fifth, [`Behaviour::DripFeed`], is a real node holding files (one of them held by no
//! one else, and wanted) whose stream, from its first chunk frame on, trickles out
//! [`DRIP_BYTES`] every [`DRIP_GAP`]: the connection never stalls, the chunks never arrive.
//!
//! Which adversaries a world has is drawn from a stream of its own ([`ADVERSARY_STREAM`],
//! derived from the seed) after everything else of the world is drawn, and they are added as
//! extra hosts after the others: a seed that draws none runs exactly as it did before
//! adversaries existed (same trace hash). Adversaries never heal: they act until the run ends.

use super::*;
use p2pshare_proto::manifest::MIN_CHUNK_SIZE;
use p2pshare_proto::noise::LocalKeys;
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::frame::{ErrorCode, encode_chunk_header, encode_message};
use p2pshare_proto::wire::signed::{self, Announcement, Mark};

/// Mixed into the seed for the adversary stream, so the rest of a world does not depend on it.
pub const ADVERSARY_STREAM: u64 = 0x4144_5645_5253_4152;
/// Share of the worlds that have adversaries.
pub const ADVERSARY_RATE: f64 = 0.2;
/// Mixed into the seed for the spoofer's own stream.
pub const SPOOFER_STREAM: u64 = 0x5350_4f4f_4645_5221;
/// Share of the worlds that have a spoofer.
pub const SPOOFER_RATE: f64 = 0.2;
/// An impersonator answers the same requests in flight again only after this long.
pub const JUNK_REPEAT: Nanos = 100 * MS;
/// Bytes a drip-feeder lets out at a time...
pub const DRIP_BYTES: usize = 48;
/// ... and how often: well inside the stall timeout (5 s), so its connection never stalls.
pub const DRIP_GAP: Nanos = SEC;
/// The most a drip-feeder's connection keeps to trickle out (hours at that rate).
pub const DRIP_MAX: usize = 256 << 10;
/// Fresh peer ids a flooder announces per batch (more than a table takes from one address).
pub const FLOOD_IDS: usize = 48;
/// Peer-table entries a node takes from one IP address (proto's `MAX_PEERS_PER_IP`).
pub const PEERS_PER_IP: usize = 32;
/// Peer-table entries a node takes in all (proto's `MAX_PEERS`).
pub const MAX_PEERS: usize = 1024;

/// A request an impersonator answers with junk: content, chunk index, or its manifest.
type Target = (ContentId, u32, bool);

/// What an adversary that is no node keeps between its acts.
#[derive(Debug, Default)]
pub struct Raw {
    /// Its connections: the connection, the victim, the host it claims to be (an asker: itself),
    /// the files it talks about.
    conns: Vec<(usize, usize, usize, Vec<usize>)>,
    /// No new connection before this.
    next_connect: Nanos,
    /// Where its requests are in the victim's chunks.
    cursor: usize,
    /// Its current turn (see `Act::Adversary`).
    turn: u64,
    /// An impersonator's last junk per connection: what it answered, and when.
    junked: BTreeMap<usize, (Vec<Target>, Nanos)>,
    /// A spoofer's victim of the current round of four claims, and the instance it made up.
    spoofing: Option<(usize, u64)>,
}

/// Adds the adversaries of `sim`'s seed (if it draws any) after the rest of the world.
pub fn populate(sim: &mut Sim, bugs: Bugs) {
    populate_others(sim, bugs);
    let mut r = SimRng::new(sim.seed ^ SPOOFER_STREAM);
    if r.chance(SPOOFER_RATE) {
        let h = sim.add_host(Behaviour::Spoofer, bugs);
        sim.hosts[h].instance = r.u64();
        sim.raws.insert(h, Raw::default());
        // From the start: a peer is unmet only until a connection to it completes.
        let at = r.range(0, 50 * MS);
        sim.act(at, Act::Adversary { host: h, turn: 0 });
    }
}

fn populate_others(sim: &mut Sim, bugs: Bugs) {
    let mut r = SimRng::new(sim.seed ^ ADVERSARY_STREAM);
    if !r.chance(ADVERSARY_RATE) {
        return;
    }
    let normal = sim.hosts.len();
    for _ in 0..r.range(1, 2) {
        let b = match r.below(4) {
            0 => Behaviour::Impersonator,
            1 => Behaviour::AskNoRead,
            2 => Behaviour::DripFeed,
            _ => Behaviour::TableFlood,
        };
        let h = sim.add_host(b, bugs);
        if b.is_raw() {
            sim.hosts[h].instance = r.u64();
            sim.raws.insert(h, Raw::default());
            // Early: downloads start from 300 ms on.
            let at = r.range(100 * MS, 400 * MS);
            sim.act(at, Act::Adversary { host: h, turn: 0 });
            continue;
        }
        // A drip-feeder: a file only it holds, wanted by someone, and maybe one of the others.
        let chunks = r.range(1, 4) as usize;
        let size =
            chunks * MIN_CHUNK_SIZE as usize + r.range(1, u64::from(MIN_CHUNK_SIZE)) as usize;
        let f = sim.add_file(format!("drip{h}.bin"), r.bytes(size));
        sim.hold(h, f, true);
        let wanter = r.below(normal);
        let at = r.range(300 * MS, 4 * SEC);
        sim.want(wanter, f, at);
        if r.chance(0.7) {
            let other = r.below(f);
            sim.hold(h, other, true);
        }
    }
}

impl Sim {
    /// Adversary `a` acts (unless `turn` is stale), and schedules its next act.
    pub(super) fn adversary_act(&mut self, a: usize, turn: u64) {
        if self.raws.get(&a).is_none_or(|r| r.turn != turn) {
            return;
        }
        let next = match self.hosts[a].behaviour {
            Behaviour::Impersonator => {
                // Watching closely while a victim downloads, idly otherwise.
                if self.impersonate(a) {
                    self.rng.range(2 * MS, 6 * MS)
                } else {
                    self.rng.range(30 * MS, 60 * MS)
                }
            }
            Behaviour::AskNoRead => {
                self.ask(a);
                self.rng.range(30 * MS, 80 * MS)
            }
            Behaviour::TableFlood => {
                self.flood(a);
                self.rng.range(SEC, 3 * SEC)
            }
            Behaviour::Spoofer => {
                self.spoof(a);
                // Fast while peers are still meeting each other, then at a pace that keeps a
                // world's run short.
                if self.now < SEC {
                    self.rng.range(2 * MS, 12 * MS)
                } else {
                    self.rng.range(40 * MS, 120 * MS)
                }
            }
            _ => return,
        };
        self.reschedule(a, self.now + next);
    }

    /// Adversary `a`'s next act is at `at` (and no earlier one stands).
    fn reschedule(&mut self, a: usize, at: Nanos) {
        let Some(raw) = self.raws.get_mut(&a) else {
            return;
        };
        raw.turn += 1;
        let turn = raw.turn;
        self.act(at, Act::Adversary { host: a, turn });
    }

    /// Host `h` starts a download: the impersonators on it act at once (they see the
    /// victim's requests go out, as one on the path would).
    pub(super) fn wake_impersonators(&mut self, h: usize) {
        let awake: Vec<usize> = self
            .raws
            .iter()
            .filter(|(_, r)| r.conns.iter().any(|&(_, v, ..)| v == h))
            .map(|(&a, _)| a)
            .collect();
        for a in awake {
            self.reschedule(a, self.now);
        }
    }

    /// An event on an adversary's end: its handshake goes on; after it, bytes are read and
    /// dropped (or held, by one that does not read); a close or reset ends its side.
    pub(super) fn raw_event(&mut self, ev: Ev) {
        match ev {
            Ev::Bytes { cid, data, .. }
                if self.conns[cid].holding[0]
                    && self.conns[cid].adv.as_ref().is_some_and(|c| c.is_open()) =>
            {
                self.conns[cid].held[0].push_back(Some(data));
            }
            Ev::Bytes { cid, data, .. } => {
                let c = &mut self.conns[cid];
                let Some(adv) = c.adv.as_mut() else {
                    return;
                };
                let mut plain = Vec::new();
                let r = adv.receive(&data, &mut plain);
                let mut out = Vec::new();
                adv.poll_transmit(&mut out);
                if r.as_ref().is_ok_and(Option::is_some) {
                    let said = std::mem::take(&mut c.adv_out);
                    if adv.seal(&said, &mut out).is_err() {
                        out.clear();
                    }
                }
                if !out.is_empty() {
                    self.transmit(cid, 0, out);
                }
            }
            Ev::Fin { cid, .. } | Ev::Reset { cid, .. } => self.conns[cid].ends[0].open = false,
            _ => {}
        }
    }

    /// True once the adversary's handshake on `cid` is done.
    fn raw_open(&self, cid: usize) -> bool {
        self.conns[cid].adv.as_ref().is_some_and(|c| c.is_open())
    }

    /// Adversary end of `cid` says `plain`: sealed if its handshake is done, else once it is.
    fn raw_send(&mut self, cid: usize, plain: Vec<u8>) {
        let c = &mut self.conns[cid];
        match c.adv.as_mut() {
            Some(adv) if adv.is_open() => {
                let mut out = Vec::new();
                if adv.seal(&plain, &mut out).is_ok() {
                    self.transmit(cid, 0, out);
                }
            }
            _ => c.adv_out.extend(plain),
        }
    }

    /// The next few bytes a drip-feeder lets out on `cid`.
    pub(super) fn drip(&mut self, cid: usize, end: usize) {
        let to = 1 - end;
        let c = &mut self.conns[cid];
        c.dripping[end] = false;
        if !c.ends[end].open || !c.ends[to].open || c.reset {
            c.drip[end].clear();
            return;
        }
        let n = DRIP_BYTES.min(c.drip[end].len());
        if n == 0 {
            return;
        }
        let piece: Vec<u8> = c.drip[end].drain(..n).collect();
        let more = !c.drip[end].is_empty();
        let lat = self.link_lat(
            self.conns[cid].ends[end].host,
            self.conns[cid].ends[to].host,
        );
        let at = (self.now + lat).max(self.conns[cid].last_arrival[to]);
        self.conns[cid].last_arrival[to] = at;
        self.schedule(
            at,
            Ev::Bytes {
                cid,
                to,
                data: piece,
            },
        );
        if more {
            self.conns[cid].dripping[end] = true;
            self.schedule(self.now + DRIP_GAP, Ev::Drip { cid, end });
        }
    }

    /// Opens a connection from adversary `a` to host `v` (if `v` runs and is reachable); `hold`:
    /// `a` never reads it.
    fn raw_connect(&mut self, a: usize, v: usize, hold: bool) -> Option<usize> {
        if self.hosts[v].node.is_none() || self.hosts[v].group != self.hosts[a].group {
            return None;
        }
        let ends = [
            End {
                host: a,
                inc: 0,
                conn: None,
                open: true,
            },
            End {
                host: v,
                inc: self.hosts[v].inc,
                conn: None,
                open: true,
            },
        ];
        let mut c = SimConn::new(ends);
        c.raw = true;
        c.holding[0] = hold;
        let cid = self.conns.len();
        // Its own key (the only one it has), its secrets drawn from the seed and the
        // connection (no draw from the world's stream); it expects the victim's key.
        let mut material = self.hosts[a].secret.to_vec();
        material.extend((cid as u64).to_le_bytes());
        let mut rng = KeyRng::new(p2pshare_proto::sha256(&material));
        let me = p2pshare_proto::Identity::from_secret_bytes(&self.hosts[a].secret);
        let keys = LocalKeys::new(&me, &mut rng);
        let mut adv = Channel::dial(
            &keys,
            Some(self.hosts[v].id),
            cid.is_multiple_of(2),
            rng.seed(),
        );
        let mut first = Vec::new();
        adv.poll_transmit(&mut first);
        c.adv = Some(Box::new(adv));
        self.conns.push(c);
        self.log(format!("adversary h{a} connects to h{v} (c{cid})"));
        self.schedule(self.now + self.link_lat(a, v), Ev::Accepted { cid });
        self.transmit(cid, 0, first);
        Some(cid)
    }

    /// A hello claiming `peer`.
    fn raw_hello(peer: PeerId, instance: u64) -> Vec<u8> {
        encode_message(&Message::Hello {
            peer,
            instance,
            port: 10000,
            revision: 0,
        })
    }

    /// Forgets adversary `a`'s connections that either side has closed; returns how many.
    fn prune_raw(&mut self, a: usize) -> usize {
        let mut raw = self.raws.remove(&a).unwrap_or_default();
        let before = raw.conns.len();
        raw.conns.retain(|&(cid, ..)| {
            let c = &self.conns[cid];
            c.ends.iter().all(|e| e.open) && !c.reset
        });
        let conns = &raw.conns;
        raw.junked
            .retain(|cid, _| conns.iter().any(|&(c, ..)| c == *cid));
        if raw.conns.len() < before {
            raw.next_connect = raw
                .next_connect
                .max(self.now + self.rng.range(500 * MS, 2 * SEC));
        }
        let n = raw.conns.len();
        self.raws.insert(a, raw);
        n
    }

    /// Impersonator `a`: keeps up to six connections to hosts that still want a file, each
    /// claiming a holder of it (a new one at most every 50 ms), and on each sends junk answers
    /// to what the victim has in flight to the claimed holder: it peeks at the victim's
    /// downloads, an attacker that times its junk perfectly (a blind one only needs more
    /// bytes). True while a victim has a download of what it talks about under way.
    fn impersonate(&mut self, a: usize) -> bool {
        if self.prune_raw(a) < 6 && self.raws[&a].next_connect <= self.now {
            // (victim, claimed holder) not claimed yet
            let mut pairs = Vec::new();
            for w in self.wants.iter().filter(|w| !w.done) {
                for (x, host) in self.hosts.iter().enumerate() {
                    let holds = host
                        .catalog
                        .iter()
                        .any(|f| f.manifest.id() == self.files[w.file].manifest.id());
                    if x != w.host
                        && holds
                        && self.hosts[w.host].node.is_some()
                        && !self.raws[&a]
                            .conns
                            .iter()
                            .any(|&(_, v, c, _)| (v, c) == (w.host, x))
                    {
                        pairs.push((w.host, x));
                    }
                }
            }
            if !pairs.is_empty() {
                let (v, x) = pairs[self.rng.below(pairs.len())];
                let files: Vec<usize> = self
                    .wants
                    .iter()
                    .filter(|w| w.host == v)
                    .map(|w| w.file)
                    .collect();
                let instance = if self.rng.chance(0.5) {
                    self.hosts[x].instance
                } else {
                    self.rng.u64()
                };
                if let Some(cid) = self.raw_connect(a, v, false) {
                    self.log(format!("adversary h{a} claims to be h{x} to h{v}"));
                    let hello = Self::raw_hello(self.hosts[x].id, instance);
                    self.raw_send(cid, hello);
                    self.raws
                        .get_mut(&a)
                        .unwrap()
                        .conns
                        .push((cid, v, x, files));
                }
            }
            self.raws.get_mut(&a).unwrap().next_connect = self.now + 50 * MS;
        }
        let conns = self.raws[&a].conns.clone();
        let mut watching = false;
        for (cid, v, x, files) in conns {
            if !self.raw_open(cid) {
                continue;
            }
            let claimed = self.hosts[x].id;
            let mut junk = Vec::new();
            let mut targets = Vec::new();
            for &f in &files {
                let c = self.files[f].manifest.id();
                let Some(d) = self.hosts[v].node.as_ref().and_then(|n| n.download(&c)) else {
                    continue;
                };
                watching = true;
                let inflight: Vec<u32> = d
                    .peers()
                    .get(&claimed)
                    .map(|p| p.inflight.iter().copied().collect())
                    .unwrap_or_default();
                targets.extend(inflight.iter().map(|&i| (c, i, false)));
                if d.manifest_from() == Some(claimed) {
                    targets.push((c, 0, true));
                }
                // Corrupt chunks first: a refusal that counted would take the chunk first.
                for &i in &inflight {
                    let data = self.rng.bytes(32);
                    junk.extend(encode_chunk_header(&c, i, data.len()));
                    junk.extend(data);
                }
                for &i in &inflight {
                    junk.extend(encode_message(&Message::Error {
                        code: ErrorCode::NotFound,
                        content: c,
                        index: Some(i),
                    }));
                }
                if d.manifest_from() == Some(claimed) {
                    junk.extend(encode_message(&Message::Manifest {
                        content: c,
                        bytes: self.rng.bytes(64),
                    }));
                    junk.extend(encode_message(&Message::Error {
                        code: ErrorCode::NotFound,
                        content: c,
                        index: None,
                    }));
                }
            }
            // The same requests answered less than JUNK_REPEAT ago: once is enough.
            let raw = self.raws.get_mut(&a).unwrap();
            let repeat = raw
                .junked
                .get(&cid)
                .is_some_and(|(t, at)| *t == targets && self.now < at + JUNK_REPEAT);
            if !junk.is_empty() && !repeat {
                raw.junked.insert(cid, (targets, self.now));
                self.raw_send(cid, junk);
            }
        }
        watching
    }

    /// Asker `a`: keeps one connection it never reads, and writes a burst of requests on it
    /// while the victim's unread bytes fit in a kernel buffer.
    fn ask(&mut self, a: usize) {
        if self.prune_raw(a) == 0 && self.raws[&a].next_connect <= self.now {
            // Nodes that speak honestly on the wire (a drip-feeder's unread bytes would only
            // pile up in its own trickle).
            let running: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| {
                    self.hosts[h].node.is_some() && self.hosts[h].behaviour != Behaviour::DripFeed
                })
                .collect();
            let sharing: Vec<usize> = running
                .iter()
                .copied()
                .filter(|&h| !self.hosts[h].store.shared.is_empty())
                .collect();
            let pool = if sharing.is_empty() { running } else { sharing };
            if !pool.is_empty() {
                let v = pool[self.rng.below(pool.len())];
                // Its biggest file: the most bytes per request.
                let biggest = self.hosts[v]
                    .catalog
                    .iter()
                    .filter_map(|f| self.manifests.get(&f.manifest.id()).copied())
                    .max_by_key(|&f| self.files[f].data.len());
                let files = match biggest {
                    Some(f) => vec![f],
                    None => (0..self.files.len()).collect(),
                };
                if let Some(cid) = self.raw_connect(a, v, true) {
                    let hello = Self::raw_hello(self.hosts[a].id, self.hosts[a].instance);
                    self.raw_send(cid, hello);
                    self.raws
                        .get_mut(&a)
                        .unwrap()
                        .conns
                        .push((cid, v, a, files));
                }
            }
            self.raws.get_mut(&a).unwrap().next_connect = self.now + SEC;
        }
        let conns = self.raws[&a].conns.clone();
        for (cid, _, _, files) in conns {
            // (Nothing before its handshake is done, as a client blocked on it.)
            if self.conns[cid].held_bytes(1) > KERNEL_BUF || !self.raw_open(cid) {
                continue;
            }
            let chunks: Vec<(ContentId, u32)> = files
                .iter()
                .flat_map(|&f| {
                    let m = &self.files[f].manifest;
                    (0..m.chunk_count().max(1)).map(|i| (m.id(), i))
                })
                .collect();
            let mut burst = Vec::new();
            for _ in 0..self.rng.range(16, 48) {
                let raw = self.raws.get_mut(&a).unwrap();
                let (content, index) = chunks[raw.cursor % chunks.len()];
                raw.cursor += 1;
                let msg = match self.rng.below(10) {
                    0 => Message::CatalogRequest { page: 0 },
                    1 => Message::ManifestRequest { content },
                    _ => Message::ChunkRequest { content, index },
                };
                burst.extend(encode_message(&msg));
            }
            self.raw_send(cid, burst);
        }
    }

    /// The spoofer's next replay (see [`Behaviour::Spoofer`]).
    fn spoof(&mut self, a: usize) {
        let victims: Vec<usize> = (0..self.hosts.len())
            .filter(|&x| self.hosts[x].behaviour == Behaviour::Honest)
            .filter(|x| self.captured.get(x).is_some_and(|c| !c.is_empty()))
            .collect();
        let Some(raw) = self.raws.get_mut(&a) else {
            return;
        };
        if victims.is_empty() {
            return;
        }
        let k = raw.cursor;
        raw.cursor += 1;
        if k % 4 == 0 {
            raw.spoofing = None;
        }
        let rng = &mut self.rng;
        let (victim, _) = *raw
            .spoofing
            .get_or_insert_with(|| (victims[rng.below(victims.len())], 0));
        let Some(kept) = self.captured.get(&victim) else {
            return;
        };
        let (Some(oldest), Some(latest)) = (kept.front().cloned(), kept.back().cloned()) else {
            return;
        };
        match k % 4 {
            0 => self.broadcast(a, oldest),
            1 => self.broadcast(a, latest),
            2 => {
                // A goodbye in the victim's name, newer than its latest (so it is checked, not
                // dropped as stale), signed by the spoofer's own key.
                let Ok(u) = signed::decode(&latest) else {
                    return;
                };
                let (victim_key, mark) = (u.key(), u.mark());
                let ours = p2pshare_proto::Identity::from_secret_bytes(&self.hosts[a].secret);
                let bye = Announcement {
                    mark: Mark {
                        instance: mark.instance,
                        seq: mark.seq + 1 + k as u64,
                    },
                    port: 10000,
                    revision: 0,
                    bye: true,
                };
                let mut forged = signed::encode(&bye, &ours);
                if let Some(at) = forged.windows(32).position(|w| w == ours.key().0) {
                    forged[at..at + 32].copy_from_slice(&victim_key.0);
                }
                self.broadcast(a, forged);
            }
            _ => {
                let ip = self.hosts[victim].ip;
                self.broadcast_from(a, ip, oldest);
            }
        }
    }

    /// Flooder `a`: a batch of announcements of fresh peer ids from its address.
    fn flood(&mut self, a: usize) {
        let port = if self.rng.chance(0.5) { 10000 } else { 22 };
        for _ in 0..FLOOD_IDS {
            // A fresh key per id (keys cost nothing to make), each datagram signed by it.
            let mut secret = [0xff; 32];
            secret[8..16].copy_from_slice(&self.rng.u64().to_le_bytes());
            let ann = Announcement {
                mark: Mark {
                    instance: self.rng.u64(),
                    seq: 0,
                },
                port,
                revision: 0,
                bye: false,
            };
            let key = p2pshare_proto::Identity::from_secret_bytes(&secret);
            self.broadcast(a, signed::encode(&ann, &key));
        }
    }
}
