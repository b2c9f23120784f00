//! Flash crowds: one seeder behind a slow uplink and a group of downloaders asking for its file
//! at once, so that downloads overlap and the crowd trades chunks (issue 15).
//!
//! Which worlds get a crowd is drawn from a stream of its own ([`CROWD_STREAM`]), after the
//! rest of the world, so that a world without one replays as it always did. A crowd is 2 to 6
//! honest downloaders (up to 30 in a world given its number of hosts) of a file of 12 to 40
//! chunks held by one honest seeder whose uplink is 64 to 256 KiB/s (the downloaders' are the
//! usual ones, mostly faster); they all ask within 200 ms of each other; sometimes one of them
//! leaves for good midway. The usual checks apply (nothing unverified written or served,
//! every honest download completes); a crowd makes the swarm's paths run: partial holders,
//! bitfields and haves, rarest-first, "taken" refusals, serving from partial files.
//!
//! Two crowds in three (drawn from a stream of their own, [`LIAR_STREAM`], so a crowd without
//! one replays as before) have a claim liar among them (issue 27, item 1): a member that
//! downloads the file like the others but claims every chunk in its bitfields and refuses
//! each request (`Busy`, or `Taken`), or never answers one (a stall). The crowd must still
//! finish, and no member may be asked for more than `MAX_REFUSED_PER_SEC` refused chunks a
//! second by it ([`super::Kind::Unpunished`]: its refusals must cost it).

use p2pshare_proto::Bugs;
use p2pshare_proto::manifest::MIN_CHUNK_SIZE;

use super::rng::SimRng;
use super::{Act, Behaviour, Liar, MS, SEC, Sim};

/// The stream crowds are drawn from.
pub const CROWD_STREAM: u64 = 0x4352_4f57_4453_5f31;
/// The share of worlds with a crowd.
pub const CROWD_RATE: f64 = 0.15;
/// The stream that says whether a crowd has a claim liar, and which.
pub const LIAR_STREAM: u64 = 0x4c49_4152_5f4f_4e45;
/// The share of crowds with a claim liar.
pub const LIAR_RATE: f64 = 0.67;

/// Maybe adds a crowd to `sim` (`big`: a world given its number of hosts, up to 30 wanting).
pub fn populate(sim: &mut Sim, bugs: Bugs, big: bool) {
    let mut r = SimRng::new(sim.seed ^ CROWD_STREAM);
    if !r.chance(CROWD_RATE) {
        return;
    }
    let chunks = r.range(12, 40) as usize;
    let size =
        chunks * MIN_CHUNK_SIZE as usize - r.range(0, u64::from(MIN_CHUNK_SIZE) - 1) as usize;
    let f = sim.add_file("crowd.bin".into(), r.bytes(size));
    let seeder = sim.add_host(Behaviour::Honest, bugs);
    sim.hosts[seeder].up_rate = r.range(64 << 10, 256 << 10);
    sim.hold(seeder, f, true);
    let n = if big { r.range(2, 30) } else { r.range(2, 6) } as usize;
    let at = r.range(300 * MS, 2 * SEC);
    let mut crowd = Vec::new();
    for _ in 0..n {
        let h = sim.add_host(Behaviour::Honest, bugs);
        sim.want(h, f, at + r.range(0, 200 * MS));
        crowd.push(h);
    }
    let mut l = SimRng::new(sim.seed ^ LIAR_STREAM);
    if l.chance(LIAR_RATE) {
        let how = match l.below(6) {
            0..=3 => Liar::Busy,
            4 => Liar::Taken,
            _ => Liar::Stall,
        };
        let h = sim.add_host(Behaviour::ClaimLiar(how), bugs);
        sim.want(h, f, at + l.range(0, 200 * MS));
    }
    if r.chance(0.3) {
        // One of them leaves midway, for good.
        let host = crowd[r.below(crowd.len())];
        let when = at + r.range(SEC, 4 * SEC);
        sim.act(
            when,
            Act::Crash {
                host,
                graceful: r.chance(0.5),
                down_for: None,
            },
        );
    }
}
