//! One host's disk, in memory: the files it shares (by content id), its hidden partial
//! downloads, and the files it finished. It implements proto's `Storage`, so
//! `p2pshare_proto::disk::perform` answers a node's disk requests on it as the real disk thread
//! does on the host's store. The one disk of every test that runs
//! nodes: the simulator (which adds its faults around it) and `three_nodes`.
//!
//! Invariants: the store never loses a write it acknowledged (only writes still queued when the
//! host crashes may land, land torn, or vanish); `finished` only ever receives bytes whose
//! SHA-256 matched the manifest (the simulator checks this before asking); nothing here is
//! random: faults are decided by the simulator and passed in.

use std::collections::BTreeMap;
use std::rc::Rc;

use p2pshare_proto::disk::Storage;
use p2pshare_proto::{ContentId, Digest, DiskError, FinishError, ReadSource, sha256};

/// The disk of one host.
#[derive(Debug, Default)]
pub struct Store {
    /// Bytes of the files it really has, by content (shared with the world table).
    pub shared: BTreeMap<ContentId, Rc<Vec<u8>>>,
    /// Partial downloads, by content.
    pub partial: BTreeMap<ContentId, Vec<u8>>,
    /// Finished downloads, by file name (`dl_<name>`).
    pub finished: BTreeMap<String, (ContentId, Vec<u8>)>,
}

impl Store {
    /// Reads `len` bytes at `offset` of a shared file.
    pub fn read_shared(&self, c: &ContentId, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
        let f = self.shared.get(c).ok_or(DiskError::NotFound)?;
        slice(f, offset, len)
    }

    /// Reads `len` bytes at `offset` of a partial file.
    pub fn read_partial(&self, c: &ContentId, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
        let f = self.partial.get(c).ok_or(DiskError::NotFound)?;
        slice(f, offset, len)
    }

    /// Opens (creates) a partial file; returns its length.
    pub fn open_partial(&mut self, c: ContentId) -> u64 {
        self.partial.entry(c).or_default().len() as u64
    }

    /// Writes `data` at `offset` of a partial file, growing it with zeros as needed.
    pub fn write(&mut self, c: ContentId, offset: u64, data: &[u8]) {
        let p = self.partial.entry(c).or_default();
        let start = offset as usize;
        let end = start + data.len();
        if p.len() < end {
            p.resize(end, 0);
        }
        p[start..end].copy_from_slice(data);
    }
}

impl Storage for Store {
    fn read(&mut self, source: ReadSource, offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
        match source {
            ReadSource::Shared(c) => self.read_shared(&c, offset, len),
            ReadSource::Partial(c) => self.read_partial(&c, offset, len),
        }
    }

    fn open_partial(&mut self, c: &ContentId, _name: &str, _size: u64) -> Result<u64, DiskError> {
        Ok(Store::open_partial(self, *c))
    }

    fn write_partial(&mut self, c: &ContentId, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.write(*c, offset, data);
        Ok(())
    }

    /// Like the real store: the whole file's SHA-256 must match, and a file is never replaced
    /// (the next free name is taken: `dl_<name> (1)`, …).
    fn finish(
        &mut self,
        content: &ContentId,
        name: &str,
        size: u64,
        file_hash: &Digest,
    ) -> Result<String, FinishError> {
        let whole = self
            .partial
            .get(content)
            .is_some_and(|p| p.len() as u64 == size && sha256(p) == *file_hash);
        if !whole {
            return Err(FinishError::HashMismatch);
        }
        let file = (0..)
            .map(|i| match i {
                0 => format!("dl_{name}"),
                i => format!("dl_{name} ({i})"),
            })
            .find(|f| !self.finished.contains_key(f))
            .unwrap_or_default();
        let data = self.partial.remove(content).unwrap_or_default();
        // Served at once, as the real store does, under the manifest it was verified against.
        self.shared
            .entry(*content)
            .or_insert_with(|| Rc::new(data.clone()));
        self.finished.insert(file.clone(), (*content, data));
        Ok(file)
    }

    fn close_partial(&mut self, _content: &ContentId) {}
}

fn slice(f: &[u8], offset: u64, len: u32) -> Result<Vec<u8>, DiskError> {
    let (o, l) = (offset as usize, len as usize);
    if o.checked_add(l).is_some_and(|end| end <= f.len()) {
        Ok(f[o..o + l].to_vec())
    } else {
        Err(DiskError::Other("short read".into()))
    }
}
