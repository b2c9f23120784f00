//! TCP framing and the messages peers exchange on a connection.
//!
//! Frames travel inside a connection's sealed records ([`crate::noise`]: the connection's
//! `P2PT` preamble and handshake come first, in clear): each is a `u32` big-endian length `L`
//! (1 ≤ `L` ≤ [`MAX_FRAME_LEN`]), a kind byte, and `L - 1` bytes of body.
//!
//! - kind 1, a control [`Message`] in CBOR;
//! - kind 2, a chunk: the 32-byte content id, the chunk index (`u32` BE), then the chunk's raw
//!   bytes: no CBOR around the payload, so it is never copied into an array of integers.
//!
//! Invariants: [`decode`] never panics and never returns or buffers a frame longer than
//! [`MAX_FRAME_LEN`]; a length prefix above the limit is an error before anything is allocated.
//! A frame whose body cannot be read (unknown kind, CBOR we do not understand) is returned as
//! [`Frame::Unreadable`]: framing is intact, so the caller counts it and goes on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ContentId;
use crate::ids::PeerId;
use crate::manifest::MAX_CHUNK_SIZE;

/// Largest frame (kind byte and body) accepted: a chunk of [`MAX_CHUNK_SIZE`] plus its header.
/// Control messages share the limit: a manifest of 128k chunks, a catalog page.
pub const MAX_FRAME_LEN: usize = MAX_CHUNK_SIZE as usize + 64;
/// Target size of one catalog page: a catalog is sent in pages of about this size, so that a
/// folder of any size can be listed and one answer never holds megabytes.
pub const CATALOG_PAGE_BYTES: usize = 256 << 10;
/// Bytes a chunk frame adds to its chunk (length, kind, content id, index).
pub const CHUNK_FRAME_OVERHEAD: usize = 4 + 1 + CHUNK_HEADER;

const KIND_MESSAGE: u8 = 1;
const KIND_CHUNK: u8 = 2;
const CHUNK_HEADER: usize = 32 + 4;

/// One file in a peer's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The file's name in the peer's shared folder (checked with `check_name` on arrival).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Content id of its manifest.
    pub content: ContentId,
    /// The peer is still downloading it: it serves the chunks it has verified, and says which
    /// they are when asked ([`Message::Interested`]). Absent on the wire when false, so that
    /// catalogs of complete files read as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// This peer does not share that content (any more).
    NotFound,
    /// Reading the file failed on the serving side.
    ReadFailed,
    /// Too many requests in flight on this connection.
    Busy,
    /// The request made no sense (e.g. a chunk index out of range).
    BadRequest,
    /// That chunk just went to another peer downloading the same file: take it from there
    /// (or ask again in a moment).
    Taken,
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First frame each side sends after the preamble.
    Hello {
        /// The sender's id.
        peer: PeerId,
        /// The sender's instance (random per start).
        instance: u64,
        /// The TCP port the sender serves on.
        port: u16,
        /// The sender's catalog revision.
        revision: u64,
    },
    /// Keeps an otherwise idle connection (to a static peer) alive.
    Ping,
    /// Answer to [`Message::Ping`].
    Pong,
    /// Asks for one page of the receiver's catalog (page 0 first).
    CatalogRequest {
        /// Which page.
        page: u32,
    },
    /// One page of the sender's shared files.
    Catalog {
        /// Revision of this catalog: pages of one revision make up one catalog.
        revision: u64,
        /// Which page this is.
        page: u32,
        /// How many pages this revision has.
        pages: u32,
        /// The files on this page.
        files: Vec<CatalogEntry>,
    },
    /// Asks for the manifest of a content id.
    ManifestRequest {
        /// Which content.
        content: ContentId,
    },
    /// A manifest's canonical encoding; the receiver checks it hashes to `content`.
    Manifest {
        /// Which content.
        content: ContentId,
        /// Canonical encoding of the manifest.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Asks for one chunk; answered by a chunk frame or an [`Message::Error`]. Several may be
    /// in flight on one connection; answers come in any order.
    ChunkRequest {
        /// Which content.
        content: ContentId,
        /// Which chunk.
        index: u32,
    },
    /// A request could not be served.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The content of the refused request.
        content: ContentId,
        /// The chunk of the refused request, if it was a chunk request.
        index: Option<u32>,
    },
    /// Asks which chunks of `content` the receiver holds verified: answered by a
    /// [`Message::Bitfield`], then, while the receiver downloads it, by [`Message::Have`]s
    /// on this connection as it verifies more.
    Interested {
        /// Which content.
        content: ContentId,
    },
    /// The chunks of `content` the sender holds verified and serves: bit `i % 8` (least
    /// significant first) of byte `i / 8` is chunk `i`; exactly `ceil(chunks / 8)` bytes, or
    /// none when it holds nothing of it.
    Bitfield {
        /// Which content.
        content: ContentId,
        /// One bit per chunk.
        #[serde(with = "serde_bytes")]
        bits: Vec<u8>,
    },
    /// Chunks of `content` the sender verified since it last said so on this connection (at
    /// most [`MAX_HAVE_BATCH`] a frame).
    Have {
        /// Which content.
        content: ContentId,
        /// The chunks, each below the manifest's chunk count.
        indices: Vec<u32>,
    },
}

/// Chunk indices in one [`Message::Have`]: a frame stays below the 4 KiB that a peer may send
/// unasked (`session::MAX_REQUEST_FRAME`).
pub const MAX_HAVE_BATCH: usize = 512;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A control message.
    Message(Message),
    /// A chunk's bytes, as yet unverified.
    Chunk {
        /// Which content.
        content: ContentId,
        /// Which chunk.
        index: u32,
        /// The raw bytes.
        data: Vec<u8>,
    },
    /// A well-framed body we cannot read (unknown kind or message): count it and go on.
    Unreadable,
}

/// Why a byte stream cannot be framed; the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A length prefix of 0 or above [`MAX_FRAME_LEN`].
    BadLength(u32),
    /// A chunk frame too short to hold its header.
    ShortChunk,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength(n) => write!(f, "frame length {n} outside 1..={MAX_FRAME_LEN}"),
            FrameError::ShortChunk => f.write_str("chunk frame shorter than its header"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes a control message as a whole frame.
pub fn encode_message(msg: &Message) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, KIND_MESSAGE];
    // Serializing into a Vec cannot fail for these types.
    let _ = ciborium::into_writer(msg, &mut out);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Splits a catalog into encoded `Catalog` frames of about [`CATALOG_PAGE_BYTES`] each (at
/// least one entry per page, and one empty page for an empty catalog).
pub fn catalog_pages(revision: u64, files: Vec<CatalogEntry>) -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<CatalogEntry>> = vec![Vec::new()];
    let mut size = 0;
    for f in files {
        let mut one = Vec::new();
        // Serializing into a Vec cannot fail for these types.
        let _ = ciborium::into_writer(&f, &mut one);
        let last = groups.len() - 1;
        if !groups[last].is_empty() && size + one.len() > CATALOG_PAGE_BYTES - 128 {
            groups.push(Vec::new());
            size = 0;
        }
        size += one.len();
        let last = groups.len() - 1;
        groups[last].push(f);
    }
    let pages = groups.len() as u32;
    groups
        .into_iter()
        .enumerate()
        .map(|(page, files)| {
            encode_message(&Message::Catalog {
                revision,
                page: page as u32,
                pages,
                files,
            })
        })
        .collect()
}

/// Encodes the header of a chunk frame carrying `data_len` bytes; send the data right after it
/// (so the caller need not copy the chunk into a new buffer).
pub fn encode_chunk_header(content: &ContentId, index: u32, data_len: usize) -> Vec<u8> {
    let len = (1 + CHUNK_HEADER + data_len) as u32;
    let mut out = Vec::with_capacity(4 + 1 + CHUNK_HEADER);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(KIND_CHUNK);
    out.extend_from_slice(&content.0);
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// Decodes one frame from the start of `buf` (no preamble): `Ok(None)` when more bytes are
/// needed, else the frame and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == 0 || len as usize > MAX_FRAME_LEN {
        return Err(FrameError::BadLength(len));
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let kind = buf[4];
    let body = &buf[5..total];
    let frame = match kind {
        KIND_MESSAGE => {
            let mut r = body;
            match ciborium::from_reader::<Message, _>(&mut r) {
                Ok(m) if r.is_empty() => Frame::Message(m),
                _ => Frame::Unreadable,
            }
        }
        KIND_CHUNK => {
            if body.len() < CHUNK_HEADER {
                return Err(FrameError::ShortChunk);
            }
            let mut content = [0u8; 32];
            content.copy_from_slice(&body[..32]);
            let index = u32::from_be_bytes([body[32], body[33], body[34], body[35]]);
            Frame::Chunk {
                content: ContentId(content),
                index,
                data: body[CHUNK_HEADER..].to_vec(),
            }
        }
        _ => Frame::Unreadable,
    };
    Ok(Some((frame, total)))
}

/// Streaming decoder for one direction of a connection: checks the preamble, then yields
/// frames from bytes pushed in pieces of any size.
///
/// A chunk frame is not assembled in the shared buffer: once its header is in, its payload
/// gets a buffer of its own, of exactly its length, and later bytes are appended there, so
/// every payload byte is copied once on its way from the socket to the verifier.
///
/// Invariant: it buffers at most one incomplete frame (≤ 4 + its length limit, at most
/// [`MAX_FRAME_LEN`], bytes) plus what one [`FrameDecoder::push`] added.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Longest frame accepted now ([`FrameDecoder::set_max_len`]).
    max_len: usize,
    buf: Vec<u8>,
    start: usize,
    failed: Option<FrameError>,
    /// A chunk frame whose payload is being filled.
    chunk: Option<PartialChunk>,
}

#[derive(Debug)]
struct PartialChunk {
    content: ContentId,
    index: u32,
    data: Vec<u8>,
    /// Payload bytes still to come.
    missing: usize,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

/// Chunk frames at least this long get a payload buffer of their own.
const OWN_BUFFER: usize = 64 << 10;

impl FrameDecoder {
    /// A decoder of the plaintext inside a connection's records, accepting frames up to [`MAX_FRAME_LEN`].
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            max_len: MAX_FRAME_LEN,
            buf: Vec::new(),
            start: 0,
            failed: None,
            chunk: None,
        }
    }

    /// Accepts frames up to `max_len` bytes (capped at [`MAX_FRAME_LEN`]) from now on: a longer
    /// length prefix is [`FrameError::BadLength`] before anything is buffered for it.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.min(MAX_FRAME_LEN);
    }

    /// Appends received bytes; then call [`FrameDecoder::next_frame`] until it returns `None`.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Some(c) = &mut self.chunk {
            // While a payload fills, the shared buffer is empty: these bytes come first.
            let take = c.missing.min(data.len());
            c.data.extend_from_slice(&data[..take]);
            c.missing -= take;
            data = &data[take..];
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or the error that ends
    /// the connection (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some(c) = &self.chunk {
            if c.missing > 0 {
                return Ok(None);
            }
            if let Some(c) = self.chunk.take() {
                return Ok(Some(Frame::Chunk {
                    content: c.content,
                    index: c.index,
                    data: c.data,
                }));
            }
        }
        if let Some(len) = self.buf.get(self.start..self.start + 4) {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            if len as usize > self.max_len {
                return Err(self.fail(FrameError::BadLength(len)));
            }
        }
        match decode(&self.buf[self.start..]) {
            Ok(Some((frame, used))) => {
                self.start += used;
                Ok(Some(frame))
            }
            Ok(None) => {
                self.start_own_buffer();
                Ok(None)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// If the buffer holds the header of a long, incomplete chunk frame, moves its payload
    /// into a buffer of its own.
    fn start_own_buffer(&mut self) {
        let pending = &self.buf[self.start..];
        if pending.len() < 5 + CHUNK_HEADER || pending[4] != KIND_CHUNK {
            return;
        }
        let len = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
        // `decode` already refused lengths over the limit, and this frame is incomplete.
        if len < OWN_BUFFER || len < 1 + CHUNK_HEADER {
            return;
        }
        let mut content = [0u8; 32];
        content.copy_from_slice(&pending[5..37]);
        let index = u32::from_be_bytes([pending[37], pending[38], pending[39], pending[40]]);
        let payload_len = len - 1 - CHUNK_HEADER;
        let mut data = Vec::with_capacity(payload_len);
        data.extend_from_slice(&pending[5 + CHUNK_HEADER..]);
        let missing = payload_len - data.len();
        self.chunk = Some(PartialChunk {
            content: ContentId(content),
            index,
            data,
            missing,
        });
        self.buf.clear();
        self.start = 0;
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start + self.chunk.as_ref().map_or(0, |c| c.data.len())
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e);
        self.buf = Vec::new();
        self.start = 0;
        self.chunk = None;
        e
    }
}

#[cfg(test)]
#[path = "../../tests/support/sample_messages.rs"]
mod sample_messages;

#[cfg(test)]
mod tests {
    use super::*;

    use super::sample_messages::messages as samples;

    #[test]
    fn messages_round_trip() {
        for m in samples() {
            let bytes = encode_message(&m);
            let (f, used) = decode(&bytes).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(f, Frame::Message(m));
            assert_eq!(decode(&bytes[..bytes.len() - 1]), Ok(None));
        }
    }

    #[test]
    fn chunk_round_trip() {
        let c = ContentId([4; 32]);
        let mut bytes = encode_chunk_header(&c, 3, 5);
        bytes.extend_from_slice(b"hello");
        let (f, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            f,
            Frame::Chunk {
                content: c,
                index: 3,
                data: b"hello".to_vec()
            }
        );
    }

    #[test]
    fn limits() {
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(FrameError::BadLength(u32::MAX))
        );
        assert_eq!(decode(&[0, 0, 0, 0]), Err(FrameError::BadLength(0)));
        assert_eq!(
            decode(&[0, 0, 0, 2, KIND_CHUNK, 0]),
            Err(FrameError::ShortChunk)
        );
        assert_eq!(
            decode(&[0, 0, 0, 2, 99, 0]),
            Ok(Some((Frame::Unreadable, 6)))
        );
        assert_eq!(
            decode(&[0, 0, 0, 2, KIND_MESSAGE, 0xff]),
            Ok(Some((Frame::Unreadable, 6)))
        );
    }

    /// Decodes `stream` fed in pieces of `split` bytes; every frame, and the most bytes the
    /// decoder held at once. Nothing may be left buffered at the end.
    fn decode_in_pieces(stream: &[u8], split: usize) -> (Vec<Frame>, usize) {
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        let mut most = 0;
        for piece in stream.chunks(split) {
            d.push(piece);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
            most = most.max(d.buffered());
        }
        assert_eq!(d.buffered(), 0, "split {split}: bytes left over");
        (got, most)
    }

    #[test]
    fn long_chunk_frames_split_anywhere() {
        let c = ContentId([5; 32]);
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let mut stream = Vec::new();
        for index in 0..3 {
            stream.extend(encode_chunk_header(&c, index, payload.len()));
            stream.extend_from_slice(&payload);
            stream.extend(encode_message(&Message::Ping));
        }
        for split in [1, 7, 41, 4096, 65_537, 150_000, stream.len()] {
            let (got, most) = decode_in_pieces(&stream, split);
            assert!(most <= 4 + MAX_FRAME_LEN + split);
            assert_eq!(got.len(), 6, "split {split}");
            for (i, f) in got.iter().enumerate() {
                if i % 2 == 0 {
                    let want = Frame::Chunk {
                        content: c,
                        index: i as u32 / 2,
                        data: payload.clone(),
                    };
                    assert!(*f == want, "split {split}: frame {i}");
                } else {
                    assert_eq!(*f, Frame::Message(Message::Ping));
                }
            }
        }
    }

    #[test]
    fn message_stream_split_anywhere() {
        let mut stream = Vec::new();
        for m in samples() {
            stream.extend(encode_message(&m));
        }
        for split in [1, 2, 3, 7, 100] {
            let (got, _) = decode_in_pieces(&stream, split);
            assert_eq!(
                got,
                samples()
                    .into_iter()
                    .map(Frame::Message)
                    .collect::<Vec<_>>()
            );
        }
    }
}
