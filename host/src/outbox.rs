//! The notice channel to the CLI, bounded: a CLI that does not read (or a flood of peers
//! found and lost) cannot make the peer hold notices without limit.
//!
//! Invariants: at most [`NOTICES`] notices wait in the channel; when it is full, notices the
//! CLI can do without (peers found and lost, catalogs, progress, rejected chunks) are dropped
//! and counted, and those a waiting command needs (a download started, done or failed, a
//! warning, a scan) are held here in order and sent first as soon as there is room. Those are
//! few: one per command or scan, never one per packet.

use std::collections::VecDeque;
use std::sync::mpsc::{SyncSender, TrySendError};

use p2pshare_proto::Event;

use crate::handle::Notice;

/// Notices that may wait in the channel.
pub const NOTICES: usize = 1024;

/// The sending end of the notice channel.
#[derive(Debug)]
pub struct Outbox {
    tx: SyncSender<Notice>,
    held: VecDeque<Notice>,
    dropped: u64,
}

/// True for a notice some command waits for: it is never dropped.
fn must_deliver(n: &Notice) -> bool {
    match n {
        Notice::Event(e) => matches!(
            e,
            Event::DownloadStarted { .. }
                | Event::DownloadDone { .. }
                | Event::DownloadFailed { .. }
        ),
        Notice::Scanned { .. } | Notice::Warning(_) => true,
        Notice::Dht(_) => false,
    }
}

impl Outbox {
    /// An outbox sending on `tx` (made with capacity [`NOTICES`]).
    pub fn new(tx: SyncSender<Notice>) -> Outbox {
        Outbox {
            tx,
            held: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Sends `n`, after the held notices; drops it if the channel is full and it may be
    /// dropped, else holds it. A CLI that is gone loses everything, silently.
    pub fn send(&mut self, n: Notice) {
        self.flush();
        if !self.held.is_empty() {
            return self.hold_or_drop(n);
        }
        match self.tx.try_send(n) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(n)) => self.hold_or_drop(n),
        }
    }

    fn hold_or_drop(&mut self, n: Notice) {
        if must_deliver(&n) {
            self.held.push_back(n);
        } else {
            self.dropped += 1;
        }
    }

    /// Sends held notices while the channel has room. Call whenever the loop wakes.
    pub fn flush(&mut self) {
        while let Some(n) = self.held.pop_front() {
            match self.tx.try_send(n) {
                Ok(()) => {}
                Err(TrySendError::Disconnected(_)) => self.held.clear(),
                Err(TrySendError::Full(n)) => {
                    self.held.push_front(n);
                    return;
                }
            }
        }
    }

    /// Notices dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pshare_proto::{ContentId, PeerId};
    use std::sync::mpsc;

    #[test]
    fn a_full_channel_drops_chatter_and_keeps_what_commands_wait_for() {
        let (tx, rx) = mpsc::sync_channel(NOTICES);
        let mut out = Outbox::new(tx);
        let found = || {
            Notice::Event(Event::PeerFound {
                peer: PeerId([1; 32]),
                addr: "10.0.0.1:10000".parse().unwrap(),
            })
        };
        for _ in 0..NOTICES + 500 {
            out.send(found());
        }
        assert_eq!(out.dropped(), 500);
        let failed = Notice::Event(Event::DownloadFailed {
            content: ContentId([2; 32]),
            name: "f".into(),
            reason: p2pshare_proto::FailReason::Cancelled,
        });
        out.send(failed);
        out.send(found());
        assert_eq!(out.dropped(), 501);
        // The reader catches up: the held notice comes right after what was queued.
        let queued: Vec<Notice> = rx.try_iter().collect();
        assert_eq!(queued.len(), NOTICES);
        out.flush();
        assert!(matches!(
            rx.try_recv(),
            Ok(Notice::Event(Event::DownloadFailed { .. }))
        ));
        assert!(rx.try_recv().is_err());
    }
}
