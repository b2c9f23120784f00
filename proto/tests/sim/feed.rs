//! Feeding nodes: inputs, timeouts and the outputs they produce, with the per-step checks
//! (invariants, bounds, no busy loop). A paused host's inputs wait in its backlog.

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
        let node = self.hosts[h].node.as_mut().expect("a running node");
        let before = spoofer.map(|_| node.peers());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.handle_input(now, input)
        }));
        if r.is_err() {
            return Err(self.fail(Kind::Panic, format!("h{h} panicked in handle_input")));
        }
        if let (Some(ip), Some(before)) = (spoofer, before) {
            self.check_spoof(h, ip, &before)?;
        }
        self.after(h)
    }

    /// After a spoofer's datagram from `ip`: every peer host `h` listed at another address
    /// is still listed there, unchanged.
    fn check_spoof(&self, h: usize, ip: IpAddr, before: &[p2pshare_proto::PeerView]) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let after = node.peers();
        for p in before.iter().filter(|p| p.addr.ip() != ip && !p.python) {
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
        let node = self.hosts[h].node.as_mut().expect("a running node");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.handle_timeout(now)));
        if r.is_err() {
            return Err(self.fail(Kind::Panic, format!("h{h} panicked in handle_timeout")));
        }
        self.after(h)?;
        if self.hosts[h].node.is_some() {
            self.check_expiry(h)?;
            if let Some(d) = self.hosts[h].deadline
                && d <= self.now
            {
                return Err(self.fail(
                    Kind::BusyLoop,
                    format!("h{h}: poll_timeout {d} not after now after handle_timeout"),
                ));
            }
        }
        Ok(())
    }

    /// Drains and performs the outputs of host `h`, then checks its invariants.
    pub(super) fn after(&mut self, h: usize) -> Res {
        let mut outs = Vec::new();
        if let Some(node) = self.hosts[h].node.as_mut() {
            while let Some(o) = node.poll_output() {
                outs.push(o);
            }
        }
        let bound = 256 + 64 * self.hosts.len();
        if outs.len() > bound {
            return Err(self.fail(
                Kind::Unbounded,
                format!("h{h}: {} outputs from one step", outs.len()),
            ));
        }
        for o in outs {
            self.log(format!("h{h} -> {}", trace::output(&o)));
            self.perform(h, o)?;
        }
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        if let Err(e) = node.check_invariants() {
            return Err(self.fail(Kind::NodeInvariant, format!("h{h}: {e}")));
        }
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
        let buffered = node.buffered_bytes();
        if buffered > conns.max(1) * 2 * (64 << 10) {
            return Err(self.fail(
                Kind::Unbounded,
                format!("h{h}: {buffered} bytes buffered in {conns} connections"),
            ));
        }
        let deadline = node.poll_timeout().map(|t| self.nanos(t));
        self.hosts[h].deadline = deadline;
        self.check_budgets(h)?;
        self.check_bans(h)?;
        self.refresh_expiry(h);
        Ok(())
    }
}
