//! Routed worlds (issue 29): hosts on several subnets, joined by routers that forward
//! connections but drop every broadcast, so a host hears only its own subnet's announcements
//! and learns the others the ways a person would make it: a link (`get LINK`: the want's
//! holders beyond its subnet, dialled as [`Found::Link`]) and the peers it met before (its
//! known-peers store: fed on every start as [`Found::Known`] probes, including after a crash).
//!
//! Which worlds are routed is drawn from a stream of its own ([`SUBNET_STREAM`]), after the
//! rest of the world, so that a world on one subnet replays as it always did. A routed world
//! has 2 or 3 subnets; a pair of subnets has a route between them with probability 0.8 (a
//! subnet may be cut off from another: nothing there is reachable, and nothing is expected of
//! it). Each host on a routed pair of subnets has met each other host there in an earlier run
//! with probability 0.4 (one way: the other need not remember it).
//!
//! What is checked, besides every usual check: the liveness oracle counts an honest holder
//! as a source only where a route and a way to learn it exist ([`Sim::reachable`]); and at
//! the end of the run, every pair of honest running hosts on routed subnets where one's
//! running node was told of the other (the known peers its start probed, a link since) lists
//! each other, once both have run for [`SETTLE`] past the last fault
//! ([`Kind::Unlisted`]).

use p2pshare_proto::{Command, Found, Input};

use super::rng::SimRng;
use super::{INTERVAL, Kind, Nanos, Res, SEC, Sim};

/// The stream routed worlds are drawn from.
pub const SUBNET_STREAM: u64 = 0x5355_424e_4554_5331;
/// The share of worlds that are routed.
pub const SUBNET_RATE: f64 = 0.25;
/// How long after its start (and the heal) a host must list every host it knows beyond its
/// subnet, and be listed by it: a probe that failed through a partition backs off to 16
/// intervals, then one round trip and a handshake.
pub const SETTLE: Nanos = 18 * INTERVAL;

/// Maybe splits `sim` into subnets with routers between them.
pub fn populate(sim: &mut Sim) {
    let mut r = SimRng::new(sim.seed ^ SUBNET_STREAM);
    if !r.chance(SUBNET_RATE) {
        return;
    }
    let subnets = r.range(2, 3) as usize;
    let mut routes = vec![vec![true; subnets]; subnets];
    let pairs: Vec<(usize, usize)> = (0..subnets)
        .flat_map(|a| (a + 1..subnets).map(move |b| (a, b)))
        .collect();
    for (a, b) in pairs {
        let routed = r.chance(0.8);
        routes[a][b] = routed;
        routes[b][a] = routed;
    }
    sim.routes = routes;
    let n = sim.hosts.len();
    for h in 0..n {
        sim.hosts[h].subnet = r.below(subnets) as u8;
    }
    for a in 0..n {
        for b in 0..n {
            if a != b && sim.beyond(a, b) && sim.routed(a, b) && r.chance(0.4) {
                sim.hosts[a].contacts.insert(b);
                sim.hosts[a].met.insert(b);
            }
        }
    }
    // Long enough for the pairs to be checked after the last fault.
    sim.min_end = sim.min_end.max(sim.heal_at + SETTLE + 2 * SEC);
}

impl Sim {
    /// True in a world with several subnets.
    pub(super) fn is_routed(&self) -> bool {
        !self.routes.is_empty()
    }

    /// True when hosts `a` and `b` are on different subnets.
    pub(super) fn beyond(&self, a: usize, b: usize) -> bool {
        self.hosts[a].subnet != self.hosts[b].subnet
    }

    /// True when a connection from `a` reaches `b`: same subnet, or a router between.
    pub(super) fn routed(&self, a: usize, b: usize) -> bool {
        let (x, y) = (self.hosts[a].subnet, self.hosts[b].subnet);
        x == y || self.routes[usize::from(x)][usize::from(y)]
    }

    /// True when host `b` can be a source for host `a`: on its subnet (broadcast finds it), or
    /// routed and one of them was told of the other (a link, a peer met before): whoever
    /// knows dials, and the hello lists it on both sides.
    pub(super) fn reachable(&self, a: usize, b: usize) -> bool {
        !self.is_routed()
            || !self.beyond(a, b)
            || (self.routed(a, b)
                && (self.hosts[a].contacts.contains(&b) || self.hosts[b].contacts.contains(&a)))
    }

    /// Host `h` (just started) is given the peers it met before, as its known-peers store
    /// gives them to a real peer at start: each a probe of its key at its address.
    pub(super) fn feed_known(&mut self, h: usize) -> Res {
        if !self.is_routed() {
            return Ok(());
        }
        let met: Vec<usize> = self.hosts[h].met.iter().copied().collect();
        for x in met {
            self.hosts[h].told.insert(x);
            let addr = std::net::SocketAddr::new(std::net::IpAddr::V4(self.hosts[x].ip), 10000);
            let key = Some(self.hosts[x].id);
            let add = Command::AddPeer {
                addr,
                key,
                found: Found::Known,
            };
            self.feed(h, Input::Command(add), None)?;
        }
        Ok(())
    }

    /// Host `h`'s user got a link to content `c`: it names every host beyond `h`'s subnet
    /// that lists `c` now, by key and address, and each is dialled as a link's peer.
    pub(super) fn feed_link(&mut self, h: usize, c: &p2pshare_proto::ContentId) -> Res {
        if !self.is_routed() {
            return Ok(());
        }
        let holders: Vec<usize> = (0..self.hosts.len())
            .filter(|&x| x != h && self.beyond(h, x))
            .filter(|&x| self.hosts[x].catalog.iter().any(|f| f.manifest.id() == *c))
            .collect();
        for x in holders {
            self.hosts[h].contacts.insert(x);
            self.hosts[h].told.insert(x);
            let addr = std::net::SocketAddr::new(std::net::IpAddr::V4(self.hosts[x].ip), 10000);
            let add = Command::AddPeer {
                addr,
                key: Some(self.hosts[x].id),
                found: Found::Link,
            };
            self.feed(h, Input::Command(add), None)?;
        }
        Ok(())
    }

    /// Host `h`'s node found the peer of host `x`: it is remembered, as a real peer's
    /// known-peers store does, and probed after a restart.
    pub(super) fn met(&mut self, h: usize, x: usize) {
        if self.is_routed() {
            self.hosts[h].met.insert(x);
        }
    }

    /// At the end of a routed run: every pair of honest hosts, running since `SETTLE` before
    /// the end and past the heal, on routed subnets where one's running node was told of the
    /// other (its start's known peers, a link since), lists each other.
    pub(super) fn check_routed_pairs(&self) -> Res {
        if !self.is_routed() || self.now < self.heal_at + SETTLE {
            return Ok(());
        }
        let settled = |h: usize| {
            let x = &self.hosts[h];
            x.node.is_some()
                && !x.paused
                && !x.departed
                && x.behaviour == super::Behaviour::Honest
                && x.started_at + SETTLE <= self.now
        };
        for a in 0..self.hosts.len() {
            for b in 0..self.hosts.len() {
                if a == b || !settled(a) || !settled(b) || !self.beyond(a, b) {
                    continue;
                }
                if !self.routed(a, b) || !self.hosts[a].told.contains(&b) {
                    continue;
                }
                for (x, y) in [(a, b), (b, a)] {
                    let listed = self.hosts[x]
                        .node
                        .as_ref()
                        .is_some_and(|n| n.peers().iter().any(|p| p.id == self.hosts[y].id));
                    if !listed {
                        return Err(self.fail(
                            Kind::Unlisted,
                            format!(
                                "h{x} (subnet {}) does not list h{y} (subnet {}) though h{a} was \
                                 told of h{b} and a router joins them",
                                self.hosts[x].subnet, self.hosts[y].subnet
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
