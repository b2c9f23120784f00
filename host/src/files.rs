//! The shared files by content, opened on demand and kept open for the disk thread's reads.
//!
//! Invariants:
//! - A content maps to the first valid name a scan listed it under, or to the file a download
//!   just placed ([`SharedFiles::adopt`]) until a scan lists that content; nothing else is
//!   ever opened.
//! - A file is opened beneath the shared folder with [`crate::beneath::open_read`] (component
//!   by component, never through a symlink, regular files only, checked with `fstat` after
//!   the open), exactly as the store's reads always were.
//! - At most [`MAX_OPEN_SHARED`] files stay open (least recently used closed first). A handle
//!   is an `Arc<File>`: a send under way keeps its file open even once it is dropped from the
//!   cache.
//! - [`SharedFiles::set_files`] closes the handles of contents no longer shared or now shared
//!   under another name, so a file the scanner dropped or found changed is opened afresh (or
//!   not at all). A file changed in place between two scans is still read from the old
//!   handle: the downloader's chunk hash catches changed bytes, and a read past its new end
//!   fails (the chunk is refused).
//! - The lock is never held while a file is opened: the event loop waits on it at most for a
//!   map lookup, never for the disk.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use p2pshare_proto::{ContentId, DiskError, check_name};

use crate::beneath;
use crate::scan::ScannedFile;

/// Shared files kept open between reads and sends (least recently used closed first).
pub const MAX_OPEN_SHARED: usize = 16;

#[derive(Default)]
struct Inner {
    names: BTreeMap<ContentId, String>,
    /// Files a download placed, served until a scan lists them.
    adopted: BTreeMap<ContentId, String>,
    /// Open handles, least recently used first, with the name they were opened under.
    open: Vec<(ContentId, String, Arc<File>)>,
}

/// The cache of shared files; clones share it (the driver, the disk thread's store, the
/// runtime). See the module doc.
#[derive(Clone)]
pub struct SharedFiles {
    dir: Arc<PathBuf>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SharedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.lock();
        f.debug_struct("SharedFiles")
            .field("dir", &self.dir)
            .field("shared", &i.names.len())
            .field("open", &i.open.len())
            .finish()
    }
}

impl SharedFiles {
    /// An empty cache for the shared folder `dir` (nothing is shared until
    /// [`SharedFiles::set_files`]).
    pub fn new(dir: &Path) -> SharedFiles {
        SharedFiles {
            dir: Arc::new(dir.to_path_buf()),
            inner: Arc::default(),
        }
    }

    /// The shared folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves a map that is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what is shared: call after every scan that reported a change, with its files, and
    /// before the node hears of them. Only each file's name is used; a name failing
    /// `check_name` is ignored; of several names of one content the first is used. Handles of
    /// contents no longer shared, or now shared under another name, are closed.
    pub fn set_files(&self, files: &[ScannedFile]) {
        let mut names = BTreeMap::new();
        for f in files {
            if check_name(&f.name).is_ok() {
                names
                    .entry(f.manifest.id())
                    .or_insert_with(|| f.name.clone());
            }
        }
        let mut i = self.lock();
        i.adopted
            .retain(|c, _| !files.iter().any(|f| f.manifest.id() == *c));
        for (c, name) in &i.adopted {
            names.entry(*c).or_insert_with(|| name.clone());
        }
        i.open.retain(|(c, n, _)| names.get(c) == Some(n));
        i.names = names;
    }

    /// A download of `content` was placed as `name`: share it from now on, until a scan lists
    /// the content (under whatever name).
    pub fn adopt(&self, content: ContentId, name: String) {
        let mut i = self.lock();
        i.names.entry(content).or_insert_with(|| name.clone());
        i.adopted.insert(content, name);
    }

    /// How many contents are shared, and how many files are open.
    pub fn counts(&self) -> (usize, usize) {
        let i = self.lock();
        (i.names.len(), i.open.len())
    }

    /// The open file with `content` and its name, opened now if it is not open. Unknown
    /// content, or a file that is gone or no longer a regular file, gives
    /// [`DiskError::NotFound`].
    pub fn open(&self, content: &ContentId) -> Result<(Arc<File>, String), DiskError> {
        let name = {
            let mut i = self.lock();
            if let Some(at) = i.open.iter().position(|(c, _, _)| c == content) {
                let entry = i.open.remove(at);
                let found = (entry.2.clone(), entry.1.clone());
                i.open.push(entry);
                return Ok(found);
            }
            i.names.get(content).ok_or(DiskError::NotFound)?.clone()
        };
        let root = beneath::open_root(&self.dir).map_err(|e| disk_err(e, &name))?;
        let file = beneath::open_read(root.as_fd(), &name).map_err(|e| match e.kind() {
            // A symlink, a folder or a FIFO where the file was: not served.
            io::ErrorKind::InvalidInput => DiskError::NotFound,
            _ => disk_err(e, &name),
        })?;
        // Chunks are asked for in order, mostly: a larger read-ahead (advice only).
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        let file = Arc::new(file);
        let mut i = self.lock();
        // Shared under this name still (a scan may have come in between): keep it open.
        if i.names.get(content) == Some(&name) && !i.open.iter().any(|(c, _, _)| c == content) {
            if i.open.len() >= MAX_OPEN_SHARED {
                i.open.remove(0);
            }
            i.open.push((*content, name.clone(), file.clone()));
        }
        Ok((file, name))
    }
}

/// Maps an I/O error on `name` to what the node understands.
pub(crate) fn disk_err(e: io::Error, name: &str) -> DiskError {
    match e.kind() {
        io::ErrorKind::NotFound => DiskError::NotFound,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => DiskError::NoSpace,
        // ENOSPC, EDQUOT, in case the kind is not mapped.
        _ if matches!(e.raw_os_error(), Some(28 | 122)) => DiskError::NoSpace,
        _ => DiskError::Other(format!("{name}: {e}")),
    }
}
