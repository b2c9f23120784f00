//! Read-only views of a node for the user interface, and its counters of dropped input.

use std::net::SocketAddr;
use std::time::Instant;

use crate::download::Phase;
use crate::ids::{ContentId, PeerId};

/// A known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Its id.
    pub id: PeerId,
    /// Its transfer address (`ip:port`).
    pub addr: SocketAddr,
    /// Files in its catalog, once fetched.
    pub files: Option<usize>,
    /// When it was last heard.
    pub last_seen: Instant,
    /// A connection at its address confirmed it (its id is bound to that address now).
    pub confirmed: bool,
    /// An original Python peer (its id is derived from its address).
    pub python: bool,
}

/// A file shared by other peers, grouped by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Its content id.
    pub content: ContentId,
    /// Its size.
    pub size: u64,
    /// The names peers share it under (sorted, distinct).
    pub names: Vec<String>,
    /// Peers that have it.
    pub holders: Vec<PeerId>,
    /// True when this peer shares the same content too.
    pub local: bool,
    /// Held by original Python peers only: `size` is the upper bound `total_chunks` × 1 KiB,
    /// and the content id is derived from the file's SHA-256.
    pub python: bool,
}

/// A download in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadView {
    /// Its content id.
    pub content: ContentId,
    /// Its name.
    pub name: String,
    /// Its size, once the manifest is known.
    pub size: Option<u64>,
    /// Verified bytes on disk.
    pub done: u64,
    /// Where it is.
    pub phase: Phase,
    /// Peers that may still be asked.
    pub peers: usize,
    /// Chunks rejected for a bad hash so far.
    pub rejected: u32,
}

/// What one connection holds of a node's memory (`Node::connection_loads`, for tests).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLoad {
    /// The connection.
    pub conn: crate::session::ConnId,
    /// Its other end.
    pub remote: std::net::SocketAddr,
    /// Bytes sent and not yet flushed, plus chunk reads in flight for it.
    pub owed: usize,
    /// Chunk requests waiting to be read.
    pub queued_requests: usize,
    /// Manifest requests waiting to be answered.
    pub queued_manifests: usize,
}

/// Counters of what the node dropped or refused. Bad input is counted here, never a panic.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Datagrams that were not ours (another program).
    pub datagrams_foreign: u64,
    /// Datagrams of ours that did not decode, or were too long.
    pub datagrams_malformed: u64,
    /// Datagrams of a protocol version we do not speak.
    pub datagrams_unknown_version: u64,
    /// Frames with a body we could not read (unknown kind or message).
    pub frames_unreadable: u64,
    /// Well-formed frames nobody asked for: a catalog we did not request, a second hello.
    pub frames_unsolicited: u64,
    /// New peers ignored because the peer table was full.
    pub peers_table_full: u64,
    /// Announcements ignored because they carried an instance the peer had already left.
    pub announcements_stale: u64,
    /// New peers ignored because their address already holds as many as one address may.
    pub peers_per_ip_full: u64,
    /// Announcements and hellos about a known peer from another address than its own
    /// (spoofed `bye`s, instances, addresses): ignored.
    pub claims_elsewhere: u64,
    /// New peers ignored because their address was found unreachable (refused, silent or not
    /// our protocol) a moment ago.
    pub peers_unreachable: u64,
    /// Connections to peers put off because `max_outbound` were open.
    pub connects_deferred: u64,
    /// Connections closed for breaking the protocol.
    pub protocol_errors: u64,
    /// Connections refused because too many were open.
    pub connections_refused: u64,
    /// Names refused (in catalogs received or files offered).
    pub bad_names: u64,
    /// Chunk requests refused (unknown content, bad index, busy).
    pub requests_refused: u64,
    /// Chunks served.
    pub chunks_served: u64,
    /// Chunks rejected for a bad hash.
    pub chunks_rejected: u64,
    /// Catalog entries dropped for a budget (too many names for one content, or a catalog
    /// bigger than a peer, an address or the node may hold).
    pub catalog_entries_dropped: u64,
    /// Answers put off because the sender's IP or the node had spent its send budget.
    pub answers_delayed: u64,
    /// Refusals and pongs not sent because the asker, its IP or the node had spent its send
    /// budget (the asker is paused: it does not read what it asks for).
    pub answers_dropped: u64,
    /// Times a connection was paused because its send budget was spent or its request
    /// queues were full.
    pub connections_paused: u64,
    /// Connections closed because what we sent them stayed unread past its deadline.
    pub closed_not_reading: u64,
    /// Times a holder lost its requests for delivering nothing by their deadline.
    pub requests_expired: u64,
    /// Bitfields and haves refused for claiming chunks the file does not have (the
    /// claimant is banned for that download).
    pub claims_refused: u64,
    /// Refusals of chunks a partial holder claimed that count against it (a `Busy`, a second
    /// `Taken` of one chunk): each drops the claim and costs the claimant, not us (see
    /// `download.rs`; a first `Taken`, a crowd's normal hint, drops the claim only).
    pub claim_strikes: u64,
    /// Partial holders no longer believed for a download after refusing or stalling
    /// `MAX_CLAIM_STRIKES` of the chunks they claimed.
    pub claimants_disbelieved: u64,
    /// Chunks served from downloads still in progress (part of `chunks_served`).
    pub chunks_served_partial: u64,
    /// Chunks served zero-copy, straight from the shared file (`NetOp::SendFile`; part of
    /// `chunks_served`).
    pub chunks_sent_zero_copy: u64,
    /// Connections the runtime closed because a zero-copy chunk came short (its file shrank,
    /// vanished or failed after the header went out: the stream was broken).
    pub zero_copy_broken: u64,
    /// Chunk requests refused as busy because that chunk just went to another peer (a crowd
    /// fetches it from that peer instead of from us).
    pub requests_spread: u64,
    /// Python (JSON) datagrams dropped: too long, not JSON, another type, or malformed.
    pub python_datagrams_dropped: u64,
    /// File entries dropped from Python announcements (bad name, hash or chunk count).
    pub python_files_rejected: u64,
    /// New Python peers ignored because their table (or their address's share) was full.
    pub python_peers_full: u64,
    /// Python requests closed as malformed (not `chunk NAME N`, too long, or too slow).
    pub python_requests_malformed: u64,
    /// Python requests closed unanswered: a name we do not share, or a chunk past its end.
    pub python_requests_refused: u64,
    /// Chunks served to Python peers.
    pub python_chunks_served: u64,
    /// File entries dropped from Python announcements past their address's share (or the
    /// table's).
    pub python_files_over_budget: u64,
    /// JSON announcements carrying the id of a p2pshare peer not listed at their address
    /// (another peer's claims, sent from here): dropped.
    pub python_claims_elsewhere: u64,
    /// A p2pshare peer's claim (in its JSON) that its file is a Python peer's, confirmed by its
    /// own manifest, verified against its content id.
    pub python_vouches_believed: u64,
    /// Such claims that its verified manifest contradicted, or whose manifest did not verify:
    /// the two files are listed apart.
    pub python_vouches_refuted: u64,
    /// Such claims not checked for their address's share of checks.
    pub python_vouch_checks_over_budget: u64,
    /// Accepted connections the runtime dropped instead of holding them for later (their
    /// address's share, or all, of the held ones in use), or after holding them past
    /// `PARK_FOR` (`host::parked`).
    pub connections_parked_dropped: u64,
}
