//! File descriptors: a peer never runs out of them because of connections.
//!
//! Every connection is a descriptor; so are the sockets, the shared files kept open, the
//! partial files of downloads, the lock and the scanner's reads. At start the soft limit is
//! raised to the hard limit (capped at [`WANTED`]), and the node's connection limits are
//! lowered so that connections leave [`RESERVED`] descriptors for everything else. With the
//! usual soft limit of 1024 nothing changes: 512 connections fit.
//!
//! Invariant: `max_connections + RESERVED <= soft limit` (when the limit can be read), and
//! `max_outbound <= max_connections / 2`, so inbound slots are always left.

use p2pshare_proto::Config;

use crate::store::MAX_OPEN_SHARED;

/// Descriptors kept for everything but connections: sockets, open shared and partial files,
/// the lock, the scanner, the standard streams, and slack.
pub const RESERVED: usize = 64 + MAX_OPEN_SHARED;
/// The most descriptors asked for when raising the soft limit.
pub const WANTED: u64 = 65536;
/// The fewest connections a peer runs with, whatever the limit says.
const MIN_CONNECTIONS: usize = 16;

/// Raises the soft limit on open files as far as allowed; returns it (`None` if it cannot be
/// read).
pub fn raise_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let current = lim.current?;
    let want = lim.maximum.unwrap_or(u64::MAX).min(WANTED);
    if want > current {
        let raised = Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(want);
        }
    }
    Some(current)
}

/// Fits the node's connection limits under `soft_limit` descriptors.
pub fn fit(cfg: &mut Config, soft_limit: u64) {
    let room = usize::try_from(soft_limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED)
        .max(MIN_CONNECTIONS);
    cfg.max_connections = cfg.max_connections.min(room);
    cfg.max_outbound = cfg.max_outbound.min(cfg.max_connections / 2).max(1);
    cfg.max_connections_per_ip = cfg.max_connections_per_ip.min(cfg.max_connections);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_descriptors_for_files_and_inbound_slots() {
        let base = Config::new(1, 1, 10000);
        let mut c = base.clone();
        fit(&mut c, 1024);
        assert_eq!(
            (c.max_connections, c.max_outbound),
            (512, 256),
            "defaults fit 1024"
        );
        let mut c = base.clone();
        fit(&mut c, 256);
        assert_eq!(c.max_connections, 256 - RESERVED);
        assert!(c.max_outbound <= c.max_connections / 2);
        assert!(c.validate().is_ok());
        let mut c = base;
        fit(&mut c, 10);
        assert_eq!(c.max_connections, MIN_CONNECTIONS);
        assert!(c.validate().is_ok());
        assert!(raise_limit().is_some_and(|n| n >= 256));
    }
}
