//! One of every control message, with representative fields: the seeds of the fuzz corpus
//! (`fuzz/examples/gen_corpus.rs`) and the round-trip tests of `proto/src/wire/frame.rs`.
//!
//! Included by `#[path]` into both; the including module has `CatalogEntry`, `ContentId`,
//! `ErrorCode`, `Message` and `PeerId` in scope.

use super::{CatalogEntry, ContentId, ErrorCode, Message, PeerId};

/// Every kind of control message.
pub(crate) fn messages() -> Vec<Message> {
    let c = ContentId([3; 32]);
    vec![
        Message::Hello {
            peer: PeerId([1; 32]),
            instance: 5,
            port: 10000,
            revision: 2,
        },
        Message::Ping,
        Message::Pong,
        Message::CatalogRequest { page: 3 },
        Message::Catalog {
            revision: 9,
            page: 1,
            pages: 2,
            files: vec![
                CatalogEntry {
                    name: "a.txt".into(),
                    size: 12,
                    content: c,
                    partial: false,
                },
                CatalogEntry {
                    name: "movie.bin".into(),
                    size: 1 << 40,
                    content: ContentId([9; 32]),
                    partial: true,
                },
            ],
        },
        Message::ManifestRequest { content: c },
        Message::Manifest {
            content: c,
            bytes: vec![1, 2, 3],
        },
        Message::ChunkRequest {
            content: c,
            index: 7,
        },
        Message::Error {
            code: ErrorCode::Busy,
            content: c,
            index: Some(1),
        },
        Message::Error {
            code: ErrorCode::NotFound,
            content: c,
            index: None,
        },
        Message::Error {
            code: ErrorCode::Taken,
            content: c,
            index: Some(4),
        },
        Message::Interested { content: c },
        Message::Bitfield {
            content: c,
            bits: vec![0b1010_0101, 0b11],
        },
        Message::Have {
            content: c,
            indices: vec![0, 7, 9],
        },
    ]
}
