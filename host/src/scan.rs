//! Scanning the shared folder into manifests, with an on-disk cache so a restart does not rehash.
//!
//! What is shared: every regular file beneath the folder, at any depth, named by its relative
//! path (`photos/2024/a.jpg`), which passes [`check_name`]. The tree is walked with
//! [`crate::beneath`]: each folder opened from its parent's descriptor with `O_NOFOLLOW`, each
//! entry judged by `statat(AT_SYMLINK_NOFOLLOW)`. Not shared: symlinks (to files or folders,
//! inside the folder or out: never followed), anything else that is not a regular file or a
//! folder, names that are not UTF-8, and hidden entries (leading `.`, which covers our own
//! `.dl_*.part` partials, the lock file and this cache, and hidden folders with all they hold).
//! Downloads (`dl_*`, files and folders) are shared like any other file. Bounds, from
//! `p2pshare_proto::name`: folders deeper than [`MAX_PATH_DEPTH`] are not entered, paths longer
//! than [`MAX_PATH_LEN`] are left out, and the walk stops after [`MAX_TREE_ENTRIES`] entries;
//! what is left out is counted in [`Scan::left_out`]. Each file gets the chunk size
//! [`chunk_size_for`] picks for its size.
//!
//! Invariants:
//! - A manifest is reported for a file only if the file's stat stamp (size, mtime and ctime to the
//!   nanosecond, inode) was identical before and after its bytes were hashed; a file that changes
//!   while being hashed is skipped this round and retried on the next scan.
//! - A manifest is reused without rehashing only if the file's stamp equals the stamp it was
//!   hashed under, or, for a download this peer verified and put in place
//!   ([`Scanner::adopt`]), the stamp it had once in place: such a file is never read again
//!   here (its chunk hashes and its whole-file hash were checked as it arrived). The ctime is in the stamp because every write sets it to "now" and no tool can
//!   set it back (unlike the mtime, which `touch -r` or `rsync -t` restore). A file whose ctime
//!   was within the racy window ([`RACY_WINDOW`] by default) of the scan's start when it was
//!   hashed is "racy" (a write in the same timestamp tick would leave the stamp unchanged): it is
//!   served, but hashed again on the next scan and never written to the cache. So a file
//!   added or changed is hashed twice when a scan catches it less than the window after the
//!   change; that is the price of never serving a stale manifest.
//! - The cache (`.p2pshare-cache`, see [`CACHE_FILE`]) is never trusted blindly: it has a magic,
//!   a version and a trailing SHA-256 of its contents; every name must pass `check_name` and
//!   every stored manifest must decode and match the stored size. Anything else and the whole
//!   cache is ignored (everything is rehashed). It is replaced atomically (temp file + rename);
//!   it is not fsynced, since a torn cache is detected and merely costs a rehash.
//! - Memory is bounded: at most [`HASH_BUFFERS`] blocks of [`BLOCK_SIZE`] bytes are in flight,
//!   never a whole file.
//!
//! Speed: hashing keeps both cores busy. Files smaller than [`BIG_FILE`] are spread over two
//! workers, each feeding a [`ManifestBuilder`]; a big file is read in blocks on the calling
//! thread, while one thread computes the chunk hashes with a [`ChunkHasher`] (the chunk half of
//! `ManifestBuilder`) and another the whole-file SHA-256 over the same blocks — one
//! `ManifestBuilder` would hash every byte twice on one thread, and the read (a copy out of the
//! page cache) is a third of the work, which the reader does alone.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use p2pshare_proto::manifest::{ChunkHasher, MAX_FILE_SIZE, MAX_MANIFEST_BYTES, chunk_size_for};
use p2pshare_proto::name::{MAX_PATH_DEPTH, MAX_PATH_LEN, MAX_TREE_ENTRIES, check_component};
use p2pshare_proto::{ContentId, Manifest, ManifestBuilder, ManifestError, check_name};
use rustix::fs::{AtFlags, FileType};
use sha2::Digest as _;

use crate::beneath;

/// The cache file's name inside the shared folder (hidden, so never shared).
pub const CACHE_FILE: &str = ".p2pshare-cache";
/// Bytes read from a file at a time while hashing: small enough that a block is still in the
/// cache when the hashers read it, large enough that handing blocks over costs nothing.
pub const BLOCK_SIZE: usize = 1 << 20;
/// Blocks of one big file in flight between the reading thread and the two hash threads.
pub const HASH_BUFFERS: usize = 6;
/// Files at least this large are hashed with the two-thread pipeline, one at a time.
pub const BIG_FILE: u64 = 8 << 20;
/// A file modified this close to a scan is hashed again on the next scan (see module doc).
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

const CACHE_MAGIC: &[u8; 8] = b"P2PSCACH";
const CACHE_VERSION: u32 = 1;
/// A cache larger than this is not read (it would be foreign or absurd).
const MAX_CACHE_BYTES: u64 = 1 << 30;

/// One shared file as a scan found it: its name, its path and its manifest. The node is told
/// of it as a [`p2pshare_proto::LocalFile`] (no path: the node never sees one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// Its path in the folder, `/`-separated (passes `check_name`).
    pub name: String,
    /// `<folder>/<name>`, for messages only: files are opened beneath the folder by name.
    pub path: PathBuf,
    /// What it contains.
    pub manifest: Arc<Manifest>,
}

/// The result of one [`Scanner::scan`].
#[derive(Debug, Clone)]
pub struct Scan {
    /// Every shared file, sorted by name.
    pub files: Vec<ScannedFile>,
    /// True if the set of (name, content id) differs from the previous scan's; always true on a
    /// scanner's first scan, so the runtime publishes its catalog once at start.
    pub changed: bool,
    /// Files whose bytes were hashed in this scan (0 when everything came from the cache).
    pub hashed_files: usize,
    /// Bytes hashed in this scan.
    pub hashed_bytes: u64,
    /// Files left out this round: changed while being hashed, or unreadable.
    pub skipped_files: usize,
    /// Entries left out for a bound: too deep, path too long, or past the entry limit.
    pub left_out: usize,
    /// The cache could not be written (the scan itself is fine; the next start rehashes).
    pub cache_error: Option<String>,
}

/// Why the folder could not be scanned at all.
#[derive(Debug)]
pub enum ScanError {
    /// The path is missing or not a folder.
    NotAFolder(PathBuf),
    /// The folder cannot be listed.
    Read(PathBuf, io::Error),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotAFolder(d) => write!(f, "{} is not a folder", d.display()),
            ScanError::Read(d, e) => write!(f, "cannot read folder {}: {e}", d.display()),
        }
    }
}

impl std::error::Error for ScanError {}

/// Why one file could not be hashed.
#[derive(Debug)]
pub enum HashError {
    /// Opening or reading failed.
    Io(io::Error),
    /// The path is not a regular file (a symlink, a folder, ...).
    NotAFile,
    /// The file changed (or was replaced) while it was being hashed.
    Changed,
    /// The file is too big for a manifest (more than `MAX_CHUNKS` of the largest chunk size).
    TooBig(ManifestError),
    /// The helper hashing thread failed.
    Thread,
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::Io(e) => write!(f, "{e}"),
            HashError::NotAFile => f.write_str("not a regular file"),
            HashError::Changed => f.write_str("the file changed while it was being hashed"),
            HashError::TooBig(e) => write!(f, "file too big to share: {e}"),
            HashError::Thread => f.write_str("the hashing thread failed"),
        }
    }
}

impl std::error::Error for HashError {}

impl From<io::Error> for HashError {
    fn from(e: io::Error) -> Self {
        HashError::Io(e)
    }
}

/// What identifies a file's bytes without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    mtime_s: i64,
    mtime_ns: i64,
    ctime_s: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stamp {
    fn of_stat(st: &rustix::fs::Stat) -> Stamp {
        Stamp {
            size: st.st_size as u64,
            mtime_s: st.st_mtime,
            mtime_ns: st.st_mtime_nsec as i64,
            ctime_s: st.st_ctime,
            ctime_ns: st.st_ctime_nsec as i64,
            ino: st.st_ino,
        }
    }

    pub(crate) fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_s: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ctime_s: m.ctime(),
            ctime_ns: m.ctime_nsec(),
            ino: m.ino(),
        }
    }

    fn ctime_nanos(&self) -> i128 {
        i128::from(self.ctime_s) * 1_000_000_000 + i128::from(self.ctime_ns)
    }
}

/// A download this peer verified and put in place: its name in the folder, its stamp once in
/// place, and the manifest it was verified against (made by the store, see
/// [`crate::store::Store::take_adoptions`]).
#[derive(Debug, Clone)]
pub struct Adoption {
    pub(crate) name: String,
    pub(crate) stamp: Stamp,
    pub(crate) manifest: Arc<Manifest>,
}

#[derive(Debug, Clone)]
struct Entry {
    stamp: Stamp,
    manifest: Arc<Manifest>,
    racy: bool,
}

/// Scans one shared folder again and again, remembering manifests. See the module doc.
#[derive(Debug)]
pub struct Scanner {
    dir: PathBuf,
    entries: BTreeMap<String, Entry>,
    previous: Option<Vec<(String, ContentId)>>,
    cache_dirty: bool,
    racy_window: Duration,
}

impl Scanner {
    /// Prepares to scan `dir` and loads its cache if there is a valid one: call once at start,
    /// after taking the [`crate::FolderLock`]. Hashes nothing yet.
    pub fn new(dir: &Path) -> Result<Scanner, ScanError> {
        if !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
            return Err(ScanError::NotAFolder(dir.to_path_buf()));
        }
        let entries = load_cache(&dir.join(CACHE_FILE)).unwrap_or_default();
        Ok(Scanner {
            dir: dir.to_path_buf(),
            entries,
            previous: None,
            cache_dirty: false,
            racy_window: RACY_WINDOW,
        })
    }

    /// Changes the racy window (default [`RACY_WINDOW`]): for tests that write files and expect
    /// the very next scan to trust them. A shorter window than the file system's timestamp
    /// granularity may miss a change made in the same tick as the hash.
    pub fn set_racy_window(&mut self, window: Duration) {
        self.racy_window = window;
    }

    /// The shared folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the manifest of a file this peer just downloaded and verified, so that the next
    /// scan shares it without hashing it: it is trusted while the file keeps the stamp it had
    /// once in place, like any cached entry, and written to the cache. Call before the next
    /// [`Scanner::scan`], with what [`crate::store::Store::take_adoptions`] returned.
    pub fn adopt(&mut self, a: Adoption) {
        if check_name(&a.name).is_err() || a.manifest.size() != a.stamp.size {
            return;
        }
        self.cache_dirty = true;
        self.entries.insert(
            a.name,
            Entry {
                stamp: a.stamp,
                manifest: a.manifest,
                // Not racy, although its ctime is "now": its bytes were written by this peer
                // and verified chunk by chunk and whole, and its stamp was taken after the
                // last change this peer made. Only another program writing to it within the
                // same timestamp tick, right after the download, could go unseen.
                racy: false,
            },
        );
    }

    /// Lists the folder and hashes what is new or changed: call at start and then periodically
    /// (every couple of seconds). With nothing changed it only stats each file. Writes the cache
    /// when anything was hashed or removed. Fails only if the folder itself cannot be listed.
    pub fn scan(&mut self) -> Result<Scan, ScanError> {
        let start = wall_nanos();
        let root =
            beneath::open_root(&self.dir).map_err(|e| ScanError::Read(self.dir.clone(), e))?;
        let (seen, left_out) =
            walk(root.as_fd()).map_err(|e| ScanError::Read(self.dir.clone(), e))?;
        let before = self.entries.len();
        self.entries.retain(|name, _| seen.contains_key(name));
        if self.entries.len() != before {
            self.cache_dirty = true;
        }

        let jobs: Vec<Job> = seen
            .iter()
            .filter(|(name, stamp)| {
                self.entries
                    .get(*name)
                    .is_none_or(|e| e.racy || e.stamp != **stamp)
            })
            .map(|(name, stamp)| Job {
                name: name.clone(),
                stamp: *stamp,
            })
            .collect();

        let mut hashed_files = 0;
        let mut hashed_bytes = 0;
        let mut skipped_files = 0;
        for (job, result) in hash_jobs(root.as_fd(), jobs) {
            self.cache_dirty = true;
            match result {
                Ok(manifest) => {
                    hashed_files += 1;
                    hashed_bytes += job.stamp.size;
                    let age = start - job.stamp.ctime_nanos();
                    let racy = age.abs() < self.racy_window.as_nanos() as i128;
                    self.entries.insert(
                        job.name,
                        Entry {
                            stamp: job.stamp,
                            manifest: Arc::new(manifest),
                            racy,
                        },
                    );
                }
                Err(_) => {
                    skipped_files += 1;
                    self.entries.remove(&job.name);
                }
            }
        }

        let files: Vec<ScannedFile> = self
            .entries
            .iter()
            .map(|(name, e)| ScannedFile {
                name: name.clone(),
                path: self.dir.join(name),
                manifest: Arc::clone(&e.manifest),
            })
            .collect();
        let set: Vec<(String, ContentId)> = files
            .iter()
            .map(|f| (f.name.clone(), f.manifest.id()))
            .collect();
        let changed = self.previous.as_ref() != Some(&set);
        self.previous = Some(set);

        let mut cache_error = None;
        if self.cache_dirty {
            match save_cache(&self.dir, &self.entries) {
                Ok(()) => self.cache_dirty = false,
                Err(e) => cache_error = Some(format!("cannot write the scan cache: {e}")),
            }
        }
        Ok(Scan {
            files,
            changed,
            hashed_files,
            hashed_bytes,
            skipped_files,
            left_out,
            cache_error,
        })
    }
}

/// Lists every shared file beneath `root` with its stamp (see the module doc), and how many
/// entries were left out for a bound. Fails only if `root` itself cannot be listed; a subfolder
/// that cannot be opened or read is skipped.
fn walk(root: BorrowedFd<'_>) -> io::Result<(BTreeMap<String, Stamp>, usize)> {
    let mut seen = BTreeMap::new();
    let mut left_out = 0;
    let mut entries = 0;
    // (folder, its path with a trailing '/' or "" for the root, its depth)
    let mut todo: Vec<(OwnedFd, String, usize)> = vec![(rustix::io::dup(root)?, String::new(), 0)];
    let mut first = true;
    while let Some((fd, prefix, depth)) = todo.pop() {
        let dir = match rustix::fs::Dir::read_from(fd.as_fd()) {
            Ok(d) => d,
            Err(e) if first => return Err(e.into()),
            Err(_) => continue,
        };
        first = false;
        for dirent in dir {
            let Ok(dirent) = dirent else { break };
            let Ok(name) = dirent.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." || check_component(name).is_err() {
                continue;
            }
            entries += 1;
            if entries > MAX_TREE_ENTRIES {
                left_out += 1;
                continue;
            }
            let path = format!("{prefix}{name}");
            if path.len() > MAX_PATH_LEN {
                left_out += 1;
                continue;
            }
            let Ok(st) = rustix::fs::statat(fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    seen.insert(path, Stamp::of_stat(&st));
                }
                FileType::Directory if depth + 1 < MAX_PATH_DEPTH => {
                    // Opened from this folder's descriptor, never through a symlink.
                    if let Ok(sub) = beneath::open_dir(fd.as_fd(), &[name], false) {
                        todo.push((sub, format!("{path}/"), depth + 1));
                    }
                }
                FileType::Directory => left_out += 1,
                _ => {}
            }
        }
    }
    Ok((seen, left_out))
}

fn wall_nanos() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

struct Job {
    name: String,
    stamp: Stamp,
}

/// Where a file to hash is: a path (for [`hash_file`]), or a name beneath the shared folder.
#[derive(Clone, Copy)]
enum At<'a> {
    Path(&'a Path),
    Beneath(BorrowedFd<'a>, &'a str),
}

impl At<'_> {
    fn open(&self) -> io::Result<File> {
        match self {
            At::Path(p) => crate::nofollow::open_read(p),
            At::Beneath(root, name) => beneath::open_read(*root, name),
        }
    }

    /// The stamp of what is at this place now (a symlink's own, never followed).
    fn stamp(&self) -> io::Result<Stamp> {
        match self {
            At::Path(p) => fs::symlink_metadata(p).map(|m| Stamp::of(&m)),
            At::Beneath(root, name) => beneath::stat(*root, name).map(|st| Stamp::of_stat(&st)),
        }
    }
}

/// Hashes every job, small files on two workers, then big files one by one on two threads.
fn hash_jobs(root: BorrowedFd<'_>, jobs: Vec<Job>) -> Vec<(Job, Result<Manifest, HashError>)> {
    let (big, small): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.stamp.size >= BIG_FILE);
    let mut out = hash_small_files(root, small);
    for job in big {
        let result = hash_checked(At::Beneath(root, &job.name), &job.stamp, true);
        out.push((job, result));
    }
    out
}

fn hash_small_files(
    root: BorrowedFd<'_>,
    jobs: Vec<Job>,
) -> Vec<(Job, Result<Manifest, HashError>)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2)
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Manifest, HashError>)>> = Mutex::new(Vec::new());
    let work = || {
        let mut buf = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            let r = hash_checked_with(At::Beneath(root, &job.name), &job.stamp, false, &mut buf);
            if let Ok(mut v) = results.lock() {
                v.push((i, r));
            }
        }
    };
    std::thread::scope(|s| {
        // Extra workers are a speed-up only: if a thread cannot be spawned, the caller's
        // thread does the work alone.
        for _ in 1..workers {
            let _ = std::thread::Builder::new().spawn_scoped(s, work);
        }
        work();
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut by_index: Vec<Option<Result<Manifest, HashError>>> =
        (0..jobs.len()).map(|_| None).collect();
    for (i, r) in results {
        by_index[i] = Some(r);
    }
    jobs.into_iter()
        .zip(by_index)
        .map(|(job, r)| (job, r.unwrap_or(Err(HashError::Thread))))
        .collect()
}

/// Hashes the regular file at `path` into its manifest (chunk size from [`chunk_size_for`]),
/// using two threads for big files. Call it for a one-off manifest; [`Scanner::scan`] uses the
/// same code. Refuses symlinks and non-files; fails with [`HashError::Changed`] if the file
/// changed or was replaced while it was read.
pub fn hash_file(path: &Path) -> Result<Manifest, HashError> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(HashError::NotAFile);
    }
    hash_checked(At::Path(path), &Stamp::of(&meta), true)
}

/// Hashes the regular file `name` (a relative path) beneath the folder `dir`, walked without
/// following symlinks ([`crate::beneath`]): call to check what is in place before fetching it
/// again. Fails like [`hash_file`].
pub fn hash_beneath(dir: &Path, name: &str) -> Result<Manifest, HashError> {
    let root = beneath::open_root(dir)?;
    let at = At::Beneath(root.as_fd(), name);
    let st = beneath::stat(root.as_fd(), name)?;
    if !beneath::is_file(&st) {
        return Err(HashError::NotAFile);
    }
    hash_checked(at, &Stamp::of_stat(&st), true)
}

fn hash_checked(at: At<'_>, stamp: &Stamp, threads: bool) -> Result<Manifest, HashError> {
    hash_checked_with(at, stamp, threads, &mut Vec::new())
}

/// Hashes the file `at`, which had `stamp` when it was listed; the open file and the place must
/// still have that stamp after the last byte was read.
fn hash_checked_with(
    at: At<'_>,
    stamp: &Stamp,
    threads: bool,
    buf: &mut Vec<u8>,
) -> Result<Manifest, HashError> {
    // Refused from the listed size alone: a sparse file can claim exabytes.
    if stamp.size > MAX_FILE_SIZE {
        return Err(HashError::TooBig(ManifestError::BadChunkCount));
    }
    // Never through a symlink, never waiting on a FIFO swapped in since the listing.
    let file = at.open()?;
    // Same inode, size and times as listed: also catches any other file swapped in since.
    if Stamp::of(&file.metadata()?) != *stamp {
        return Err(HashError::Changed);
    }
    let manifest = if threads && stamp.size >= BIG_FILE {
        hash_two_threads(&file, stamp.size, BLOCK_SIZE)?
    } else {
        hash_one_thread(&file, stamp.size, buf)?
    };
    if Stamp::of(&file.metadata()?) != *stamp || !at.stamp().is_ok_and(|m| m == *stamp) {
        return Err(HashError::Changed);
    }
    Ok(manifest)
}

/// Reads exactly `buf.len()` bytes; a file that ends early has changed.
fn read_block(mut file: &File, buf: &mut [u8]) -> Result<(), HashError> {
    match file.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HashError::Changed),
        Err(e) => Err(HashError::Io(e)),
    }
}

fn hash_one_thread(file: &File, size: u64, buf: &mut Vec<u8>) -> Result<Manifest, HashError> {
    let mut builder = ManifestBuilder::new(chunk_size_for(size));
    let mut remaining = size;
    while remaining > 0 {
        let want = remaining.min(BLOCK_SIZE as u64) as usize;
        buf.resize(want, 0);
        read_block(file, buf)?;
        builder.update(buf);
        remaining -= want as u64;
    }
    builder.finish().map_err(HashError::TooBig)
}

/// This thread only reads blocks; one helper thread hashes the chunks with a [`ChunkHasher`],
/// another the whole file, each over the same blocks in file order. Reading is a copy out of
/// the page cache that costs about half as much as one SHA-256 pass: on the reading thread
/// beside the chunk hashes it made that thread the bottleneck, while three threads on two
/// cores share the work evenly (BENCHMARKS.md has the figures). At most [`HASH_BUFFERS`]
/// blocks exist at once.
fn hash_two_threads(file: &File, size: u64, block_size: usize) -> Result<Manifest, HashError> {
    std::thread::scope(|s| {
        let (returned_tx, returned) = mpsc::channel::<Block>();
        let whole = spawn_hasher(s, &returned_tx, sha2::Sha256::new(), |h, b| h.update(b));
        let parts = spawn_hasher(
            s,
            &returned_tx,
            ChunkHasher::new(chunk_size_for(size)),
            |c, b| c.update(b),
        );
        drop(returned_tx);
        let (Some((to_whole, whole)), Some((to_parts, parts))) = (whole, parts) else {
            // No threads: do it all here.
            return hash_one_thread(file, size, &mut Vec::new());
        };
        let read_all = || -> Result<(), HashError> {
            let mut allocated = 0;
            let mut remaining = size;
            while remaining > 0 {
                let mut buf = if allocated < HASH_BUFFERS {
                    allocated += 1;
                    Vec::new()
                } else {
                    // Each block comes back twice; it is free once both hashers gave it back.
                    loop {
                        let block = returned.recv().map_err(|_| HashError::Thread)?;
                        if let Ok(buf) = Arc::try_unwrap(block) {
                            break buf;
                        }
                    }
                };
                let want = remaining.min(block_size as u64) as usize;
                buf.resize(want, 0);
                read_block(file, &mut buf)?;
                remaining -= want as u64;
                let block = Arc::new(buf);
                to_parts
                    .send(Arc::clone(&block))
                    .map_err(|_| HashError::Thread)?;
                to_whole.send(block).map_err(|_| HashError::Thread)?;
            }
            Ok(())
        };
        let read = read_all();
        drop((to_whole, to_parts));
        let (whole, parts) = (whole.join(), parts.join());
        read?;
        match (whole, parts) {
            (Ok(h), Ok(chunks)) => chunks
                .finish(h.finalize().into())
                .map_err(HashError::TooBig),
            _ => Err(HashError::Thread),
        }
    })
}

/// A block of a file being hashed, shared by the reader and the two hashers.
type Block = Arc<Vec<u8>>;

/// Starts a thread that feeds the blocks sent to it, in order, to `state` with `eat`, hands
/// each block back on `back` when done with it, and returns `state` once the sender is
/// dropped; `None` if no thread can be started.
fn spawn_hasher<'scope, T: Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    back: &mpsc::Sender<Block>,
    mut state: T,
    eat: fn(&mut T, &[u8]),
) -> Option<(
    mpsc::SyncSender<Block>,
    std::thread::ScopedJoinHandle<'scope, T>,
)> {
    let (tx, rx) = mpsc::sync_channel::<Block>(HASH_BUFFERS);
    let back = back.clone();
    let thread = std::thread::Builder::new()
        .name("p2pshare-hash".into())
        .spawn_scoped(s, move || {
            for block in rx {
                eat(&mut state, &block);
                // The reader may be gone after an error; then the block is simply dropped.
                let _ = back.send(block);
            }
            state
        })
        .ok()?;
    Some((tx, thread))
}

// ---- the cache file ----
//
// Layout (integers big-endian):
//   magic "P2PSCACH" | version u32 | entry count u32 | entries | SHA-256 of everything before
//   entry: name length u16 | name (UTF-8) | size u64 | mtime s i64 | mtime ns i64
//          | ctime s i64 | ctime ns i64 | inode u64 | manifest length u32 | Manifest::encode()

fn save_cache(dir: &Path, entries: &BTreeMap<String, Entry>) -> io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&CACHE_VERSION.to_be_bytes());
    let kept: Vec<(&String, &Entry)> = entries.iter().filter(|(_, e)| !e.racy).collect();
    out.extend_from_slice(&(kept.len() as u32).to_be_bytes());
    for (name, e) in kept {
        let s = &e.stamp;
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&s.size.to_be_bytes());
        out.extend_from_slice(&s.mtime_s.to_be_bytes());
        out.extend_from_slice(&s.mtime_ns.to_be_bytes());
        out.extend_from_slice(&s.ctime_s.to_be_bytes());
        out.extend_from_slice(&s.ctime_ns.to_be_bytes());
        out.extend_from_slice(&s.ino.to_be_bytes());
        let m = e.manifest.encode();
        out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        out.extend_from_slice(&m);
    }
    let sum = p2pshare_proto::sha256(&out);
    out.extend_from_slice(&sum);

    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    // A stale temp file (or a symlink planted there) is removed, never written through.
    let _ = fs::remove_file(&tmp);
    let written = crate::nofollow::create_new(&tmp).and_then(|mut f| f.write_all(&out));
    let renamed = written.and_then(|()| fs::rename(&tmp, dir.join(CACHE_FILE)));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// The cache's entries, or `None` if it is missing, foreign, corrupt or from another version.
fn load_cache(path: &Path) -> Option<BTreeMap<String, Entry>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() > MAX_CACHE_BYTES {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    decode_cache(&bytes)
}

fn decode_cache(bytes: &[u8]) -> Option<BTreeMap<String, Entry>> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if p2pshare_proto::sha256(body)[..] != *sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(8)? != CACHE_MAGIC || r.u32()? != CACHE_VERSION {
        return None;
    }
    let count = r.u32()?;
    let mut entries = BTreeMap::new();
    for _ in 0..count {
        let name_len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(name_len)?).ok()?.to_owned();
        check_name(&name).ok()?;
        let stamp = Stamp {
            size: r.u64()?,
            mtime_s: r.u64()? as i64,
            mtime_ns: r.u64()? as i64,
            ctime_s: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            ino: r.u64()?,
        };
        let mlen = r.u32()? as usize;
        if mlen > MAX_MANIFEST_BYTES {
            return None;
        }
        let manifest = Manifest::decode(r.take(mlen)?).ok()?;
        if manifest.size() != stamp.size || manifest.chunk_size() != chunk_size_for(stamp.size) {
            return None;
        }
        let entry = Entry {
            stamp,
            manifest: Arc::new(manifest),
            racy: false,
        };
        if entries.insert(name, entry).is_some() {
            return None;
        }
    }
    r.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::time::Duration;

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    /// A scanner that trusts files written just now (no racy window).
    fn trusting(dir: &Path) -> Scanner {
        let mut s = Scanner::new(dir).unwrap();
        s.set_racy_window(Duration::ZERO);
        s
    }

    /// Writes a file and dates its mtime an hour (plus `age` seconds) back.
    fn put(dir: &Path, name: &str, bytes: &[u8], age: u64) {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600 + age);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    /// A new folder holding `files`, each dated an hour back.
    fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            put(tmp.path(), name, bytes, 0);
        }
        tmp
    }

    fn names(scan: &Scan) -> Vec<&str> {
        scan.files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn shares_only_regular_files_with_good_names() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        put(dir, "a.txt", b"hello", 0);
        put(dir, "b.bin", &data(70_000, 1), 0);
        put(dir, "empty", b"", 0);
        put(dir, ".hidden", b"x", 0);
        put(dir, ".dl_a.txt.0123456789ab.part", b"x", 0);
        put(dir, "bad\nname", b"x", 0);
        fs::create_dir(dir.join("sub")).unwrap();
        put(&dir.join("sub"), "inner", b"x", 0);
        std::os::unix::fs::symlink(dir.join("a.txt"), dir.join("link_inside")).unwrap();
        put(outside.path(), "secret", b"secret", 0);
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.join("link_out")).unwrap();
        let not_utf8 = std::ffi::OsStr::from_bytes(b"caf\xe9");
        fs::write(dir.join(not_utf8), b"x").unwrap();

        let mut scanner = trusting(dir);
        let scan = scanner.scan().unwrap();
        // Subfolders are walked (see walks_the_tree_without_following_symlinks).
        assert_eq!(names(&scan), ["a.txt", "b.bin", "empty", "sub/inner"]);
        assert!(scan.changed);
        assert_eq!(scan.hashed_files, 4);
        assert_eq!(scan.hashed_bytes, 70_006);
        assert_eq!(scan.skipped_files, 0);
        assert!(scan.cache_error.is_none());
        assert_eq!(*scan.files[0].manifest, Manifest::of_bytes(b"hello"));
        assert_eq!(
            *scan.files[1].manifest,
            Manifest::of_bytes(&data(70_000, 1))
        );
        assert_eq!(*scan.files[2].manifest, Manifest::of_bytes(b""));
        assert_eq!(scan.files[0].path, dir.join("a.txt"));
    }

    #[test]
    fn walks_the_tree_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        put(dir, "top", b"t", 0);
        fs::create_dir_all(dir.join("photos/2024")).unwrap();
        put(&dir.join("photos"), "p.jpg", b"p", 0);
        put(&dir.join("photos/2024"), "a.jpg", b"a", 0);
        put(&dir.join("photos/2024"), ".dl_x.0.part", b"partial", 0);
        fs::create_dir_all(dir.join(".git/objects")).unwrap();
        put(&dir.join(".git/objects"), "o", b"hidden", 0);
        fs::create_dir_all(dir.join("dl_got/sub")).unwrap();
        put(&dir.join("dl_got/sub"), "f", b"downloaded", 0);
        fs::create_dir(dir.join("empty")).unwrap();
        put(outside.path(), "secret", b"secret", 0);
        std::os::unix::fs::symlink(outside.path(), dir.join("photos/out")).unwrap();
        std::os::unix::fs::symlink(dir.join("photos"), dir.join("loop")).unwrap();
        std::os::unix::fs::symlink(dir.join("top"), dir.join("photos/2024/top_link")).unwrap();
        let deep: PathBuf = (0..MAX_PATH_DEPTH + 2).map(|i| format!("d{i}")).collect();
        fs::create_dir_all(dir.join(&deep)).unwrap();
        let mut at = dir.to_path_buf();
        for i in 0..MAX_PATH_DEPTH + 2 {
            at.push(format!("d{i}"));
            put(&at, "f", b"deep", 0);
        }

        let scan = trusting(dir).scan().unwrap();
        let mut want = vec![
            "dl_got/sub/f".to_owned(),
            "photos/2024/a.jpg".to_owned(),
            "photos/p.jpg".to_owned(),
            "top".to_owned(),
        ];
        // d0/f (2 parts) … d0/…/d14/f (16 parts); d15 is at the depth limit, not entered.
        let mut prefix = String::new();
        for i in 0..MAX_PATH_DEPTH - 1 {
            prefix.push_str(&format!("d{i}/"));
            want.push(format!("{prefix}f"));
        }
        want.sort();
        assert_eq!(names(&scan), want);
        assert_eq!(scan.left_out, 1, "the folder past the depth limit");
        assert!(scan.files.iter().all(|f| check_name(&f.name).is_ok()));
        let f = scan
            .files
            .iter()
            .find(|f| f.name == "photos/p.jpg")
            .unwrap();
        assert_eq!(f.path, dir.join("photos/p.jpg"));
    }

    #[test]
    fn a_change_deep_in_the_tree_rehashes_only_that_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for d in 0..10 {
            let sub = dir.join(format!("a{d}/b/c"));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..10 {
                put(&sub, &format!("f{f}"), &data(100 + f, d as u8), 0);
            }
        }
        let mut s = trusting(dir);
        assert_eq!(s.scan().unwrap().hashed_files, 100);
        let again = s.scan().unwrap();
        assert_eq!((again.hashed_files, again.changed), (0, false));
        put(&dir.join("a7/b/c"), "f3", b"changed", 5);
        let scan = s.scan().unwrap();
        assert!(scan.changed);
        assert_eq!(scan.hashed_files, 1, "only the changed file is hashed");
        assert_eq!(scan.hashed_bytes, 7);
        let f = scan.files.iter().find(|f| f.name == "a7/b/c/f3").unwrap();
        assert_eq!(f.manifest.id(), Manifest::of_bytes(b"changed").id());
        // A new file deep down, and a folder removed.
        put(&dir.join("a2/b/c"), "new", b"new", 0);
        fs::remove_dir_all(dir.join("a9")).unwrap();
        let scan = s.scan().unwrap();
        assert_eq!(scan.hashed_files, 1);
        assert_eq!(scan.files.len(), 91);
        // The restart sees the tree from the cache.
        let scan = trusting(dir).scan().unwrap();
        assert_eq!((scan.hashed_files, scan.files.len()), (0, 91));
    }

    /// The restart time of a 10,000-file tree in 100 folders (issue 12: under 0.5 s). Run with
    /// `cargo test --release -p p2pshare-host --lib restart_of_a_big_tree -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: prints the restart and rescan times of a 10,000-file tree"]
    fn restart_of_a_big_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for d in 0..100 {
            // 10 folders of 10 subfolders of 100 files.
            let sub = dir.join(format!("folder{}/sub{}", d / 10, d % 10));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..100 {
                put(
                    &sub,
                    &format!("file{f:03}.dat"),
                    &data(1000 + f, d as u8),
                    0,
                );
            }
        }
        let t = std::time::Instant::now();
        let first = trusting(dir).scan().unwrap();
        let hashed = t.elapsed();
        assert_eq!((first.files.len(), first.hashed_files), (10_000, 10_000));
        let t = std::time::Instant::now();
        let mut s = trusting(dir);
        let restarted = s.scan().unwrap();
        let restart = t.elapsed();
        assert_eq!((restarted.files.len(), restarted.hashed_files), (10_000, 0));
        let t = std::time::Instant::now();
        let rescan = s.scan().unwrap();
        let rescan_t = t.elapsed();
        assert_eq!((rescan.hashed_files, rescan.changed), (0, false));
        println!(
            "10,000 files in 100 folders: first scan {hashed:?}, restart (cache load + walk) {restart:?}, rescan {rescan_t:?}"
        );
        // How long the restart takes is the benchmark's (`BENCH_ONLY=scan ./bench.sh`, "restart
        // scan"), not a bound here: it had one (500 ms), which a busy machine can pass.
    }

    #[test]
    fn rescan_and_restart_use_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for i in 0..20 {
            put(dir, &format!("f{i}"), &data(1000 + i, i as u8), 0);
        }
        let mut scanner = trusting(dir);
        let first = scanner.scan().unwrap();
        assert_eq!(first.hashed_files, 20);
        let second = scanner.scan().unwrap();
        assert_eq!(second.hashed_files, 0);
        assert!(!second.changed);
        assert_eq!(second.files, first.files);
        assert!(dir.join(CACHE_FILE).is_file());

        // A restart: a new scanner on the same folder reads the cache.
        let mut restarted = trusting(dir);
        let third = restarted.scan().unwrap();
        assert_eq!(third.hashed_files, 0);
        assert!(
            third.changed,
            "a scanner's first scan always reports a change"
        );
        assert_eq!(third.files, first.files);
    }

    #[test]
    fn detects_modify_add_delete() {
        let tmp = folder(&[("keep", b"keep"), ("modify", b"aaaa"), ("delete", b"gone")]);
        let dir = tmp.path();
        let mut scanner = trusting(dir);
        scanner.scan().unwrap();

        put(dir, "modify", b"bbbb", 10); // same size, other mtime
        put(dir, "add", b"new", 0);
        fs::remove_file(dir.join("delete")).unwrap();
        let scan = scanner.scan().unwrap();
        assert!(scan.changed);
        assert_eq!(scan.hashed_files, 2);
        assert_eq!(names(&scan), ["add", "keep", "modify"]);
        assert_eq!(
            scan.files[2].manifest.id(),
            Manifest::of_bytes(b"bbbb").id()
        );

        // Same size, same mtime, new content: the ctime still gives it away (once the clock
        // has ticked since the last write, which the racy window guarantees outside tests).
        std::thread::sleep(Duration::from_millis(30));
        let m = dir.join("modify");
        let mtime = fs::metadata(&m).unwrap().modified().unwrap();
        fs::write(&m, b"cccc").unwrap();
        File::options()
            .write(true)
            .open(&m)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let scan = scanner.scan().unwrap();
        assert!(scan.changed);
        assert_eq!(
            scan.files[2].manifest.id(),
            Manifest::of_bytes(b"cccc").id()
        );

        // A rename keeps the content id but changes the (name, id) set.
        fs::rename(dir.join("add"), dir.join("added")).unwrap();
        let scan = scanner.scan().unwrap();
        assert!(scan.changed);
        assert_eq!(names(&scan), ["added", "keep", "modify"]);
        assert!(!scanner.scan().unwrap().changed);

        // And the cache follows: a restart sees the same files without hashing.
        let scan = trusting(dir).scan().unwrap();
        assert_eq!(scan.hashed_files, 0);
        assert_eq!(names(&scan), ["added", "keep", "modify"]);
    }

    #[test]
    fn recent_files_are_hashed_again_once() {
        // An old mtime does not help: the ctime is now.
        let tmp = folder(&[("fresh", b"fresh")]);
        let dir = tmp.path();
        let mut s = Scanner::new(dir).unwrap();
        assert_eq!(s.scan().unwrap().hashed_files, 1);
        let again = s.scan().unwrap();
        assert_eq!(again.hashed_files, 1, "racy entries are not trusted");
        assert!(!again.changed);
        // Not written to the cache either.
        assert_eq!(Scanner::new(dir).unwrap().scan().unwrap().hashed_files, 1);
        // Once trusted (here: no window), the cache serves it.
        assert_eq!(trusting(dir).scan().unwrap().hashed_files, 1);
        assert_eq!(Scanner::new(dir).unwrap().scan().unwrap().hashed_files, 0);
    }

    #[test]
    fn corrupt_or_foreign_cache_is_ignored() {
        let tmp = folder(&[("a", b"aaa"), ("b", b"bbb")]);
        let dir = tmp.path();
        trusting(dir).scan().unwrap();
        let cache = dir.join(CACHE_FILE);
        let good = fs::read(&cache).unwrap();
        assert!(decode_cache(&good).is_some());

        let mut flipped = good.clone();
        flipped[20] ^= 1;
        let mut bad_version = good[..good.len() - 32].to_vec();
        bad_version[11] = 99;
        let sum = p2pshare_proto::sha256(&bad_version);
        bad_version.extend_from_slice(&sum);
        for junk in [
            flipped,
            bad_version,
            good[..good.len() - 1].to_vec(),
            b"not a cache".to_vec(),
            Vec::new(),
        ] {
            assert!(decode_cache(&junk).is_none());
            fs::write(&cache, &junk).unwrap();
            let scan = trusting(dir).scan().unwrap();
            assert_eq!(scan.hashed_files, 2);
            assert_eq!(names(&scan), ["a", "b"]);
        }
        // The last scan rewrote a good cache.
        assert_eq!(trusting(dir).scan().unwrap().hashed_files, 0);
    }

    #[test]
    fn two_thread_hash_matches_builder() {
        let tmp = tempfile::tempdir().unwrap();
        for size in [0usize, 1, 300_000, 1 << 20, (1 << 20) + 1, 2_600_000] {
            let bytes = data(size, 7);
            let path = tmp.path().join("f");
            fs::write(&path, &bytes).unwrap();
            let file = File::open(&path).unwrap();
            // Blocks that do not align with the 1 MiB chunks, and more blocks than buffers.
            let m = hash_two_threads(&file, size as u64, 300_001).unwrap();
            assert_eq!(m, Manifest::of_bytes(&bytes), "size {size}");
            assert_eq!(hash_file(&path).unwrap(), m);
        }
    }

    #[test]
    fn big_file_goes_through_the_scanner() {
        let bytes = data(BIG_FILE as usize + 12_345, 3);
        let tmp = folder(&[("big", &bytes), ("small", b"s")]);
        let scan = trusting(tmp.path()).scan().unwrap();
        assert_eq!(names(&scan), ["big", "small"]);
        assert_eq!(*scan.files[0].manifest, Manifest::of_bytes(&bytes));
    }

    #[test]
    fn changed_or_odd_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"12345").unwrap();
        let mut stamp = Stamp::of(&fs::metadata(&path).unwrap());
        stamp.size = 4;
        assert!(matches!(
            hash_checked(At::Path(&path), &stamp, true),
            Err(HashError::Changed)
        ));
        std::os::unix::fs::symlink(&path, tmp.path().join("l")).unwrap();
        assert!(matches!(
            hash_file(&tmp.path().join("l")),
            Err(HashError::NotAFile)
        ));
        assert!(matches!(hash_file(tmp.path()), Err(HashError::NotAFile)));
        fs::create_dir(tmp.path().join("d")).unwrap();
        fs::write(tmp.path().join("d/f"), b"12345").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("d"), tmp.path().join("dl")).unwrap();
        let m = hash_beneath(tmp.path(), "d/f").unwrap();
        assert_eq!(m.id(), Manifest::of_bytes(b"12345").id());
        assert!(
            hash_beneath(tmp.path(), "dl/f").is_err(),
            "through a symlinked folder"
        );
        assert!(matches!(
            hash_beneath(tmp.path(), "l"),
            Err(HashError::NotAFile)
        ));
        assert!(matches!(
            hash_file(&tmp.path().join("missing")),
            Err(HashError::Io(_))
        ));
    }

    #[test]
    fn missing_folder_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Scanner::new(&tmp.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        let mut scanner = Scanner::new(&dir).unwrap();
        fs::remove_dir(&dir).unwrap();
        let err = scanner.scan().unwrap_err();
        assert!(err.to_string().starts_with("cannot read folder"), "{err}");
    }

    #[test]
    fn a_file_too_big_for_a_manifest_is_refused_from_its_size_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sparse");
        let f = File::create(&path).unwrap();
        // Sparse: no byte is written, and none may be read.
        f.set_len(MAX_FILE_SIZE + 1).unwrap();
        let t = std::time::Instant::now();
        let err = hash_file(&path).unwrap_err();
        assert!(matches!(err, HashError::TooBig(_)), "{err}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "it read the file"
        );
    }
}
