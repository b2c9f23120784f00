//! Links: one line a person sends another so that they can fetch a file or a folder from the
//! peers that hold it, across any routed network (`p2pshare link NAME` prints them, `get LINK`
//! and `peers add LINK` read them).
//!
//! # Format
//!
//! ```text
//! p2pshare://<target>[?peer=<key>[@<address>][&peer=…]…]
//!
//! target   = 64 hex digits                  a file, by its content id
//!          | <path>/                        a folder, by its path and a closing /
//! key      = 64 hex digits                  a peer's key (`p2pshare id`)
//! address  = IPv4:PORT | [IPv6]:PORT | [fe80::…%25ZONE]:PORT     (its transfer port)
//! ```
//!
//! - **A file is named by its content id**: the bytes, whatever they are called. `get LINK`
//!   checks every chunk and the whole file against it, so a link cannot be answered with
//!   other bytes, and any peer holding the same content (the LAN's too) may serve it. The file
//!   is saved under the name its holders list it by.
//! - **A folder is named by its path**, as `get FOLDER/` names one (proto's folders have no id
//!   of their own: a folder is what peers list under a path, see `crate::folder`), ending in
//!   `/` (which is what tells it from a file: a folder called like a content id is
//!   `<64 hex>/`). Its bytes are percent-encoded: every byte but letters, digits, `-._~` and
//!   `/` is written `%XX`, so `my photos/` is `my%20photos/`. `get LINK` fetches what the
//!   link's peers list under that path when it runs: each file is checked by its own content
//!   id, but the set of files is the holders' word, and may have changed since the link was
//!   made.
//! - **Peers**: each `peer=` names a key, and with `@` one address where that key listens;
//!   one key at several addresses is several `peer=` with the same key. A dial to an address
//!   must meet that key (the Noise handshake proves it), else it is closed and counted. The
//!   *short form* names keys only (`?peer=<key>`): useful to a peer that can find that key
//!   already (on its LAN, or among the peers its folder knows), and to nobody else.
//! - **Link-local IPv6 addresses** (`fe80::/10`) mean something only with the sender's
//!   interface, which names nothing on the receiver's machine: links we print leave them out.
//!   Parsing accepts one only with a zone, written `%25ZONE` as RFC 6874 writes zones in URIs
//!   (`[fe80::1%25eth0]:10000`, for a person who writes a link for a host on their own link);
//!   the host turns the zone into an interface ([`LinkAddr::zone`]). An IPv4-mapped IPv6
//!   address is its IPv4 address ([`crate::addr::canonical`]).
//!
//! # Invariants
//!
//! - **Bounded**: a link is at most [`MAX_LINK_LEN`] bytes and names at most
//!   [`MAX_LINK_PEERS`] peer entries; a longer one is refused before it is read further.
//! - **Every link we print parses back**: the [`fmt::Display`] of any [`ShareLink`] is at most
//!   [`MAX_LINK_LEN`] bytes (a folder path of `MAX_PATH_LEN` bytes, all escaped, and
//!   [`MAX_LINK_PEERS`] of the longest entries fit) and [`ShareLink::parse`] gives the same
//!   value back (proptest and the `link` fuzz target check it).
//! - **A bad link gets one line that says what is wrong** and where ([`LinkError`], `at char
//!   N`, counted from 1), never a panic: the parser only slices at ASCII characters it found,
//!   after refusing any other.
//! - A link's peer entries are kept once each (the same key and address twice are one), in
//!   the order written: the printer puts the addresses to try first first.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::addr::{AddrError, canonical, check_dialable, parse_literal};
use crate::ids::{ContentId, PeerId};
use crate::name::{NameError, check_name};

/// What a link starts with (the scheme is read in either case).
pub const SCHEME: &str = "p2pshare://";
/// The longest link read: room for a folder path of `MAX_PATH_LEN` bytes, every one escaped
/// (3 KiB), and [`MAX_LINK_PEERS`] entries of the longest kind (2.3 KiB); what a chat message
/// or a terminal carries.
pub const MAX_LINK_LEN: usize = 8192;
/// The most `peer=` entries in a link: one peer with an address on each of its interfaces
/// and both families, or a few peers with a few each. Links we print name fewer.
pub const MAX_LINK_PEERS: usize = 16;

/// What a link names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A file, by its content id.
    Content(ContentId),
    /// A folder, by its path (without the closing `/`; passes `check_name`).
    Folder(String),
}

/// An address in a link: where a peer listens, with the zone of a link-local IPv6 address as
/// the link wrote it (the host resolves it to an interface).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkAddr {
    addr: SocketAddr,
    zone: Option<String>,
}

impl LinkAddr {
    /// The address `addr` (its scope id is ignored) with `zone` (for a link-local address
    /// only): refused unless a peer could listen there ([`check_dialable`]). An IPv4-mapped
    /// address is made IPv4.
    pub fn new(addr: SocketAddr, zone: Option<&str>) -> Result<LinkAddr, AddrError> {
        let addr = match canonical(addr) {
            SocketAddr::V6(mut a) => {
                a.set_scope_id(0);
                a.set_flowinfo(0);
                SocketAddr::V6(a)
            }
            a => a,
        };
        check_dialable(addr, zone)?;
        Ok(LinkAddr {
            addr,
            zone: zone.map(str::to_owned),
        })
    }

    /// The address and port (scope id 0: see [`LinkAddr::zone`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The interface of a link-local address, as written (`eth0`, `3`); `None` for any other.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, &self.zone) {
            (SocketAddr::V6(a), Some(z)) => write!(f, "[{}%25{z}]:{}", a.ip(), a.port()),
            (a, _) => write!(f, "{a}"),
        }
    }
}

/// One `peer=` of a link: a key, and where it listens if the link says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkPeer {
    /// The key the peer must prove.
    pub key: PeerId,
    /// Where to dial it; `None` in the short form.
    pub at: Option<LinkAddr>,
}

/// A parsed or made link. See the module doc for the format and its invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    target: Target,
    peers: Vec<LinkPeer>,
}

/// What is wrong with a link: one line each ([`fmt::Display`]), with the place (`at`, the
/// character counted from 1) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Longer than [`MAX_LINK_LEN`] bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A character no link holds: a space, a control character, anything not ASCII.
    BadChar {
        /// Where.
        at: usize,
    },
    /// No `scheme://` at all.
    NotALink,
    /// Another scheme than `p2pshare`.
    UnknownScheme {
        /// The scheme (its first 32 characters).
        scheme: String,
    },
    /// A `%` not followed by two hex digits, or escapes that do not spell UTF-8.
    BadEscape {
        /// Where.
        at: usize,
    },
    /// The target is neither 64 hex digits nor a path ending in `/`.
    BadContentId {
        /// The first character that is wrong (or where a digit is missing).
        at: usize,
    },
    /// The folder's path is not a name peers share.
    BadFolder {
        /// Where the path starts.
        at: usize,
        /// What is wrong with it.
        why: NameError,
    },
    /// Something other than `peer=` after `?` or `&`.
    BadParameter {
        /// Where.
        at: usize,
    },
    /// A peer's key is not 64 hex digits.
    BadKey {
        /// Where the key starts.
        at: usize,
    },
    /// A peer's address is not one.
    BadAddr {
        /// Where the address starts.
        at: usize,
        /// What is wrong with it.
        why: AddrError,
    },
    /// More than [`MAX_LINK_PEERS`] peer entries.
    TooManyPeers {
        /// Where the first entry past the bound starts (0 for a link made, not read).
        at: usize,
    },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A link made in code has no characters to point at.
        let at = |n: usize| {
            if n > 0 {
                format!(" at char {n}")
            } else {
                String::new()
            }
        };
        match self {
            LinkError::TooLong { len } => {
                write!(f, "the link is {len} bytes long; at most {MAX_LINK_LEN}")
            }
            LinkError::BadChar { at: n } => write!(
                f,
                "a character no link holds{} (a space, a control character or non-ASCII: \
                 was it cut or re-encoded?)",
                at(*n)
            ),
            LinkError::NotALink => write!(f, "not a link: a link starts with {SCHEME}"),
            LinkError::UnknownScheme { scheme } => {
                write!(f, "unknown scheme {scheme:?}: a link starts with {SCHEME}")
            }
            LinkError::BadEscape { at: n } => write!(
                f,
                "bad %-escape{}: % takes two hex digits, and the bytes must spell UTF-8",
                at(*n)
            ),
            LinkError::BadContentId { at: n } => write!(
                f,
                "bad content id{}: a file is named by 64 hex digits, a folder by a path \
                 ending in /",
                at(*n)
            ),
            LinkError::BadFolder { at: n, why } => {
                write!(f, "bad folder name{}: {why}", at(*n))
            }
            LinkError::BadParameter { at: n } => write!(
                f,
                "unknown parameter{}: a link has only peer=KEY or peer=KEY@ADDRESS after ? \
                 and &",
                at(*n)
            ),
            LinkError::BadKey { at: n } => {
                write!(f, "bad key{}: a key is 64 hex digits", at(*n))
            }
            LinkError::BadAddr { at: n, why } => write!(f, "bad address{}: {why}", at(*n)),
            LinkError::TooManyPeers { at: n } => write!(
                f,
                "too many peers{}: a link names at most {MAX_LINK_PEERS}",
                at(*n)
            ),
        }
    }
}

impl std::error::Error for LinkError {}

impl ShareLink {
    /// A link to `target` naming `peers` (in that order, each entry once): refused with more
    /// than [`MAX_LINK_PEERS`] distinct entries, or a folder path that is not a shareable
    /// name.
    pub fn new(
        target: Target,
        peers: impl IntoIterator<Item = LinkPeer>,
    ) -> Result<ShareLink, LinkError> {
        if let Target::Folder(path) = &target {
            check_name(path).map_err(|why| LinkError::BadFolder { at: 0, why })?;
        }
        let mut kept: Vec<LinkPeer> = Vec::new();
        for p in peers {
            if kept.contains(&p) {
                continue;
            }
            if kept.len() == MAX_LINK_PEERS {
                return Err(LinkError::TooManyPeers { at: 0 });
            }
            kept.push(p);
        }
        Ok(ShareLink {
            target,
            peers: kept,
        })
    }

    /// What it names.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Its peer entries, in order.
    pub fn peers(&self) -> &[LinkPeer] {
        &self.peers
    }

    /// The keys it names, each once, in order.
    pub fn keys(&self) -> Vec<PeerId> {
        let mut keys: Vec<PeerId> = Vec::new();
        for p in &self.peers {
            if !keys.contains(&p.key) {
                keys.push(p.key);
            }
        }
        keys
    }

    /// The short form: the same target, each key once, no addresses.
    pub fn short(&self) -> ShareLink {
        ShareLink {
            target: self.target.clone(),
            peers: self
                .keys()
                .into_iter()
                .map(|key| LinkPeer { key, at: None })
                .collect(),
        }
    }

    /// True when `s` is meant as a link rather than a name: it has `://` in it, which no name
    /// has (a name has no empty component). Call before choosing between a name and a link.
    pub fn looks_like(s: &str) -> bool {
        s.contains("://")
    }

    /// Reads a link; the error says what is wrong and where (see [`LinkError`]).
    pub fn parse(s: &str) -> Result<ShareLink, LinkError> {
        if s.len() > MAX_LINK_LEN {
            return Err(LinkError::TooLong { len: s.len() });
        }
        if let Some(i) = s.chars().position(|c| !c.is_ascii_graphic()) {
            return Err(LinkError::BadChar { at: i + 1 });
        }
        // ASCII from here on: byte offsets are character offsets.
        let (scheme, rest) = s.split_once("://").ok_or(LinkError::NotALink)?;
        if !scheme.eq_ignore_ascii_case("p2pshare") {
            return Err(LinkError::UnknownScheme {
                scheme: scheme.chars().take(32).collect(),
            });
        }
        let base = scheme.len() + 3;
        let (target, query) = match rest.split_once('?') {
            Some((t, q)) => (t, Some(q)),
            None => (rest, None),
        };
        let target = parse_target(target, base)?;
        let mut peers = Vec::new();
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let mut at = base + target_len(rest) + 1;
            for param in query.split('&') {
                if peers.len() == MAX_LINK_PEERS {
                    return Err(LinkError::TooManyPeers { at: at + 1 });
                }
                let Some(value) = param.strip_prefix("peer=") else {
                    return Err(LinkError::BadParameter { at: at + 1 });
                };
                peers.push(parse_peer(value, at + 5)?);
                at += param.len() + 1;
            }
        }
        ShareLink::new(target, peers)
    }
}

/// The length of the target part of `rest` (what follows `://`).
fn target_len(rest: &str) -> usize {
    rest.find('?').unwrap_or(rest.len())
}

/// The target `t`, which starts at byte `base` of the link.
fn parse_target(t: &str, base: usize) -> Result<Target, LinkError> {
    if let Some(path) = t.strip_suffix('/') {
        let path = decode(path, base)?;
        check_name(&path).map_err(|why| LinkError::BadFolder { at: base + 1, why })?;
        return Ok(Target::Folder(path));
    }
    match ContentId::from_hex(t) {
        Some(id) if t.len() == 64 => Ok(Target::Content(id)),
        _ => {
            // The first character that is not a hex digit, or the first one too many, or
            // where the missing digits should be.
            let wrong = t
                .bytes()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(t.len().min(64));
            Err(LinkError::BadContentId {
                at: base + wrong + 1,
            })
        }
    }
}

/// One `peer=` value `v`, which starts at byte `base` of the link.
fn parse_peer(v: &str, base: usize) -> Result<LinkPeer, LinkError> {
    let (key, addr) = match v.split_once('@') {
        Some((k, a)) => (k, Some(a)),
        None => (v, None),
    };
    let bad_key = LinkError::BadKey { at: base + 1 };
    let key = PeerId::from_hex(&decode(key, base)?).ok_or(bad_key)?;
    let at = match addr {
        None => None,
        Some(a) => {
            let start = base + key_len(v) + 1;
            let text = decode(a, start)?;
            let bad = |why| LinkError::BadAddr { at: start + 1, why };
            let lit = parse_literal(&text).map_err(bad)?;
            Some(LinkAddr::new(lit.addr, lit.zone).map_err(bad)?)
        }
    };
    Ok(LinkPeer { key, at })
}

/// The length of the key part of a `peer=` value.
fn key_len(v: &str) -> usize {
    v.find('@').unwrap_or(v.len())
}

/// `s` (ASCII, starting at byte `base` of the link) with its `%XX` escapes decoded.
fn decode(s: &str, base: usize) -> Result<String, LinkError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(LinkError::BadEscape { at: base + i + 1 });
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| LinkError::BadEscape { at: base + 1 })
}

/// `path` with every byte but letters, digits, `-._~` and `/` escaped as `%XX`.
fn encode(path: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for ShareLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        match &self.target {
            Target::Content(id) => f.write_str(&id.to_hex())?,
            Target::Folder(path) => {
                encode(path, f)?;
                f.write_str("/")?;
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}peer={}", p.key.to_hex())?;
            if let Some(a) = &p.at {
                write!(f, "@{a}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for ShareLink {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<ShareLink, LinkError> {
        ShareLink::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01";
    const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const KEY2: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    fn err(s: &str) -> String {
        ShareLink::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn a_file_link_with_addresses_of_both_families_and_its_short_form() {
        let text = format!(
            "p2pshare://{ID}?peer={KEY}@10.0.0.2:10000&peer={KEY}@[2001:db8::2]:10000\
             &peer={KEY2}"
        );
        let l = ShareLink::parse(&text).unwrap();
        assert_eq!(
            l.target(),
            &Target::Content(ContentId::from_hex(ID).unwrap())
        );
        assert_eq!(l.peers().len(), 3);
        assert_eq!(
            l.peers()[1].at.as_ref().map(LinkAddr::addr),
            Some("[2001:db8::2]:10000".parse().unwrap())
        );
        assert_eq!(l.peers()[2].at, None);
        assert_eq!(l.to_string(), text);
        assert_eq!(
            l.short().to_string(),
            format!("p2pshare://{ID}?peer={KEY}&peer={KEY2}")
        );
        // Upper case is read, lower case printed; an entry twice is one.
        let upper = format!("P2PSHARE://{}?peer={KEY2}&peer={KEY2}", ID.to_uppercase());
        assert_eq!(
            ShareLink::parse(&upper).unwrap().to_string(),
            format!("p2pshare://{ID}?peer={KEY2}")
        );
        // No peers: the content alone (fetched from whoever on the LAN has it).
        assert!(
            ShareLink::parse(&format!("p2pshare://{ID}"))
                .unwrap()
                .peers()
                .is_empty()
        );
        assert!(
            ShareLink::parse(&format!("p2pshare://{ID}?"))
                .unwrap()
                .peers()
                .is_empty()
        );
    }

    #[test]
    fn a_folder_is_a_path_ending_in_a_slash_escaped_where_it_must_be() {
        let l = ShareLink::new(Target::Folder("my photos/2024 ü".into()), []).unwrap();
        assert_eq!(l.to_string(), "p2pshare://my%20photos/2024%20%C3%BC/");
        assert_eq!(ShareLink::parse(&l.to_string()).unwrap(), l);
        // A folder named like a content id is one by its slash.
        let f = ShareLink::parse(&format!("p2pshare://{ID}/")).unwrap();
        assert_eq!(f.target(), &Target::Folder(ID.into()));
        // Characters a printer escapes are read as they are too.
        let raw = ShareLink::parse("p2pshare://a+b,c/").unwrap();
        assert_eq!(raw.target(), &Target::Folder("a+b,c".into()));
        assert_eq!(raw.to_string(), "p2pshare://a%2Bb%2Cc/");
    }

    #[test]
    fn a_link_local_address_needs_its_zone_written_as_in_uris() {
        let text = format!("p2pshare://{ID}?peer={KEY}@[fe80::1%25eth0]:10000");
        let l = ShareLink::parse(&text).unwrap();
        let at = l.peers()[0].at.clone().unwrap();
        assert_eq!(at.zone(), Some("eth0"));
        assert_eq!(at.addr(), "[fe80::1]:10000".parse().unwrap());
        assert_eq!(l.to_string(), text);
        assert_eq!(
            err(&format!("p2pshare://{ID}?peer={KEY}@[fe80::1]:10000")),
            "bad address at char 147: a link-local address needs its interface"
        );
        // A bare % is an escape, and `%et` is not one.
        assert!(err(&format!("p2pshare://{ID}?peer={KEY}@[fe80::1%eth0]:1")).contains("%-escape"));
        assert!(
            err(&format!(
                "p2pshare://{ID}?peer={KEY}@[2001:db8::1%25eth0]:1"
            ))
            .contains("only a link-local address")
        );
        // An IPv4-mapped address is its IPv4 address.
        let m =
            ShareLink::parse(&format!("p2pshare://{ID}?peer={KEY}@[::ffff:10.0.0.9]:5")).unwrap();
        assert_eq!(
            m.to_string(),
            format!("p2pshare://{ID}?peer={KEY}@10.0.0.9:5")
        );
    }

    #[test]
    fn bad_links_say_what_is_wrong_and_where() {
        assert_eq!(
            err("movie.bin"),
            format!("not a link: a link starts with {SCHEME}")
        );
        assert_eq!(
            err("https://example.com/x"),
            format!("unknown scheme \"https\": a link starts with {SCHEME}")
        );
        assert!(err(&format!("p2pshare://{}", &ID[..63])).starts_with("bad content id at char 75"));
        assert!(
            err(&format!("p2pshare://{}x", &ID[..10])).starts_with("bad content id at char 22")
        );
        assert!(err(&format!("p2pshare://{ID}0")).starts_with("bad content id at char 76"));
        assert!(err("p2pshare://a//b/").starts_with("bad folder name at char 12: "));
        assert!(err("p2pshare://.hidden/").contains("starts with a dot"));
        assert!(err("p2pshare:///").starts_with("bad folder name"));
        assert!(err("p2pshare://a%2/").starts_with("bad %-escape at char 13"));
        assert!(err("p2pshare://a%FF/").starts_with("bad %-escape at char 12"));
        assert!(
            err(&format!("p2pshare://{ID} ?")).starts_with("a character no link holds at char 76")
        );
        assert!(err("p2pshare://é").starts_with("a character no link holds at char 12"));
        assert!(
            err(&format!("p2pshare://{ID}?name=x")).starts_with("unknown parameter at char 77")
        );
        assert!(
            err(&format!("p2pshare://{ID}?peer={KEY}&&"))
                .starts_with("unknown parameter at char 147")
        );
        assert!(
            err(&format!("p2pshare://{ID}?peer=12@1.2.3.4:5")).starts_with("bad key at char 82")
        );
        assert!(
            err(&format!("p2pshare://{ID}?peer={KEY}@1.2.3.4"))
                .starts_with("bad address at char 147: not an address")
        );
        assert!(err(&format!("p2pshare://{ID}?peer={KEY}@1.2.3.4:0")).contains("no peer listens"));
        assert!(err(&format!("p2pshare://{ID}?peer={KEY}@host:1")).contains("not an address"));
        let many: Vec<String> = (0..=MAX_LINK_PEERS)
            .map(|i| format!("peer={KEY}@10.0.0.1:{}", i + 1))
            .collect();
        assert!(
            err(&format!("p2pshare://{ID}?{}", many.join("&")))
                .starts_with("too many peers at char")
        );
        let long = format!("p2pshare://{}/", "a".repeat(MAX_LINK_LEN));
        assert_eq!(
            err(&long),
            format!("the link is {} bytes long; at most 8192", long.len())
        );
        assert_eq!(
            ShareLink::new(
                Target::Content(ContentId([1; 32])),
                (0..=MAX_LINK_PEERS as u8).map(|i| LinkPeer {
                    key: PeerId([i; 32]),
                    at: None
                })
            ),
            Err(LinkError::TooManyPeers { at: 0 })
        );
    }
}
