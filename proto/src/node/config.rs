//! A node's configuration: where it announces, its timers and limits. Who it is (its
//! [`crate::Identity`]) is given to `Node::new` beside it, so the secret never sits in a
//! `Debug`-printed, cloned configuration.
//!
//! Invariant: a [`super::Node`] only ever runs with a configuration that passed
//! [`Config::validate`] (`Node::new` refuses any other), so no timer of the node can be zero
//! (a busy loop) and no window or limit can be zero (a node that never asks or never serves).

use std::collections::BTreeSet;
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
/// Shortest announcement interval: ten datagrams a second per peer is already a lot on a LAN.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest announcement interval: a peer silent for 3½ hours is as good as gone.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The announcement interval is outside [`MIN_INTERVAL`]`..=`[`MAX_INTERVAL`].
    Interval(Duration),
    /// A connection timeout is zero (named).
    ZeroTimeout(&'static str),
    /// A window or connection limit is zero (named).
    ZeroLimit(&'static str),
    /// `max_outbound` is above `max_connections`.
    OutboundOverTotal,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Interval(d) => write!(
                f,
                "announcement interval {:.3} s is outside {} to {} s",
                d.as_secs_f64(),
                MIN_INTERVAL.as_secs_f64(),
                MAX_INTERVAL.as_secs_f64()
            ),
            ConfigError::ZeroTimeout(what) => write!(f, "the {what} timeout must not be zero"),
            ConfigError::ZeroLimit(what) => write!(f, "{what} must not be zero"),
            ConfigError::OutboundOverTotal => {
                f.write_str("max_outbound must not exceed max_connections")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checks an announcement interval (what [`Config::validate`] checks of it).
pub fn check_interval(interval: Duration) -> Result<(), ConfigError> {
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        Ok(())
    } else {
        Err(ConfigError::Interval(interval))
    }
}

/// A peer beyond the broadcast domain (`--peer`): its transfer address, and the key it must
/// present if one was given (`--peer KEY@HOST:PORT`). Without a key, whatever key answers
/// there is taken (trust on first use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticPeer {
    /// Its transfer address.
    pub addr: SocketAddr,
    /// The key it must prove in the handshake: a dial that meets another key is closed before
    /// we say who we are, and counted (`handshake_wrong_peer`).
    pub key: Option<PeerId>,
}

impl From<SocketAddr> for StaticPeer {
    fn from(addr: SocketAddr) -> StaticPeer {
        StaticPeer { addr, key: None }
    }
}

/// Everything a [`super::Node`] needs to know at start. Build with [`Config::new`] and adjust
/// the fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// This start of the peer: its start time in milliseconds since the UNIX epoch (the host
    /// reads the clock), so that a restart is a higher instance and others notice it.
    pub instance: u64,
    /// Seed of every random choice the node makes.
    pub seed: u64,
    /// The TCP port this peer serves on (announced to others).
    pub transfer_port: u16,
    /// Where announcements go: broadcast addresses with the discovery port, and IPv6
    /// multicast destinations (`[ff12::7032:7073%ifindex]:port`, [`crate::addr::multicast_on`]).
    /// JSON announcements for Python peers go to the IPv4 ones only.
    pub announce_to: Vec<SocketAddr>,
    /// Peers outside the broadcast domain, by their transfer address: connected to directly and
    /// kept in view by pings.
    pub static_peers: Vec<StaticPeer>,
    /// Private sharing (`--allow`): when set, our catalog, manifests and chunks are served only
    /// to these keys (others get an empty catalog and `NotFound`, counted as
    /// `requests_not_allowed`), and nothing is offered to Python peers (they cannot prove a
    /// key): no JSON announcement with our files, no `chunk` request answered. `None`: every
    /// peer is served. Changed while running with [`crate::Input::Allow`].
    pub allow: Option<BTreeSet<PeerId>>,
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
    /// Most outbound connections at once (at most `max_connections`): the rest is left for
    /// peers that connect to us, so announcing many ids cannot use up every slot.
    pub max_outbound: usize,
    /// Most accepted connections from one IP address: one host opening hundreds of silent
    /// connections must not lock the others out.
    pub max_connections_per_ip: usize,
    /// This machine runs AES-GCM in hardware ([`crate::noise::cpu_has_aes`]): connections
    /// where both sides say so are sealed with AES-256-GCM, the others with
    /// ChaCha20-Poly1305. Off in [`Config::new`] (the host sets what the CPU has; the
    /// simulator mixes both).
    pub aes: bool,
    /// Planted bugs (simulator tests only).
    pub bugs: Bugs,
}

impl Config {
    /// Checks that the node can run with this configuration: the interval within bounds, no
    /// zero timeout, window or limit. `Node::new` calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_interval(self.interval)?;
        let t = &self.timeouts;
        for (what, d) in [
            ("connect", t.connect),
            ("handshake", t.handshake),
            ("stall", t.stall),
            ("idle", t.idle),
            ("ping", t.ping),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroTimeout(what));
            }
        }
        for (what, n) in [
            ("max_window", self.max_window as usize),
            ("serve_window", self.serve_window as usize),
            ("max_connections", self.max_connections),
            ("max_outbound", self.max_outbound),
            ("max_connections_per_ip", self.max_connections_per_ip),
        ] {
            if n == 0 {
                return Err(ConfigError::ZeroLimit(what));
            }
        }
        if self.max_outbound > self.max_connections {
            return Err(ConfigError::OutboundOverTotal);
        }
        Ok(())
    }

    /// A configuration with the defaults: announce to 255.255.255.255:9999 every 5 s.
    pub fn new(instance: u64, seed: u64, transfer_port: u16) -> Config {
        Config {
            instance,
            seed,
            transfer_port,
            announce_to: vec![SocketAddr::from((
                [255, 255, 255, 255],
                DEFAULT_DISCOVERY_PORT,
            ))],
            static_peers: Vec::new(),
            allow: None,
            interval: DEFAULT_INTERVAL,
            timeouts: Timeouts::default(),
            max_window: 16,
            serve_window: 4,
            max_connections: 512,
            max_outbound: 256,
            max_connections_per_ip: 64,
            aes: false,
            bugs: Bugs::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_that_cannot_run_is_refused() {
        let ok = Config::new(1, 1, 10000);
        assert_eq!(ok.validate(), Ok(()));
        let mut c = ok.clone();
        c.interval = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Interval(Duration::ZERO)));
        let me = crate::Identity::from_secret_bytes(&[1; 32]);
        assert!(super::super::Node::new(c, me, [1; 32], crate::test_epoch()).is_err());
        let mut c = ok.clone();
        c.timeouts.stall = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ZeroTimeout("stall")));
        let mut c = ok.clone();
        c.max_outbound = c.max_connections + 1;
        assert_eq!(c.validate(), Err(ConfigError::OutboundOverTotal));
        let mut c = ok;
        c.serve_window = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroLimit("serve_window")));
        assert!(check_interval(MIN_INTERVAL).is_ok() && check_interval(MAX_INTERVAL).is_ok());
        assert!(check_interval(MAX_INTERVAL + Duration::from_nanos(1)).is_err());
    }
}
