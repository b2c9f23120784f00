//! The whole-file check of a partial download, computed behind the writes.
//!
//! Chunks arrive roughly in order (the scheduler asks lowest index first), so the partial file
//! has a growing contiguous written prefix. A [`Tail`] thread reads that prefix back from the
//! file (the page cache, mostly) and feeds it to SHA-256 as it grows, and flushes it to disk
//! every [`SYNC_EVERY`] bytes, while the download goes on. When the download finishes, only
//! the part not yet hashed is left, and the final fsync has little left to write.
//!
//! Invariants: the digest covers bytes read back from the file, never the bytes that were
//! handed to `write` — so it checks what is on disk; the thread only reads ranges reported
//! written (or, at finish, everything); it holds one buffer of [`BUFFER`] bytes; it ends when
//! its [`Tail`] is dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use p2pshare_proto::Digest;
use sha2::Digest as _;

/// Bytes read per step.
pub const BUFFER: usize = 1 << 20;
/// Bytes hashed between two background `fdatasync`s.
pub const SYNC_EVERY: u64 = 64 << 20;

#[derive(Default)]
struct State {
    /// Everything below this offset is written.
    ready: u64,
    /// Set by `finish`: hash up to this size, then report.
    finish: Option<u64>,
    /// The digest of `[0, finish)`, or the error that stopped the thread.
    result: Option<Result<Digest, io::ErrorKind>>,
    stop: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The background whole-file hash of one partial download.
pub struct Tail {
    shared: Shared,
    /// Written ranges beyond the contiguous prefix: start → end.
    pending: BTreeMap<u64, u64>,
    prefix: u64,
}

impl Tail {
    /// Starts hashing `file` (its own handle) from offset 0.
    pub fn start(file: File) -> io::Result<Tail> {
        let shared: Shared = Arc::default();
        let s = shared.clone();
        thread::Builder::new()
            .name("p2pshare-tail".into())
            .spawn(move || run(file, s))?;
        Ok(Tail {
            shared,
            pending: BTreeMap::new(),
            prefix: 0,
        })
    }

    /// Records that `[offset, offset + len)` is written.
    pub fn written(&mut self, offset: u64, len: u64) {
        self.pending.insert(offset, offset + len);
        while let Some(end) = self.pending.remove(&self.prefix) {
            self.prefix = end.max(self.prefix);
        }
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock()
            && st.ready < self.prefix
        {
            st.ready = self.prefix;
            cv.notify_one();
        }
    }

    /// Everything is written: waits for the digest of `[0, size)`.
    pub fn finish(&self, size: u64) -> Result<Digest, io::ErrorKind> {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().map_err(|_| io::ErrorKind::Other)?;
        st.finish = Some(size);
        st.ready = size;
        cv.notify_one();
        loop {
            if let Some(r) = st.result {
                return r;
            }
            st = cv.wait(st).map_err(|_| io::ErrorKind::Other)?;
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.stop = true;
            cv.notify_all();
        }
    }
}

fn run(file: File, shared: Shared) {
    let (lock, cv) = &*shared;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; BUFFER];
    let mut hashed = 0u64;
    let mut synced = 0u64;
    loop {
        // Wait for something to hash.
        let (ready, finish) = {
            let Ok(mut st) = lock.lock() else { return };
            while !st.stop && st.ready <= hashed && st.finish.is_none_or(|f| hashed < f) {
                match cv.wait(st) {
                    Ok(g) => st = g,
                    Err(_) => return,
                }
            }
            if st.stop {
                return;
            }
            (st.ready, st.finish)
        };
        let until = finish.map_or(ready, |f| ready.min(f));
        let mut failed = None;
        while hashed < until {
            let n = (until - hashed).min(BUFFER as u64) as usize;
            if let Err(e) = file.read_exact_at(&mut buf[..n], hashed) {
                failed = Some(e.kind());
                break;
            }
            hasher.update(&buf[..n]);
            hashed += n as u64;
            if hashed - synced >= SYNC_EVERY {
                // Start writing back behind the download, so the final fsync is short.
                let _ = file.sync_data();
                synced = hashed;
            }
        }
        let done = finish.is_some_and(|f| hashed >= f);
        if failed.is_some() || done {
            let result = match failed {
                Some(k) => Err(k),
                None => Ok(std::mem::take(&mut hasher).finalize().into()),
            };
            if let Ok(mut st) = lock.lock() {
                st.result = Some(result);
                cv.notify_all();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_out_of_order_writes_and_the_rest_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut t = Tail::start(File::open(&path).unwrap()).unwrap();
        t.written(2_000_000, 1_000_000);
        t.written(0, 2_000_000);
        // [3 MB, 5 MB) never reported (a resumed download's reused chunks): hashed at finish.
        let d = t.finish(data.len() as u64).unwrap();
        assert_eq!(d, p2pshare_proto::sha256(&data));
    }

    #[test]
    fn a_short_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, b"abc").unwrap();
        let t = Tail::start(File::open(&path).unwrap()).unwrap();
        assert_eq!(t.finish(10), Err(io::ErrorKind::UnexpectedEof));
    }
}
