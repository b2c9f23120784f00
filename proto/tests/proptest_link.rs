//! Property tests of the link format (`share_link`, issue 29):
//! - every link we can make (a file or a folder of any shareable path, up to `MAX_LINK_PEERS`
//!   entries of both families, link-local ones with a zone) prints within `MAX_LINK_LEN` and
//!   parses back to itself, and so does its short form;
//! - the longest link there can be (the longest path, every byte escaped, and the most entries
//!   of the longest kind) still fits;
//! - arbitrary text, and a printed link with one character changed, cut or doubled, never
//!   panics the parser, an error is one line, and whatever parses prints as a link that parses
//!   to the same value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use p2pshare_proto::addr::{MAX_ZONE_LEN, needs_scope};
use p2pshare_proto::name::{MAX_NAME_LEN, MAX_PATH_LEN, check_name};
use p2pshare_proto::share_link::{
    LinkAddr, LinkPeer, MAX_LINK_LEN, MAX_LINK_PEERS, ShareLink, Target,
};
use p2pshare_proto::{ContentId, PeerId};
use proptest::prelude::*;

fn zone() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9._~-]{{1,{MAX_ZONE_LEN}}}")).unwrap()
}

/// A dialable address of either family; link-local IPv6 ones (often: their prefix is drawn
/// apart) with a zone.
fn link_addr() -> impl Strategy<Value = LinkAddr> {
    let v4 = (any::<[u8; 4]>(), 1..=u16::MAX)
        .prop_map(|(ip, port)| (SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port), None));
    let v6 = (any::<[u16; 8]>(), any::<bool>(), 1..=u16::MAX, zone()).prop_map(
        |(mut seg, local, port, zone)| {
            if local {
                seg[0] = 0xfe80 | (seg[0] & 0x003f);
            }
            let ip = Ipv6Addr::from(seg);
            let zone = needs_scope(IpAddr::V6(ip)).then_some(zone);
            (SocketAddr::new(IpAddr::V6(ip), port), zone)
        },
    );
    prop_oneof![v4, v6]
        .prop_filter_map("not dialable", |(a, z)| LinkAddr::new(a, z.as_deref()).ok())
}

fn peer() -> impl Strategy<Value = LinkPeer> {
    (any::<[u8; 32]>(), proptest::option::of(link_addr()))
        .prop_map(|(k, at)| LinkPeer { key: PeerId(k), at })
}

/// A shareable folder path: components of any characters (spaces, `%`, `?`, `&`, `#`,
/// non-ASCII), kept when `check_name` takes them.
fn folder() -> impl Strategy<Value = String> {
    proptest::collection::vec("[^/]{1,12}", 1..5)
        .prop_map(|c| c.join("/"))
        .prop_filter("not a shareable name", |p| check_name(p).is_ok())
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|c| Target::Content(ContentId(c))),
        folder().prop_map(Target::Folder),
    ]
}

fn link() -> impl Strategy<Value = ShareLink> {
    (
        target(),
        proptest::collection::vec(peer(), 0..=MAX_LINK_PEERS),
    )
        .prop_map(|(t, p)| ShareLink::new(t, p).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_link_we_print_parses_back(l in link()) {
        for l in [l.clone(), l.short()] {
            let text = l.to_string();
            prop_assert!(text.len() <= MAX_LINK_LEN, "{} bytes", text.len());
            prop_assert!(ShareLink::looks_like(&text));
            prop_assert_eq!(ShareLink::parse(&text), Ok(l));
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_what_parses_prints_back(s in "\\PC{0,200}") {
        check_any(&s)?;
        let as_link = format!("p2pshare://{s}");
        check_any(&as_link)?;
    }

    #[test]
    fn a_printed_link_damaged_never_panics(
        l in link(),
        at in any::<prop::sample::Index>(),
        c in any::<char>(),
        how in 0..3u8,
    ) {
        let text = l.to_string();
        let i = at.index(text.len());
        let damaged = match how {
            0 => format!("{}{c}{}", &text[..i], &text[(i + 1).min(text.len())..]),
            1 => text[..i].to_owned(),
            _ => format!("{}{}", &text[..(i + 1).min(text.len())], &text[i..]),
        };
        check_any(&damaged)?;
    }
}

/// Parses `s`: an error is one line; a link parses back from its own print.
fn check_any(s: &str) -> Result<(), TestCaseError> {
    match ShareLink::parse(s) {
        Ok(l) => {
            let text = l.to_string();
            prop_assert!(text.len() <= MAX_LINK_LEN);
            prop_assert_eq!(ShareLink::parse(&text), Ok(l));
        }
        Err(e) => {
            let line = e.to_string();
            prop_assert!(!line.is_empty() && !line.contains('\n'), "{:?}", line);
        }
    }
    Ok(())
}

#[test]
fn the_longest_link_there_can_be_fits() {
    // The longest path, of two-byte characters (each printed as six), in the longest
    // components; and the most entries, each a link-local address with the longest zone.
    let component = "ü".repeat(MAX_NAME_LEN / 2);
    let mut path = component.clone();
    while path.len() + 1 + component.len() <= MAX_PATH_LEN {
        path = format!("{path}/{component}");
    }
    let rest = MAX_PATH_LEN - path.len() - 1;
    path = format!("{path}/{}", "é".repeat(rest / 2));
    check_name(&path).unwrap();
    let zone = "z".repeat(MAX_ZONE_LEN);
    let peers = (0..MAX_LINK_PEERS).map(|i| {
        let ip = Ipv6Addr::new(
            0xfebf, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, i as u16,
        );
        LinkPeer {
            key: PeerId([i as u8; 32]),
            at: Some(
                LinkAddr::new(SocketAddr::new(IpAddr::V6(ip), u16::MAX), Some(&zone)).unwrap(),
            ),
        }
    });
    let l = ShareLink::new(Target::Folder(path), peers).unwrap();
    let text = l.to_string();
    assert!(text.len() <= MAX_LINK_LEN, "{} bytes", text.len());
    // Not by a hair: the bound leaves room (a printed link is about 5.4 KiB at most).
    assert!(text.len() > 5000, "{} bytes", text.len());
    assert_eq!(ShareLink::parse(&text), Ok(l));
}
