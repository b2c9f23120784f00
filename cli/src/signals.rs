//! SIGINT and SIGTERM as values: a thread waits for them and hands them to whoever polls, so a
//! peer says goodbye to the others, keeps its partial files and releases its folder before it
//! exits, instead of dying mid-sentence.
//!
//! Invariant: once [`Signals::install`] ran, SIGINT and SIGTERM never kill the process; every
//! long wait in the CLI (serving, a download, the idle prompt) polls [`Signals::take`] at
//! least every 100 ms, so the exit follows within well under a second.

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

pub use signal_hook::consts::SIGINT;
use signal_hook::consts::SIGTERM;
use signal_hook::iterator::Signals as Hook;

/// How often the waits poll for a signal.
pub const POLL: Duration = Duration::from_millis(100);

/// The signals received and not yet taken.
#[derive(Debug)]
pub struct Signals {
    rx: Receiver<i32>,
}

impl Signals {
    /// Routes SIGINT and SIGTERM to a thread that queues them.
    pub fn install() -> Result<Signals, String> {
        let mut hook =
            Hook::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot handle signals: {e}"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("p2pshare-signals".into())
            .spawn(move || {
                for sig in hook.forever() {
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        Ok(Signals { rx })
    }

    /// The next signal received, if any.
    pub fn take(&self) -> Option<i32> {
        self.rx.try_recv().ok()
    }
}

/// A signal's name, for messages.
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The exit status for a process ended by `sig`, as shells report it: 128 + its number (130
/// for SIGINT, 143 for SIGTERM).
pub fn exit_status(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(1)
}
