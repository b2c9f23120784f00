//! What a person (or a test) configures for one peer, whichever runtime drives it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeSet;

use p2pshare_proto::node::{DEFAULT_DISCOVERY_PORT, DEFAULT_INTERVAL, DEFAULT_TRANSFER_PORT};
use p2pshare_proto::{Config, PeerId, StaticPeer};

/// A peer's configuration. [`PeerConfig::new`] gives the defaults: discovery on UDP
/// [`DEFAULT_DISCOVERY_PORT`] broadcast on every LAN interface and multicast on every IPv6 one,
/// transfers on TCP
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
    /// Where IPv6 announcements go (link-local multicast, [`Multicast`]).
    pub multicast: Multicast,
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
    /// The mainline DHT (`--dht`, [`crate::dht`]): off by default; a peer that uses no folder
    /// never runs one.
    pub dht: Option<crate::dht::DhtConfig>,
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
            multicast: Multicast::Auto,
            static_peers: Vec::new(),
            allow: BTreeSet::new(),
            allow_files: Vec::new(),
            interval: DEFAULT_INTERVAL,
            rescan: Duration::from_secs(2),
            dht: None,
        }
    }

    /// True when IPv6 discovery is on: [`Multicast::On`], or [`Multicast::Auto`] while
    /// `broadcast` is not pinned.
    pub fn uses_multicast(&self) -> bool {
        match &self.multicast {
            Multicast::Auto => self.broadcast.is_empty(),
            Multicast::Off => false,
            Multicast::On(_) => true,
        }
    }

    /// True when where announcements go follows the interfaces as they come and go.
    pub fn follows_interfaces(&self) -> bool {
        self.broadcast.is_empty() || matches!(self.multicast, Multicast::On(_))
    }

    /// The interfaces IPv6 announcements go out on now (none when multicast is off).
    pub fn multicast_interfaces(&self) -> Vec<crate::interfaces::MulticastInterface> {
        match &self.multicast {
            _ if !self.uses_multicast() => Vec::new(),
            Multicast::On(names) => crate::interfaces::named_interfaces(names),
            _ => crate::interfaces::multicast_interfaces(),
        }
    }

    /// Where announcements go now: the configured broadcast addresses (or every LAN
    /// interface's), then the multicast group on each interface of `joined` (indexes).
    pub fn announce_to(&self, joined: &[u32]) -> Vec<SocketAddr> {
        let ips = if self.broadcast.is_empty() {
            crate::interfaces::broadcast_targets(&crate::interfaces::lan_interfaces())
        } else {
            self.broadcast.clone()
        };
        let broadcast = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.discovery_port));
        let multicast = joined
            .iter()
            .map(|&i| p2pshare_proto::addr::multicast_on(i, self.discovery_port));
        broadcast.chain(multicast).collect()
    }

    /// The node configuration for this peer, once its transfer port is bound.
    /// `joined`: the interfaces the multicast group was joined on.
    pub fn node_config(&self, instance: u64, seed: u64, port: u16, joined: &[u32]) -> Config {
        let mut c = Config::new(instance, seed, port);
        c.announce_to = self.announce_to(joined);
        c.static_peers = self.static_peers.clone();
        c.interval = self.interval;
        c.aes = p2pshare_proto::noise::cpu_has_aes();
        c
    }
}

/// Where IPv6 announcements go. Each goes to the group
/// [`p2pshare_proto::addr::MULTICAST_GROUP`] on the discovery port, once per interface, and
/// the group is joined on each of those interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Multicast {
    /// Every up, multicast-capable interface with IPv6 but loopback
    /// ([`crate::interfaces::multicast_interfaces`]), followed as interfaces come and go — but
    /// none while [`PeerConfig::broadcast`] is pinned: a peer whose broadcast was pinned (to
    /// loopback, say) sends nothing anywhere else unless its multicast is pinned too.
    Auto,
    /// None: IPv4 broadcast only.
    Off,
    /// These interfaces, by name (followed: an interface that appears later is joined then).
    On(Vec<String>),
}
