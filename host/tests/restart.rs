//! A restart on a folder of many unchanged files must come from the cache, fast.
//!
//! The target is 10,000 files in under 0.5 s (release build). Creating and deleting 10,000 files
//! costs seconds of file-system time on a busy machine, so the default run uses 2,000; the full
//! check is `P2PSHARE_SCAN_FILES=10000 cargo test --release -p p2pshare-host --test restart --
//! --nocapture`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use p2pshare_host::Scanner;

#[test]
fn restart_with_many_unchanged_files_does_not_rehash() {
    let count: u32 = std::env::var("P2PSHARE_SCAN_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..count {
        std::fs::write(dir.join(format!("file{i:05}.txt")), i.to_le_bytes()).unwrap();
    }
    let mut first = Scanner::new(dir).unwrap();
    first.set_racy_window(Duration::ZERO); // the files were written just now
    let scan = first.scan().unwrap();
    assert_eq!(scan.files.len(), count as usize);
    assert_eq!(scan.hashed_files, count as usize);
    assert!(scan.cache_error.is_none());

    let t = Instant::now();
    let mut restarted = Scanner::new(dir).unwrap();
    let again = restarted.scan().unwrap();
    let restart = t.elapsed();
    assert_eq!(again.hashed_files, 0);
    assert_eq!(again.files, scan.files);

    let t = Instant::now();
    let third = restarted.scan().unwrap();
    let rescan = t.elapsed();
    assert_eq!(third.hashed_files, 0);
    assert!(!third.changed);
    eprintln!("{count} files: restart scan {restart:?}, periodic rescan {rescan:?}");
    // Unoptimised SHA-256 (the cache's checksum, each manifest's id) makes a debug build
    // slower, and the machine may be shared: generous room there.
    let limit = Duration::from_millis(if cfg!(debug_assertions) { 2000 } else { 500 });
    assert!(restart < limit, "restart took {restart:?}");
}
