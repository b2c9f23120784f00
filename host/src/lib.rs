//! p2pshare's host side: the disk work both runtimes (mio and smol) share.
//!
//! Nothing here touches the network or runs an event loop. A runtime:
//! 1. takes the shared folder with [`FolderLock::acquire`] (one peer per folder);
//! 2. seeds the node with [`seed::random_u64`] / [`seed::random_bytes`];
//! 3. builds a [`Scanner`] and calls [`Scanner::scan`] at start and then periodically (every
//!    couple of seconds): a scan with nothing changed only stats the files;
//! 4. hands the scanned files to a [`Store`] ([`Store::set_files`]) and executes the node's disk
//!    requests with it (serve reads, partial-download writes, finish).
//!
//! Invariants shared by every module: no path is ever built from a name that failed
//! [`p2pshare_proto::check_name`]; only regular files directly inside the shared folder are read
//! or served (never a symlink, never a subfolder); a finished download never overwrites an
//! existing file; memory stays bounded whatever the file sizes.

pub mod config;
pub mod driver;
pub mod handle;
pub mod lock;
pub mod scan;
pub mod seed;
pub mod store;
pub mod tail;

pub use config::PeerConfig;
pub use driver::{Driver, NetOp, StartError, Started, start};
pub use handle::{Handle, Notice, Request, SharedFile, Snapshot, Stopped};
pub use lock::{FolderLock, LockError};
pub use scan::{HashError, LocalFile, Scan, ScanError, Scanner, hash_file};
pub use store::Store;
