//! p2pshare's protocol, as pure state machines.
//!
//! This crate is deterministic and holds no networking, file or clock code: the caller owns
//! every socket, file and timer, passes in what happened together with the current time, and
//! performs what the crate asks for. Randomness comes from a seed in the configuration. Given
//! the same inputs at the same instants, a [`Node`] produces the same outputs — which is what
//! lets the simulator run whole networks in one thread and replay any run exactly.
//!
//! The sub-machines, each testable alone: [`wire`] (datagram and frame codecs), [`manifest`]
//! (chunk hashes, content ids, the verifier), [`discovery`] (announcements and the peer table),
//! [`session`] (one connection's handshake and timers), [`download`] (the chunk scheduler), and
//! [`node`] which composes them. See [`Node`] for the calling contract and the run loop.
#![warn(missing_docs, unreachable_pub)]

pub mod availability;
pub mod budget;
pub mod bugs;
pub mod discovery;
pub mod disk;
pub mod download;
pub mod folder;
pub mod ids;
pub mod manifest;
pub mod name;
pub mod net;
pub mod node;
pub mod python;
pub mod rng;
pub mod session;
pub mod wire;

pub use bugs::Bugs;
pub use disk::{DiskError, FinishError};
pub use download::FailReason;
pub use ids::{ContentId, Digest, PeerId, hex, sha256};
pub use manifest::{Manifest, ManifestBuilder, ManifestError};
pub use name::{NameError, check_name};
pub use node::{
    Admission, Command, Config, ConfigError, ConnLoad, DiskOp, DownloadView, Event, Input,
    LocalFile, NetOp, Node, Output, PeerView, ReadId, ReadSource, RemoteFile, Source, Stats, Wake,
};
pub use session::ConnId;

// The unit tests' one clock read (an arbitrary origin) lives with the other test support,
// outside src/: nothing in src/ reads a clock.
#[cfg(test)]
#[path = "../tests/support/epoch.rs"]
mod epoch;
#[cfg(test)]
pub(crate) use epoch::test_epoch;
