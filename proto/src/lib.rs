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
//! [`session`] (one connection's handshake and timers), `download` (the chunk scheduler),
//! [`python`] (the original Python program's protocol), and [`node`] which composes them. See
//! [`Node`] for the calling contract and the run loop; [`net::perform`] and [`disk::perform`]
//! map what the node asks for onto a runtime's sockets and files.
//!
//! [`identity`] (a peer's Ed25519 key), [`noise`] (the encrypted handshake and record
//! transport: every native connection of the node goes through a [`noise::Channel`]) and
//! [`wire::signed`] (the signed discovery datagram the node sends and believes) make a peer its
//! key (issue 28).
//!
//! [`share_link`] reads and prints the `p2pshare://` links a person sends to fetch a file or a
//! folder from named peers (issue 29); [`addr`] holds the one parser of address literals.
//!
//! The `testing` feature (tests only) adds what the simulator and the model tests read of the
//! internals: `Node::download`, `Node::check_invariants`, the connection loads, and the
//! `download` module.
#![warn(missing_docs, unreachable_pub)]

pub mod addr;
pub mod availability;
pub mod budget;
pub mod bugs;
pub mod discovery;
pub mod disk;
// The chunk scheduler of one download. Public only with the `testing` feature (the scheduler's
// reference-model test and the simulator read it); the API a runtime uses re-exports what it
// needs of it (`FailReason`, `Phase`).
#[cfg(feature = "testing")]
pub mod download;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)]
mod download;
pub mod folder;
pub mod identity;
pub mod ids;
pub mod manifest;
pub mod name;
pub mod net;
pub mod node;
pub mod noise;
pub mod pair;
pub mod python;
pub mod rng;
pub mod session;
pub mod share_link;
pub mod wire;

pub use bugs::Bugs;
pub use discovery::Found;
pub use disk::{DiskError, FinishError};
pub use download::{FailReason, Phase};
pub use identity::Identity;
pub use ids::{ContentId, Digest, PeerId, hex, sha256};
pub use manifest::{Manifest, ManifestBuilder, ManifestError};
pub use name::{NameError, check_name};
pub use node::{
    Admission, Command, Config, ConfigError, DiskOp, DownloadView, Event, FileRef, Input,
    LocalFile, NetOp, Node, Output, PeerView, Reach, ReadId, ReadSource, RemoteFile, RemoteView,
    Source, StaticPeer, Stats, TargetView, Wake, Walk,
};
pub use session::ConnId;

#[cfg(any(test, feature = "testing"))]
pub use node::ConnLoad;

// The unit tests' one clock read (an arbitrary origin) lives with the other test support,
// outside src/: nothing in src/ reads a clock.
#[cfg(test)]
#[path = "../tests/support/epoch.rs"]
mod epoch;
#[cfg(test)]
pub(crate) use epoch::test_epoch;
