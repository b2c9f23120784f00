//! A node's configuration: who it is, where it announces, its timers and limits.

use std::net::SocketAddr;
use std::time::Duration;

use crate::bugs::Bugs;
use crate::ids::PeerId;
use crate::session::Timeouts;

/// Default UDP port of discovery (as the original program).
pub const DEFAULT_DISCOVERY_PORT: u16 = 9999;
/// Default TCP port of transfers (as the original program).
pub const DEFAULT_TRANSFER_PORT: u16 = 10000;
/// Default announcement interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Everything a [`super::Node`] needs to know at start. Build with [`Config::new`] and adjust
/// the fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// This peer's id (random per start is fine).
    pub peer_id: PeerId,
    /// Random per start: lets others notice a restart.
    pub instance: u64,
    /// Seed of every random choice the node makes.
    pub seed: u64,
    /// The TCP port this peer serves on (announced to others).
    pub transfer_port: u16,
    /// Where announcements go: broadcast addresses with the discovery port.
    pub announce_to: Vec<SocketAddr>,
    /// Peers outside the broadcast domain, by their transfer address: connected to directly and
    /// kept in view by pings.
    pub static_peers: Vec<SocketAddr>,
    /// Announcement interval.
    pub interval: Duration,
    /// Connection timers.
    pub timeouts: Timeouts,
    /// Most chunk requests in flight to one peer for one download.
    pub max_window: u32,
    /// Most chunks read or sent but not flushed, per connection, when serving.
    pub serve_window: u32,
    /// Most connections at once; further accepted ones are closed at once.
    pub max_connections: usize,
    /// Most accepted connections from one IP address: one host opening hundreds of silent
    /// connections must not lock the others out.
    pub max_connections_per_ip: usize,
    /// Planted bugs (simulator tests only).
    pub bugs: Bugs,
}

impl Config {
    /// A configuration with the defaults: announce to 255.255.255.255:9999 every 5 s.
    pub fn new(peer_id: PeerId, instance: u64, seed: u64, transfer_port: u16) -> Config {
        Config {
            peer_id,
            instance,
            seed,
            transfer_port,
            announce_to: vec![SocketAddr::from((
                [255, 255, 255, 255],
                DEFAULT_DISCOVERY_PORT,
            ))],
            static_peers: Vec::new(),
            interval: DEFAULT_INTERVAL,
            timeouts: Timeouts::default(),
            max_window: 16,
            serve_window: 4,
            max_connections: 512,
            max_connections_per_ip: 64,
            bugs: Bugs::default(),
        }
    }
}
