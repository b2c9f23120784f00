//! What only tests read of a node (the simulator's checks, the scripted harness, the fuzz
//! target): its schedulers, its connections' loads, and its invariants. Compiled with the
//! `testing` feature only (proto's own tests and the fuzz crate turn it on), so none of it is
//! API a runtime could come to rely on.

use super::{ConnLoad, Node, swarm};
use crate::download::Download;
use crate::ids::ContentId;
use crate::session::Session;

impl Node {
    /// One download's scheduler (for the simulator's invariant checks).
    pub fn download(&self, content: &ContentId) -> Option<&Download> {
        self.downloads.get(content)
    }

    /// Open connections (for the simulator's bounds).
    pub fn connections(&self) -> usize {
        self.conns.sessions().count()
    }

    /// Each open session and the peer it is open to (for the simulator's identity check).
    pub fn session_peers(
        &self,
    ) -> impl Iterator<Item = (crate::session::ConnId, crate::PeerId)> + '_ {
        self.conns
            .sessions()
            .filter_map(|s| s.open_peer().map(|p| (s.id(), p)))
    }

    /// Bytes buffered in receive buffers across connections (for the simulator's bounds).
    pub fn buffered_bytes(&self) -> usize {
        self.conns.sessions().map(Session::buffered).sum()
    }

    /// Bytes owed across connections: sent and not yet flushed, plus chunk reads in flight to
    /// be sent (what the send budgets count; for the simulator's bounds).
    pub fn owed_bytes(&self) -> usize {
        self.conns.sessions().map(Session::owed).sum()
    }

    /// What each connection holds of the node's memory (for the simulator's budget checks).
    pub fn connection_loads(&self) -> impl Iterator<Item = ConnLoad> + '_ {
        self.conns.sessions().map(|s| ConnLoad {
            conn: s.id(),
            remote: s.remote(),
            owed: s.owed(),
            queued_requests: s.queued_requests(),
            queued_manifests: s.queued_manifests(),
        })
    }

    /// Checks internal invariants; the error says which broke.
    pub fn check_invariants(&self) -> Result<(), String> {
        for d in self.downloads.values() {
            d.check_invariants()?;
        }
        self.python.check_invariants()?;
        let sessions = self.conns.sessions().count();
        if sessions > self.cfg.max_connections {
            return Err(format!("{sessions} sessions over the limit"));
        }
        for s in self.conns.sessions() {
            if s.queued_requests() > crate::session::MAX_QUEUED_REQUESTS {
                return Err("serve queue over its bound".into());
            }
        }
        if let Some(t) = self.swarm.unannounced_since()
            && self.now >= t + 2 * swarm::HAVE_DELAY
        {
            return Err(format!(
                "a verified chunk followed by a peer is unannounced since {:?}",
                self.now - t
            ));
        }
        Ok(())
    }
}
