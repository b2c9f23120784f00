//! Property tests of the verifier (issue 2, §4): `Manifest::verify_chunk` accepts exactly the
//! chunks whose bytes equal the original chunk at that index (a flipped byte, a changed length,
//! another index's bytes are rejected), and `Manifest::verify_received` accepts only the exact
//! canonical encoding of the manifest for its id. Also: the builder gives the same manifest
//! whatever pieces the file is fed in, and decoding arbitrary bytes never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use p2pshare_proto::manifest::{ChunkError, MIN_CHUNK_SIZE, Manifest, ManifestBuilder};
use p2pshare_proto::{ContentId, sha256};
use proptest::prelude::*;
use proptest::sample::Index;

/// A file of `len` bytes from `seed`: cheap to make, different per seed and position (or all
/// zeros for seed 0, so that equal chunks at different indices are covered too).
fn file(seed: u8, len: usize) -> Vec<u8> {
    if seed == 0 {
        return vec![0; len];
    }
    let mut x = u32::from(seed);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn built(data: &[u8], cs: u32) -> Manifest {
    let mut b = ManifestBuilder::new(cs);
    b.update(data);
    b.finish().unwrap()
}

fn chunk_of<'a>(m: &Manifest, data: &'a [u8], i: u32) -> &'a [u8] {
    let (off, len) = m.chunk_range(i).unwrap();
    &data[off as usize..off as usize + len as usize]
}

/// Small files of zero to four chunks of a chunk size near the minimum.
fn a_file() -> impl Strategy<Value = (Vec<u8>, u32)> {
    (
        0..4u8,
        0..(3 * MIN_CHUNK_SIZE as usize + 300),
        prop_oneof![Just(MIN_CHUNK_SIZE), MIN_CHUNK_SIZE..MIN_CHUNK_SIZE + 5000],
    )
        .prop_map(|(seed, len, cs)| (file(seed, len), cs))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_original_chunk_is_accepted((data, cs) in a_file()) {
        let m = built(&data, cs);
        prop_assert_eq!(m.chunk_count() as usize, data.len().div_ceil(cs as usize));
        for i in 0..m.chunk_count() {
            prop_assert_eq!(m.verify_chunk(i, chunk_of(&m, &data, i)), Ok(()));
        }
        prop_assert_eq!(
            m.verify_chunk(m.chunk_count(), &[]),
            Err(ChunkError::NoSuchChunk)
        );
    }

    #[test]
    fn a_flipped_byte_is_rejected(
        (data, cs) in a_file(),
        i in any::<Index>(),
        pos in any::<Index>(),
        xor in 1..=255u8,
    ) {
        let m = built(&data, cs);
        prop_assume!(m.chunk_count() > 0);
        let i = i.index(m.chunk_count() as usize) as u32;
        let mut c = chunk_of(&m, &data, i).to_vec();
        let n = c.len();
        c[pos.index(n)] ^= xor;
        prop_assert_eq!(m.verify_chunk(i, &c), Err(ChunkError::HashMismatch));
    }

    #[test]
    fn a_changed_length_is_rejected(
        (data, cs) in a_file(),
        i in any::<Index>(),
        cut in any::<Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let m = built(&data, cs);
        prop_assume!(m.chunk_count() > 0);
        let i = i.index(m.chunk_count() as usize) as u32;
        let c = chunk_of(&m, &data, i);
        let shorter = &c[..cut.index(c.len())];
        prop_assert_eq!(m.verify_chunk(i, shorter), Err(ChunkError::WrongLength));
        let mut longer = c.to_vec();
        longer.extend(extra);
        prop_assert_eq!(m.verify_chunk(i, &longer), Err(ChunkError::WrongLength));
    }

    #[test]
    fn a_chunk_is_accepted_at_an_index_exactly_when_it_equals_that_chunk(
        (data, cs) in a_file(),
        i in any::<Index>(),
        j in any::<Index>(),
    ) {
        let m = built(&data, cs);
        prop_assume!(m.chunk_count() > 0);
        let n = m.chunk_count() as usize;
        let (i, j) = (i.index(n) as u32, j.index(n) as u32);
        let ci = chunk_of(&m, &data, i);
        let cj = chunk_of(&m, &data, j);
        prop_assert_eq!(m.verify_chunk(j, ci).is_ok(), ci == cj);
    }

    #[test]
    fn verify_received_accepts_only_the_exact_encoding(
        (data, cs) in a_file(),
        pos in any::<Index>(),
        xor in 1..=255u8,
        cut in any::<Index>(),
        extra in 0..=255u8,
        other_seed in 1..=255u8,
        random_id in any::<[u8; 32]>(),
    ) {
        let m = built(&data, cs);
        let bytes = m.encode();
        let id = m.id();
        prop_assert_eq!(id.0, sha256(&bytes));
        prop_assert_eq!(Manifest::verify_received(&id, &bytes).unwrap(), m.clone());
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[pos.index(n)] ^= xor;
        prop_assert!(Manifest::verify_received(&id, &flipped).is_err());
        prop_assert!(Manifest::verify_received(&id, &bytes[..cut.index(n)]).is_err());
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert!(Manifest::verify_received(&id, &longer).is_err());
        // Another file's (valid) manifest is not this id's.
        let other = built(&file(other_seed, data.len() + 1), cs);
        prop_assert!(Manifest::verify_received(&id, &other.encode()).is_err());
        // The right bytes under another id are refused too.
        prop_assume!(random_id != id.0);
        prop_assert!(Manifest::verify_received(&ContentId(random_id), &bytes).is_err());
    }

    #[test]
    fn the_builder_ignores_how_the_file_is_fed(
        (data, cs) in a_file(),
        raw_cuts in prop::collection::vec(any::<Index>(), 0..10),
    ) {
        let whole = built(&data, cs);
        let mut cuts: Vec<usize> = raw_cuts.into_iter().map(|i| i.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut b = ManifestBuilder::new(cs);
        let mut start = 0;
        for end in cuts.into_iter().chain(std::iter::once(data.len())) {
            b.update(&data[start..end]);
            start = end;
        }
        prop_assert_eq!(b.finish().unwrap(), whole);
    }
}

proptest! {
    #[test]
    fn decoding_arbitrary_manifest_bytes_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            (any::<u64>(), any::<u32>(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(size, cs, count, rest)| {
                    let mut b = b"P2PSMAN1".to_vec();
                    b.extend(size.to_be_bytes());
                    b.extend(cs.to_be_bytes());
                    b.extend(count.to_be_bytes());
                    b.extend(rest);
                    b
                }),
        ]
    ) {
        if let Ok(m) = Manifest::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes.clone());
            prop_assert_eq!(Manifest::verify_received(&m.id(), &bytes).unwrap(), m);
        }
        let _ = Manifest::verify_received(&ContentId(sha256(&bytes)), &bytes);
    }
}
