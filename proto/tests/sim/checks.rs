//! The checks that span steps: peers expire on time, and the end-of-run liveness oracle (a
//! wanted file with an honest source elsewhere must have been downloaded).

use super::*;

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
            // for itself (a `get` downloads from peers).
            let honest: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| h != w.host)
                .filter(|&h| {
                    let x = &self.hosts[h];
                    x.node.is_some()
                        && x.behaviour == Behaviour::Honest
                        && x.store.shared.contains_key(&c)
                        && x.catalog.iter().any(|f| f.manifest.id() == c)
                })
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

    pub(super) fn refresh_expiry(&mut self, h: usize) {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return;
        };
        let mut at = Nanos::MAX;
        for p in node.peers() {
            if let Some(x) = self.host_of_peer(&p.id) {
                at = at.min(self.hosts[h].heard[x] + EXPIRY);
            }
        }
        self.hosts[h].expiry_check_at = at;
    }

    /// A peer that host `h` has heard nothing from for the expiry must be gone from its table
    /// once its timers have run.
    pub(super) fn check_expiry(&mut self, h: usize) -> Res {
        let Some(node) = self.hosts[h].node.as_ref() else {
            return Ok(());
        };
        for p in node.peers() {
            if let Some(x) = self.host_of_peer(&p.id) {
                let silent = self.now - self.hosts[h].heard[x];
                if silent >= EXPIRY {
                    return Err(self.fail(
                        Kind::PeerNotExpired,
                        format!(
                            "h{h} still lists h{x}, silent for {:.3}s (expiry {:.1}s)",
                            silent as f64 / SEC as f64,
                            EXPIRY as f64 / SEC as f64
                        ),
                    ));
                }
            }
        }
        self.refresh_expiry(h);
        Ok(())
    }

    /// The checks that concern every host at the current time.
    pub(super) fn check_all(&mut self) -> Res {
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
