//! What a runtime reports back after doing disk work the node asked for.
//!
//! The node never touches a file: it emits read, write and finish requests as outputs, and the
//! runtime answers with these results as inputs.

use std::fmt;

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
