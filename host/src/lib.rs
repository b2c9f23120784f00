//! p2pshare's host side: everything a running peer needs besides its event loop, written once
//! for both runtimes (mio and smol).
//!
//! It runs no event loop and does no network I/O: it binds the two listening sockets
//! ([`sockets`]) and hands them over. A runtime calls [`start`], which
//! 1. takes the shared folder with [`FolderLock::acquire`] (one peer per folder) and loads its
//!    identity key ([`keyfile`]; made on the first start);
//! 2. seeds the node with [`seed::random_u64`];
//! 3. starts a [`Scanner`] thread that scans at start and then every couple of seconds (a scan
//!    with nothing changed only stats the files);
//! 4. returns the [`Driver`], which runs the node and performs its disk requests with a
//!    [`Store`] (serve reads, partial-download writes, finish), leaving the runtime only
//!    sockets to drive; and the channels behind the CLI's [`Handle`].
//!
//! Invariants shared by every module: no path is ever built from a name that failed
//! [`p2pshare_proto::check_name`], and a name is walked beneath the shared folder one component
//! at a time ([`beneath`]), never joined as a string; only regular files inside the shared
//! folder are read or served (never through a symlink, as the file or as any folder on the
//! way); a finished download never overwrites an existing file; memory stays bounded whatever
//! the file sizes.

pub mod addr_record;
pub mod allow;
pub mod beneath;
pub mod config;
pub mod dht;
pub mod disk;
pub mod driver;
pub mod fds;
pub mod files;
pub mod handle;
pub mod interfaces;
pub mod keyfile;
pub mod known;
pub mod local;
pub mod lock;
pub mod nofollow;
pub mod outbox;
pub mod parked;
pub mod scan;
pub mod seed;
pub mod sockets;
pub mod store;
pub mod tail;

pub use config::{Multicast, PeerConfig};
pub use driver::{Driver, Network, StartError, Started, perform, start};
pub use files::SharedFiles;
pub use handle::{Controller, Handle, Notice, Request, SharedFile, Snapshot, Stopped, Taken};
pub use lock::{FolderLock, LockError};
pub use p2pshare_proto::NetOp;
pub use scan::{HashError, Scan, ScanError, ScannedFile, Scanner, hash_beneath, hash_file};
pub use store::Store;
