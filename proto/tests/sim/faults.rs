//! The workload and the faults: user commands, crashes and restarts, pauses, partitions,
//! connection faults, bad networks and disks, garbage datagrams, rescans, and the heal.

use super::*;

impl Sim {
    pub(super) fn action(&mut self, a: Act) -> Res {
        self.log(format!("act {a:?}"));
        match a {
            Act::Get { want } => self.get(want)?,
            Act::Crash {
                host,
                graceful,
                down_for,
            } => self.crash_for(host, graceful, down_for)?,
            Act::Restart { host } => self.restart(host)?,
            Act::Pause { host, dur } => {
                if self.hosts[host].node.is_some() && !self.hosts[host].paused {
                    self.hosts[host].paused = true;
                    self.act(self.now + dur, Act::Unpause { host });
                }
            }
            Act::Unpause { host } => self.unpause(host)?,
            // A crashed host's user started again without a hold; a paused one is asked later.
            Act::Release { host, content } if self.hosts[host].node.is_some() => {
                if self.hosts[host].paused {
                    self.act(self.now + 100 * MS, Act::Release { host, content });
                } else {
                    self.feed(host, Input::Command(Command::Release(content)), None)?;
                }
            }
            Act::Release { .. } => {}
            Act::Partition { groups, dur } => {
                for (h, g) in groups.into_iter().enumerate() {
                    self.hosts[h].group = g;
                }
                self.partition_until = self.now + dur;
                self.act(self.now + dur, Act::HealPartition);
            }
            Act::HealPartition => {
                for x in &mut self.hosts {
                    x.group = 0;
                }
            }
            Act::ResetConn | Act::HalfClose | Act::Stall { .. } => self.conn_fault(a),
            Act::SlowDisk { host, lat } => self.hosts[host].disk_slow = Some(lat),
            Act::WriteFail { host, p } => self.hosts[host].write_fail = p,
            Act::BadNet { loss, dup, jitter } => {
                self.loss = loss;
                self.dup = dup;
                self.jitter = jitter;
            }
            Act::Garbage => self.garbage(),
            Act::Heal => self.heal(),
            Act::Rescan { host } => self.rescan(host)?,
            Act::Adversary { host, turn } => self.adversary_act(host, turn),
        }
        Ok(())
    }

    /// The user asks for a wanted file (again, if it failed), unless it is already coming.
    fn get(&mut self, want: usize) -> Res {
        let w = &mut self.wants[want];
        w.get_pending = false;
        w.get_scheduled = false;
        let (h, f) = (w.host, w.file);
        if w.done || self.hosts[h].node.is_none() {
            return Ok(());
        }
        if self.hosts[h].paused {
            self.wants[want].get_pending = true;
            let at = self.now + SEC;
            self.ask_again(at, want);
            return Ok(());
        }
        let c = self.files[f].manifest.id();
        // The user was handed a link to it (a routed world: its holders beyond the subnet).
        self.feed_link(h, &c)?;
        if self.is_folder_want(want) {
            return self.folder_get(want);
        }
        if self.hosts[h]
            .node
            .as_ref()
            .and_then(|n| n.download(&c))
            .is_some()
        {
            return Ok(());
        }
        let w = &mut self.wants[want];
        w.attempt = Some(self.now);
        w.attempts += 1;
        self.feed(
            h,
            Input::Command(Command::Get {
                content: c,
                name: None,
            }),
            None,
        )?;
        // Every third want is got as a one-shot `get` before the view settled does it: held
        // back from being put in place for a while (no draw from the world's generator, so
        // every seed keeps its world).
        if want % 3 == 1 {
            self.feed(h, Input::Command(Command::Hold(c)), None)?;
            let at = self.now + (200 + 300 * (want % 4) as Nanos) * MS;
            self.act(
                at,
                Act::Release {
                    host: h,
                    content: c,
                },
            );
        }
        self.wake_impersonators(h);
        Ok(())
    }

    /// The process dies (after a goodbye if `graceful`), back after `down_for` if any.
    fn crash_for(&mut self, host: usize, graceful: bool, down_for: Option<Nanos>) -> Res {
        if self.hosts[host].node.is_none() {
            return Ok(());
        }
        if graceful && !self.hosts[host].paused {
            self.feed(host, Input::Command(Command::Shutdown), None)?;
        }
        self.crash(host);
        match down_for {
            Some(d) => self.act(self.now + d, Act::Restart { host }),
            None => self.hosts[host].departed = true,
        }
        Ok(())
    }

    /// A crashed host starts again; its user asks again for what it still wants.
    fn restart(&mut self, host: usize) -> Res {
        if self.hosts[host].node.is_some() {
            return Ok(());
        }
        self.share_finished(host);
        self.start(host)?;
        for w in 0..self.wants.len() {
            if self.wants[w].host == host && !self.wants[w].done && !self.wants[w].get_pending {
                self.wants[w].get_pending = true;
                let at = self.now + self.rng.range(SEC, 3 * SEC);
                self.ask_again(at, w);
            }
        }
        Ok(())
    }

    /// A paused host wakes: overdue timers first, then everything that waited, in order.
    fn unpause(&mut self, host: usize) -> Res {
        if !self.hosts[host].paused {
            return Ok(());
        }
        self.hosts[host].paused = false;
        if self.hosts[host].node.is_none() {
            return Ok(());
        }
        if self.hosts[host].deadline.is_some_and(|d| d <= self.now) {
            self.timeout(host)?;
        }
        while let Some(arrival) = self.hosts[host].backlog.pop_front() {
            if self.hosts[host].node.is_none() {
                break;
            }
            match arrival {
                Arrival::Input(input, from) => self.feed(host, input, from)?,
                Arrival::Accept(cid) => self.accept(cid)?,
                Arrival::Event(ev) => self.event(ev)?,
            }
        }
        Ok(())
    }

    /// A fault on one live connection, picked at random: reset both ends, reset one end
    /// (half-close), or stall one or both directions.
    fn conn_fault(&mut self, a: Act) {
        let live = self.live_conns();
        if live.is_empty() {
            return;
        }
        let cid = live[self.rng.below(live.len())];
        match a {
            Act::ResetConn => {
                self.conns[cid].reset = true;
                for to in 0..2 {
                    let lat = self.hosts[self.conns[cid].ends[to].host].lat;
                    self.schedule(self.now + lat, Ev::Reset { cid, to });
                }
            }
            Act::HalfClose => {
                let to = self.rng.below(2);
                let lat = self.hosts[self.conns[cid].ends[to].host].lat;
                self.schedule(self.now + lat, Ev::Reset { cid, to });
            }
            Act::Stall { dur } => {
                for e in 0..2 {
                    if self.rng.chance(0.7) {
                        self.conns[cid].stall_until[e] = self.now + dur;
                    }
                }
            }
            _ => {}
        }
    }

    /// Random datagrams from a stranger, some with our magic and version.
    fn garbage(&mut self) {
        let from: SocketAddr = "10.0.254.1:9999".parse().unwrap();
        for _ in 0..3 {
            let n = self.rng.range(0, 1500) as usize;
            let mut data = self.rng.bytes(n);
            if self.rng.chance(0.5) && data.len() >= 5 {
                data[..4].copy_from_slice(b"P2PS");
                if self.rng.chance(0.5) {
                    data[4] = 1;
                }
            }
            for t in 0..self.hosts.len() {
                let at = self.now + self.hosts[t].lat;
                let data = data.clone();
                self.schedule_input(at, t, Input::Datagram { from, data }, None);
            }
        }
    }

    /// Every transient fault ends: the network, the disks, partitions, stalls.
    fn heal(&mut self) {
        self.loss = 0.0;
        self.dup = 0.0;
        self.jitter = 0;
        for x in &mut self.hosts {
            x.disk_slow = None;
            x.write_fail = 0.0;
            x.group = 0;
        }
        for s in self.conns.iter_mut() {
            s.stall_until = [0; 2];
        }
    }

    /// The host's folder is rescanned: its finished downloads become shared files.
    fn rescan(&mut self, host: usize) -> Res {
        if self.hosts[host].node.is_none() {
            return Ok(());
        }
        self.share_finished(host);
        // A paused host sees the change when it wakes, like every other input.
        let files = self.hosts[host].catalog.clone();
        let inc = self.hosts[host].inc;
        self.deliver(host, inc, Input::CatalogChanged { files }, None)
    }

    /// The host's finished downloads join the files it shares (what its scanner finds on
    /// disk: at a rescan, and at every start, since a node shares a file it just finished
    /// from memory only until then).
    fn share_finished(&mut self, host: usize) {
        let finished: Vec<(String, ContentId, Vec<u8>)> = self.hosts[host]
            .store
            .finished
            .iter()
            .map(|(n, (c, d))| (n.clone(), *c, d.clone()))
            .collect();
        for (name, c, data) in finished {
            if self.hosts[host].catalog.iter().any(|f| f.name == name) {
                continue;
            }
            let Some(&f) = self.manifests.get(&c) else {
                continue;
            };
            let manifest = self.files[f].manifest.clone();
            self.hosts[host].store.shared.insert(c, Rc::new(data));
            self.hosts[host].catalog.push(LocalFile { name, manifest });
            let now = self.now;
            self.hosts[host].shares_since.entry(c).or_insert(now);
        }
    }

    pub(super) fn crash(&mut self, h: usize) {
        self.log(format!("h{h} crash"));
        let host = &mut self.hosts[h];
        host.node = None;
        host.inc += 1;
        host.paused = false;
        host.backlog.clear();
        host.deadline = None;
        host.expiry_check_at = Nanos::MAX;
        // Writes still queued may land, land torn, or vanish.
        let pending = std::mem::take(&mut host.pending_disk);
        for (_, o) in pending {
            if let DiskOp::Write {
                content,
                offset,
                data,
                ..
            } = o
            {
                match self.rng.below(3) {
                    0 => self.hosts[h].store.write(content, offset, &data),
                    1 => {
                        let n = self.rng.below(data.len().max(1));
                        self.hosts[h].store.write(content, offset, &data[..n]);
                    }
                    _ => {}
                }
            }
        }
        // The OS closes its sockets (or the machine is gone and says nothing).
        let rst = self.rng.chance(0.7);
        for cid in 0..self.conns.len() {
            for e in 0..2 {
                let end = self.conns[cid].ends[e];
                if end.host == h && end.open {
                    self.conns[cid].ends[e].open = false;
                    if rst {
                        self.conns[cid].reset = true;
                        let lat = self.link_lat(h, self.conns[cid].ends[1 - e].host);
                        self.schedule(self.now + lat, Ev::Reset { cid, to: 1 - e });
                    }
                }
            }
        }
        self.conn_of.retain(|(x, _), _| *x != h);
        for w in &mut self.wants {
            if w.host == h {
                w.attempt = None;
            }
        }
        self.folder_crashed(h);
    }
}
