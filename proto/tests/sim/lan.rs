//! The LAN: broadcast datagrams with loss, duplication and jitter, and TCP connections as
//! ordered byte streams paced by the sender's uplink, which can be refused, reset, stalled or
//! half-closed. Misbehaving nodes' plaintext passes through a [`Rewriter`] before it is sealed.

use super::*;
use p2pshare_proto::wire::frame::ErrorCode;
use std::collections::VecDeque;

impl Sim {
    pub(super) fn broadcast(&mut self, h: usize, data: Vec<u8>) {
        let ip = self.hosts[h].ip;
        if self.hosts[h].behaviour == Behaviour::Honest && data.starts_with(b"P2PS\x02") {
            let kept = self.captured.entry(h).or_default();
            if kept.len() == 8 {
                kept.pop_front();
            }
            kept.push_back(data.clone());
        }
        self.broadcast_from(h, ip, data);
    }

    /// Host `h` broadcasts `data` with `ip` as its source address (its own, or one it spoofs).
    pub(super) fn broadcast_from(&mut self, h: usize, ip: Ipv4Addr, data: Vec<u8>) {
        let from = SocketAddr::new(IpAddr::V4(ip), 9999);
        for t in 0..self.hosts.len() {
            if self.hosts[t].node.is_none() || self.hosts[t].group != self.hosts[h].group {
                continue;
            }
            if self.hosts[t].subnet != self.hosts[h].subnet {
                continue; // routers drop broadcast
            }
            if t != h && self.rng.chance(self.loss) {
                continue;
            }
            let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let jitter = if self.jitter > 0 {
                    self.rng.range(0, self.jitter)
                } else {
                    0
                };
                let at = self.now + self.link_lat(h, t) + jitter;
                let data = data.clone();
                self.schedule_input(at, t, Input::Datagram { from, data }, Some(h));
            }
        }
    }

    pub(super) fn connect(&mut self, h: usize, conn: ConnId, addr: SocketAddr) {
        let inc = self.hosts[h].inc;
        let target = self
            .hosts
            .iter()
            .position(|x| IpAddr::V4(x.ip) == addr.ip() && addr.port() == 10000);
        let Some(t) = target else {
            let at = self.now + self.hosts[h].lat;
            self.schedule(
                at,
                Ev::Input {
                    host: h,
                    inc,
                    input: Input::ConnectFailed { conn },
                    from: None,
                },
            );
            return;
        };
        let lat = self.link_lat(h, t);
        if self.hosts[t].group != self.hosts[h].group || !self.routed(h, t) {
            return; // the SYN is lost: the node's connect timeout decides
        }
        if self.hosts[t].node.is_none() {
            if self.rng.chance(0.5) {
                self.schedule(
                    self.now + 2 * lat,
                    Ev::Input {
                        host: h,
                        inc,
                        input: Input::ConnectFailed { conn },
                        from: Some(t),
                    },
                );
            }
            return;
        }
        let cid = self.conns.len();
        let ends = [
            End {
                host: h,
                inc,
                conn: Some(conn),
                open: true,
            },
            End {
                host: t,
                inc: self.hosts[t].inc,
                conn: None,
                open: true,
            },
        ];
        self.conns.push(SimConn::new(ends));
        self.conn_of.insert((h, conn), cid);
        self.schedule(self.now + lat, Ev::Accepted { cid });
        self.schedule(self.now + 2 * lat, Ev::Connected { cid });
    }

    /// The accepting end's node accepts connection `cid` (its host is running): it names the
    /// connection, or refuses it, and then the other end sees a reset.
    pub(super) fn accept(&mut self, cid: usize) -> Res {
        let [a, b] = self.conns[cid].ends;
        if !b.open {
            return Ok(());
        }
        let h = b.host;
        let remote = SocketAddr::new(IpAddr::V4(self.hosts[a.host].ip), 40000);
        self.hosts[h].heard[a.host] = self.now;
        let now = self.instant();
        let host = &mut self.hosts[h];
        let node = host.node.as_mut().expect("a running node");
        let store = &host.store;
        let disk = |c: &ContentId, _size: u64| store.partial.get(c).cloned();
        let (admission, outs) = node
            .accept(now, remote, &disk)
            .map_err(|v| self.violated(h, v))?;
        match admission.conn() {
            Some(conn) => {
                self.log(format!("h{h} <- Accepted {conn:?} remote={remote}"));
                self.conns[cid].ends[1].conn = Some(conn);
                self.conn_of.insert((h, conn), cid);
            }
            None => {
                self.log(format!("h{h} <- Accepted refused remote={remote}"));
                self.conns[cid].ends[1].open = false;
                self.conns[cid].reset = true;
                let lat = self.link_lat(h, a.host);
                self.schedule(self.now + lat, Ev::Reset { cid, to: 0 });
            }
        }
        self.after(h, outs)
    }

    pub(super) fn send(&mut self, h: usize, conn: ConnId, data: Vec<u8>) {
        let Some(&cid) = self.conn_of.get(&(h, conn)) else {
            return;
        };
        let e = usize::from(
            self.conns[cid].ends[1].host == h && self.conns[cid].ends[1].conn == Some(conn),
        );
        self.transmit(cid, e, data);
    }

    /// End `e` of `cid` writes `data`: paced on its host's uplink, passed through its
    /// misbehaviour, cut into pieces that arrive in order. A node's end is told `Flushed` when
    /// the bytes have left (an adversary's end is told nothing).
    pub(super) fn transmit(&mut self, cid: usize, e: usize, mut data: Vec<u8>) {
        let h = self.conns[cid].ends[e].host;
        let raw = self.conns[cid].raw && e == 0;
        let o = 1 - e;
        if !self.conns[cid].ends[e].open {
            return;
        }
        // Pace on the sender's uplink.
        let rate = self.hosts[h].up_rate.max(1);
        let start = self
            .now
            .max(self.hosts[h].tx_busy)
            .max(self.conns[cid].stall_until[e]);
        let wire = data.len() as u64 + 40;
        let end = start + ((u128::from(wire) * u128::from(SEC)) / u128::from(rate)) as Nanos;
        self.hosts[h].tx_busy = end;
        self.conns[cid].flush_at[e] = end;
        self.conns[cid].unflushed[e] += data.len() as u64;
        if !raw {
            self.schedule(end, Ev::Flushed { cid, end: e });
        }
        // A drip-feeder: from the send that started a chunk on, its sealed bytes trickle.
        let dripping = !raw
            && self.conns[cid].ends[e].conn.is_some_and(|conn| {
                self.hosts[h]
                    .drip_marks
                    .lock()
                    .expect("one thread")
                    .contains(&conn)
            });
        if dripping {
            let dripped = std::mem::take(&mut data);
            // Past what would ever trickle out in a run, the rest is dropped.
            let room = adversary::DRIP_MAX.saturating_sub(self.conns[cid].drip[e].len());
            self.conns[cid].drip[e].extend(dripped.into_iter().take(room));
            if !std::mem::replace(&mut self.conns[cid].dripping[e], true) {
                self.schedule(self.now + adversary::DRIP_GAP, Ev::Drip { cid, end: e });
            }
        }
        // A claim liar's refusals, counted by its node's tamper before it sealed them.
        let refused = self.conns[cid].ends[e]
            .conn
            .filter(|_| !raw)
            .and_then(|conn| {
                self.hosts[h]
                    .refusals
                    .lock()
                    .expect("one thread")
                    .remove(&conn)
            })
            .unwrap_or(0);
        // (What an adversary asks, in a loop and never reading, is no node's doing.)
        if refused > 0 && !self.conns[cid].raw {
            let asker = self.conns[cid].hosts()[o];
            self.note_refused(h, asker, refused);
        }
        let mut close_after = false;
        if let Behaviour::Closer(p) = self.hosts[h].behaviour
            && data.len() >= 1024
            && self.rng.chance(p)
        {
            let keep = self.rng.below(data.len());
            data.truncate(keep);
            close_after = true;
        }
        let to = o;
        if self.conns[cid].ends[to].open && !self.conns[cid].reset && !data.is_empty() {
            let t = self.conns[cid].ends[to].host;
            let lat = self.link_lat(h, t);
            // Across a partition, TCP retransmits until it heals.
            let floor = if self.hosts[t].group != self.hosts[h].group {
                self.partition_until + lat
            } else {
                0
            };
            // Cut into pieces of arbitrary sizes, arriving in order.
            let pieces = if data.len() > 1 && self.rng.chance(0.5) {
                self.rng.range(2, 4) as usize
            } else {
                1
            };
            let mut cuts: Vec<usize> = (1..pieces)
                .map(|_| self.rng.range(1, data.len() as u64 - 1) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            cuts.push(data.len());
            let mut prev = 0;
            let span = end - start;
            for cut in cuts {
                let piece = data[prev..cut].to_vec();
                let frac = (span as u128 * cut as u128 / data.len() as u128) as Nanos;
                let at = (start + frac + lat)
                    .max(floor)
                    .max(self.conns[cid].last_arrival[to]);
                self.conns[cid].last_arrival[to] = at;
                self.schedule(
                    at,
                    Ev::Bytes {
                        cid,
                        to,
                        data: piece,
                    },
                );
                prev = cut;
            }
        }
        if close_after && let Some(conn) = self.conns[cid].ends[e].conn {
            self.log(format!("h{h} closes {conn:?} mid-chunk"));
            self.conns[cid].ends[e].open = false;
            self.conn_of.remove(&(h, conn));
            let inc = self.hosts[h].inc;
            self.schedule(
                self.now,
                Ev::Input {
                    host: h,
                    inc,
                    input: Input::Closed { conn },
                    from: None,
                },
            );
            self.fin(cid, o);
        }
    }

    /// The other end `to` learns of a clean close after the last bytes sent to it.
    pub(super) fn fin(&mut self, cid: usize, to: usize) {
        if !self.conns[cid].ends[to].open {
            return;
        }
        let from = self.conns[cid].ends[1 - to].host;
        let lat = self.link_lat(from, self.conns[cid].ends[to].host);
        let at = (self.now + lat).max(self.conns[cid].last_arrival[to]);
        self.schedule(at, Ev::Fin { cid, to });
    }

    pub(super) fn close(&mut self, h: usize, conn: ConnId) {
        let Some(cid) = self.conn_of.remove(&(h, conn)) else {
            return;
        };
        let e = usize::from(
            self.conns[cid].ends[1].host == h && self.conns[cid].ends[1].conn == Some(conn),
        );
        self.conns[cid].ends[e].open = false;
        self.fin(cid, 1 - e);
    }

    /// Host `h`'s node stops (`on`) or starts again reading `conn`; reading again delivers
    /// what was held, after the current step.
    pub(super) fn read_pause(&mut self, h: usize, conn: ConnId, on: bool) {
        let Some(&cid) = self.conn_of.get(&(h, conn)) else {
            return;
        };
        let e = usize::from(
            self.conns[cid].ends[1].host == h && self.conns[cid].ends[1].conn == Some(conn),
        );
        let was = std::mem::replace(&mut self.conns[cid].holding[e], on);
        if was && !on {
            self.schedule(self.now, Ev::Drain { cid, to: e });
        }
    }

    /// Delivers what was held for end `to` while it reads, then the other end's owed
    /// `Flushed` once the kernel buffer has room.
    pub(super) fn drain(&mut self, cid: usize, to: usize) -> Res {
        while !self.conns[cid].holding[to] {
            let Some(item) = self.conns[cid].held[to].pop_front() else {
                break;
            };
            let c = &self.conns[cid];
            let end = c.ends[to];
            match item {
                Some(data) => {
                    let Some(conn) = end.conn.filter(|_| !c.reset && end.open) else {
                        return Ok(());
                    };
                    let from = c.ends[1 - to].host;
                    self.deliver(
                        end.host,
                        end.inc,
                        Input::Received { conn, data },
                        Some(from),
                    )?;
                }
                None => self.end_told(cid, to)?,
            }
        }
        let c = &mut self.conns[cid];
        if c.flush_owed[1 - to] && c.held_bytes(to) <= KERNEL_BUF {
            c.flush_owed[1 - to] = false;
            c.withheld_since[1 - to] = None;
            self.withheld.remove(&(cid, 1 - to));
            self.schedule(self.now, Ev::Flushed { cid, end: 1 - to });
        }
        Ok(())
    }

    /// The end `to` of `cid` is told its connection is gone.
    pub(super) fn end_told(&mut self, cid: usize, to: usize) -> Res {
        let end = self.conns[cid].ends[to];
        if !end.open {
            return Ok(());
        }
        self.conns[cid].ends[to].open = false;
        let Some(conn) = end.conn else {
            return Ok(());
        };
        self.conn_of.remove(&(end.host, conn));
        let from = self.conns[cid].ends[1 - to].host;
        self.deliver(end.host, end.inc, Input::Closed { conn }, Some(from))
    }

    pub(super) fn live_conns(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&c| self.conns[c].ends.iter().all(|e| e.open) && !self.conns[c].reset)
            .collect()
    }
}

impl SimConn {
    /// A connection between two ends.
    pub(super) fn new(ends: [End; 2]) -> SimConn {
        SimConn {
            ends,
            reset: false,
            last_arrival: [0; 2],
            flush_at: [0; 2],
            stall_until: [0; 2],
            holding: [false; 2],
            held: [VecDeque::new(), VecDeque::new()],
            flush_owed: [false; 2],
            withheld_since: [None; 2],
            unflushed: [0; 2],
            raw: false,
            adv: None,
            adv_out: Vec::new(),
            drip: [Vec::new(), Vec::new()],
            dripping: [false; 2],
        }
    }
}

impl Rewriter {
    /// Passes whole frames on, falsifying or dropping what `b` misbehaves on.
    pub(super) fn rewrite(&mut self, b: Behaviour, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            match frame::decode(&self.buf) {
                Ok(Some((f, used))) => {
                    let raw: Vec<u8> = self.buf.drain(..used).collect();
                    match (b, f) {
                        (Behaviour::Mute, Frame::Chunk { .. })
                        | (Behaviour::Mute, Frame::Message(Message::Manifest { .. })) => {}
                        (
                            Behaviour::ClaimLiar(_),
                            Frame::Message(Message::Bitfield { content, mut bits }),
                        ) if !bits.is_empty() => {
                            // Every chunk, but those of the last byte (the exact count is
                            // not in the frame; a bit past the end would get it banned).
                            let n = bits.len() - 1;
                            bits[..n].fill(0xff);
                            out.extend(frame::encode_message(&Message::Bitfield { content, bits }));
                        }
                        (Behaviour::ClaimLiar(how), Frame::Chunk { content, index, .. })
                        | (
                            Behaviour::ClaimLiar(how),
                            Frame::Message(Message::Error {
                                content,
                                index: Some(index),
                                ..
                            }),
                        ) => {
                            let code = match how {
                                Liar::Busy => ErrorCode::Busy,
                                Liar::Taken => ErrorCode::Taken,
                                Liar::Stall => continue,
                            };
                            self.refused += 1;
                            out.extend(frame::encode_message(&Message::Error {
                                code,
                                content,
                                index: Some(index),
                            }));
                        }
                        (
                            Behaviour::ManifestLiar,
                            Frame::Message(Message::Manifest { content, mut bytes }),
                        ) => {
                            if let Some(last) = bytes.last_mut() {
                                *last ^= 0x55;
                            }
                            out.extend(frame::encode_message(&Message::Manifest {
                                content,
                                bytes,
                            }));
                        }
                        _ => out.extend(raw),
                    }
                }
                Ok(None) => return out,
                Err(_) => {
                    out.append(&mut self.buf);
                    return out;
                }
            }
        }
    }
}
