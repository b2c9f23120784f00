//! Manifests: what a file is, chunk by chunk, and the verifier that checks bytes against it.
//!
//! A manifest holds the file size, the chunk size, the SHA-256 of every chunk and of the whole
//! file. Its canonical encoding ([`Manifest::encode`]) is hashed into the file's [`ContentId`].
//!
//! Invariants of every `Manifest` value (checked by `Manifest::from_parts` and
//! [`Manifest::decode`], the only ways to make one besides [`ManifestBuilder`]):
//! - `MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE`;
//! - there are exactly `ceil(size / chunk_size)` chunk hashes, at most [`MAX_CHUNKS`];
//! - `id` is the SHA-256 of the canonical encoding.
//!
//! A manifest received from a peer is trusted only after [`Manifest::verify_received`] found that
//! its bytes hash to the id asked for; a chunk only after [`Manifest::verify_chunk`].

use std::fmt;

use sha2::Digest as _;

use crate::ids::{ContentId, Digest, sha256};

/// The chunk size for files up to `MAX_CHUNKS` MiB: 1 MiB. Large enough that per-chunk costs
/// (a request, a frame header, a hash, a disk write) vanish next to the bytes; small enough
/// that a 5 Mbit/s peer delivers one in under two seconds and that a few per peer in flight
/// keep memory small.
const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// The smallest chunk size a manifest may carry.
pub const MIN_CHUNK_SIZE: u32 = 16 << 10;
/// The largest chunk size a manifest may carry: bounds the chunk frame, hence a connection's
/// receive buffer.
pub const MAX_CHUNK_SIZE: u32 = 8 << 20;
/// The most chunks a manifest may have: bounds the manifest at 4 MiB of hashes.
pub const MAX_CHUNKS: u32 = 1 << 17;
/// The largest file a manifest can describe: [`MAX_CHUNKS`] chunks of [`MAX_CHUNK_SIZE`]
/// (1 TiB). A bigger file is refused from its size alone, before a byte is read.
pub const MAX_FILE_SIZE: u64 = MAX_CHUNKS as u64 * MAX_CHUNK_SIZE as u64;
/// Largest canonical encoding of a manifest.
pub const MAX_MANIFEST_BYTES: usize = HEADER_LEN + 32 * MAX_CHUNKS as usize;

const MAGIC: &[u8; 8] = b"P2PSMAN1";
const HEADER_LEN: usize = 8 + 8 + 4 + 4 + 32;

/// The chunk size for a file of `size` bytes: 1 MiB, doubled until the file
/// fits in [`MAX_CHUNKS`] chunks (files above 128 GiB get larger chunks).
pub fn chunk_size_for(size: u64) -> u32 {
    let mut cs = DEFAULT_CHUNK_SIZE;
    while cs < MAX_CHUNK_SIZE && size.div_ceil(u64::from(cs)) > u64::from(MAX_CHUNKS) {
        cs *= 2;
    }
    cs
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The bytes do not hash to the content id that was asked for.
    WrongId,
    /// The encoding is not a manifest (bad magic, wrong length).
    Malformed,
    /// The chunk size is outside `MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE`.
    BadChunkSize(u32),
    /// The number of chunk hashes does not match the size, or exceeds [`MAX_CHUNKS`].
    BadChunkCount,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::WrongId => f.write_str("manifest does not match its content id"),
            ManifestError::Malformed => f.write_str("malformed manifest"),
            ManifestError::BadChunkSize(n) => write!(f, "chunk size {n} out of range"),
            ManifestError::BadChunkCount => f.write_str("chunk count does not match file size"),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Why a chunk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// No chunk with this index in the file.
    NoSuchChunk,
    /// The chunk has the wrong length for its index.
    WrongLength,
    /// The bytes do not hash to the chunk's SHA-256.
    HashMismatch,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::NoSuchChunk => "no such chunk",
            ChunkError::WrongLength => "chunk has the wrong length",
            ChunkError::HashMismatch => "chunk fails its SHA-256",
        })
    }
}

impl std::error::Error for ChunkError {}

/// A verified description of one file's content. See the module doc for its invariants.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    size: u64,
    chunk_size: u32,
    file_hash: Digest,
    chunk_hashes: Vec<Digest>,
    id: ContentId,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("id", &self.id)
            .field("size", &self.size)
            .field("chunk_size", &self.chunk_size)
            .field("chunks", &self.chunk_hashes.len())
            .finish()
    }
}

impl Manifest {
    /// Builds a manifest from hashes computed elsewhere (e.g. on several threads); checks the
    /// invariants.
    fn from_parts(
        size: u64,
        chunk_size: u32,
        file_hash: Digest,
        chunk_hashes: Vec<Digest>,
    ) -> Result<Manifest, ManifestError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(ManifestError::BadChunkSize(chunk_size));
        }
        let expected = size.div_ceil(u64::from(chunk_size));
        if expected > u64::from(MAX_CHUNKS) || expected != chunk_hashes.len() as u64 {
            return Err(ManifestError::BadChunkCount);
        }
        let mut m = Manifest {
            size,
            chunk_size,
            file_hash,
            chunk_hashes,
            id: ContentId::default(),
        };
        m.id = ContentId(sha256(&m.encode()));
        Ok(m)
    }

    /// The manifest of `data`, with the chunk size [`chunk_size_for`] picks. For tests and small
    /// files; large files go through [`ManifestBuilder`].
    pub fn of_bytes(data: &[u8]) -> Manifest {
        let mut b = ManifestBuilder::new(chunk_size_for(data.len() as u64));
        b.update(data);
        // chunk_size_for fits any in-memory slice (up to 1 TiB) in MAX_CHUNKS.
        b.finish()
            .expect("chunk_size_for keeps an in-memory slice within MAX_CHUNKS")
    }

    /// The content id: SHA-256 of [`Manifest::encode`].
    pub fn id(&self) -> ContentId {
        self.id
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunk size in bytes (every chunk but the last has exactly this length).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// SHA-256 of the whole file.
    pub fn file_hash(&self) -> &Digest {
        &self.file_hash
    }

    /// Number of chunks (0 for an empty file).
    pub fn chunk_count(&self) -> u32 {
        // Bounded by MAX_CHUNKS, so it fits.
        self.chunk_hashes.len() as u32
    }

    /// Byte offset and length of chunk `index`, if it exists.
    pub fn chunk_range(&self, index: u32) -> Option<(u64, u32)> {
        if index >= self.chunk_count() {
            return None;
        }
        let offset = u64::from(index) * u64::from(self.chunk_size);
        let len = (self.size - offset).min(u64::from(self.chunk_size)) as u32;
        Some((offset, len))
    }

    /// Checks `data` as chunk `index` of this file: right length, right SHA-256.
    pub fn verify_chunk(&self, index: u32, data: &[u8]) -> Result<(), ChunkError> {
        let (_, len) = self.chunk_range(index).ok_or(ChunkError::NoSuchChunk)?;
        if data.len() != len as usize {
            return Err(ChunkError::WrongLength);
        }
        if sha256(data) != self.chunk_hashes[index as usize] {
            return Err(ChunkError::HashMismatch);
        }
        Ok(())
    }

    /// The canonical encoding: `P2PSMAN1`, size (u64 BE), chunk size (u32 BE), chunk count
    /// (u32 BE), file SHA-256, then every chunk SHA-256 in order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 32 * self.chunk_hashes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.chunk_count().to_be_bytes());
        out.extend_from_slice(&self.file_hash);
        for h in &self.chunk_hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Decodes a canonical encoding and checks the invariants. Does not check any id: for bytes
    /// from a peer use [`Manifest::verify_received`].
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() < HEADER_LEN || bytes.len() > MAX_MANIFEST_BYTES || &bytes[..8] != MAGIC {
            return Err(ManifestError::Malformed);
        }
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
        let size = u64_at(8);
        let chunk_size = u32_at(16);
        let count = u32_at(20) as usize;
        let mut file_hash = [0u8; 32];
        file_hash.copy_from_slice(&bytes[24..56]);
        let rest = &bytes[HEADER_LEN..];
        if rest.len() != count * 32 {
            return Err(ManifestError::Malformed);
        }
        let chunk_hashes = rest
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Manifest::from_parts(size, chunk_size, file_hash, chunk_hashes)
    }

    /// Checks manifest bytes received from a peer against the id that was asked for, then
    /// decodes them. The only way a remote manifest becomes trusted.
    pub fn verify_received(id: &ContentId, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES || sha256(bytes) != id.0 {
            return Err(ManifestError::WrongId);
        }
        Manifest::decode(bytes)
    }
}

/// Computes a manifest from a file's bytes fed in pieces of any size, in order.
pub struct ManifestBuilder {
    file: sha2::Sha256,
    chunks: ChunkHasher,
}

impl ManifestBuilder {
    /// Starts a manifest with `chunk_size` (use [`chunk_size_for`] on the file's size).
    pub fn new(chunk_size: u32) -> ManifestBuilder {
        ManifestBuilder {
            file: sha2::Sha256::new(),
            chunks: ChunkHasher::new(chunk_size),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.file.update(data);
        self.chunks.update(data);
    }

    /// The manifest of everything fed. Fails only when the file has more than [`MAX_CHUNKS`]
    /// chunks of the chosen size: pass `chunk_size_for(len)` to [`ManifestBuilder::new`].
    pub fn finish(self) -> Result<Manifest, ManifestError> {
        self.chunks.finish(self.file.finalize().into())
    }
}

/// The chunk half of a [`ManifestBuilder`]: the SHA-256 of every chunk of the bytes fed, for a
/// caller that hashes the whole file on another thread (the host's scanner, for big files).
pub struct ChunkHasher {
    chunk_size: u32,
    size: u64,
    chunk: sha2::Sha256,
    in_chunk: u32,
    hashes: Vec<Digest>,
}

impl ChunkHasher {
    /// Starts with `chunk_size` (use [`chunk_size_for`] on the file's size).
    pub fn new(chunk_size: u32) -> ChunkHasher {
        ChunkHasher {
            chunk_size: chunk_size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
            size: 0,
            chunk: sha2::Sha256::new(),
            in_chunk: 0,
            hashes: Vec::new(),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = (self.chunk_size - self.in_chunk) as usize;
            let take = room.min(data.len());
            self.chunk.update(&data[..take]);
            self.in_chunk += take as u32;
            data = &data[take..];
            if self.in_chunk == self.chunk_size {
                self.hashes.push(self.chunk.finalize_reset().into());
                self.in_chunk = 0;
            }
        }
    }

    /// The manifest of everything fed, given the SHA-256 of those same bytes. Fails like
    /// [`ManifestBuilder::finish`].
    pub fn finish(mut self, file_hash: Digest) -> Result<Manifest, ManifestError> {
        if self.in_chunk > 0 {
            self.hashes.push(self.chunk.finalize_reset().into());
        }
        Manifest::from_parts(self.size, self.chunk_size, file_hash, self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn builder_matches_whole() {
        let d = data(3 * 16384 + 100);
        let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
        for piece in d.chunks(1000) {
            b.update(piece);
        }
        let m = b.finish().unwrap();
        assert_eq!(m.chunk_count(), 4);
        assert_eq!(m.size(), d.len() as u64);
        assert_eq!(m.file_hash(), &sha256(&d));
        assert_eq!(m.chunk_range(3), Some((3 * 16384, 100)));
        assert_eq!(m.chunk_range(4), None);
        for i in 0..4 {
            let (off, len) = m.chunk_range(i).unwrap();
            let c = &d[off as usize..off as usize + len as usize];
            assert_eq!(m.verify_chunk(i, c), Ok(()));
        }
        let mut bad = d[..16384].to_vec();
        bad[7] ^= 1;
        assert_eq!(m.verify_chunk(0, &bad), Err(ChunkError::HashMismatch));
        assert_eq!(m.verify_chunk(0, &bad[1..]), Err(ChunkError::WrongLength));
        assert_eq!(m.verify_chunk(9, &bad), Err(ChunkError::NoSuchChunk));
    }

    #[test]
    fn encode_decode_verify() {
        let m = Manifest::of_bytes(&data(5000));
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        assert_eq!(Manifest::verify_received(&m.id(), &bytes).unwrap(), m);
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            Manifest::verify_received(&m.id(), &tampered),
            Err(ManifestError::WrongId)
        );
        assert_eq!(
            Manifest::decode(&bytes[..bytes.len() - 1]),
            Err(ManifestError::Malformed)
        );
    }

    #[test]
    fn empty_file() {
        let m = Manifest::of_bytes(&[]);
        assert_eq!(m.chunk_count(), 0);
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn same_bytes_same_id() {
        assert_eq!(
            Manifest::of_bytes(b"hello").id(),
            Manifest::of_bytes(b"hello").id()
        );
        assert_ne!(
            Manifest::of_bytes(b"hello").id(),
            Manifest::of_bytes(b"hellp").id()
        );
    }

    #[test]
    fn chunk_size_rule() {
        assert_eq!(chunk_size_for(0), DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for(128 << 30), DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for((128 << 30) + 1), 2 * DEFAULT_CHUNK_SIZE);
    }
}
