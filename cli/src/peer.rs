//! Starting a peer from the command-line options, on either runtime.

use std::net::SocketAddr;
use std::time::Duration;

use p2pshare_host::{Handle, Multicast, PeerConfig};
use p2pshare_proto::node::{MAX_INTERVAL, MIN_INTERVAL, check_interval};
use p2pshare_proto::{PeerId, StaticPeer};

use crate::args::{Opts, Runtime};
use crate::control::{self, ControlServer};

/// How the peer uses its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Shares and downloads: takes the folder.
    Share,
    /// Only looks (list, peers): leaves the folder alone.
    Observe,
}

/// Builds the configuration from the options.
pub fn config(opts: &Opts, port: u16, mode: Mode) -> Result<PeerConfig, String> {
    let mut cfg = PeerConfig::new(&opts.shared);
    cfg.use_folder = mode == Mode::Share;
    cfg.transfer_port = port;
    cfg.discovery_port = opts.discovery_port;
    // Without --broadcast, PeerConfig's default (every LAN interface's) stands; with it,
    // multicast goes only where --multicast-if says.
    if !opts.broadcast.is_empty() {
        cfg.broadcast = opts.broadcast.clone();
    }
    cfg.multicast = if opts.no_multicast {
        Multicast::Off
    } else if opts.multicast_if.is_empty() {
        Multicast::Auto
    } else {
        Multicast::On(opts.multicast_if.clone())
    };
    // Proto decides what interval can run; a negative or not-a-number one is no duration.
    let interval = Duration::try_from_secs_f64(opts.interval).unwrap_or(Duration::MAX);
    check_interval(interval).map_err(|_| {
        format!(
            "--interval {} must be between {} and {} seconds",
            opts.interval,
            MIN_INTERVAL.as_secs_f64(),
            MAX_INTERVAL.as_secs_f64()
        )
    })?;
    cfg.interval = interval;
    for p in &opts.peers {
        cfg.static_peers.push(static_peer(p)?);
    }
    cfg.allow = opts.allow.iter().copied().collect();
    cfg.allow_files = opts.allow_files.clone();
    if !opts.dht && !opts.dht_bootstrap.is_empty() {
        return Err("--dht-bootstrap needs --dht (the DHT is off unless --dht is given)".into());
    }
    if opts.dht {
        let mut bootstrap = Vec::new();
        for b in &opts.dht_bootstrap {
            bootstrap.extend(p2pshare_host::dht::parse_bootstrap(b)?);
        }
        cfg.dht = Some(p2pshare_host::dht::DhtConfig { bootstrap });
    }
    Ok(cfg)
}

/// A `--peer [KEY@]ADDRESS`: the key it must present, if given, and the address the rest
/// names (see [`keyed_addr`]).
pub fn static_peer(spec: &str) -> Result<StaticPeer, String> {
    let (key, addr) = keyed_addr(spec, "--peer")?;
    Ok(StaticPeer { addr, key })
}

/// A `[KEY@]ADDRESS` (`what` names where it was given, for the error): the key (64 hex
/// digits) and the address the rest names: `HOST:PORT` (a host name is looked up: its first
/// IPv4 address, else its first IPv6 one), `[IPv6]:PORT`, `[fe80::…%IFACE]:PORT`.
pub fn keyed_addr(spec: &str, what: &str) -> Result<(Option<PeerId>, SocketAddr), String> {
    let (key, addr) = match spec.split_once('@') {
        Some((key, addr)) => {
            let key =
                p2pshare_host::allow::parse_key(key).map_err(|e| format!("{what} {spec}: {e}"))?;
            (Some(key), addr)
        }
        None => (None, spec),
    };
    let addr = p2pshare_host::interfaces::parse_addr(addr).map_err(|e| format!("{what} {e}"))?;
    Ok((key, addr))
}

/// Starts the peer on the runtime the options name.
pub fn start(opts: &Opts, port: u16, mode: Mode) -> Result<Handle, String> {
    let cfg = config(opts, port, mode)?;
    let started = match opts.runtime {
        Runtime::Mio => p2pshare_mio::start(&cfg),
        Runtime::Smol => p2pshare_smol::start(&cfg),
    };
    started.map_err(|e| e.to_string())
}

/// Starts a sharing peer (the prompt, `serve`) with its control socket and its web page (see
/// [`crate::web::start_for`]), and says where it serves. Keep the [`ControlServer`] as long as the peer runs (dropping it removes the
/// socket); without one (the folder's path is too long for a socket, say) one-shots on this
/// folder cannot reach the peer, which is said once.
pub fn start_sharing(
    opts: &Opts,
    port: Option<u16>,
) -> Result<(Handle, Option<ControlServer>), String> {
    let port = port.unwrap_or(p2pshare_proto::node::DEFAULT_TRANSFER_PORT);
    let handle = start(opts, port, Mode::Share)?;
    eprintln!(
        "p2pshare: sharing {} on TCP port {} (discovery on UDP {})",
        opts.shared.display(),
        handle.transfer_port(),
        opts.discovery_port
    );
    let control = match control::serve(opts, handle.controller()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!(
                "p2pshare: warning: no control socket in the folder ({e}); one-shot commands cannot reach this peer"
            );
            None
        }
    };
    crate::web::start_for(opts, handle.controller())?;
    Ok((handle, control))
}

/// Seconds from the command line as a duration; refuses negative or absurd values.
pub fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if s.is_finite() && (0.0..=1e7).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("{what} {s} must be between 0 and 10000000 seconds"))
    }
}
