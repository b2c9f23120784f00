//! First-scan throughput against plain single-threaded SHA-256 of the same bytes.
//!
//! `cargo run --release -p p2pshare-host --example scan_speed [MiB] [small files]` writes one
//! big file of MiB (default 256) and that many 1 MiB files (default 64) in a temp folder, then
//! times (a) reading and hashing every file once with one SHA-256 on one thread, like
//! `sha256sum`, and (b) `Scanner::scan` on a fresh scanner (chunk + file hashes, two threads).
//! Both read from the page cache: the files were just written.

use std::io::Read;
use std::time::{Duration, Instant};

use sha2::Digest as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let big_mib: usize = args.next().map_or(Ok(256), |s| s.parse())?;
    let small: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut fill = |buf: &mut [u8]| {
        for b in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
    };
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("big.bin"))?);
        for _ in 0..big_mib {
            fill(&mut block);
            f.write_all(&block)?;
        }
        f.flush()?;
        for i in 0..small {
            fill(&mut block);
            std::fs::write(dir.join(format!("small{i}.bin")), &block)?;
        }
    }
    let total = ((big_mib + small) << 20) as f64;
    let mbps = |d: Duration| total / d.as_secs_f64() / 1e6;

    for round in 0..2 {
        let t = Instant::now();
        let mut buf = vec![0u8; 4 << 20];
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let mut f = std::fs::File::open(path)?;
            let mut h = sha2::Sha256::new();
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            std::hint::black_box(h.finalize());
        }
        let plain = t.elapsed();

        let _ = std::fs::remove_file(dir.join(p2pshare_host::scan::CACHE_FILE));
        let t = Instant::now();
        let scan = p2pshare_host::Scanner::new(dir)?.scan()?;
        let scanned = t.elapsed();
        assert_eq!(scan.hashed_bytes as f64, total);
        println!(
            "round {round}: plain sha256 {:.0} MB/s, first scan {:.0} MB/s, ratio {:.2}",
            mbps(plain),
            mbps(scanned),
            plain.as_secs_f64() / scanned.as_secs_f64()
        );
    }
    Ok(())
}
