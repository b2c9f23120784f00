//! A state-machine test of the download scheduler (`Download`) against a small reference model.
//!
//! The model keeps, for every chunk, one of: missing; requested from a set of peers (since an
//! instant); verified and being written; written. And for every peer: known or not, banned or
//! not, the chunks it was asked for. Random operations are applied to both:
//! request for a peer, deliver a good chunk, deliver a corrupt chunk, lose a peer's responses
//! (`peer_down`), a peer joins (`add_holder`) or leaves (`remove_peer`), a peer refuses (`Busy`:
//! it is then paused, for `BUSY_BACKOFF` doubling per pause up to `MAX_PAUSE`, until it delivers
//! a verified chunk), a write succeeds or fails, time passes (slow peers: the windows change).
//!
//! After every step the scheduler and the model agree on every chunk's state (through
//! `Download::chunk`) and every peer's in-flight set and ban, and `check_invariants` holds. The
//! model predicts which chunk `next_request` picks (lowest missing first; in endgame the oldest
//! request with a single owner that is not this peer), and when it must pick none (a banned or
//! paused peer, a full window). At the end
//! an honest peer joins and all honest peers are driven to completion: every chunk is then
//! written exactly once (successful writes counted per index) and nothing more was accepted
//! than those writes and the failed ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; every later time is an offset from it.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use p2pshare_proto::download::{
    BUSY_BACKOFF, ChunkState, Download, MAX_PAUSE, MAX_STRIKES, ManifestVerdict, Received, Refused,
};
use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, Manifest, ManifestBuilder};
use p2pshare_proto::{Bugs, DiskError, PeerId};
use proptest::prelude::*;

const MAX_WINDOW: u32 = 6;
/// Peers the random operations speak for.
const PEERS: u8 = 4;
/// A peer that appears only at the end, never corrupt.
const HONEST: PeerId = PeerId([99; 32]);

fn peer(k: u8) -> PeerId {
    PeerId([k % PEERS + 1; 32])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MChunk {
    Missing,
    Requested {
        from: BTreeSet<PeerId>,
        since: Instant,
    },
    Writing,
    Written,
}

#[derive(Debug, Clone, Default)]
struct MPeer {
    banned: bool,
    inflight: BTreeSet<u32>,
    /// Losses in a row with requests outstanding; `MAX_STRIKES` of them ban the peer.
    strikes: u32,
    /// Not asked before this (it answered busy).
    paused_until: Option<Instant>,
    /// Pauses since its last verified chunk.
    pauses: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Request(u8),
    Good(u8, u8),
    Corrupt(u8, u8),
    /// A chunk the peer was not asked for (or an index past the end).
    Stray(u8, u8),
    Lose(u8),
    Join(u8),
    Leave(u8),
    Refuse(u8, u8),
    WriteOk(u8),
    WriteFail(u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PEERS;
    prop_oneof![
        8 => p.clone().prop_map(Op::Request),
        6 => (p.clone(), any::<u8>()).prop_map(|(p, s)| Op::Good(p, s)),
        1 => (p.clone(), any::<u8>()).prop_map(|(p, s)| Op::Corrupt(p, s)),
        1 => (p.clone(), any::<u8>()).prop_map(|(p, s)| Op::Stray(p, s)),
        1 => p.clone().prop_map(Op::Lose),
        2 => p.clone().prop_map(Op::Join),
        1 => p.clone().prop_map(Op::Leave),
        1 => (p, any::<u8>()).prop_map(|(p, s)| Op::Refuse(p, s)),
        5 => any::<u8>().prop_map(Op::WriteOk),
        1 => any::<u8>().prop_map(Op::WriteFail),
        2 => (0..2000u16).prop_map(Op::Advance),
    ]
}

struct World {
    d: Download,
    data: Vec<u8>,
    m: Manifest,
    now: Instant,
    chunks: Vec<MChunk>,
    peers: BTreeMap<PeerId, MPeer>,
    /// Successful writes per chunk.
    writes: Vec<u32>,
    failed_writes: u32,
    accepted: u32,
}

impl World {
    fn new(n_chunks: u32, tail: u32, holders: &[u8]) -> World {
        let len = (n_chunks.saturating_sub(1) * MIN_CHUNK_SIZE + tail) as usize;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
        b.update(&data);
        let m = b.finish().unwrap();
        let now = Instant::now();
        let holders: Vec<PeerId> = holders.iter().map(|&k| peer(k)).collect();
        // The manifest's sender: any peer (the model starts once the manifest is known).
        let first = peer(0);
        let mut d = Download::new(
            m.id(),
            "f".into(),
            holders.iter().copied(),
            MAX_WINDOW,
            Bugs::default(),
        );
        assert!(d.manifest_asked(now, first));
        assert_eq!(d.on_manifest(first, &m.encode()), ManifestVerdict::Accepted);
        d.opened(0);
        let count = m.chunk_count() as usize;
        World {
            d,
            data,
            now,
            chunks: vec![MChunk::Missing; count],
            peers: holders.into_iter().map(|p| (p, MPeer::default())).collect(),
            writes: vec![0; count],
            failed_writes: 0,
            accepted: 0,
            m,
        }
    }

    fn good(&self, i: u32) -> Vec<u8> {
        match self.m.chunk_range(i) {
            Some((off, len)) => self.data[off as usize..off as usize + len as usize].to_vec(),
            None => vec![1, 2, 3],
        }
    }

    /// The model's release of `i` by `p`.
    fn release(&mut self, p: PeerId, i: u32) {
        if let Some(mp) = self.peers.get_mut(&p) {
            mp.inflight.remove(&i);
        }
        if let MChunk::Requested { from, .. } = &mut self.chunks[i as usize] {
            from.remove(&p);
            if from.is_empty() {
                self.chunks[i as usize] = MChunk::Missing;
            }
        }
    }

    fn release_all(&mut self, p: PeerId) {
        let inflight: Vec<u32> = self
            .peers
            .get(&p)
            .map(|mp| mp.inflight.iter().copied().collect())
            .unwrap_or_default();
        for i in inflight {
            self.release(p, i);
        }
    }

    /// A chunk `p` was asked for, picked by `sel`; `None` when it has none.
    fn asked_of(&self, p: PeerId, sel: u8) -> Option<u32> {
        let mp = self.peers.get(&p)?;
        let v: Vec<u32> = mp.inflight.iter().copied().collect();
        (!v.is_empty()).then(|| v[usize::from(sel) % v.len()])
    }

    /// What the model says `next_request(p)` must return.
    fn predict_request(&self, p: PeerId) -> Option<u32> {
        let mp = self.peers.get(&p)?;
        let window = self.d.peers()[&p].window;
        if mp.banned
            || mp.inflight.len() as u32 >= window
            || mp.paused_until.is_some_and(|t| t > self.now)
        {
            return None;
        }
        if let Some(i) = self.chunks.iter().position(|c| *c == MChunk::Missing) {
            return Some(i as u32);
        }
        let mut best: Option<(Instant, u32)> = None;
        for (i, c) in self.chunks.iter().enumerate() {
            if let MChunk::Requested { from, since } = c
                && from.len() < 2
                && !from.contains(&p)
                && best.is_none_or(|(t, _)| *since < t)
            {
                best = Some((*since, i as u32));
            }
        }
        best.map(|(_, i)| i)
    }

    fn request(&mut self, p: PeerId) -> Option<u32> {
        let want = self.predict_request(p);
        let got = self.d.next_request(self.now, p);
        assert_eq!(got, want, "next_request({p:?})");
        if let Some(i) = got {
            let now = self.now;
            match &mut self.chunks[i as usize] {
                c @ MChunk::Missing => {
                    *c = MChunk::Requested {
                        from: BTreeSet::from([p]),
                        since: now,
                    }
                }
                MChunk::Requested { from, .. } => {
                    from.insert(p);
                }
                c => panic!("requested a chunk in state {c:?}"),
            }
            self.peers.get_mut(&p).unwrap().inflight.insert(i);
        }
        got
    }

    fn deliver(&mut self, p: PeerId, i: u32, corrupt: bool) {
        let mut data = self.good(i);
        if corrupt {
            data[0] ^= 0xff;
        }
        let asked = self
            .peers
            .get(&p)
            .is_some_and(|mp| mp.inflight.contains(&i));
        let got = self.d.on_chunk(self.now, p, i, data.clone());
        if !asked {
            assert_eq!(got, Received::Unsolicited);
        } else if corrupt {
            assert_eq!(got, Received::Rejected);
            self.release_all(p);
            self.peers.get_mut(&p).unwrap().banned = true;
        } else {
            let offset = self.m.chunk_range(i).unwrap().0;
            assert_eq!(got, Received::Accepted { offset, data });
            self.accepted += 1;
            // A verified chunk clears the sender's strikes and pauses.
            let mp = self.peers.get_mut(&p).unwrap();
            mp.strikes = 0;
            mp.pauses = 0;
            if let MChunk::Requested { from, .. } = &self.chunks[i as usize] {
                for q in from.clone() {
                    self.peers.get_mut(&q).unwrap().inflight.remove(&i);
                }
            }
            self.chunks[i as usize] = MChunk::Writing;
        }
    }

    fn write(&mut self, sel: u8, ok: bool) {
        let writing: Vec<u32> = (0..self.chunks.len() as u32)
            .filter(|&i| self.chunks[i as usize] == MChunk::Writing)
            .collect();
        let Some(&i) = (!writing.is_empty()).then(|| &writing[usize::from(sel) % writing.len()])
        else {
            // A stale result for a chunk not being written changes nothing.
            let i = u32::from(sel) % (self.chunks.len() as u32 + 1);
            assert_eq!(self.d.written(i, Ok(())), Ok(()));
            return;
        };
        if ok {
            assert_eq!(self.d.written(i, Ok(())), Ok(()));
            self.chunks[i as usize] = MChunk::Written;
            self.writes[i as usize] += 1;
            assert_eq!(self.writes[i as usize], 1, "chunk {i} written twice");
        } else {
            assert!(self.d.written(i, Err(DiskError::NoSpace)).is_err());
            self.chunks[i as usize] = MChunk::Missing;
            self.failed_writes += 1;
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Request(k) => {
                self.request(peer(k));
            }
            Op::Good(k, s) | Op::Corrupt(k, s) => {
                let p = peer(k);
                if let Some(i) = self.asked_of(p, s) {
                    self.deliver(p, i, matches!(op, Op::Corrupt(..)));
                }
            }
            Op::Stray(k, s) => {
                let i = u32::from(s) % (self.chunks.len() as u32 + 2);
                let p = peer(k);
                let asked = self
                    .peers
                    .get(&p)
                    .is_some_and(|mp| mp.inflight.contains(&i));
                if !asked {
                    self.deliver(p, i, false);
                }
            }
            Op::Lose(k) => {
                self.d.peer_down(&peer(k));
                if let Some(mp) = self.peers.get_mut(&peer(k))
                    && !mp.inflight.is_empty()
                {
                    mp.strikes += 1;
                    if mp.strikes >= MAX_STRIKES {
                        mp.banned = true;
                    }
                }
                self.release_all(peer(k));
            }
            Op::Join(k) => {
                self.d.add_holder(peer(k));
                self.peers.entry(peer(k)).or_default();
            }
            Op::Leave(k) => {
                self.d.remove_peer(&peer(k));
                self.release_all(peer(k));
                self.peers.remove(&peer(k));
            }
            Op::Refuse(k, s) => {
                let p = peer(k);
                match self.asked_of(p, s) {
                    Some(i) => {
                        let now = self.now;
                        assert_eq!(self.d.chunk_refused(now, p, i, true), Refused::Released);
                        self.release(p, i);
                        // Busy: paused, unless a pause runs (then it is not lengthened).
                        let mp = self.peers.get_mut(&p).unwrap();
                        if mp.paused_until.is_none_or(|t| t <= now) {
                            let pause = BUSY_BACKOFF
                                .saturating_mul(1 << mp.pauses.min(5))
                                .min(MAX_PAUSE);
                            mp.pauses += 1;
                            mp.paused_until = Some(now + pause);
                        }
                    }
                    // Refusing what was not asked changes nothing.
                    None => {
                        let now = self.now;
                        let verdict = self.d.chunk_refused(now, p, u32::from(s), true);
                        assert_eq!(verdict, Refused::Unsolicited);
                    }
                }
            }
            Op::WriteOk(s) => self.write(s, true),
            Op::WriteFail(s) => self.write(s, false),
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms)),
        }
        self.compare();
    }

    /// The scheduler and the model agree.
    fn compare(&self) {
        self.d.check_invariants().unwrap();
        for (i, mc) in self.chunks.iter().enumerate() {
            let st = self.d.chunk(i as u32).unwrap();
            let same = match (mc, st) {
                (MChunk::Missing, ChunkState::Missing) => true,
                (MChunk::Writing, ChunkState::Writing) => true,
                (MChunk::Written, ChunkState::Written) => true,
                (
                    MChunk::Requested { from, since },
                    ChunkState::Requested {
                        from: dfrom,
                        since: dsince,
                    },
                ) => {
                    from.len() == dfrom.len()
                        && dfrom.iter().all(|p| from.contains(p))
                        && since == dsince
                        && dfrom.len() <= 2
                }
                _ => false,
            };
            assert!(same, "chunk {i}: model {mc:?}, scheduler {st:?}");
        }
        assert!(self.d.chunk(self.chunks.len() as u32).is_none());
        let known: Vec<&PeerId> = self.d.peers().keys().collect();
        let model: Vec<&PeerId> = self.peers.keys().collect();
        assert_eq!(known, model, "known peers");
        for (p, mp) in &self.peers {
            let part = &self.d.peers()[p];
            assert_eq!(part.inflight, mp.inflight, "in flight at {p:?}");
            assert_eq!(part.banned.is_some(), mp.banned, "ban of {p:?}");
            assert!(
                (2..=MAX_WINDOW.max(4)).contains(&part.window),
                "window {}",
                part.window
            );
        }
        let written = self
            .chunks
            .iter()
            .filter(|c| **c == MChunk::Written)
            .count();
        assert_eq!(self.d.written_chunks() as usize, written);
        assert_eq!(
            self.d.inflight(),
            self.chunks
                .iter()
                .filter(|c| matches!(c, MChunk::Requested { .. }))
                .count()
        );
    }

    /// An honest peer joins; every usable peer answers everything it is asked, writes succeed.
    fn drive_to_completion(&mut self) {
        self.d.add_holder(HONEST);
        self.peers.entry(HONEST).or_default();
        self.compare();
        for round in 0.. {
            assert!(round < 100, "no progress: {:?}", self.chunks);
            if self.chunks.iter().all(|c| *c == MChunk::Written) {
                break;
            }
            let usable: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, mp)| !mp.banned)
                .map(|(p, _)| *p)
                .collect();
            for &p in &usable {
                while self.request(p).is_some() {
                    self.compare();
                }
            }
            self.now += Duration::from_millis(50);
            for &p in &usable {
                while let Some(i) = self.asked_of(p, 0) {
                    self.deliver(p, i, false);
                    self.compare();
                }
            }
            while self.chunks.contains(&MChunk::Writing) {
                self.write(0, true);
                self.compare();
            }
        }
        assert!(self.d.is_complete());
        assert!(
            self.writes.iter().all(|&n| n == 1),
            "writes per chunk: {:?}",
            self.writes
        );
        assert_eq!(self.accepted, self.chunks.len() as u32 + self.failed_writes);
        assert_eq!(self.d.written_bytes(), self.data.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_agrees_with_the_model(
        n_chunks in 1..8u32,
        tail in 1..=MIN_CHUNK_SIZE,
        holders in prop::collection::vec(0..PEERS, 0..4),
        ops in prop::collection::vec(op(), 0..150),
    ) {
        let mut w = World::new(n_chunks, tail, &holders);
        w.compare();
        for op in &ops {
            w.apply(op);
        }
        w.drive_to_completion();
    }
}
