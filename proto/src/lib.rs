//! p2pshare's protocol, as pure state machines.
//!
//! This crate is deterministic and holds no networking, file or clock code: the caller owns
//! every socket, file and timer, passes in what happened together with the current time, and
//! performs what the crate asks for. Randomness comes from a seed in the configuration. Given
//! the same inputs at the same instants, a [`Node`] produces the same outputs — which is what
//! lets the simulator run whole networks in one thread and replay any run exactly.
pub mod disk;
pub mod ids;
pub mod manifest;
pub mod name;
pub mod wire;

pub use disk::{DiskError, FinishError};
pub use ids::{ContentId, Digest, PeerId, hex, sha256};
pub use manifest::{Manifest, ManifestBuilder, ManifestError};
pub use name::{NameError, check_name};
