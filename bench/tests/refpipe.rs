//! The reference pipeline does the work a download does: its copy is byte for byte the source,
//! synced, and the whole-file SHA-256 it prints is the source's.

use std::process::Command;

use sha2::Digest;

#[test]
fn refpipe_copies_and_hashes_the_whole_file() {
    let dir = std::env::temp_dir().join(format!("p2pb-refpipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    // Not a multiple of the 1 MiB chunk, so the last short chunk is covered too.
    let data: Vec<u8> = (0..3 * (1u32 << 20) + 777)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_refpipe"))
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{stdout}");
    assert!(f[0].parse::<f64>().unwrap() > 0.0);
    assert_eq!(f[1], data.len().to_string());
    let want: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(f[3], want);
    assert!(std::fs::read(&dst).unwrap() == data);
    let _ = std::fs::remove_dir_all(&dir);
}
