//! Property tests of the wire codecs (issue 2, §4):
//! - every control `Message` variant, every chunk frame and every `Announce` round-trips
//!   through encode/decode, and a cut-short frame asks for more bytes;
//! - arbitrary bytes into `Announce::decode`, `frame::decode` and `FrameDecoder` never panic and
//!   never yield a frame longer than `MAX_FRAME_LEN` (and a decoded datagram re-encodes to the
//!   same value);
//! - a stream of encoded frames (messages and chunk frames: header from `encode_chunk_header`,
//!   then the data) cut at arbitrary points into `FrameDecoder` gives the same frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use p2pshare_proto::wire::frame::{
    self, CatalogEntry, ErrorCode, Frame, FrameDecoder, FrameError, Message, encode_chunk_header,
    encode_message,
};
use p2pshare_proto::wire::{Announce, MAX_DATAGRAM, MAX_FRAME_LEN};
use p2pshare_proto::{ContentId, PeerId};
use proptest::prelude::*;

fn peer() -> impl Strategy<Value = PeerId> {
    any::<[u8; 32]>().prop_map(PeerId)
}

fn content() -> impl Strategy<Value = ContentId> {
    any::<[u8; 32]>().prop_map(ContentId)
}

fn code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::NotFound),
        Just(ErrorCode::ReadFailed),
        Just(ErrorCode::Busy),
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::Taken),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let entry = (any::<String>(), any::<u64>(), content(), any::<bool>()).prop_map(
        |(name, size, content, partial)| CatalogEntry {
            name,
            size,
            content,
            partial,
        },
    );
    prop_oneof![
        (peer(), any::<u64>(), any::<u16>(), any::<u64>()).prop_map(
            |(peer, instance, port, revision)| Message::Hello {
                peer,
                instance,
                port,
                revision
            }
        ),
        Just(Message::Ping),
        Just(Message::Pong),
        any::<u32>().prop_map(|page| Message::CatalogRequest { page }),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(entry, 0..6)
        )
            .prop_map(|(revision, page, pages, files)| Message::Catalog {
                revision,
                page,
                pages,
                files
            }),
        content().prop_map(|content| Message::ManifestRequest { content }),
        (content(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(content, bytes)| Message::Manifest { content, bytes }),
        (content(), any::<u32>())
            .prop_map(|(content, index)| Message::ChunkRequest { content, index }),
        (code(), content(), any::<Option<u32>>()).prop_map(|(code, content, index)| {
            Message::Error {
                code,
                content,
                index,
            }
        }),
        content().prop_map(|content| Message::Interested { content }),
        (content(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(content, bits)| Message::Bitfield { content, bits }),
        (content(), prop::collection::vec(any::<u32>(), 0..20))
            .prop_map(|(content, indices)| Message::Have { content, indices }),
    ]
}

fn chunk() -> impl Strategy<Value = Frame> {
    (
        content(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(content, index, data)| Frame::Chunk {
            content,
            index,
            data,
        })
}

/// A frame as the sender writes it.
fn encode(f: &Frame) -> Vec<u8> {
    match f {
        Frame::Message(m) => encode_message(m),
        Frame::Chunk {
            content,
            index,
            data,
        } => {
            let mut out = encode_chunk_header(content, *index, data.len());
            out.extend_from_slice(data);
            out
        }
        Frame::Unreadable => unreachable!("never sent"),
    }
}

fn announce() -> impl Strategy<Value = Announce> {
    (
        peer(),
        any::<u64>(),
        any::<u16>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(peer, instance, port, revision, bye)| Announce {
            peer,
            instance,
            port,
            revision,
            bye,
        })
}

/// Length prefixes around the interesting values, then a body.
fn framed_garbage() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        Just(0u32),
        Just(1),
        0..64u32,
        Just(MAX_FRAME_LEN as u32),
        Just(MAX_FRAME_LEN as u32 + 1),
        Just(u32::MAX),
        any::<u32>(),
    ];
    (len, 0..4u8, prop::collection::vec(any::<u8>(), 0..100)).prop_map(|(len, kind, body)| {
        let mut out = len.to_be_bytes().to_vec();
        out.push(kind);
        out.extend(body);
        out
    })
}

fn check_frame(f: &Frame) {
    if let Frame::Chunk { data, .. } = f {
        assert!(1 + 36 + data.len() <= MAX_FRAME_LEN);
    }
}

/// Every frame of `stream` (which starts with the preamble) fed in the pieces `cuts` makes.
fn stream_frames(stream: &[u8], cuts: &[usize]) -> (Vec<Frame>, Option<FrameError>) {
    let mut d = FrameDecoder::new();
    let mut got = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        d.push(&stream[start..end]);
        start = end;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    check_frame(&f);
                    got.push(f);
                }
                Ok(None) => {
                    assert!(d.buffered() < 4 + MAX_FRAME_LEN);
                    break;
                }
                Err(e) => {
                    assert_eq!(d.buffered(), 0);
                    assert_eq!(d.next_frame(), Err(e), "errors are sticky");
                    return (got, Some(e));
                }
            }
        }
    }
    (got, None)
}

fn cuts_of(len: usize, raw: Vec<prop::sample::Index>) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.into_iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #[test]
    fn every_message_round_trips(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_message(&m);
        prop_assert!(bytes.len() - 4 <= MAX_FRAME_LEN);
        let got = frame::decode(&bytes).unwrap();
        prop_assert_eq!(got, Some((Frame::Message(m), bytes.len())));
        // Any strict prefix asks for more.
        let n = cut.index(bytes.len());
        prop_assert_eq!(frame::decode(&bytes[..n]), Ok(None));
    }

    #[test]
    fn every_chunk_frame_round_trips(f in chunk(), trailing in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = encode(&f);
        let len = bytes.len();
        bytes.extend(trailing);
        prop_assert_eq!(frame::decode(&bytes).unwrap(), Some((f, len)));
        prop_assert_eq!(frame::decode(&bytes[..len - 1]), Ok(None));
    }

    #[test]
    fn every_announce_round_trips(a in announce()) {
        let d = a.encode();
        prop_assert!(d.len() <= MAX_DATAGRAM);
        prop_assert_eq!(Announce::decode(&d), Ok(a));
    }

    #[test]
    fn arbitrary_datagrams_never_panic(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(any::<u8>(), 0..100).prop_map(|mut v| {
                let mut d = b"P2PS\x01".to_vec();
                d.append(&mut v);
                d
            }),
            (announce(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(a, i, x)| {
                let mut d = a.encode();
                let n = i.index(d.len());
                d[n] ^= x;
                d
            }),
        ]
    ) {
        if let Ok(a) = Announce::decode(&data) {
            prop_assert_eq!(Announce::decode(&a.encode()), Ok(a));
        }
    }

    #[test]
    fn arbitrary_bytes_into_decode_never_panic(
        data in prop_oneof![prop::collection::vec(any::<u8>(), 0..200), framed_garbage()]
    ) {
        match frame::decode(&data) {
            Ok(Some((f, used))) => {
                prop_assert!((5..=4 + MAX_FRAME_LEN).contains(&used) && used <= data.len());
                check_frame(&f);
            }
            Ok(None) => {}
            Err(FrameError::BadLength(n)) => {
                prop_assert!(n == 0 || n as usize > MAX_FRAME_LEN);
            }
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_into_frame_decoder_never_panic(
        pieces in prop::collection::vec(
            prop_oneof![prop::collection::vec(any::<u8>(), 0..64), framed_garbage()],
            0..8,
        ),
    ) {
        let mut stream = Vec::new();
        let mut cuts = Vec::new();
        for p in pieces {
            stream.extend(p);
            cuts.push(stream.len());
        }
        cuts.pop();
        stream_frames(&stream, &cuts);
    }

    #[test]
    fn a_stream_cut_anywhere_gives_the_same_frames(
        frames in prop::collection::vec(prop_oneof![message().prop_map(Frame::Message), chunk()], 0..8),
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend(encode(f));
        }
        let cuts = cuts_of(stream.len(), raw_cuts);
        prop_assert_eq!(stream_frames(&stream, &cuts), (frames.clone(), None));
        // And byte by byte.
        let every: Vec<usize> = (1..stream.len()).collect();
        prop_assert_eq!(stream_frames(&stream, &every), (frames, None));
    }

    #[test]
    fn garbage_after_good_frames_keeps_them_whatever_the_cuts(
        frames in prop::collection::vec(prop_oneof![message().prop_map(Frame::Message), chunk()], 0..4),
        tail in framed_garbage(),
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend(encode(f));
        }
        stream.extend(tail);
        let whole = stream_frames(&stream, &[]);
        prop_assert!(whole.0.starts_with(&frames));
        let cuts = cuts_of(stream.len(), raw_cuts);
        prop_assert_eq!(stream_frames(&stream, &cuts), whole);
    }
}

#[test]
fn the_limit_is_exact() {
    let c = ContentId([1; 32]);
    let data = vec![0x5a; MAX_FRAME_LEN - 37];
    let mut bytes = encode_chunk_header(&c, 9, data.len());
    bytes.extend_from_slice(&data);
    assert_eq!(bytes.len(), 4 + MAX_FRAME_LEN);
    let (f, used) = frame::decode(&bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(
        f,
        Frame::Chunk {
            content: c,
            index: 9,
            data
        }
    );
    // One byte more is refused from the prefix alone, before the body arrives.
    let over = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
    assert_eq!(
        frame::decode(&over),
        Err(FrameError::BadLength(MAX_FRAME_LEN as u32 + 1))
    );
    let mut d = FrameDecoder::new();
    d.push(&over);
    assert_eq!(
        d.next_frame(),
        Err(FrameError::BadLength(MAX_FRAME_LEN as u32 + 1))
    );
    assert_eq!(d.buffered(), 0);
}
