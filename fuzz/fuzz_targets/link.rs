//! Arbitrary bytes into the link parser (`share_link`): never a panic; an error is one line;
//! what parses prints within `MAX_LINK_LEN` as a link that parses to the same value, and so
//! does its short form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::share_link::{MAX_LINK_LEN, ShareLink};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ShareLink::parse(text) {
        Ok(link) => {
            for l in [link.short(), link] {
                let printed = l.to_string();
                assert!(printed.len() <= MAX_LINK_LEN);
                assert_eq!(ShareLink::parse(&printed), Ok(l));
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.is_empty() && !line.contains('\n'));
        }
    }
});
