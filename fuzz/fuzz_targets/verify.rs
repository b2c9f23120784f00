//! The verifier against an independent SHA-256 check (sha2 used directly here, and a manifest
//! parser written from the format's description, not from proto's code).
//!
//! A manifest (built from a real file, then maybe tampered with; or arbitrary bytes) is checked
//! against a content id (its hash, or tampered, or arbitrary) with
//! `Manifest::verify_received`; then a chunk (the exact one, or flipped, cut, extended, or
//! arbitrary bytes) with `Manifest::verify_chunk`. Each is accepted exactly when the
//! independent check accepts it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use p2pshare_proto::ContentId;
use p2pshare_proto::manifest::{
    MAX_CHUNK_SIZE, MAX_CHUNKS, MIN_CHUNK_SIZE, Manifest, ManifestBuilder,
};
use sha2::{Digest, Sha256};

#[derive(Arbitrary, Debug)]
enum Case {
    /// A real manifest of a file cycled from `pattern`.
    Built {
        pattern: Vec<u8>,
        len: u32,
        chunk_size: u16,
        index: u32,
        pick: Pick,
        manifest_flip: Option<(u16, u8)>,
        id_flip: Option<(u8, u8)>,
    },
    /// Arbitrary manifest bytes; the id is their SHA-256 unless given.
    Raw {
        manifest: Vec<u8>,
        id: Option<[u8; 32]>,
        index: u32,
        chunk: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Pick {
    Exact,
    Flip { pos: u32, xor: u8 },
    Truncate(u32),
    Extend(Vec<u8>),
    Other(Vec<u8>),
    OtherChunk(u32),
}

/// The manifest format, parsed independently: `P2PSMAN1`, size u64 BE, chunk size u32 BE,
/// count u32 BE, file hash, `count` chunk hashes; valid when the chunk size is in range, the
/// count is `ceil(size / chunk size)`, at most `MAX_CHUNKS`, and the length matches.
struct Parsed {
    size: u64,
    chunk_size: u64,
    hashes: Vec<[u8; 32]>,
}

fn parse(bytes: &[u8]) -> Option<Parsed> {
    if bytes.len() < 56 || &bytes[..8] != b"P2PSMAN1" {
        return None;
    }
    let size = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
    let chunk_size = u64::from(u32::from_be_bytes(bytes[16..20].try_into().ok()?));
    let count = u64::from(u32::from_be_bytes(bytes[20..24].try_into().ok()?));
    if chunk_size < u64::from(MIN_CHUNK_SIZE) || chunk_size > u64::from(MAX_CHUNK_SIZE) {
        return None;
    }
    let want = size / chunk_size + u64::from(size % chunk_size != 0);
    if count != want || count > u64::from(MAX_CHUNKS) {
        return None;
    }
    if bytes.len() as u64 != 56 + 32 * count {
        return None;
    }
    let hashes = bytes[56..]
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    Some(Parsed {
        size,
        chunk_size,
        hashes,
    })
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn check(id: [u8; 32], mbytes: &[u8], index: u32, chunk: &[u8]) {
    let ours = Manifest::verify_received(&ContentId(id), mbytes);
    let theirs = parse(mbytes).filter(|_| sha(mbytes) == id);
    assert_eq!(ours.is_ok(), theirs.is_some(), "verify_received: {ours:?}");
    let (Ok(m), Some(p)) = (ours, theirs) else {
        return;
    };
    assert_eq!(m.encode(), mbytes);
    assert_eq!(m.id().0, id);
    assert_eq!(m.size(), p.size);
    assert_eq!(m.chunk_count() as usize, p.hashes.len());
    let accepted = m.verify_chunk(index, chunk).is_ok();
    let i = index as usize;
    let expected_len = if i < p.hashes.len() {
        let offset = index as u64 * p.chunk_size;
        Some((p.size - offset).min(p.chunk_size))
    } else {
        None
    };
    let independent = expected_len == Some(chunk.len() as u64) && sha(chunk) == p.hashes[i];
    assert_eq!(
        accepted,
        independent,
        "verify_chunk({index}, {} bytes)",
        chunk.len()
    );
}

fuzz_target!(|case: Case| match case {
    Case::Built {
        pattern,
        len,
        chunk_size,
        index,
        pick,
        manifest_flip,
        id_flip,
    } => {
        let cs = MIN_CHUNK_SIZE + u32::from(chunk_size) % MIN_CHUNK_SIZE;
        let len = (len % (3 * cs + 200)) as usize;
        let file: Vec<u8> = if pattern.is_empty() {
            vec![0; len]
        } else {
            pattern.iter().copied().cycle().take(len).collect()
        };
        let mut b = ManifestBuilder::new(cs);
        b.update(&file);
        let m = b.finish().expect("small file");
        let mut mbytes = m.encode();
        let mut id = m.id().0;
        assert_eq!(id, sha(&mbytes));
        if let Some((pos, xor)) = manifest_flip {
            let n = mbytes.len();
            mbytes[usize::from(pos) % n] ^= xor;
        }
        if let Some((pos, xor)) = id_flip {
            id[usize::from(pos) % 32] ^= xor;
        }
        let count = m.chunk_count();
        let index = index % (count + 2);
        let exact = m
            .chunk_range(index)
            .map(|(o, l)| file[o as usize..o as usize + l as usize].to_vec())
            .unwrap_or_default();
        let chunk = match pick {
            Pick::Exact => exact,
            Pick::Flip { pos, xor } => {
                let mut c = exact;
                if !c.is_empty() {
                    let n = c.len();
                    c[pos as usize % n] ^= xor;
                }
                c
            }
            Pick::Truncate(n) => {
                let mut c = exact;
                c.truncate(n as usize % (c.len() + 1));
                c
            }
            Pick::Extend(more) => {
                let mut c = exact;
                c.extend(more);
                c
            }
            Pick::Other(c) => c,
            Pick::OtherChunk(j) => m
                .chunk_range(j % (count + 1))
                .map(|(o, l)| file[o as usize..o as usize + l as usize].to_vec())
                .unwrap_or_default(),
        };
        check(id, &mbytes, index, &chunk);
    }
    Case::Raw {
        manifest,
        id,
        index,
        chunk,
    } => {
        let id = id.unwrap_or_else(|| sha(&manifest));
        check(id, &manifest, index, &chunk);
    }
});
