//! What crosses the network: the discovery datagram ([`announce`], and its signed version 2,
//! [`signed`]) and the TCP frames ([`frame`]). The original Python program's JSON datagram,
//! request line and reply are [`crate::python::wire`]'s.
//!
//! Invariants shared by every decoder here: it takes `&[u8]`, never panics, never allocates
//! more than the hard limit of what it decodes, and tells our bytes from a stranger's by a fixed
//! magic at the start (so the original Python program's JSON datagrams and `chunk NAME N`
//! requests are recognised as foreign, not as malformed ours).

pub mod announce;
pub mod frame;
pub mod signed;

pub use announce::{Announce, DatagramError, MAX_DATAGRAM};
pub use frame::{
    CATALOG_PAGE_BYTES, CHUNK_FRAME_OVERHEAD, CatalogEntry, ErrorCode, Frame, FrameDecoder,
    FrameError, MAX_FRAME_LEN, Message, catalog_pages,
};
