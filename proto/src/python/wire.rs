//! The original Python program's protocol: its JSON announcement, its `chunk NAME N` request
//! line and its reply (64 hex digits of the chunk's SHA-256, then the chunk, then close).
//!
//! The Python peer announces every 5 s on the discovery port:
//! `{"type": "P2P_PEER_DISCOVERY", "port": P, "files": {NAME: {"total_chunks": N, "filehash":
//! HEX}}}`; it serves each 1 KiB chunk (1-based index) over a connection of its own.
//!
//! Invariants: every decoder takes `&[u8]`, never panics and never holds more than its hard
//! limit ([`MAX_LEGACY_DATAGRAM`], [`MAX_REQUEST_LINE`], [`MAX_REPLY`]); every name it yields
//! passed [`check_name`] and [`is_requestable`]; every file hash is exactly 64 lower-case hex
//! digits; `total_chunks` is at most [`MAX_LEGACY_CHUNKS`]. A file entry that breaks a rule is
//! dropped and counted ([`LegacyAnnounce::rejected`]); a datagram that breaks the shape is an
//! error. Encoders only write what the decoders accept.

use std::fmt;

use serde_json::Value;

use crate::ids::{Digest, PeerId, hex, sha256};
use crate::name::check_name;

/// Bytes in a Python chunk.
pub const PY_CHUNK: usize = 1024;
/// The `type` of a Python announcement.
const DISCOVERY_TYPE: &str = "P2P_PEER_DISCOVERY";
/// The extra key a p2pshare peer adds to its Python announcement (see
/// [`LegacyAnnounce::origin`]).
const ORIGIN_KEY: &str = "p2pshare";
/// Largest Python datagram accepted: the largest UDP payload (the Python peer reads up to
/// 64 KiB and sends all its files in one datagram).
pub const MAX_LEGACY_DATAGRAM: usize = 65_507;
/// Largest Python announcement we send: under the 64 KiB a Python peer reads, with room for
/// the IP and UDP headers.
pub const LEGACY_SEND_LIMIT: usize = 60 << 10;
/// Most file entries taken from one datagram (a 64 KiB datagram holds about 600 real ones).
pub const MAX_LEGACY_FILES: usize = 2048;
/// Most chunks a Python file may have: 16 GiB. A Python downloader starts one thread per
/// chunk, so nothing larger is ever fetched from or by one, and our per-chunk state stays small.
pub const MAX_LEGACY_CHUNKS: u64 = 1 << 24;
/// Longest request line accepted: what the Python server reads in its one `recv(1024)`.
pub const MAX_REQUEST_LINE: usize = 1024;
/// Longest reply: the hash line and one full chunk.
pub const MAX_REPLY: usize = 64 + PY_CHUNK;

/// True when a Python peer can ask for `name`: a valid shared name ([`check_name`]) without
/// whitespace (its request line is split on whitespace).
pub fn is_requestable(name: &str) -> bool {
    // Python peers share one flat folder: a path (a file in a subfolder) is not theirs to ask.
    check_name(name).is_ok() && !name.contains('/') && !name.chars().any(char::is_whitespace)
}

/// `ceil(size / 1024)`: how many chunks a Python peer counts in a file of `size` bytes.
pub fn chunks_for(size: u64) -> u64 {
    size.div_ceil(PY_CHUNK as u64)
}

/// One file of a Python announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFile {
    /// Its name in the Python peer's shared folder (passed [`is_requestable`]).
    pub name: String,
    /// Its number of 1 KiB chunks (at most [`MAX_LEGACY_CHUNKS`]).
    pub total_chunks: u64,
    /// SHA-256 of the whole file.
    pub file_hash: Digest,
}

/// A Python peer's announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAnnounce {
    /// Its transfer port.
    pub port: u16,
    /// Its files, sorted by name, each name once.
    pub files: Vec<LegacyFile>,
    /// File entries dropped for breaking a rule (name, hash, chunk count, or past
    /// [`MAX_LEGACY_FILES`]).
    pub rejected: u32,
    /// Set by a p2pshare peer (an extra `"p2pshare": "<peer id>"` key, which the Python
    /// program ignores): the announcement is one of ours, heard natively, and its hashes tell
    /// which native content a Python peer's file is.
    pub origin: Option<PeerId>,
}

/// Why a Python datagram was dropped whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyError {
    /// Longer than [`MAX_LEGACY_DATAGRAM`].
    TooLong,
    /// Not UTF-8 JSON with an object at the top.
    NotJson,
    /// JSON, but its `type` is not `P2P_PEER_DISCOVERY`.
    OtherType,
    /// The right type, but `port` or `files` do not have the Python shape.
    Malformed,
}

impl fmt::Display for LegacyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LegacyError::TooLong => "Python datagram too long",
            LegacyError::NotJson => "not a JSON object",
            LegacyError::OtherType => "JSON of another type than P2P_PEER_DISCOVERY",
            LegacyError::Malformed => "malformed Python announcement",
        })
    }
}

impl std::error::Error for LegacyError {}

/// True when `data` may be a Python announcement (starts with `{` after blanks): tells it from
/// our own magic and from noise before the JSON parser runs.
pub fn looks_legacy(data: &[u8]) -> bool {
    data.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// Parses exactly 64 lower-case hex digits.
fn parse_hash(s: &[u8]) -> Option<Digest> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn file_entry(name: &str, info: &Value) -> Option<LegacyFile> {
    if !is_requestable(name) {
        return None;
    }
    let total_chunks = info.get("total_chunks")?.as_u64()?;
    if total_chunks > MAX_LEGACY_CHUNKS {
        return None;
    }
    let file_hash = parse_hash(info.get("filehash")?.as_str()?.as_bytes())?;
    Some(LegacyFile {
        name: name.to_owned(),
        total_chunks,
        file_hash,
    })
}

/// The top of a Python datagram as read in one pass: the small values as they are, the files
/// as far as `room` allowed.
struct Top {
    kind: Option<Value>,
    port: Option<Value>,
    origin: Option<Value>,
    files: Option<Files>,
}

/// The `files` of a datagram.
enum Files {
    /// An object: its entries that passed the rules (at most the room), those that broke one,
    /// and those past the room (skipped unread).
    Map {
        files: Vec<LegacyFile>,
        rejected: u32,
        skipped: usize,
    },
    /// Something else.
    NotAMap,
}

struct TopVisitor<R> {
    room: Option<R>,
}

impl<'de, R: FnOnce(u16, Option<&PeerId>) -> usize> serde::de::Visitor<'de> for TopVisitor<R> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top {
            kind: None,
            port: None,
            origin: None,
            files: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => top.kind = Some(map.next_value()?),
                "port" => top.port = Some(map.next_value()?),
                ORIGIN_KEY => top.origin = Some(map.next_value()?),
                "files" => {
                    let port = top
                        .port
                        .as_ref()
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok());
                    let origin = top
                        .origin
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(PeerId::from_hex);
                    let room = match (self.room.take(), port) {
                        (Some(room), Some(port)) => room(port, origin.as_ref()),
                        _ => MAX_LEGACY_FILES,
                    };
                    top.files = Some(map.next_value_seed(FilesSeed {
                        room: room.min(MAX_LEGACY_FILES),
                    })?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
}

struct FilesSeed {
    room: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for FilesSeed {
    type Value = Files;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Files, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FilesSeed {
    type Value = Files;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the files")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Files, A::Error> {
        let mut files = Vec::new();
        let (mut rejected, mut skipped) = (0u32, 0usize);
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if files.len() >= self.room {
                map.next_value::<serde::de::IgnoredAny>()?;
                skipped += 1;
                continue;
            }
            let info: Value = map.next_value()?;
            match file_entry(&name, &info) {
                Some(f) => files.push(f),
                None => rejected += 1,
            }
        }
        Ok(Files::Map {
            files,
            rejected,
            skipped,
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Files, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Files::NotAMap)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }

    fn visit_str<E>(self, _: &str) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }

    fn visit_unit<E>(self) -> Result<Files, E> {
        Ok(Files::NotAMap)
    }
}

impl LegacyAnnounce {
    /// Decodes one datagram. Entries that break a rule are dropped and counted in `rejected`.
    pub fn decode(data: &[u8]) -> Result<LegacyAnnounce, LegacyError> {
        Self::decode_within(data, |_, _| MAX_LEGACY_FILES).map(|(mut a, past)| {
            a.rejected = a.rejected.saturating_add(past as u32);
            a
        })
    }

    /// As [`LegacyAnnounce::decode`], with at most `room(port, origin)` file entries checked
    /// and kept (the others are counted, in the second field, and skipped unread): a datagram
    /// from an address whose share of the table is spent costs a scan of its bytes, not a tree
    /// of every entry and the checks of each. The datagram is read in one pass, in its order:
    /// `room` sees the port and origin that came before `files` (the Python program sends
    /// `type`, `port`, `files`), else `None` and `None`... as far as they are known then.
    pub fn decode_within(
        data: &[u8],
        room: impl FnOnce(u16, Option<&PeerId>) -> usize,
    ) -> Result<(LegacyAnnounce, usize), LegacyError> {
        if data.len() > MAX_LEGACY_DATAGRAM {
            return Err(LegacyError::TooLong);
        }
        let text = std::str::from_utf8(data).map_err(|_| LegacyError::NotJson)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let top =
            serde::de::Deserializer::deserialize_map(&mut de, TopVisitor { room: Some(room) })
                .map_err(|_| LegacyError::NotJson)?;
        de.end().map_err(|_| LegacyError::NotJson)?;
        if top.kind.as_ref().and_then(Value::as_str) != Some(DISCOVERY_TYPE) {
            return Err(LegacyError::OtherType);
        }
        let port = top
            .port
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or(LegacyError::Malformed)?;
        let origin = match &top.origin {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(PeerId::from_hex)
                    .ok_or(LegacyError::Malformed)?,
            ),
        };
        let (mut files, rejected, skipped) = match top.files {
            None => (Vec::new(), 0, 0),
            Some(Files::Map {
                files,
                rejected,
                skipped,
            }) => (files, rejected, skipped),
            Some(Files::NotAMap) => return Err(LegacyError::Malformed),
        };
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.dedup_by(|a, b| a.name == b.name);
        let a = LegacyAnnounce {
            port,
            files,
            rejected,
            origin,
        };
        Ok((a, skipped))
    }

    /// Encodes the announcement as the Python peer does, with as many of `files` (in their
    /// order) as fit in [`LEGACY_SEND_LIMIT`] bytes; names a Python peer cannot ask for, and
    /// counts over [`MAX_LEGACY_CHUNKS`], are left out. `rejected` is not sent.
    pub fn encode(&self) -> Vec<u8> {
        let head = format!(
            "{{\"type\": \"{DISCOVERY_TYPE}\", \"port\": {}, \"files\": {{",
            self.port
        );
        let mut out = head.into_bytes();
        // The origin goes last, after the files: written now, its room kept.
        let tail = match self.origin {
            Some(p) => format!("}}, \"{ORIGIN_KEY}\": \"{}\"}}", p.to_hex()),
            None => "}}".to_owned(),
        };
        let mut first = true;
        let mut taken = 0;
        for f in &self.files {
            if !is_requestable(&f.name) || f.total_chunks > MAX_LEGACY_CHUNKS {
                continue;
            }
            if taken == MAX_LEGACY_FILES {
                break;
            }
            // Serializing a string into JSON cannot fail.
            let name = serde_json::to_string(&f.name).unwrap_or_default();
            let entry = format!(
                "{}{name}: {{\"total_chunks\": {}, \"filehash\": \"{}\"}}",
                if first { "" } else { ", " },
                f.total_chunks,
                hex(&f.file_hash)
            );
            if out.len() + entry.len() + tail.len() > LEGACY_SEND_LIMIT {
                break;
            }
            out.extend_from_slice(entry.as_bytes());
            first = false;
            taken += 1;
        }
        out.extend_from_slice(tail.as_bytes());
        out
    }
}

/// A Python chunk request: `chunk NAME N`, `N` counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRequest {
    /// The file's name (passed [`is_requestable`]).
    pub name: String,
    /// The chunk, from 1.
    pub index: u64,
}

/// Why a request line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Longer than [`MAX_REQUEST_LINE`] without being a request.
    TooLong,
    /// Not `chunk NAME N` with a valid name and an index from 1.
    Malformed,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::TooLong => "Python request line too long",
            RequestError::Malformed => "malformed Python request line",
        })
    }
}

impl std::error::Error for RequestError {}

/// The first bytes of every Python request.
pub const REQUEST_PREFIX: &[u8] = b"chunk ";

/// True when `data` (the first bytes of a connection) is, or may still become, a Python
/// request: it agrees with [`REQUEST_PREFIX`] as far as both go.
pub fn may_be_request(data: &[u8]) -> bool {
    let n = data.len().min(REQUEST_PREFIX.len());
    data[..n] == REQUEST_PREFIX[..n]
}

impl LegacyRequest {
    /// The request line, as the Python downloader sends it (no line end).
    pub fn encode(&self) -> Vec<u8> {
        format!("chunk {} {}", self.name, self.index).into_bytes()
    }

    /// Decodes the bytes received so far on a connection: `Ok(None)` while they are a prefix
    /// of a request (ask again with more), `Ok(Some(..))` once they are a whole one (as the
    /// Python server, which takes what its first read gave: a request ends where its digits
    /// end, surrounding blanks allowed).
    pub fn decode(data: &[u8]) -> Result<Option<LegacyRequest>, RequestError> {
        if data.len() > MAX_REQUEST_LINE {
            return Err(RequestError::TooLong);
        }
        if data.len() < REQUEST_PREFIX.len() {
            return if may_be_request(data) {
                Ok(None)
            } else {
                Err(RequestError::Malformed)
            };
        }
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            // A multi-byte character cut at the end of what arrived so far.
            Err(e) if e.error_len().is_none() => return Ok(None),
            Err(_) => return Err(RequestError::Malformed),
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        let complete = parts.len() == 3 && parts[2].bytes().all(|b| b.is_ascii_digit());
        if parts.first() != Some(&"chunk") || parts.len() > 3 {
            return Err(RequestError::Malformed);
        }
        if !complete {
            // `chunk` or `chunk NAME` so far: more may come, unless the name is already bad (a
            // third part that is not digits never becomes a request).
            return match parts.len() {
                3 => Err(RequestError::Malformed),
                2 if check_name(parts[1]).is_err() => Err(RequestError::Malformed),
                _ => Ok(None),
            };
        }
        let name = parts[1];
        if !is_requestable(name) {
            return Err(RequestError::Malformed);
        }
        // A leading zero or a number past u64 is not a request we can serve.
        let index: u64 = parts[2].parse().map_err(|_| RequestError::Malformed)?;
        if index == 0 || parts[2].starts_with('0') {
            return Err(RequestError::Malformed);
        }
        Ok(Some(LegacyRequest {
            name: name.to_owned(),
            index,
        }))
    }
}

/// The reply to a request for `chunk`: its SHA-256 in lower-case hex, then the bytes. The
/// server closes the connection after it.
pub fn encode_reply(chunk: &[u8]) -> Vec<u8> {
    let mut out = hex(&sha256(chunk)).into_bytes();
    out.extend_from_slice(chunk);
    out
}

/// Why a reply was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Closed before the 64 hex digits (a refusal: the Python server closes on what it cannot
    /// serve).
    Short,
    /// Not 64 lower-case hex digits at the start.
    BadHash,
    /// More than one chunk after the hash.
    TooLong,
    /// The chunk does not hash to the digits sent with it.
    Mismatch,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyError::Short => "closed before a full hash",
            ReplyError::BadHash => "the reply does not start with 64 hex digits",
            ReplyError::TooLong => "more than one chunk in the reply",
            ReplyError::Mismatch => "the chunk does not match the hash sent with it",
        })
    }
}

impl std::error::Error for ReplyError {}

/// Decodes a whole reply (everything received until the server closed): the chunk, checked
/// against the hash sent with it.
pub fn decode_reply(data: &[u8]) -> Result<&[u8], ReplyError> {
    if data.len() > MAX_REPLY {
        return Err(ReplyError::TooLong);
    }
    if data.len() < 64 {
        return Err(ReplyError::Short);
    }
    let (head, body) = data.split_at(64);
    let hash = parse_hash(head).ok_or(ReplyError::BadHash)?;
    if sha256(body) != hash {
        return Err(ReplyError::Mismatch);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &[u8] = br#"{"type": "P2P_PEER_DISCOVERY", "port": 10001, "files": {"a.txt": {"total_chunks": 3, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}, "bad name": {"total_chunks": 1, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}, "b": {"total_chunks": 1, "filehash": "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}}}"#;

    #[test]
    fn decodes_what_python_sends() {
        let a = LegacyAnnounce::decode(PY).unwrap();
        assert_eq!(a.port, 10001);
        assert_eq!(a.files.len(), 1);
        assert_eq!(a.files[0].name, "a.txt");
        assert_eq!(a.files[0].total_chunks, 3);
        assert_eq!(a.files[0].file_hash, sha256(b"abc"));
        assert_eq!(a.rejected, 2, "a name with a space, an upper-case hash");
        assert_eq!(
            LegacyAnnounce::decode(&a.encode()),
            Ok(LegacyAnnounce { rejected: 0, ..a })
        );
    }

    #[test]
    fn refuses_other_shapes() {
        for (bad, err) in [
            (&b"P2PS\x01"[..], LegacyError::NotJson),
            (b"[1, 2]", LegacyError::NotJson),
            (br#"{"type": "OTHER", "port": 1}"#, LegacyError::OtherType),
            (br#"{"type": "P2P_PEER_DISCOVERY"}"#, LegacyError::Malformed),
            (
                br#"{"type": "P2P_PEER_DISCOVERY", "port": 70000}"#,
                LegacyError::Malformed,
            ),
            (
                br#"{"type": "P2P_PEER_DISCOVERY", "port": "1"}"#,
                LegacyError::Malformed,
            ),
            (
                br#"{"type": "P2P_PEER_DISCOVERY", "port": 1, "files": []}"#,
                LegacyError::Malformed,
            ),
        ] {
            assert_eq!(
                LegacyAnnounce::decode(bad),
                Err(err),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            LegacyAnnounce::decode(&[b' '; 70_000]),
            Err(LegacyError::TooLong)
        );
        let huge = br#"{"type": "P2P_PEER_DISCOVERY", "port": 1, "files": {"x": {"total_chunks": 99999999999, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}, "../y": {"total_chunks": 1, "filehash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}"#;
        let a = LegacyAnnounce::decode(huge).unwrap();
        assert_eq!((a.files.len(), a.rejected), (0, 2));
    }

    #[test]
    fn encode_fits_the_limit() {
        let files = (0..5000)
            .map(|i| LegacyFile {
                name: format!("file-{i:05}.bin"),
                total_chunks: i,
                file_hash: [7; 32],
            })
            .collect();
        let a = LegacyAnnounce {
            port: 10000,
            files,
            rejected: 0,
            origin: Some(PeerId([3; 32])),
        };
        let d = a.encode();
        assert!(d.len() <= LEGACY_SEND_LIMIT);
        let back = LegacyAnnounce::decode(&d).unwrap();
        assert!(back.files.len() > 500, "{}", back.files.len());
        assert_eq!(back.origin, a.origin);
        assert_eq!(back.files[..], a.files[..back.files.len()]);
    }

    #[test]
    fn request_lines() {
        let r = LegacyRequest {
            name: "a.txt".into(),
            index: 12,
        };
        assert_eq!(r.encode(), b"chunk a.txt 12");
        assert_eq!(LegacyRequest::decode(&r.encode()), Ok(Some(r.clone())));
        assert_eq!(LegacyRequest::decode(b"chunk a.txt 12\n"), Ok(Some(r)));
        for more in [
            &b"c"[..],
            b"chunk",
            b"chunk ",
            b"chunk a.txt",
            b"chunk a.txt ",
        ] {
            assert_eq!(LegacyRequest::decode(more), Ok(None), "{more:?}");
        }
        for bad in [
            &b"GET / HTTP/1.1"[..],
            b"P2PS",
            b"chunk a.txt 0",
            b"chunk a.txt 01",
            b"chunk a.txt x",
            b"chunk ../etc 1",
            b"chunk .hidden 1",
            b"chunk a b 1",
            b"chunk a.txt 99999999999999999999999",
        ] {
            assert_eq!(
                LegacyRequest::decode(bad),
                Err(RequestError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            LegacyRequest::decode(&[b'c'; 2000]),
            Err(RequestError::TooLong)
        );
    }

    #[test]
    fn replies() {
        let r = encode_reply(b"hello");
        assert_eq!(r.len(), 69);
        assert_eq!(decode_reply(&r), Ok(&b"hello"[..]));
        let mut bad = r.clone();
        bad[68] ^= 1;
        assert_eq!(decode_reply(&bad), Err(ReplyError::Mismatch));
        assert_eq!(decode_reply(&r[..10]), Err(ReplyError::Short));
        assert_eq!(decode_reply(&[b'Z'; 70]), Err(ReplyError::BadHash));
        assert_eq!(
            decode_reply(&encode_reply(&[0; 1025])),
            Err(ReplyError::TooLong)
        );
        assert_eq!(decode_reply(&encode_reply(&[])), Ok(&b""[..]));
    }
}
