//! The whole-file check of a partial download, computed as the chunks are written.
//!
//! Chunks arrive roughly in order (the scheduler asks lowest index first), so most writes
//! extend the contiguous prefix of the partial file: their bytes are fed to SHA-256 right then,
//! on the disk thread, from the very buffer that was written. A chunk written ahead of the
//! prefix is remembered and, once the prefix reaches it, read back from the file; so is
//! whatever the file held before this run (chunks kept from an interrupted download), at
//! [`Tail::finish`]. The digest is of every byte of the file in order, taken from what was
//! written or read back, never from what a peer sent.
//!
//! Two earlier designs were slower (BENCHMARKS.md has the figures): re-reading the whole file
//! at the end (a second pass over it), and a thread reading the prefix back as it grew (the
//! read-back copy cost as much as the hashing, and syncing from it stalled the writes).
//!
//! Invariants: `hashed` only grows while bytes are fed in order; a write into the part already
//! hashed (a repair) marks the digest stale, and `finish` then rehashes the whole file;
//! memory is bounded by one [`BUFFER`] and the list of out-of-order ranges.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use p2pshare_proto::Digest;
use sha2::Digest as _;

/// Bytes read back per step.
pub const BUFFER: usize = 1 << 20;
/// Every time the hashed prefix grew by this much, the writeback of that part is started
/// (and its pages already on the disk are dropped from the cache), so that less is left for
/// the fsync before the rename (on a VM, that fsync still pays for the host's flush).
pub const WRITEBACK_STEP: u64 = 8 << 20;

/// The running whole-file hash of one partial download.
pub struct Tail {
    file: File,
    hasher: sha2::Sha256,
    /// Everything below this offset is hashed.
    hashed: u64,
    /// Written ranges beyond `hashed`: start → end.
    ahead: BTreeMap<u64, u64>,
    /// A write landed in the hashed part: the digest must be recomputed from the file.
    stale: bool,
    /// The writeback of everything below this offset has been started.
    flushed: u64,
}

impl Tail {
    /// Starts the hash of `file` (a handle of its own) at offset 0.
    pub fn new(file: File) -> Tail {
        Tail {
            file,
            hasher: sha2::Sha256::new(),
            hashed: 0,
            ahead: BTreeMap::new(),
            stale: false,
            flushed: 0,
        }
    }

    /// `data` was just written at `offset`: hash it now if it extends the prefix.
    pub fn written(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        if offset == self.hashed {
            self.hasher.update(data);
            self.hashed = end;
            self.catch_up()?;
            self.start_writeback();
            Ok(())
        } else if offset > self.hashed {
            let e = self.ahead.entry(offset).or_insert(end);
            *e = (*e).max(end);
            Ok(())
        } else {
            self.stale = true;
            Ok(())
        }
    }

    /// Hashes the ranges written ahead that the prefix now reaches, reading them back.
    fn catch_up(&mut self) -> io::Result<()> {
        while let Some(end) = self.ahead.remove(&self.hashed) {
            self.read_to(end)?;
        }
        Ok(())
    }

    /// Starts writing the hashed prefix back to the disk, a [`WRITEBACK_STEP`] at a time:
    /// `posix_fadvise(DONTNEED)` starts the writeback of the range without waiting for it
    /// (as `sync_file_range(SYNC_FILE_RANGE_WRITE)` would, which rustix does not offer) and
    /// drops the pages of it already written, which the download never needs again (the
    /// prefix is hashed; a peer served from the partial reads them back). Advice only: a
    /// failure changes nothing.
    fn start_writeback(&mut self) {
        if self.hashed < self.flushed + WRITEBACK_STEP {
            return;
        }
        let len = std::num::NonZeroU64::new(self.hashed - self.flushed);
        let _ = rustix::fs::fadvise(&self.file, self.flushed, len, rustix::fs::Advice::DontNeed);
        self.flushed = self.hashed;
    }

    fn read_to(&mut self, end: u64) -> io::Result<()> {
        let mut buf = vec![0u8; BUFFER.min((end - self.hashed) as usize)];
        while self.hashed < end {
            let n = (end - self.hashed).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], self.hashed)?;
            self.hasher.update(&buf[..n]);
            self.hashed += n as u64;
        }
        Ok(())
    }

    /// Everything is written: the digest of `[0, size)`, reading back what was not hashed
    /// yet. A file shorter than `size` gives `UnexpectedEof`. Afterwards the tail starts over.
    pub fn finish(&mut self, size: u64) -> io::Result<Digest> {
        if self.stale || self.hashed > size {
            self.restart();
        }
        self.ahead.clear();
        let result = self.read_to(size);
        let digest = std::mem::take(&mut self.hasher).finalize().into();
        self.restart();
        result.map(|()| digest)
    }

    fn restart(&mut self) {
        self.hasher = sha2::Sha256::new();
        self.hashed = 0;
        self.ahead.clear();
        self.stale = false;
        self.flushed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// A tail over a new file holding `bytes`, and the folder that holds the file.
    fn tail_over(bytes: &[u8]) -> (tempfile::TempDir, Tail) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, bytes).unwrap();
        let tail = Tail::new(File::open(&path).unwrap());
        (dir, tail)
    }

    #[test]
    fn in_order_out_of_order_and_left_over_bytes() {
        let data = data();
        let (_dir, mut t) = tail_over(&data);
        // Ahead of the prefix, then the prefix: the ahead part is read back.
        t.written(2_000_000, &data[2_000_000..3_000_000]).unwrap();
        t.written(0, &data[..2_000_000]).unwrap();
        assert_eq!(t.hashed, 3_000_000);
        // [3 MB, 5 MB) never reported (kept from an earlier run): read back at finish.
        assert_eq!(
            t.finish(data.len() as u64).unwrap(),
            p2pshare_proto::sha256(&data)
        );
    }

    #[test]
    fn a_repair_rehashes_from_the_file() {
        let data = data();
        let (_dir, mut t) = tail_over(&data);
        let mut wrong = data[..1000].to_vec();
        wrong[5] ^= 1;
        t.written(0, &wrong).unwrap();
        t.written(0, &data[..1000]).unwrap();
        assert_eq!(
            t.finish(data.len() as u64).unwrap(),
            p2pshare_proto::sha256(&data)
        );
    }

    #[test]
    fn a_short_file_is_an_error() {
        let (_dir, mut t) = tail_over(b"abc");
        let e = t.finish(10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
