//! The file store: the disk work the node asks for — serving shared files, writing partial
//! downloads, and the final check-and-place of a finished download.
//!
//! Invariants:
//! - Only files beneath the shared folder are touched. A name (a relative path that passes
//!   [`check_name`]) is never joined onto a path: it is walked component by component from a
//!   descriptor of the folder with [`crate::beneath`], so no symlink is ever followed, not as
//!   the file and not as any folder on the way, whether it points inside or outside.
//! - A shared file is opened with `O_NOFOLLOW | O_NONBLOCK` and must be a regular file on its
//!   descriptor: a FIFO swapped in never blocks the disk thread.
//! - Downloads are written to the hidden partial file [`partial_name`]`(name, content)` directly
//!   in the shared folder, whatever the depth of the name (its file part shortened if the whole
//!   would exceed 255 bytes). Only [`Store::finish`] makes a visible file, and only after the
//!   whole partial's SHA-256 matched; it is placed with `linkat`, which fails rather than
//!   replace, so an existing file is never overwritten. A plain name lands as `dl_<name>`, or if
//!   taken `dl_<stem> (1).<ext>`, `dl_<stem> (2).<ext>`, … (like browsers do). A path lands with
//!   its first component prefixed (`photos/2024/a.jpg` → `dl_photos/2024/a.jpg`), the folders
//!   made as needed (never through a symlink: a `dl_photos` that is a symlink fails the file),
//!   and the same numbering on the file part (`dl_photos/2024/a (1).jpg`). An existing file is
//!   never compared with the download: identical content still gets a new name (no hashing of
//!   unrelated files, and the user's file is never touched).
//! - Memory is bounded: reads are limited to [`MAX_READ`] bytes, the finish check uses one
//!   [`crate::tail::BUFFER`]-byte buffer, and at most [`MAX_OPEN_SHARED`] shared files stay open
//!   (in the [`SharedFiles`] cache).
//! - Partial files nobody completes do not stay (issue 27, item 7): a download whose every
//!   chunk verified but whose whole file did not match its manifest (a manifest made to lie:
//!   a resume would verify the same chunks and fail the same way) loses its partial when it is
//!   closed, and [`Store::sweep_partials`] removes the partials no download has open that were
//!   not written for [`PARTIAL_MAX_AGE`], or that have another name. A partial that is open
//!   (a download in progress) is never removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use p2pshare_proto::manifest::MAX_CHUNK_SIZE;
use p2pshare_proto::name::{MAX_NAME_LEN, check_component, components, file_part, partial_name};
use p2pshare_proto::{ContentId, Digest, DiskError, FinishError, Manifest, ReadSource, check_name};
use rustix::fs::AtFlags;
use rustix::io::Errno;

use crate::beneath;
use crate::files::{SharedFiles, disk_err};
use crate::nofollow;
use crate::scan::{Adoption, ScannedFile, Stamp};
use crate::tail::Tail;

/// The most bytes one read may ask for: the largest chunk a manifest may have.
pub const MAX_READ: u32 = MAX_CHUNK_SIZE;
pub use crate::files::MAX_OPEN_SHARED;
/// How many `dl_` names [`Store::finish`] tries before giving up.
pub const MAX_NAME_TRIES: u32 = 10_000;
/// A partial file not written for this long, and open by no download, is removed by
/// [`Store::sweep_partials`]: a week, so that a download stopped on Friday resumes on Monday,
/// and the room a folder of a stranger's that never completes took is back within one.
pub const PARTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

struct Partial {
    path: PathBuf,
    file: File,
    size: u64,
    name: String,
    /// The whole-file hash, computed behind the writes.
    tail: Tail,
}

/// Executes the node's disk requests inside one shared folder. See the module doc.
pub struct Store {
    dir: PathBuf,
    /// The shared files, by content. Files
    /// [`Store::finish`] placed are adopted there: served by content at once and until a scan
    /// lists them (the node shares them under the manifest they were verified against
    /// meanwhile).
    files: SharedFiles,
    partials: BTreeMap<ContentId, Partial>,
    /// The last file [`Store::finish`] placed, with its stamp taken once it was in place,
    /// until [`Storage::placed`] pairs it with its manifest.
    last_placed: Option<(String, Stamp)>,
    /// Placed files with their verified manifests, for the scanner ([`Store::take_adoptions`]).
    adoptions: Vec<Adoption>,
    /// Downloads whose whole file failed its hash: their partial goes when they are closed.
    spoiled: std::collections::BTreeSet<ContentId>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (shared, open) = self.files.counts();
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("shared", &shared)
            .field("open", &open)
            .field("partials", &self.partials.len())
            .finish()
    }
}

impl Store {
    /// A store for the shared folder `dir`: create one at start, next to the
    /// [`Scanner`](crate::Scanner). Touches nothing on disk yet.
    pub fn new(dir: &Path) -> Store {
        Store::with_files(SharedFiles::new(dir))
    }

    /// A store for the folder of `files`, serving (and adopting into) that cache: the one the
    /// driver keeps and the runtime sends from.
    pub fn with_files(files: SharedFiles) -> Store {
        Store {
            dir: files.dir().to_path_buf(),
            files,
            partials: BTreeMap::new(),
            last_placed: None,
            adoptions: Vec::new(),
            spoiled: std::collections::BTreeSet::new(),
        }
    }

    /// The downloads placed since the last call, each with the manifest it was verified
    /// against and its stamp once in place: hand them to the [`Scanner`](crate::Scanner)
    /// ([`Scanner::adopt`](crate::Scanner::adopt)), which then shares them without reading
    /// them again.
    pub fn take_adoptions(&mut self) -> Vec<Adoption> {
        std::mem::take(&mut self.adoptions)
    }

    /// The shared folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets what is served: call after every scan that reported a change, with its files (the
    /// driver sets its [`SharedFiles`] itself; this is for a store on its own). Only each
    /// file's name is used; a name failing `check_name` is ignored; of several names of one
    /// content the first is served; handles of files no longer served are closed; what a
    /// download just placed stays served until the scan lists it. See
    /// [`SharedFiles::set_files`].
    pub fn set_files(&mut self, files: &[ScannedFile]) {
        self.files.set_files(files);
    }

    /// Reads exactly `len` bytes at `offset` of the shared file with `content`: call for the
    /// node's read-chunk request. Unknown content, or a file that is gone or no longer a regular
    /// file, gives [`DiskError::NotFound`]; a file now shorter than asked gives
    /// [`DiskError::Other`]; so does `len` above [`MAX_READ`].
    pub fn read_shared(
        &mut self,
        content: &ContentId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, DiskError> {
        check_len(len)?;
        let (file, name) = self.files.open(content)?;
        read_at(&file, &name, offset, len)
    }

    /// Opens, or creates empty, the hidden partial file of a download of `content` saved as
    /// `name`, expected to be `size` bytes: call when a download starts or resumes. Returns the
    /// length already on disk (0 for a new download), so the node can re-verify the chunks it
    /// covers; a partial longer than `size` is cut to `size`. A refused name, or a partial path
    /// that is not a regular file (e.g. a symlink), is an error. If the download is already
    /// open, returns its current length and keeps its first name.
    pub fn open_partial(
        &mut self,
        content: &ContentId,
        name: &str,
        size: u64,
    ) -> Result<u64, DiskError> {
        if let Some(p) = self.partials.get(content) {
            return p
                .file
                .metadata()
                .map(|m| m.len())
                .map_err(|e| disk_err(e, &p.name));
        }
        if let Err(e) = check_name(name) {
            return Err(DiskError::Other(format!("refused name {name:?}: {e}")));
        }
        let file_name = partial_file_name(name, content);
        let path = self.dir.join(&file_name);
        let file = match nofollow::create_new(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // create_new does not follow a symlink; the existing path must be a regular
                // file, and the file opened must be that one.
                let meta = fs::symlink_metadata(&path).map_err(|e| disk_err(e, &file_name))?;
                if !meta.file_type().is_file() {
                    return Err(DiskError::Other(format!(
                        "{file_name} is not a regular file; refusing to write through it"
                    )));
                }
                // A partial with another name (a hard link planted to a file elsewhere, or
                // the file a killed finish placed already) is never written through.
                let f = nofollow::open_read_write(&path).map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidInput => DiskError::Other(format!("{file_name}: {e}")),
                    _ => disk_err(e, &file_name),
                })?;
                if !same_inode(&f, &meta) {
                    return Err(DiskError::Other(format!("{file_name} was replaced")));
                }
                f
            }
            Err(e) => return Err(disk_err(e, &file_name)),
        };
        let mut len = file.metadata().map_err(|e| disk_err(e, &file_name))?.len();
        if len > size {
            file.set_len(size).map_err(|e| disk_err(e, &file_name))?;
            len = size;
        }
        let tail = Tail::new(file.try_clone().map_err(|e| disk_err(e, &file_name))?);
        self.partials.insert(
            *content,
            Partial {
                path,
                file,
                size,
                name: name.to_owned(),
                tail,
            },
        );
        Ok(len)
    }

    /// Reads exactly `len` bytes at `offset` of an open partial download: call to re-verify
    /// chunks already on disk when a download resumes.
    pub fn read_partial(
        &self,
        content: &ContentId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, DiskError> {
        check_len(len)?;
        let p = self.partial(content)?;
        read_at(&p.file, &p.name, offset, len)
    }

    /// Writes `data` at `offset` of an open partial download: call for the node's write-chunk
    /// request. A full disk or quota gives [`DiskError::NoSpace`]; writing past the size given
    /// to [`Store::open_partial`] is refused.
    pub fn write_partial(
        &mut self,
        content: &ContentId,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DiskError> {
        let p = self
            .partials
            .get_mut(content)
            .ok_or_else(|| DiskError::Other(format!("no download of {content} is open")))?;
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > p.size)
        {
            return Err(DiskError::Other(format!(
                "write past the end of {} refused",
                p.name
            )));
        }
        p.file
            .write_all_at(data, offset)
            .map_err(|e| disk_err(e, &p.name))?;
        p.tail
            .written(offset, data)
            .map_err(|e| disk_err(e, &p.name))
    }

    /// Checks and places a complete download: call when the node asks to finish it. Cuts the
    /// partial to `size`, completes its whole-file SHA-256 (see [`Tail`]: most of it was taken
    /// as the chunks were written, the rest is read back now), compares it with `file_hash`,
    /// and syncs the file to disk. On a mismatch (or a partial shorter than `size`) returns
    /// [`FinishError::HashMismatch`], renames nothing and keeps the partial open. On a match,
    /// links it as a new `dl_` file (never replacing one; see the module doc), removes the
    /// partial and returns the final file name.
    pub fn finish(
        &mut self,
        content: &ContentId,
        file_hash: &Digest,
        size: u64,
    ) -> Result<String, FinishError> {
        let p = self.partials.get_mut(content).ok_or_else(|| {
            FinishError::Disk(DiskError::Other(format!(
                "no download of {content} is open"
            )))
        })?;
        let name = p.name.clone();
        let err = |e: io::Error| FinishError::Disk(disk_err(e, &name));
        let meta = p.file.metadata().map_err(err)?;
        if meta.len() < size {
            return Err(FinishError::HashMismatch);
        }
        if meta.len() > size {
            p.file.set_len(size).map_err(err)?;
        }
        // Most of the file was hashed as it was written; this reads back only the rest.
        let digest = match p.tail.finish(size) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(FinishError::HashMismatch);
            }
            Err(e) => return Err(err(e)),
        };
        if digest != *file_hash {
            // Every chunk verified, the whole does not: a resume would fail the same way (or
            // the disk changed it under us). Removed when the download is closed.
            self.spoiled.insert(*content);
            return Err(FinishError::HashMismatch);
        }
        p.file.sync_all().map_err(err)?;

        // The partial path must still be our file, else hard_link would link something else.
        let on_disk = fs::symlink_metadata(&p.path).map_err(err)?;
        if !on_disk.file_type().is_file() || !same_inode(&p.file, &on_disk) {
            return Err(FinishError::Disk(DiskError::Other(format!(
                "the partial download of {} was replaced",
                p.name
            ))));
        }
        let partial_file = partial_file_name(&p.name, content);
        let final_name = place(&self.dir, &partial_file, &p.name).map_err(FinishError::Disk)?;
        // Best effort from here: the file is in place and verified, and `place` synced the
        // folder its link is in (the shared folder itself for a plain name).
        let _ = fs::remove_file(&p.path);
        // Its stamp now that it is in place (the link and the unlink above changed its ctime):
        // what the scanner will find unless someone changes the file.
        self.last_placed = p
            .file
            .metadata()
            .ok()
            .map(|m| (final_name.clone(), Stamp::of(&m)));
        self.partials.remove(content);
        // (A Python download refetched after a mismatch, and now right.)
        self.spoiled.remove(content);
        self.files.adopt(*content, final_name.clone());
        Ok(final_name)
    }

    /// Closes an open partial download but keeps its file for a later resume: call when a
    /// download is cancelled or stops without a peer. The partial of a download whose whole
    /// file failed its hash is removed instead (no resume could complete it).
    pub fn close_partial(&mut self, content: &ContentId) {
        let closed = self.partials.remove(content);
        if self.spoiled.remove(content)
            && let Some(p) = closed
        {
            let on_disk = fs::symlink_metadata(&p.path);
            if on_disk.is_ok_and(|m| same_inode(&p.file, &m)) {
                let _ = fs::remove_file(&p.path);
            }
        }
    }

    /// Removes the hidden partial files of the folder that no download has open and that
    /// nobody completes: not written for `max_age` before `now` ([`PARTIAL_MAX_AGE`]), or with
    /// another name (a finish killed between placing the file and removing its partial, or a
    /// link planted there). Call at start and now and then; returns the names removed.
    pub fn sweep_partials(
        &mut self,
        now: std::time::SystemTime,
        max_age: std::time::Duration,
    ) -> Vec<String> {
        let open: Vec<&Path> = self.partials.values().map(|p| p.path.as_path()).collect();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with(".dl_") && name.ends_with(".part")) {
                continue;
            }
            let path = e.path();
            if open.contains(&path.as_path()) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let stale = meta.modified().is_ok_and(|t| t + max_age <= now);
            if meta.file_type().is_file()
                && (stale || meta.nlink() > 1)
                && fs::remove_file(&path).is_ok()
            {
                removed.push(name);
            }
        }
        removed
    }

    fn partial(&self, content: &ContentId) -> Result<&Partial, DiskError> {
        self.partials
            .get(content)
            .ok_or_else(|| DiskError::Other(format!("no download of {content} is open")))
    }
}

/// Links the partial file `partial` (directly in `dir`) under the first free name for `name`
/// (see the module doc); returns that name, a relative path.
fn place(dir: &Path, partial: &str, name: &str) -> Result<String, DiskError> {
    let err = |e: io::Error| disk_err(e, name);
    let root = beneath::open_root(dir).map_err(err)?;
    let parts: Vec<&str> = components(name).collect();
    let (folder, prefix, file) = match parts.as_slice() {
        [] | [_] => (
            rustix::io::dup(root.as_fd())
                .map_err(io::Error::from)
                .map_err(err)?,
            String::new(),
            None,
        ),
        [first, middle @ .., file] => {
            let top = download_folder(first);
            let mut dirs = vec![top.as_str()];
            dirs.extend_from_slice(middle);
            let fd = beneath::open_dir(root.as_fd(), &dirs, true)
                .map_err(|e| DiskError::Other(format!("cannot place {name}: {e}")))?;
            (fd, format!("{}/", dirs.join("/")), Some(*file))
        }
    };
    for i in 0..MAX_NAME_TRIES {
        let candidate = match file {
            None => download_candidate(name, i),
            Some(f) => numbered("", f, i),
        };
        if check_component(&candidate).is_err() {
            continue;
        }
        match rustix::fs::linkat(
            root.as_fd(),
            partial,
            folder.as_fd(),
            &*candidate,
            AtFlags::empty(),
        ) {
            Ok(()) => {
                let _ = rustix::fs::fsync(folder.as_fd());
                return Ok(format!("{prefix}{candidate}"));
            }
            Err(Errno::EXIST) => continue,
            Err(Errno::NOENT) => return Err(DiskError::NotFound),
            Err(e) if hard_links_unsupported(&e.into()) => {
                // File systems without hard links (FAT, some FUSE): check, then rename. Not
                // atomic against another writer of the same name, but never replaces a file
                // that existed at the check.
                if rustix::fs::statat(folder.as_fd(), &*candidate, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok()
                {
                    continue;
                }
                return rustix::fs::renameat(root.as_fd(), partial, folder.as_fd(), &*candidate)
                    .map(|()| format!("{prefix}{candidate}"))
                    .map_err(|e| err(e.into()));
            }
            Err(e) => return Err(err(e.into())),
        }
    }
    Err(DiskError::Other(format!(
        "no free name for dl_{name} after {MAX_NAME_TRIES} tries"
    )))
}

/// The folder a download's first component lands in: `dl_<first>`, shortened to fit 255 bytes.
pub fn download_folder(first: &str) -> String {
    format!("dl_{}", truncate(first, MAX_NAME_LEN - 3))
}

/// Where the download of `name` lands if nothing is in the way: `dl_<name>` for a plain name,
/// `dl_<first>/<rest>` for a path.
pub fn download_path(name: &str) -> String {
    match name.split_once('/') {
        None => download_candidate(name, 0),
        Some((first, rest)) => format!("{}/{rest}", download_folder(first)),
    }
}

fn hard_links_unsupported(e: &io::Error) -> bool {
    // EPERM (vfat), EOPNOTSUPP, ENOSYS.
    matches!(e.raw_os_error(), Some(1 | 95 | 38)) || e.kind() == io::ErrorKind::Unsupported
}

/// The `i`-th name tried for a download of `name`: `dl_<name>`, then `dl_<stem> (i).<ext>`
/// (or `dl_<name> (i)` without an extension), the stem shortened to fit 255 bytes.
pub fn download_candidate(name: &str, i: u32) -> String {
    numbered("dl_", name, i)
}

/// `<prefix><name>` for `i == 0`, else `<prefix><stem> (i).<ext>`, shortened to 255 bytes.
fn numbered(prefix: &str, name: &str, i: u32) -> String {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && !e.is_empty() && e.len() <= 16 => (s, Some(e)),
        _ => (name, None),
    };
    let mut suffix = String::new();
    if i > 0 {
        let _ = write!(suffix, " ({i})");
    }
    if let Some(e) = ext {
        suffix.push('.');
        suffix.push_str(e);
    }
    let room = MAX_NAME_LEN.saturating_sub(prefix.len() + suffix.len());
    format!("{prefix}{}{suffix}", truncate(stem, room))
}

/// [`partial_name`], with the name part shortened when the whole would exceed 255 bytes.
pub fn partial_file_name(name: &str, content: &ContentId) -> String {
    let file = file_part(name);
    let full = partial_name(file, content);
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    let overhead = full.len() - file.len();
    partial_name(truncate(file, MAX_NAME_LEN - overhead), content)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn same_inode(file: &File, meta: &fs::Metadata) -> bool {
    file.metadata()
        .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
}

fn check_len(len: u32) -> Result<(), DiskError> {
    if len > MAX_READ {
        return Err(DiskError::Other(format!(
            "read of {len} bytes refused (at most {MAX_READ})"
        )));
    }
    Ok(())
}

/// Reads exactly `len` bytes at `offset` of `file`, called `name` in errors (check `len` first).
fn read_at(file: &File, name: &str, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| read_err(e, name))?;
    Ok(buf)
}

fn read_err(e: io::Error, name: &str) -> DiskError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        DiskError::Other(format!("{name} is shorter than expected"))
    } else {
        disk_err(e, name)
    }
}

impl p2pshare_proto::disk::Storage for Store {
    fn read(&mut self, source: ReadSource, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
        match source {
            ReadSource::Shared(c) => self.read_shared(&c, offset, len),
            ReadSource::Partial(c) => self.read_partial(&c, offset, len),
        }
    }

    fn open_partial(
        &mut self,
        content: &ContentId,
        name: &str,
        size: u64,
    ) -> Result<u64, DiskError> {
        Store::open_partial(self, content, name, size)
    }

    fn write_partial(
        &mut self,
        content: &ContentId,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DiskError> {
        Store::write_partial(self, content, offset, data)
    }

    fn finish(
        &mut self,
        content: &ContentId,
        _name: &str,
        size: u64,
        file_hash: &Digest,
    ) -> Result<String, FinishError> {
        // The name was given when the partial was opened.
        Store::finish(self, content, file_hash, size)
    }

    fn close_partial(&mut self, content: &ContentId) {
        Store::close_partial(self, content);
    }

    fn placed(&mut self, name: &str, manifest: Arc<Manifest>) {
        if let Some((placed, stamp)) = self.last_placed.take()
            && placed == name
        {
            self.adoptions.push(Adoption {
                name: placed,
                stamp,
                manifest,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pshare_proto::Manifest;
    use std::sync::Arc;

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect()
    }

    fn local(dir: &Path, name: &str, bytes: &[u8]) -> ScannedFile {
        ScannedFile {
            name: name.into(),
            path: dir.join(name),
            manifest: Arc::new(Manifest::of_bytes(bytes)),
        }
    }

    /// Writes a whole download of `bytes` as `name` through the store, in reverse chunk order.
    fn download(store: &mut Store, name: &str, bytes: &[u8]) -> Manifest {
        let m = Manifest::of_bytes(bytes);
        let id = m.id();
        assert_eq!(store.open_partial(&id, name, m.size()).unwrap(), 0);
        for i in (0..m.chunk_count()).rev() {
            let (off, len) = m.chunk_range(i).unwrap();
            let chunk = &bytes[off as usize..off as usize + len as usize];
            store.write_partial(&id, off, chunk).unwrap();
        }
        m
    }

    #[test]
    fn serves_shared_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(100_000, 1);
        fs::write(dir.join("a.bin"), &bytes).unwrap();
        let f = local(dir, "a.bin", &bytes);
        let id = f.manifest.id();
        let mut store = Store::new(dir);
        assert_eq!(store.read_shared(&id, 0, 10), Err(DiskError::NotFound));
        store.set_files(std::slice::from_ref(&f));
        assert_eq!(store.read_shared(&id, 0, 10).unwrap(), &bytes[..10]);
        assert_eq!(
            store.read_shared(&id, 99_990, 10).unwrap(),
            &bytes[99_990..]
        );
        assert_eq!(store.read_shared(&id, 5, 0).unwrap(), Vec::<u8>::new());
        assert!(matches!(
            store.read_shared(&id, 99_995, 10),
            Err(DiskError::Other(m)) if m.contains("shorter")
        ));
        assert!(matches!(
            store.read_shared(&id, 0, MAX_READ + 1),
            Err(DiskError::Other(_))
        ));
        // No longer served after set_files without it.
        store.set_files(&[]);
        assert_eq!(store.read_shared(&id, 0, 10), Err(DiskError::NotFound));
        // Gone from disk.
        store.set_files(&[f]);
        fs::remove_file(dir.join("a.bin")).unwrap();
        // (the handle opened before is closed by set_files only if the file changed name)
        let mut fresh = Store::new(dir);
        fresh.set_files(&[local(dir, "a.bin", &bytes)]);
        assert_eq!(fresh.read_shared(&id, 0, 10), Err(DiskError::NotFound));
    }

    #[test]
    fn never_serves_symlinks_or_paths_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let secret = b"top secret".to_vec();
        fs::write(outside.path().join("secret"), &secret).unwrap();
        fs::write(dir.join("inside"), &secret).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.join("link_out")).unwrap();
        std::os::unix::fs::symlink(dir.join("inside"), dir.join("link_in")).unwrap();
        let id = Manifest::of_bytes(&secret).id();
        for f in [
            local(dir, "link_out", &secret),
            local(dir, "link_in", &secret),
            // A path outside the folder is ignored: only the name counts.
            ScannedFile {
                name: "missing".into(),
                path: outside.path().join("secret"),
                manifest: Arc::new(Manifest::of_bytes(&secret)),
            },
            ScannedFile {
                name: "../secret".into(),
                path: outside.path().join("secret"),
                manifest: Arc::new(Manifest::of_bytes(&secret)),
            },
        ] {
            let mut store = Store::new(dir);
            store.set_files(&[f]);
            assert_eq!(store.read_shared(&id, 0, 3), Err(DiskError::NotFound));
        }
    }

    #[test]
    fn a_placed_download_is_adopted_by_the_scanner_without_hashing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(2_500_000, 9);
        let mut store = Store::new(dir);
        let m = download(&mut store, "movie.mkv", &bytes);
        let id = m.id();
        let answer = p2pshare_proto::disk::perform(
            &mut store,
            p2pshare_proto::DiskOp::Finish {
                content: id,
                name: "movie.mkv".into(),
                size: m.size(),
                file_hash: *m.file_hash(),
                manifest: Some(Arc::new(m.clone())),
            },
        );
        assert!(matches!(
            answer,
            Some(p2pshare_proto::Input::Finished { result: Ok(ref n), .. }) if n == "dl_movie.mkv"
        ));
        let adoptions = store.take_adoptions();
        assert_eq!(adoptions.len(), 1);
        assert!(store.take_adoptions().is_empty(), "handed over once");

        // A scanner that was not told hashes the new file (it is also racy: just written).
        let mut blind = crate::Scanner::new(dir).unwrap();
        let scan = blind.scan().unwrap();
        assert_eq!((scan.hashed_files, scan.hashed_bytes), (1, m.size()));
        let _ = fs::remove_file(dir.join(crate::scan::CACHE_FILE));

        // One that adopted it shares it under the verified manifest without reading it.
        let mut scanner = crate::Scanner::new(dir).unwrap();
        for a in adoptions {
            scanner.adopt(a);
        }
        let scan = scanner.scan().unwrap();
        assert_eq!((scan.hashed_files, scan.hashed_bytes), (0, 0));
        assert_eq!(scan.files.len(), 1);
        assert_eq!(scan.files[0].name, "dl_movie.mkv");
        assert_eq!(*scan.files[0].manifest, m);
        assert_eq!(scanner.scan().unwrap().hashed_files, 0, "and keeps it");
        // And it went into the cache: a restart does not hash it either.
        assert_eq!(
            crate::Scanner::new(dir)
                .unwrap()
                .scan()
                .unwrap()
                .hashed_files,
            0
        );

        // Changed afterwards, it is hashed again like any changed file.
        let f = fs::OpenOptions::new()
            .append(true)
            .open(dir.join("dl_movie.mkv"))
            .unwrap();
        std::io::Write::write_all(&mut &f, b"x").unwrap();
        let scan = scanner.scan().unwrap();
        assert_eq!(scan.hashed_files, 1);
        assert_ne!(scan.files[0].manifest.id(), id);
    }

    #[test]
    fn a_download_without_a_manifest_is_not_adopted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(300_000, 4);
        let mut store = Store::new(dir);
        let m = download(&mut store, "py.bin", &bytes);
        let answer = p2pshare_proto::disk::perform(
            &mut store,
            p2pshare_proto::DiskOp::Finish {
                content: m.id(),
                name: "py.bin".into(),
                size: m.size(),
                file_hash: *m.file_hash(),
                manifest: None,
            },
        );
        assert!(matches!(
            answer,
            Some(p2pshare_proto::Input::Finished { result: Ok(_), .. })
        ));
        assert!(store.take_adoptions().is_empty());
    }

    #[test]
    fn download_resume_and_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(2_500_000, 2); // three 1 MiB chunks, the last short
        let m = Manifest::of_bytes(&bytes);
        let id = m.id();
        let partial = dir.join(partial_name("movie.mkv", &id));

        let mut store = Store::new(dir);
        assert_eq!(store.open_partial(&id, "movie.mkv", m.size()).unwrap(), 0);
        assert!(partial.is_file());
        let (off0, len0) = m.chunk_range(0).unwrap();
        store
            .write_partial(&id, off0, &bytes[..len0 as usize])
            .unwrap();
        store.close_partial(&id);
        assert!(partial.is_file(), "closing keeps the file");
        drop(store);

        // A restart: the new store sees what is on disk and reads it back.
        let mut store = Store::new(dir);
        assert_eq!(
            store.open_partial(&id, "movie.mkv", m.size()).unwrap(),
            1 << 20
        );
        let back = store.read_partial(&id, 0, len0).unwrap();
        assert_eq!(m.verify_chunk(0, &back), Ok(()));
        for i in 1..m.chunk_count() {
            let (off, len) = m.chunk_range(i).unwrap();
            let chunk = &bytes[off as usize..off as usize + len as usize];
            store.write_partial(&id, off, chunk).unwrap();
        }
        assert!(matches!(
            store.write_partial(&id, m.size() - 1, b"xx"),
            Err(DiskError::Other(_))
        ));
        let name = store.finish(&id, m.file_hash(), m.size()).unwrap();
        assert_eq!(name, "dl_movie.mkv");
        assert_eq!(fs::read(dir.join(&name)).unwrap(), bytes);
        assert!(!partial.exists(), "partial removed");
        // The download is closed.
        assert!(store.write_partial(&id, 0, b"x").is_err());
    }

    #[test]
    fn corrupt_byte_is_a_hash_mismatch_and_nothing_is_placed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(50_000, 3);
        let mut store = Store::new(dir);
        let m = download(&mut store, "a.txt", &bytes);
        let id = m.id();
        store
            .write_partial(&id, 1234, &[bytes[1234] ^ 0x40])
            .unwrap();
        assert_eq!(
            store.finish(&id, m.file_hash(), m.size()),
            Err(FinishError::HashMismatch)
        );
        assert!(!dir.join("dl_a.txt").exists());
        assert!(dir.join(partial_name("a.txt", &id)).is_file());
        // Still open: repair and finish.
        store.write_partial(&id, 1234, &bytes[1234..1235]).unwrap();
        assert_eq!(
            store.finish(&id, m.file_hash(), m.size()).unwrap(),
            "dl_a.txt"
        );
    }

    #[test]
    fn a_partial_whose_whole_file_fails_its_hash_goes_when_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(50_000, 5);
        let mut store = Store::new(dir);
        let m = download(&mut store, "a.txt", &bytes);
        let id = m.id();
        // The manifest's file hash is not the hash of the chunks (a lying manifest).
        let other = [7u8; 32];
        assert_eq!(
            store.finish(&id, &other, m.size()),
            Err(FinishError::HashMismatch)
        );
        assert!(dir.join(partial_name("a.txt", &id)).is_file());
        store.close_partial(&id);
        assert!(!dir.join(partial_name("a.txt", &id)).exists());
        assert!(!dir.join("dl_a.txt").exists());
    }

    #[test]
    fn stale_partials_go_and_open_or_recent_ones_stay() {
        use std::time::{Duration, SystemTime};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut store = Store::new(dir);
        let age = PARTIAL_MAX_AGE;
        let old = SystemTime::now() - age - Duration::from_secs(60);
        let plant = |name: &str, when: SystemTime| {
            fs::write(dir.join(name), b"partial").unwrap();
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(when)
                .unwrap();
        };
        let (a, b) = (ContentId([1; 32]), ContentId([2; 32]));
        plant(&partial_name("old", &a), old);
        plant(&partial_name("recent", &a), SystemTime::now());
        plant(&partial_name("open", &b), old);
        plant(".dl_not-a-partial", old);
        plant("shared-file.part", old);
        fs::hard_link(
            dir.join("shared-file.part"),
            dir.join(partial_name("linked", &a)),
        )
        .unwrap();
        // A download in progress holds its partial, however old.
        store.open_partial(&b, "open", 7).unwrap();
        let mut removed = store.sweep_partials(SystemTime::now(), age);
        removed.sort();
        assert_eq!(
            removed,
            vec![partial_name("linked", &a), partial_name("old", &a)]
        );
        assert!(dir.join(partial_name("recent", &a)).exists());
        assert!(dir.join(partial_name("open", &b)).exists());
        assert!(dir.join(".dl_not-a-partial").exists());
        assert_eq!(fs::read(dir.join("shared-file.part")).unwrap(), b"partial");
        // Once closed and still untouched, it goes too.
        store.close_partial(&b);
        assert_eq!(
            store.sweep_partials(SystemTime::now(), age),
            vec![partial_name("open", &b)]
        );
    }

    #[test]
    fn short_or_long_partial() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bytes = data(40_000, 4);
        let m = Manifest::of_bytes(&bytes);
        let id = m.id();
        let mut store = Store::new(dir);
        store.open_partial(&id, "s", m.size()).unwrap();
        store.write_partial(&id, 0, &bytes[..30_000]).unwrap();
        assert_eq!(
            store.finish(&id, m.file_hash(), m.size()),
            Err(FinishError::HashMismatch)
        );
        store.close_partial(&id);
        // Too long on disk (say, a foreign tail): cut to size on open.
        let mut long = bytes.clone();
        long.extend_from_slice(b"tail");
        fs::write(dir.join(partial_name("s", &id)), &long).unwrap();
        assert_eq!(store.open_partial(&id, "s", m.size()).unwrap(), m.size());
        assert_eq!(store.finish(&id, m.file_hash(), m.size()).unwrap(), "dl_s");
        assert_eq!(fs::read(dir.join("dl_s")).unwrap(), bytes);
    }

    #[test]
    fn finish_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("dl_a.txt"), b"mine").unwrap();
        fs::write(dir.join("dl_README"), b"mine").unwrap();
        let mut store = Store::new(dir);
        let one = data(1000, 5);
        let m = download(&mut store, "a.txt", &one);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_a (1).txt"
        );
        let two = data(1000, 6);
        let m = download(&mut store, "a.txt", &two);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_a (2).txt"
        );
        // The same content again still gets a new name.
        let m = download(&mut store, "a.txt", &two);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_a (3).txt"
        );
        let m = download(&mut store, "README", &one);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_README (1)"
        );
        assert_eq!(fs::read(dir.join("dl_a.txt")).unwrap(), b"mine");
        assert_eq!(fs::read(dir.join("dl_README")).unwrap(), b"mine");
        assert_eq!(fs::read(dir.join("dl_a (1).txt")).unwrap(), one);
        assert_eq!(fs::read(dir.join("dl_a (2).txt")).unwrap(), two);
        // An existing dl_ symlink is not followed or replaced either.
        std::os::unix::fs::symlink("/nonexistent", dir.join("dl_b")).unwrap();
        let m = download(&mut store, "b", &one);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_b (1)"
        );
    }

    #[test]
    fn refuses_bad_names_and_planted_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut store = Store::new(dir);
        let id = ContentId([9; 32]);
        for bad in [
            "../x", "a//b", "/abs", "a/../b", ".hidden", "a/.h", "", "x\0y",
        ] {
            assert!(matches!(
                store.open_partial(&id, bad, 10),
                Err(DiskError::Other(m)) if m.starts_with("refused name")
            ));
        }
        let target = outside.path().join("victim");
        fs::write(&target, b"victim").unwrap();
        std::os::unix::fs::symlink(&target, dir.join(partial_name("x", &id))).unwrap();
        assert!(matches!(
            store.open_partial(&id, "x", 10),
            Err(DiskError::Other(m)) if m.contains("not a regular file")
        ));
        assert_eq!(fs::read(&target).unwrap(), b"victim");
        assert!(matches!(
            store.write_partial(&id, 0, b"x"),
            Err(DiskError::Other(_))
        ));
        // A hard link planted as a partial (the same file system: here, the folder itself).
        let elsewhere = dir.join("victim-2");
        fs::write(&elsewhere, b"victim").unwrap();
        fs::hard_link(&elsewhere, dir.join(partial_name("y", &id))).unwrap();
        let e = store.open_partial(&id, "y", 3).unwrap_err();
        assert!(
            matches!(&e, DiskError::Other(m) if m.contains("hard links")),
            "{e:?}"
        );
        assert_eq!(
            fs::read(&elsewhere).unwrap(),
            b"victim",
            "not cut to 3 bytes"
        );
    }

    #[test]
    fn long_names_fit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let name = format!("{}.txt", "é".repeat(124)); // 252 bytes
        let mut store = Store::new(dir);
        let bytes = data(100, 7);
        let m = download(&mut store, &name, &bytes);
        let placed = store.finish(&m.id(), m.file_hash(), m.size()).unwrap();
        assert!(
            placed.len() <= MAX_NAME_LEN && placed.starts_with("dl_é") && placed.ends_with(".txt")
        );
        assert_eq!(fs::read(dir.join(&placed)).unwrap(), bytes);
        assert!(partial_file_name(&name, &m.id()).len() <= MAX_NAME_LEN);
        let m = download(&mut store, &name, &data(100, 8));
        let second = store.finish(&m.id(), m.file_hash(), m.size()).unwrap();
        assert!(
            second.len() <= MAX_NAME_LEN && second.ends_with(" (1).txt"),
            "{second}"
        );
    }

    #[test]
    fn empty_download() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = Store::new(tmp.path());
        let m = download(&mut store, "empty", b"");
        assert_eq!(store.finish(&m.id(), m.file_hash(), 0).unwrap(), "dl_empty");
        assert_eq!(fs::read(tmp.path().join("dl_empty")).unwrap(), b"");
    }

    #[test]
    fn paths_land_under_a_dl_folder_and_never_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut store = Store::new(dir);
        let one = data(3000, 9);
        let m = download(&mut store, "photos/2024/a.jpg", &one);
        assert!(
            dir.join(partial_name("a.jpg", &m.id())).is_file(),
            "partials stay at the top"
        );
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_photos/2024/a.jpg"
        );
        assert_eq!(fs::read(dir.join("dl_photos/2024/a.jpg")).unwrap(), one);
        assert!(!dir.join(partial_name("a.jpg", &m.id())).exists());
        // The same path again: the (n) rule on the file part, in the same folder.
        let two = data(3000, 10);
        let m = download(&mut store, "photos/2024/a.jpg", &two);
        assert_eq!(
            store.finish(&m.id(), m.file_hash(), m.size()).unwrap(),
            "dl_photos/2024/a (1).jpg"
        );
        assert_eq!(fs::read(dir.join("dl_photos/2024/a.jpg")).unwrap(), one);
        assert_eq!(fs::read(dir.join("dl_photos/2024/a (1).jpg")).unwrap(), two);
        assert_eq!(download_path("photos/2024/a.jpg"), "dl_photos/2024/a.jpg");
        assert_eq!(download_path("a.jpg"), "dl_a.jpg");
    }

    #[test]
    fn a_symlinked_dl_folder_gets_nothing_written_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::os::unix::fs::symlink(outside.path(), dir.join("dl_x")).unwrap();
        fs::create_dir(dir.join("dl_y")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("dl_y/deep")).unwrap();
        let mut store = Store::new(dir);
        for (name, seed) in [("x/f", 1), ("x/sub/f", 2), ("y/deep/f", 3)] {
            let bytes = data(500, seed);
            let m = download(&mut store, name, &bytes);
            match store.finish(&m.id(), m.file_hash(), m.size()) {
                Err(FinishError::Disk(DiskError::Other(msg))) => {
                    assert!(msg.contains("not a folder"), "{msg}")
                }
                other => panic!("{name}: {other:?}"),
            }
            // Kept for a retry once the user removed the symlink.
            assert!(dir.join(partial_name(name, &m.id())).is_file());
        }
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing outside"
        );
    }

    #[test]
    fn a_folder_swapped_for_a_symlink_mid_download_redirects_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("dl_x/sub")).unwrap();
        let mut store = Store::new(dir);
        let bytes = data(5000, 4);
        let m = download(&mut store, "x/sub/f", &bytes);
        // Before the finish, the folder is swapped for a symlink to outside.
        fs::rename(dir.join("dl_x/sub"), dir.join("dl_x/was")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("dl_x/sub")).unwrap();
        assert!(store.finish(&m.id(), m.file_hash(), m.size()).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // And a shared file behind a symlinked folder is never served.
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        let secret = local(dir, "dl_x/sub/secret", b"secret");
        store.set_files(std::slice::from_ref(&secret));
        assert_eq!(
            store.read_shared(&secret.manifest.id(), 0, 3),
            Err(DiskError::NotFound)
        );
        fs::create_dir(dir.join("real")).unwrap();
        fs::write(dir.join("real/secret"), b"secret").unwrap();
        let real = local(dir, "real/secret", b"secret");
        store.set_files(std::slice::from_ref(&real));
        assert_eq!(
            store.read_shared(&real.manifest.id(), 0, 3).unwrap(),
            b"sec"
        );
    }

    /// Every file and folder beneath `dir`, as paths relative to it (symlinks not followed).
    fn tree(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
                if e.file_type().unwrap().is_dir() {
                    todo.push(p);
                }
            }
        }
        out.sort();
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// No accepted path escapes the shared folder through the store; a refused one makes
        /// nothing at all.
        #[test]
        fn no_path_escapes_the_folder(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[a-z. ]{1,6}").unwrap(),
                    proptest::sample::select(vec![
                        "..".to_owned(), ".".to_owned(), "".to_owned(), "...".to_owned(),
                        "a..".to_owned(), "dl_".to_owned(), "x\\y".to_owned(),
                    ]),
                ],
                1..6,
            ),
            absolute in proptest::bool::ANY,
        ) {
            let base = tempfile::tempdir().unwrap();
            let dir = base.path().join("shared");
            fs::create_dir(&dir).unwrap();
            let mut name = parts.join("/");
            if absolute {
                name.insert(0, '/');
            }
            let mut store = Store::new(&dir);
            let bytes = data(10, 1);
            let m = Manifest::of_bytes(&bytes);
            let id = m.id();
            match store.open_partial(&id, &name, m.size()) {
                Err(_) => {
                    proptest::prop_assert!(check_name(&name).is_err());
                }
                Ok(_) => {
                    proptest::prop_assert!(check_name(&name).is_ok());
                    store.write_partial(&id, 0, &bytes).unwrap();
                    let placed = store.finish(&id, m.file_hash(), m.size()).unwrap();
                    proptest::prop_assert!(check_name(&placed).is_ok());
                    let real = fs::canonicalize(dir.join(&placed)).unwrap();
                    proptest::prop_assert!(real.starts_with(fs::canonicalize(&dir).unwrap()));
                    proptest::prop_assert_eq!(fs::read(&real).unwrap(), bytes);
                    proptest::prop_assert!(placed.starts_with("dl_"));
                }
            }
            // Nothing but the shared folder beside it.
            proptest::prop_assert_eq!(tree(base.path()).iter().filter(|p| p.components().count() == 1).count(), 1);
        }
    }

    #[test]
    fn candidates() {
        assert_eq!(download_candidate("a.txt", 0), "dl_a.txt");
        assert_eq!(download_candidate("a.tar.gz", 2), "dl_a.tar (2).gz");
        assert_eq!(download_candidate("noext", 1), "dl_noext (1)");
        assert_eq!(download_candidate("a.", 1), "dl_a. (1)");
        assert_eq!(
            download_candidate("x.verylongextensionhere", 1),
            "dl_x.verylongextensionhere (1)"
        );
    }

    #[test]
    fn error_mapping() {
        assert_eq!(
            disk_err(io::Error::from_raw_os_error(28), "f"),
            DiskError::NoSpace
        );
        assert_eq!(
            disk_err(io::Error::from_raw_os_error(122), "f"),
            DiskError::NoSpace
        );
        assert_eq!(
            disk_err(io::Error::from_raw_os_error(2), "f"),
            DiskError::NotFound
        );
        assert!(matches!(
            disk_err(io::Error::from_raw_os_error(13), "f"),
            DiskError::Other(m) if m.starts_with("f: ")
        ));
    }
}
