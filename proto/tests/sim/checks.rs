//! The checks that span steps: peers expire on time, the end-of-run liveness oracle (a wanted
//! file with an honest source elsewhere must have been downloaded), and the budgets against
//! hostile hosts: send budgets, pausing full connections, closing those not read, the
//! peer table's cap per address.

use super::*;
use p2pshare_proto::budget::{
    CONN_SEND_BUDGET, IP_SEND_BUDGET, MAX_QUEUED_MANIFESTS, NODE_SEND_BUDGET, read_deadline,
};
use p2pshare_proto::session::MAX_QUEUED_REQUESTS;
use p2pshare_proto::wire::MAX_FRAME_LEN;

impl Sim {
    /// True when the run may stop before moving the clock to `t`.
    pub(super) fn finished_at(&self, t: Nanos) -> bool {
        if t > self.heal_at + HARD_END {
            return true;
        }
        if t < self.min_end || t < self.heal_at {
            return false;
        }
        self.wants.iter().all(|w| {
            w.done
                || self.hosts[w.host].departed
                || (w.attempt.is_none() && !w.get_pending && t >= self.heal_at + RETRY_WINDOW)
        })
    }

    pub(super) fn final_check(&mut self) -> Res {
        for w in self.wants.clone() {
            if w.done || self.hosts[w.host].departed {
                continue;
            }
            let c = self.files[w.file].manifest.id();
            if let Some(s) = w.attempt {
                return Err(self.fail(
                    Kind::Stuck,
                    format!(
                        "h{} download of {} running since {:.3}s never ended",
                        w.host,
                        c.short(),
                        s as f64 / SEC as f64
                    ),
                ));
            }
            // Another host: one that shares the same bytes under another name is no source
            // for itself (a `get` downloads from peers); and one that got the file only after
            // the user stopped asking (the retry window closed) was no source it could use.
            let last_ask = self.heal_at + RETRY_WINDOW;
            let honest: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| h != w.host)
                .filter(|&h| {
                    let x = &self.hosts[h];
                    x.node.is_some()
                        && x.behaviour == Behaviour::Honest
                        && x.store.shared.contains_key(&c)
                        && x.catalog.iter().any(|f| f.manifest.id() == c)
                        && x.shares_since.get(&c).is_some_and(|&t| t <= last_ask)
                })
                .filter(|&h| self.reachable(w.host, h))
                .collect();
            if !honest.is_empty() {
                return Err(self.fail(
                    Kind::Liveness,
                    format!(
                        "h{} never downloaded {} though honest h{:?} hold it ({} attempts, last failure: {:?})",
                        w.host,
                        c.short(),
                        honest,
                        w.attempts,
                        w.last_fail
                    ),
                ));
            }
        }
        Ok(())
    }

    /// When host `h` last heard from the peer of entry `p`: by the node's own record, and for
    /// a host's id at that host's address no later than the last time `h` was handed anything
    /// from that host (the simulator's own account). For any other entry (an id no host has,
    /// or a host's id claimed from another address while the host was gone from the table)
    /// only the node's record says which datagrams and bytes spoke for it.
    fn last_heard(&self, h: usize, p: &p2pshare_proto::PeerView) -> Nanos {
        let own = self.nanos(p.last_seen);
        match self.host_of_peer(&p.id) {
            Some(x) if IpAddr::V4(self.hosts[x].ip) == p.addr.ip() => {
                own.min(self.hosts[h].heard[x])
            }
            _ => own,
        }
    }

    /// [`Sim::last_heard`] as an instant, for the checked pump's expiry check.
    pub(super) fn heard_at(&self, h: usize, p: &p2pshare_proto::PeerView) -> Instant {
        self.origin + Duration::from_nanos(self.last_heard(h, p))
    }

    pub(super) fn refresh_expiry(&mut self, h: usize) {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return;
        };
        let mut at = Nanos::MAX;
        for p in node.peers() {
            at = at.min(self.last_heard(h, &p) + EXPIRY);
        }
        self.hosts[h].expiry_check_at = at;
    }

    /// A peer that host `h` has heard nothing from for the expiry must be gone from its table
    /// once its timers have run (the checked pump's check, with the world's account of who
    /// was heard when; it runs after every timeout, and here when no timer is due).
    pub(super) fn check_expiry(&mut self, h: usize) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let heard = |p: &p2pshare_proto::PeerView| self.heard_at(h, p);
        if let Err(v) = node.check_expiry(self.instant(), &heard) {
            return Err(self.violated(h, v));
        }
        self.refresh_expiry(h);
        Ok(())
    }

    /// The checks that concern every host at the current time.
    pub(super) fn check_all(&mut self) -> Res {
        if let Some(f) = self.found.take() {
            return Err(f);
        }
        if !self.withheld.is_empty() {
            self.check_not_reading()?;
        }
        for h in 0..self.hosts.len() {
            let x = &self.hosts[h];
            if x.node.is_some()
                && !x.paused
                && x.expiry_check_at <= self.now
                && x.deadline.is_none_or(|d| d > self.now)
            {
                self.check_expiry(h)?;
            }
        }
        for w in &self.wants {
            if let Some(s) = w.attempt
                && self.now - s > ATTEMPT_BOUND
            {
                let c = self.files[w.file].manifest.id();
                let view = self.hosts[w.host]
                    .node
                    .as_ref()
                    .and_then(|n| n.downloads().into_iter().find(|d| d.content == c));
                return Err(self.fail(
                    Kind::Stuck,
                    format!(
                        "h{}: download of {} neither completed nor failed in {}s: {view:?}",
                        w.host,
                        c.short(),
                        ATTEMPT_BOUND / SEC
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What a node may owe beyond a send budget: one answer that started when nothing was owed
/// (the largest frame), and the small frames that are sent unbudgeted (refusals, pongs).
const ANSWER_SLACK: usize = MAX_FRAME_LEN + (64 << 10);
/// How late past its read deadline a connection may still be closed (timers run on the
/// node's next wake-up).
const DEADLINE_SLACK: Nanos = SEC;

impl Sim {
    /// The budgets of host `h`'s node, after a step of it: what it owes per connection, per
    /// address and in all stays within its send budgets; a connection whose queues or budget
    /// are full is no longer read; its table holds at most [`adversary::PEERS_PER_IP`] peers
    /// from one address.
    pub(super) fn check_budgets(&mut self, h: usize) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let mut by_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let mut all = 0;
        let mut problem = None;
        for l in node.connection_loads() {
            all += l.owed;
            *by_ip.entry(l.remote.ip()).or_default() += l.owed;
            if l.owed > CONN_SEND_BUDGET + ANSWER_SLACK {
                problem = Some((
                    Kind::OverBudget,
                    format!("h{h} owes {} bytes on {:?}", l.owed, l.conn),
                ));
                break;
            }
            let full = l.queued_requests >= MAX_QUEUED_REQUESTS
                || l.queued_manifests >= MAX_QUEUED_MANIFESTS
                || l.owed >= CONN_SEND_BUDGET;
            if full && let Some(&cid) = self.conn_of.get(&(h, l.conn)) {
                let c = &self.conns[cid];
                let e = usize::from(c.ends[1].host == h && c.ends[1].conn == Some(l.conn));
                if c.ends[e].open && !c.holding[e] {
                    problem = Some((
                        Kind::NotPaused,
                        format!(
                            "h{h} still reads {:?} with {} chunk and {} manifest requests queued and {} bytes owed",
                            l.conn, l.queued_requests, l.queued_manifests, l.owed
                        ),
                    ));
                    break;
                }
            }
        }
        if problem.is_none() {
            if let Some((ip, owed)) = by_ip
                .iter()
                .find(|(_, o)| **o > IP_SEND_BUDGET + ANSWER_SLACK)
            {
                problem = Some((Kind::OverBudget, format!("h{h} owes {owed} bytes to {ip}")));
            } else if all > NODE_SEND_BUDGET + ANSWER_SLACK {
                problem = Some((Kind::OverBudget, format!("h{h} owes {all} bytes in all")));
            }
        }
        if problem.is_none() {
            let peers = node.peers();
            let mut per_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
            for p in &peers {
                *per_ip.entry(p.addr.ip()).or_default() += 1;
            }
            if let Some((ip, n)) = per_ip.iter().find(|(_, n)| **n > adversary::PEERS_PER_IP) {
                problem = Some((Kind::OverBudget, format!("h{h} lists {n} peers at {ip}")));
            } else if peers.len() > adversary::MAX_PEERS {
                problem = Some((
                    Kind::OverBudget,
                    format!("h{h} lists {} peers", peers.len()),
                ));
            }
        }
        match problem {
            Some((kind, msg)) => Err(self.fail(kind, msg)),
            None => Ok(()),
        }
    }

    /// No download of host `h` holds an honest holder guilty of what only a liar does: a
    /// corrupt chunk, a manifest that does not hash, a "not found" for what it shares. (An
    /// impersonator's junk counted as the holder's answer does exactly that.)
    /// Every session host `h`'s node has open is open to the peer at its other end: the id
    /// its hello named is the id of the host that holds that end (an impersonator holds only
    /// its own key, and the handshake proves keys).
    pub(super) fn check_identities(&mut self, h: usize) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        let open: Vec<_> = node.session_peers().collect();
        for (conn, peer) in open {
            let Some(&cid) = self.conn_of.get(&(h, conn)) else {
                continue;
            };
            let other = self.conns[cid]
                .ends
                .iter()
                .find(|e| !(e.host == h && e.conn == Some(conn)))
                .map(|e| e.host);
            if let Some(x) = other
                && self.hosts[x].id != peer
            {
                let claimed = self.host_of_peer(&peer);
                return Err(self.fail(
                    Kind::Impersonated,
                    format!(
                        "h{h} has {conn:?} open to {} (h{claimed:?}), but h{x} is at its other end",
                        peer.short()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_bans(&mut self, h: usize) -> Res {
        use p2pshare_proto::download::Ban;
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        for w in self.wants.iter().filter(|w| w.host == h) {
            let c = self.files[w.file].manifest.id();
            let Some(d) = node.download(&c) else {
                continue;
            };
            for (id, p) in d.peers() {
                let Some(ban @ (Ban::Corrupt | Ban::BadManifest | Ban::NotFound)) = p.banned else {
                    continue;
                };
                if let Some(x) = self.host_of_peer(id)
                    && self.hosts[x].behaviour == Behaviour::Honest
                {
                    return Err(self.fail(
                        Kind::Framed,
                        format!("h{h} banned honest h{x} as {ban:?} for {}", c.short()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A sending end whose `Flushed` has been withheld since `s` (its reader does not read)
    /// must be closed by its node within the read deadline of what it owes:
    /// `s + read_deadline(stall, owed)`.
    pub(super) fn check_not_reading(&mut self) -> Res {
        let mut gone = Vec::new();
        let mut res = Ok(());
        for &(cid, e) in &self.withheld {
            let c = &self.conns[cid];
            let end = c.ends[e];
            let (Some(conn), Some(since)) = (end.conn, c.withheld_since[e]) else {
                gone.push((cid, e));
                continue;
            };
            if !end.open || c.reset || !c.flush_owed[e] {
                gone.push((cid, e));
                continue;
            }
            if !self.running(end.host) {
                continue;
            }
            let Some(node) = self.hosts[end.host].node.as_ref() else {
                continue;
            };
            let owed = node
                .connection_loads()
                .find(|l| l.conn == conn)
                .map_or(0, |l| l.owed);
            let stall = node.config().timeouts.stall;
            let deadline = since + read_deadline(stall, owed).as_nanos() as Nanos + DEADLINE_SLACK;
            if self.now > deadline {
                res = Err(self.fail(
                    Kind::NotReadingKept,
                    format!(
                        "h{} keeps {conn:?} open {:.3}s after its reader stopped reading ({owed} bytes owed)",
                        end.host,
                        (self.now - since) as f64 / SEC as f64
                    ),
                ));
                break;
            }
        }
        for k in gone {
            self.withheld.remove(&k);
        }
        res
    }
}

impl Sim {
    /// Claim liar `liar` just refused `n` chunk requests of host `asker`: past
    /// [`MAX_REFUSED_PER_SEC`] in the last second, its refusals cost it nothing
    /// ([`Kind::Unpunished`]).
    pub(super) fn note_refused(&mut self, liar: usize, asker: usize, n: u32) {
        let now = self.now;
        let times = self.refused.entry((liar, asker)).or_default();
        times.extend(std::iter::repeat_n(now, n as usize));
        while times.front().is_some_and(|&t| t + SEC <= now) {
            times.pop_front();
        }
        let count = times.len();
        if count > MAX_REFUSED_PER_SEC && self.found.is_none() {
            let f = self.fail(
                Kind::Unpunished,
                format!(
                    "h{asker} asked claim liar h{liar} for {count} chunks in one second, all \
                     refused (at most {MAX_REFUSED_PER_SEC})"
                ),
            );
            self.found = Some(f);
        }
    }
}
