//! An arbitrary byte stream, cut at arbitrary points, into the frame decoder.
//!
//! Input layout: byte 0 is flags (bits 0-2: number of cuts `n`; the others unused), then `n`
//! cut offsets (u16 BE, modulo the stream length), then the stream: the plaintext of a
//! connection's records (the handshake and the records are the `noise` target's).
//!
//! Checks: whatever the cuts, `FrameDecoder` yields the same frames and the same final error
//! as `frame::decode` applied to the whole stream; no chunk frame carries more than
//! `MAX_FRAME_LEN` bytes; the decoder never buffers more than one incomplete frame; every
//! decoded message re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::wire::MAX_FRAME_LEN;
use p2pshare_proto::wire::frame::{self, Frame, FrameDecoder, FrameError, encode_message};

/// The frames of a whole stream, and how it ends (`None`: cleanly or mid-frame).
fn reference(stream: &[u8]) -> (Vec<Frame>, Option<FrameError>) {
    let mut pos = 0;
    let mut frames = Vec::new();
    loop {
        match frame::decode(&stream[pos..]) {
            Ok(Some((f, used))) => {
                assert!(
                    used >= 5 && used <= 4 + MAX_FRAME_LEN,
                    "frame of {used} bytes"
                );
                pos += used;
                frames.push(f);
            }
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

fn streamed(stream: &[u8], cuts: &[usize]) -> (Vec<Frame>, Option<FrameError>) {
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut failed = None;
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        d.push(&stream[start..end]);
        start = end;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => {
                    assert!(failed.is_none(), "an error is sticky");
                    assert!(d.buffered() < 4 + MAX_FRAME_LEN, "buffers past one frame");
                    break;
                }
                Err(e) => {
                    assert!(failed.is_none_or(|f| f == e), "an error is sticky");
                    failed = Some(e);
                    assert_eq!(d.buffered(), 0, "a failed decoder keeps nothing");
                    break;
                }
            }
        }
    }
    (frames, failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let ncuts = usize::from(flags & 7);
    if rest.len() < 2 * ncuts {
        return;
    }
    let (cut_bytes, body) = rest.split_at(2 * ncuts);
    let stream = body.to_vec();
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();

    let expected = reference(&stream);
    for f in &expected.0 {
        match f {
            Frame::Chunk { data, .. } => assert!(data.len() + 37 <= MAX_FRAME_LEN),
            Frame::Message(m) => {
                let again = encode_message(m);
                assert_eq!(
                    frame::decode(&again),
                    Ok(Some((Frame::Message(m.clone()), again.len())))
                );
            }
            Frame::Unreadable => {}
        }
    }
    assert_eq!(streamed(&stream, &cuts), expected, "cut at {cuts:?}");
    // One byte at a time is the hardest split.
    let every: Vec<usize> = (1..stream.len()).collect();
    if stream.len() <= 512 {
        assert_eq!(streamed(&stream, &every), expected, "byte by byte");
    }
});
