//! What the runtime tests share: loopback-only configs (every one broadcasts to
//! 127.255.255.255, never anywhere else) and file contents that differ per seed.

use std::path::Path;
use std::time::Duration;

use p2pshare_host::{Handle, PeerConfig, StartError};

/// How a runtime starts a peer (`p2pshare_smol::start`, `p2pshare_mio::start`).
pub type Start = fn(&PeerConfig) -> Result<Handle, StartError>;

/// A discovery port of this test process, distinct per test (`offset`).
pub fn discovery_port(offset: u16) -> u16 {
    20000 + (std::process::id() % 20000) as u16 + offset
}

/// A loopback-only config sharing `dir`.
pub fn config(dir: &Path, offset: u16) -> PeerConfig {
    let mut cfg = PeerConfig::new(dir);
    cfg.broadcast = vec!["127.255.255.255".parse().unwrap()];
    cfg.discovery_port = discovery_port(offset);
    cfg.transfer_port = 0;
    cfg.interval = Duration::from_secs(1);
    cfg
}

/// `len` bytes that differ per `seed` (so two files have two contents).
pub fn contents(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
