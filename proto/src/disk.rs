//! Disk work: what a runtime reports back after doing what the node asked, and the one
//! mapping from a request ([`DiskOp`]) to the store's operation and back to the answer
//! ([`perform`]).
//!
//! The node never touches a file: it emits read, write and finish requests as outputs, and the
//! runtime answers with these results as inputs. Whoever holds the files — the host's store
//! over the shared folder, the tests' in-memory store — implements [`Storage`] and calls
//! [`perform`]; nothing here does I/O itself.

use std::fmt;
use std::sync::Arc;

use crate::ids::{ContentId, Digest};
use crate::manifest::Manifest;
use crate::node::{DiskOp, Input, ReadSource};

/// A store of shared files and partial downloads, as the node's disk requests see it.
pub trait Storage {
    /// Reads exactly `len` bytes at `offset` of a shared file or of a partial download.
    fn read(&mut self, source: ReadSource, offset: u64, len: u32) -> Result<Vec<u8>, DiskError>;
    /// Opens (or creates) the partial download of `content`, saved later as `dl_<name>`;
    /// returns the bytes already in it.
    fn open_partial(
        &mut self,
        content: &ContentId,
        name: &str,
        size: u64,
    ) -> Result<u64, DiskError>;
    /// Writes a verified chunk at `offset` of an open partial download.
    fn write_partial(
        &mut self,
        content: &ContentId,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DiskError>;
    /// Checks the whole partial file against `file_hash` and, only if it matches, puts it in
    /// place under a `dl_` name that replaces nothing; returns that name.
    fn finish(
        &mut self,
        content: &ContentId,
        name: &str,
        size: u64,
        file_hash: &Digest,
    ) -> Result<String, FinishError>;
    /// Closes a partial download, keeping its file for a later resume.
    fn close_partial(&mut self, content: &ContentId);
    /// A [`Storage::finish`] just put a download in place as `name`, verified against
    /// `manifest`: a store that scans its folder records it, so that the file is shared under
    /// that manifest without being hashed again. Does nothing by default.
    fn placed(&mut self, name: &str, manifest: Arc<Manifest>) {
        let _ = (name, manifest);
    }
}

/// Carries out one disk request of the node on `storage`; returns the input that answers it
/// (none for `ClosePartial`, which has no answer).
pub fn perform(storage: &mut impl Storage, op: DiskOp) -> Option<Input> {
    Some(match op {
        DiskOp::Read {
            read,
            source,
            offset,
            len,
        } => Input::ReadDone {
            read,
            result: storage.read(source, offset, len),
        },
        DiskOp::OpenPartial {
            content,
            name,
            size,
        } => Input::PartialOpened {
            result: storage.open_partial(&content, &name, size),
            content,
        },
        DiskOp::Write {
            content,
            index,
            offset,
            data,
        } => Input::Written {
            result: storage.write_partial(&content, offset, &data),
            content,
            index,
        },
        DiskOp::Finish {
            content,
            name,
            size,
            file_hash,
            manifest,
        } => {
            let result = storage.finish(&content, &name, size, &file_hash);
            if let (Ok(placed), Some(manifest)) = (&result, manifest) {
                storage.placed(placed, manifest);
            }
            Input::Finished { result, content }
        }
        DiskOp::ClosePartial { content } => {
            storage.close_partial(&content);
            return None;
        }
    })
}

/// A disk operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskError {
    /// The file is gone.
    NotFound,
    /// The disk (or quota) is full.
    NoSpace,
    /// Any other I/O error, as the OS described it.
    Other(String),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::NotFound => f.write_str("file not found"),
            DiskError::NoSpace => f.write_str("no space left on the disk"),
            DiskError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DiskError {}

/// Finishing a download (whole-file check, then rename into place) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishError {
    /// The partial file's SHA-256 is not the manifest's: nothing was renamed.
    HashMismatch,
    /// Reading, syncing or renaming failed.
    Disk(DiskError),
}

impl fmt::Display for FinishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinishError::HashMismatch => f.write_str("the whole file fails its SHA-256"),
            FinishError::Disk(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FinishError {}
