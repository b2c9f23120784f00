//! What one tiny `Have` costs a download of 4,096 and of 131,072 chunks (issue 27, item 5): a
//! benchmark, not a check (the bound is asserted by operation counts in `availability.rs` and
//! `download.rs`). Run it in release:
//!
//!     cargo test --release -p p2pshare-proto --test claim_cost -- --ignored --nocapture
//!
//! A download of that many 16 KiB chunks (the manifest is made up, no data is hashed) from one
//! complete holder and eight partial holders, each claiming two chunks in three; then one-index `Have`s from one claimant whose window is full (a host that claims
//! and never answers), each followed by what the node does after a claim: `is_useful` of every
//! holder (the check that the download can go on) and a request attempt to that claimant.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One clock read gives the origin instant; the timings are what this prints.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use p2pshare_proto::download::{Download, ManifestVerdict};
use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, Manifest};
use p2pshare_proto::{Bugs, PeerId};

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, in release"]
fn one_index_have_at_4096_and_131072_chunks() {
    for chunks in [4_096, 131_072] {
        have_cost(chunks);
    }
}

/// Prints what one `Have` costs a download of `CHUNKS` chunks.
#[allow(non_snake_case)]
fn have_cost(CHUNKS: u32) {
    let mut bytes = b"P2PSMAN1".to_vec();
    bytes.extend((u64::from(CHUNKS) * u64::from(MIN_CHUNK_SIZE)).to_be_bytes());
    bytes.extend(MIN_CHUNK_SIZE.to_be_bytes());
    bytes.extend(CHUNKS.to_be_bytes());
    bytes.extend(vec![0u8; 32 * (1 + CHUNKS as usize)]);
    let m = Manifest::decode(&bytes).unwrap();
    let t0 = Instant::now();
    let seeder = PeerId([1; 32]);
    let mut d = Download::new(m.id(), "f".into(), [seeder], 16, Bugs::default()).salted(7);
    assert!(d.manifest_asked(t0, seeder));
    assert_eq!(d.on_manifest(seeder, &bytes), ManifestVerdict::Accepted);
    d.opened(0);
    let claimants: Vec<PeerId> = (0..8u8).map(|k| PeerId([10 + k; 32])).collect();
    for (k, p) in claimants.iter().enumerate() {
        assert!(d.add_partial_holder(*p));
        let bits = p2pshare_proto::availability::encode_bits(CHUNKS, |i| {
            !(i as usize + k).is_multiple_of(3)
        });
        assert_eq!(d.on_bitfield(*p, &bits), Ok(true));
    }
    while d.next_request(t0, seeder).is_some() {}
    let liar = claimants[0];
    while d.next_request(t0, liar).is_some() {}
    let holders: Vec<PeerId> = d.usable_peers().copied().collect();
    let haves: Vec<u32> = (0..CHUNKS)
        .filter(|i| i.is_multiple_of(3))
        .take(1_000)
        .collect();
    let start = Instant::now();
    let mut useful = 0usize;
    for &i in &haves {
        assert_eq!(d.on_have(liar, &[i]), Ok(true));
        useful += holders.iter().filter(|p| d.is_useful(p)).count();
        assert!(d.next_request(t0, liar).is_none(), "its window is full");
    }
    let per = start.elapsed().as_secs_f64() / haves.len() as f64;
    assert!(useful > 0);
    println!(
        "CLAIMS | a one-index Have at {CHUNKS} chunks, {} holders: {:.2} us ({} Haves)",
        holders.len(),
        per * 1e6,
        haves.len()
    );
}
