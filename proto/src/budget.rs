//! Every budget a node keeps against hosts that ask much and read little, in one place.
//!
//! A LAN host can send any bytes, speak the protocol correctly, and still try to exhaust a
//! peer: ask for answers it never reads, hold connections, flood tables. Each budget below
//! bounds one such resource; what a node drops because of it is counted in
//! [`Stats`](crate::Stats). The budgets that live next to the code they bound are listed here
//! too, so this page is the whole list:
//! - frames before `Hello`: 1 KiB (`session`), a host that has not said who it is cannot make
//!   us buffer megabytes;
//! - chunk requests queued per connection: [`crate::session::MAX_QUEUED_REQUESTS`];
//! - peer-table entries: 1,024 in all, 32 per source IP (`discovery`);
//! - connections: `Config::max_connections`, `max_outbound`, `max_connections_per_ip`.
//!
//! *Per IP* means per address in both families (an IPv6 scope id aside). Not per IPv6 /64,
//! though a host can take any number of addresses in its /64: on one link every peer's
//! link-local address is in the same `fe80::/64`, so a /64 budget would make the whole LAN
//! share one IP's share, and the first hostile host on it would starve every honest IPv6 peer.
//! A host with many addresses is what an IPv4 host with a whole subnet already is (ARP lets it
//! answer for 254 addresses of a /24): the per-node budgets bound it (the peer table, the
//! connections, the signature checks of `node/verify.rs`, its tracked addresses), and the
//! per-address budgets keep it from crowding out peers one address at a time.
//!
//! Send budgets count what the node has handed the runtime and not yet seen flushed, plus the
//! chunk reads in flight to be sent: that is the memory a reader that does not read makes us
//! hold. A connection at its own budget is no longer read (`NetOp::Pause`), so its requests
//! stay in the kernel and TCP pushes back on the asker; one that stays unflushed past its
//! deadline is closed.

use std::time::Duration;

use crate::wire::{CatalogEntry, MAX_FRAME_LEN};

/// Bytes queued or being read for one connection: one chunk of the largest size (or a window
/// of four typical 1 MiB chunks) plus room for small frames.
pub const CONN_SEND_BUDGET: usize = MAX_FRAME_LEN + (1 << 20);
/// Bytes queued or being read for all connections from one IP address together: one host
/// cannot hold more than this of our memory however many connections it opens (room for one
/// chunk of the largest size, and a victim of 50 hostile connections stays under 64 MiB).
pub const IP_SEND_BUDGET: usize = 12 << 20;
/// Bytes queued or being read for all connections together: the node's whole serving memory,
/// enough to keep a gigabit link full with dozens of readers.
pub const NODE_SEND_BUDGET: usize = 48 << 20;
/// Manifest requests waiting per connection while one manifest answer is unflushed: more than
/// one download at a time from the same peer, not a queue of megabytes.
pub const MAX_QUEUED_MANIFESTS: usize = 4;
/// The slowest reader we wait for (2 Mbit/s, a poor Wi-Fi link): a connection whose answers
/// stay unflushed longer than the stall timeout plus its queued bytes at this rate (at most
/// 41 s for a whole connection budget) is closed, and its slots go to others.
pub const MIN_READ_RATE: u64 = 256 << 10;

/// Chunks of one download asked for and not yet written (in flight, or verified and handed
/// to the disk): past this the download asks for no more chunks until the disk catches up,
/// so a slow disk slows the download instead of filling memory, and the memory a download
/// holds does not grow with the number of peers it fetches from (each peer's window of
/// requests comes out of this one budget).
pub const WRITE_BUDGET_PER_DOWNLOAD: u64 = 16 << 20;
/// The same for all downloads together.
pub const WRITE_BUDGET: u64 = 64 << 20;

/// Connections being opened (connecting or in handshake) to one IP address at once: a host
/// announcing many ids, or datagrams spoofed to point at someone's SSH port, get a trickle of
/// connection attempts, not a storm.
pub const MAX_DIALS_PER_IP: usize = 4;
/// Failed attempts in a row (refused, timed out, or not speaking our protocol) after which a
/// peer we never managed to open a connection to is forgotten.
pub const MAX_DIAL_FAILURES: u32 = 3;
/// How long the address of a forgotten unreachable peer is ignored in announcements (unless a
/// hello from that address shows a p2pshare peer is there after all).
pub const UNREACHABLE_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Shortest time between two fetches of one peer's catalog: a peer that announces a new
/// revision every few hundred milliseconds gets its catalog fetched at this pace, not at its.
pub const MIN_CATALOG_GAP: std::time::Duration = std::time::Duration::from_secs(2);
/// And at least this many times as long as the last fetch took: a catalog of many pages is
/// fetched at most a tenth of the time.
pub const CATALOG_GAP_FACTOR: u32 = 10;

/// How long a connection may keep `queued` bytes unflushed before it counts as not reading.
pub fn read_deadline(stall: Duration, queued: usize) -> Duration {
    stall + Duration::from_millis(queued as u64 * 1000 / MIN_READ_RATE)
}

/// Names one peer may list for one content: enough for the copies a folder really holds, not
/// 70,000 names that every view would have to carry.
pub const MAX_NAMES_PER_CONTENT: usize = 16;
/// Memory one peer's catalog may take (by [`entry_cost`]): a folder of 100,000 files with
/// typical names fits.
pub const CATALOG_PEER_BUDGET: usize = 16 << 20;
/// Memory the catalogs of all peers at one IP address may take together: one host announcing
/// many ids gets no more than one big folder.
pub const CATALOG_IP_BUDGET: usize = 16 << 20;
/// Memory all catalogs may take together.
pub const CATALOG_NODE_BUDGET: usize = 64 << 20;

/// What an entry costs in memory, about: its name and the rest of the entry with overheads.
pub fn entry_cost(e: &CatalogEntry) -> usize {
    e.name.len() + 128
}

/// How often the original Python program announces itself (fixed in its code).
pub const PY_INTERVAL: Duration = Duration::from_secs(5);
/// A Python peer silent this long is forgotten: 3½ of its intervals, as for our own peers.
pub const PY_EXPIRY: Duration = Duration::from_millis(17_500);
/// We announce to Python peers (in their JSON) only while one was heard this recently: a LAN
/// without Python peers carries no extra traffic, and one datagram that looks like a Python
/// peer's buys at most this long of our announcements (three or four), not minutes of them.
pub const PY_RECENT: Duration = PY_EXPIRY;
/// How long a one-shot command listens for Python peers before it says nobody shares a file:
/// one of their intervals and a margin for the datagram to arrive and be read.
pub const PY_LISTEN: Duration = Duration::from_millis(5_600);
/// Python peers remembered in all: each costs at most one 64 KiB datagram of names.
pub const MAX_PY_PEERS: usize = 256;
/// Python peers remembered per IP address (one per port it serves on): one host cannot fill
/// the table.
pub const MAX_PY_PEERS_PER_IP: usize = 16;
/// File entries of Python peers remembered per IP address, from the first one it announces:
/// three full announcements of the Python program (about 600 entries each). What one host
/// announces past it is dropped and counted, so a listing costs at most [`MAX_PY_FILES`].
pub const MAX_PY_FILES_PER_IP: usize = 2048;
/// File entries of Python peers remembered in all: eight addresses' shares.
pub const MAX_PY_FILES: usize = 16_384;
/// Chunk connections in flight to one Python peer: its server answers each in a thread of
/// its own behind a listen backlog of a few dozen, which a burst must not overflow.
pub const PY_CONNS_PER_PEER: usize = 8;
/// Chunk connections in flight for one Python download across all its holders.
pub const PY_CONNS_PER_DOWNLOAD: usize = 32;
/// Longest a Python chunk connection may take, from connect to close (the Python downloader
/// gives each attempt 5 s too).
pub const PY_CHUNK_DEADLINE: Duration = Duration::from_secs(5);
/// Failed chunk attempts at one Python peer after which it is no longer asked for that file
/// (a hash mismatch counts at once: it lied).
pub const PY_MAX_FAILURES: u32 = 3;
/// Accepted connections a runtime holds, unread, while their address's share of the
/// connection budget is spent (a Python downloader's burst: one connection per chunk, all
/// at once): a 1 MiB file from each of a few Python peers at once.
pub const MAX_PARKED: usize = 4096;
/// Accepted connections a runtime holds for one address, from the first: a Python
/// downloader's burst for a 1 MiB file; the other three quarters stay for other addresses.
pub const MAX_PARKED_PER_IP: usize = MAX_PARKED / 4;
/// Longest a held connection waits: a Python downloader gives up on a reply after 5 s.
pub const PARK_FOR: Duration = Duration::from_secs(5);
/// How long an accepted connection waits for its first bytes before we send our hello: a
/// Python downloader sends its request at once and must get nothing but the answer; our own
/// peers send their hello at once too; a client that waits for ours gets it this late.
pub const PY_SNIFF: Duration = Duration::from_millis(100);
