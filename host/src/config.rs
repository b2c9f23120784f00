//! What a person (or a test) configures for one peer, whichever runtime drives it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeSet;

use p2pshare_proto::node::{DEFAULT_DISCOVERY_PORT, DEFAULT_INTERVAL, DEFAULT_TRANSFER_PORT};
use p2pshare_proto::{Config, PeerId, StaticPeer};

/// A peer's configuration. [`PeerConfig::new`] gives the defaults: discovery on UDP
/// [`DEFAULT_DISCOVERY_PORT`] broadcast on every LAN interface, transfers on TCP
/// [`DEFAULT_TRANSFER_PORT`], an announcement every [`DEFAULT_INTERVAL`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The shared folder (created if missing).
    pub shared: PathBuf,
    /// False for a peer that only looks (`list`, `peers`): it neither locks nor scans the
    /// folder, shares nothing and downloads nothing.
    pub use_folder: bool,
    /// TCP port to serve on; 0 picks a free one.
    pub transfer_port: u16,
    /// UDP port of discovery (every peer of a LAN uses the same).
    pub discovery_port: u16,
    /// Where announcements go (with the discovery port); empty: the directed broadcast address
    /// of every LAN interface, followed as interfaces come and go ([`crate::interfaces`]).
    pub broadcast: Vec<IpAddr>,
    /// Peers outside the broadcast domain, by transfer address (and the key each must
    /// present, if given).
    pub static_peers: Vec<StaticPeer>,
    /// Private sharing: serve only these keys (`--allow`, `--allow-file`), besides those in
    /// the folder's own allow file ([`crate::allow`]), which is followed while the peer runs.
    /// Empty, with no allow file in the folder: everyone is served.
    pub allow: BTreeSet<PeerId>,
    /// More files of allowed keys (`--allow-file`), read at start and followed like the
    /// folder's own.
    pub allow_files: Vec<PathBuf>,
    /// Announcement interval.
    pub interval: Duration,
    /// How often the shared folder is rescanned for new, changed and removed files.
    pub rescan: Duration,
}

impl PeerConfig {
    /// The defaults, sharing `shared`.
    pub fn new(shared: impl Into<PathBuf>) -> PeerConfig {
        PeerConfig {
            shared: shared.into(),
            use_folder: true,
            transfer_port: DEFAULT_TRANSFER_PORT,
            discovery_port: DEFAULT_DISCOVERY_PORT,
            broadcast: Vec::new(),
            static_peers: Vec::new(),
            allow: BTreeSet::new(),
            allow_files: Vec::new(),
            interval: DEFAULT_INTERVAL,
            rescan: Duration::from_secs(2),
        }
    }

    /// Where announcements go now: the configured addresses, or every LAN interface's.
    pub fn announce_to(&self) -> Vec<SocketAddr> {
        let ips = if self.broadcast.is_empty() {
            crate::interfaces::broadcast_targets(&crate::interfaces::lan_interfaces())
        } else {
            self.broadcast.clone()
        };
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, self.discovery_port))
            .collect()
    }

    /// The node configuration for this peer, once its transfer port is bound.
    pub fn node_config(&self, instance: u64, seed: u64, port: u16) -> Config {
        let mut c = Config::new(instance, seed, port);
        c.announce_to = self.announce_to();
        c.static_peers = self.static_peers.clone();
        c.interval = self.interval;
        c.aes = p2pshare_proto::noise::cpu_has_aes();
        c
    }
}
