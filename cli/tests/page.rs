//! The web page's own JavaScript tests (`cli/web/test/`, Node's test runner), run with the rest
//! of the suite: formatting equal to the CLI's on the cases the Rust tests read too, the folder
//! summaries of `list`, search, the event-stream parser, the page's state.
//!
//! Node is needed: without it this test prints why and passes when not root; as root (CI) it
//! fails, since CI must run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

#[test]
fn the_page_javascript_passes_its_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/test");
    let out = match Command::new("node").arg("--test").arg(&dir).output() {
        Ok(o) => o,
        Err(e) if !root() => {
            println!("SKIPPED the page's JavaScript tests: node is not available ({e})");
            return;
        }
        Err(e) => panic!("node is not available ({e}): install nodejs (CI runs these tests)"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node --test failed");
    // The runner's summary: some passed, none failed.
    let count = |key: &str| -> u32 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `# {key}` line in node's output"))
    };
    assert!(count("pass") >= 10, "too few tests ran");
    assert_eq!(count("fail"), 0);
}
