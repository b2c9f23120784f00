//! Feeding nodes: inputs, timeouts and the outputs they produce. Every call goes through the
//! host's checked pump ([`Checked`](super::checked::Checked): invariants, bounds, the disk
//! requests, expiry and no busy loop); the world's own checks follow after the outputs are
//! performed. A paused host's inputs wait in its backlog.

use super::*;

impl Sim {
    /// Hands `input` to host `h` now (or to its backlog while paused).
    pub(super) fn deliver(&mut self, h: usize, inc: u32, input: Input, from: Option<usize>) -> Res {
        let host = &mut self.hosts[h];
        if host.inc != inc || host.node.is_none() {
            return Ok(());
        }
        if host.paused {
            host.backlog.push_back(Arrival::Input(input, from));
            return Ok(());
        }
        self.feed(h, input, from)
    }

    pub(super) fn feed(&mut self, h: usize, input: Input, from: Option<usize>) -> Res {
        self.log(format!("h{h} <- {}", trace::input(&input)));
        if let Some(f) = from {
            self.hosts[h].heard[f] = self.now;
        }
        let now = self.instant();
        let spoofer = from
            .filter(|&f| self.hosts[f].behaviour == Behaviour::Spoofer)
            .filter(|_| matches!(input, Input::Datagram { .. }))
            .map(|f| IpAddr::V4(self.hosts[f].ip));
        // What the datagram claims to be (a replay is genuine, of some key and mark).
        let claims = match &input {
            Input::Datagram { data, .. } if spoofer.is_some() => {
                p2pshare_proto::wire::signed::decode(data)
                    .ok()
                    .map(|u| (u.key(), u.mark()))
            }
            _ => None,
        };
        // A relayed genuine datagram of host x is x's own words: a node may keep x listed on
        // it as on x's own (the ghost a replay makes of a peer the node forgot lasts one
        // expiry at most; see the design note's "marks of forgotten keys").
        if let Some(x) = claims.and_then(|(key, _)| self.host_of_peer(&key)) {
            self.hosts[h].heard[x] = self.now;
        }
        let host = &mut self.hosts[h];
        let node = host.node.as_mut().expect("a running node");
        let before = spoofer.map(|_| node.peers());
        let store = &host.store;
        let disk = |c: &ContentId, _size: u64| store.partial.get(c).cloned();
        let outs = node
            .input(now, input, &disk)
            .map_err(|v| self.violated(h, v))?;
        if let (Some(ip), Some(before)) = (spoofer, before) {
            self.check_spoof(h, ip, &before, claims)?;
        }
        self.after(h, outs)
    }

    /// After a spoofer's datagram (sent from its own address `ip`, or from a victim's it
    /// spoofs): every peer host `h` listed at another address than `ip` is still listed there,
    /// unchanged — unless the datagram is a genuine one of that peer newer than any `h` had
    /// believed (a relay of what `h` missed is news, whoever relays it).
    fn check_spoof(
        &self,
        h: usize,
        ip: IpAddr,
        before: &[p2pshare_proto::PeerView],
        claims: Option<(PeerId, p2pshare_proto::wire::signed::Mark)>,
    ) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let after = node.peers();
        let news = |p: &p2pshare_proto::PeerView| {
            claims.is_some_and(|(key, mark)| key == p.id && p.mark.is_none_or(|m| m < mark))
        };
        for p in before
            .iter()
            .filter(|p| p.addr.ip() != ip && !p.python && !news(p))
        {
            let now = after.iter().find(|q| q.id == p.id);
            if now.is_none_or(|q| (q.addr, q.last_seen) != (p.addr, p.last_seen)) {
                return Err(self.fail(
                    Kind::Evicted,
                    format!(
                        "h{h}: a spoofed datagram from {ip} changed {:?} at {} to {:?}",
                        p.id,
                        p.addr,
                        now.map(|q| q.addr)
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn timeout(&mut self, h: usize) -> Res {
        self.log(format!("h{h} timeout"));
        let now = self.instant();
        if self.tracing {
            let node = self.hosts[h].node.as_ref().expect("a running node");
            let why: Vec<String> = node
                .timers()
                .into_iter()
                .filter(|(at, _)| *at <= now)
                .map(|(_, w)| format!("{w:?}"))
                .collect();
            self.note(format!("h{h}    for {}", why.join(", ")));
        }
        // The node is out of its host for the call, so that the expiry check can read the
        // world's account of who was heard when.
        let mut node = self.hosts[h].node.take().expect("a running node");
        let store = &self.hosts[h].store;
        let disk = |c: &ContentId, _size: u64| store.partial.get(c).cloned();
        let heard = |p: &p2pshare_proto::PeerView| self.heard_at(h, p);
        let r = node.timeout(now, &disk, &heard);
        self.hosts[h].node = Some(node);
        let outs = r.map_err(|v| self.violated(h, v))?;
        self.after(h, outs)
    }

    /// Performs the outputs of one call of host `h` (checked by its pump), then checks what
    /// needs the whole world: connections per host, budgets, bans.
    pub(super) fn after(&mut self, h: usize, outs: Vec<Output>) -> Res {
        for o in outs {
            self.log(format!("h{h} -> {}", trace::output(&o)));
            self.perform(h, o)?;
        }
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let conns = node.connections();
        // Each flooder's address may hold a table's worth of peers, each with a link.
        let flooders = self
            .hosts
            .iter()
            .filter(|x| x.behaviour == Behaviour::TableFlood)
            .count();
        if conns > 4 * self.hosts.len() + 16 + adversary::PEERS_PER_IP * flooders {
            return Err(self.fail(Kind::Unbounded, format!("h{h}: {conns} connections")));
        }
        let deadline = node.poll_timeout().map(|t| self.nanos(t));
        self.hosts[h].deadline = deadline;
        self.check_budgets(h)?;
        self.check_bans(h)?;
        self.check_identities(h)?;
        self.refresh_expiry(h);
        Ok(())
    }
}
