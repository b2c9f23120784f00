//! The node's inputs (what happened), outputs (what to do) and events (what to tell the user).
//!
//! Every output that asks for work names what the runtime must answer with: `Connect` with
//! `Connected`/`ConnectFailed`, `Read` with `ReadDone`, `OpenPartial` with `PartialOpened`,
//! `Write` with `Written`, `Finish` with `Finished`. Answers to work the node no longer wants
//! (a closed connection, a cancelled download) are ignored.
//!
//! A chunk is served by a read ([`DiskOp::Read`]), then a [`NetOp::Send`] of it sealed (native
//! peers: every byte on a native connection is encrypted, so `sendfile(2)` cannot carry it) or
//! with its SHA-256 in front (Python peers). Its bytes count against the send budgets until
//! `Flushed`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::disk::{DiskError, FinishError};
use crate::download::FailReason;
use crate::ids::{ContentId, Digest, PeerId};
use crate::manifest::Manifest;
use crate::session::ConnId;

/// Identifies one read the node asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadId(pub u64);

/// Which file a read is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSource {
    /// The shared file with this content (to serve a chunk).
    Shared(ContentId),
    /// The partial download of this content (to re-verify it on resume).
    Partial(ContentId),
}

/// A file this peer shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its name in the shared folder.
    pub name: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// A command from the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Download this content from every peer that has it, saved as `dl_<name>`: the name the
    /// user asked for if given and valid, else the name most holders list it under.
    Get {
        /// Which.
        content: ContentId,
        /// The name to save it under.
        name: Option<String>,
    },
    /// Stop downloading it (the partial file is kept for resume).
    Cancel(ContentId),
    /// Keep this download from being put in place, even once every chunk is verified, until
    /// [`Command::Release`]: its pick may still be withdrawn (a one-shot `get` by name starts
    /// before the view of the LAN has settled, and another file of that name may show up).
    /// Give it right after `Get`; it applies to that download only (not to a Python peer's).
    Hold(ContentId),
    /// Put a held download in place as soon as it is complete.
    Release(ContentId),
    /// Say goodbye to the other peers and close every connection.
    Shutdown,
    /// Dial this address, expecting `key` if given, because of how `found` says: a `--peer`
    /// or `peers add` ([`Found::Static`]) or a link's peer ([`Found::Link`]) is kept in view
    /// (dialled every interval while it has no connection); a peer this folder met before
    /// ([`Found::Known`], `key` required) is probed while no connection with its key is open;
    /// a holder the DHT named ([`Found::Dht`], usually no key) is dialled at once, at most
    /// twice for each time it is added, and kept while its connection lasts. Any other
    /// `found`, our own key, an address nothing can reach, or more than the node holds is
    /// counted (`peers_add_refused`) and ignored. See `node/targets.rs`.
    AddPeer {
        /// Its transfer address.
        addr: SocketAddr,
        /// The key it must present (the handshake fails on any other).
        key: Option<PeerId>,
        /// Why we dial it.
        found: crate::discovery::Found,
    },
}

/// Something that happened, for [`super::Node::handle_input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A UDP datagram arrived on the discovery port.
    Datagram {
        /// Sender.
        from: SocketAddr,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// An outbound connection asked for by [`NetOp::Connect`] is established.
    Connected {
        /// Which.
        conn: ConnId,
    },
    /// An outbound connection could not be established.
    ConnectFailed {
        /// Which.
        conn: ConnId,
    },
    /// Bytes arrived on a connection.
    Received {
        /// Which.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Everything sent on this connection has left the runtime's buffers.
    Flushed {
        /// Which.
        conn: ConnId,
    },
    /// The connection was closed or reset by the other side (or failed).
    Closed {
        /// Which.
        conn: ConnId,
    },
    /// A read asked for by [`DiskOp::Read`] finished.
    ReadDone {
        /// Which read.
        read: ReadId,
        /// The bytes, exactly as many as asked, or the error.
        result: Result<Vec<u8>, DiskError>,
    },
    /// The partial file asked for by [`DiskOp::OpenPartial`] is open.
    PartialOpened {
        /// Which download.
        content: ContentId,
        /// Bytes already in it (from an earlier run), or the error.
        result: Result<u64, DiskError>,
    },
    /// A write asked for by [`DiskOp::Write`] finished.
    Written {
        /// Which download.
        content: ContentId,
        /// Which chunk.
        index: u32,
        /// Success or the error.
        result: Result<(), DiskError>,
    },
    /// The finish asked for by [`DiskOp::Finish`] is done.
    Finished {
        /// Which download.
        content: ContentId,
        /// The final file name in the shared folder, or why it failed.
        result: Result<String, FinishError>,
    },
    /// The shared folder was (re)scanned: these are now all the files we share.
    CatalogChanged {
        /// Every shared file.
        files: Vec<LocalFile>,
    },
    /// The user asked for something.
    Command(Command),
    /// Private sharing changed (the allow file was edited, a pairing added a key): from now
    /// on only these keys are served, or everyone (`None`); see [`super::Config::allow`].
    /// Requests already being served finish.
    Allow {
        /// The keys allowed.
        keys: Option<std::collections::BTreeSet<PeerId>>,
    },
    /// Announcements go to these addresses from now on (the LAN interfaces changed: a cable
    /// plugged in, a VPN up); a changed list is announced on at once.
    AnnounceTo {
        /// Broadcast addresses with the discovery port.
        to: Vec<SocketAddr>,
    },
}

/// What [`super::Node::accept`] decided about a TCP connection the runtime accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the id names the connection in every later input; a refused socket is dropped or held"]
pub enum Admission {
    /// Taken: the runtime reports the connection's events under this id from now on.
    Accepted(ConnId),
    /// Refused for now: only its address's share of the connection budget is spent (a burst of
    /// Python chunk requests does this). The runtime may hold the socket unread and offer it
    /// to `accept` again when a connection ends, instead of dropping it.
    Later,
    /// Refused (too many connections, or the node is shut down): the runtime drops the
    /// socket, and no input about it follows.
    Refused,
}

impl Admission {
    /// The connection's id, if it was taken.
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Admission::Accepted(conn) => Some(conn),
            Admission::Later | Admission::Refused => None,
        }
    }
}

/// Something the runtime must do, from [`super::Node::poll_output`], by kind: a runtime's
/// event loop performs [`NetOp`]s, its disk thread (or it, inline) performs [`DiskOp`]s, and
/// [`Event`]s go to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Network work.
    Net(NetOp),
    /// Disk work.
    Disk(DiskOp),
    /// Tell the user.
    Event(Event),
}

/// Network work for the runtime's event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// Send a UDP datagram from the discovery socket.
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Open a TCP connection; answer with `Connected` or `ConnectFailed`.
    Connect {
        /// The id the node gave it.
        conn: ConnId,
        /// Where.
        addr: SocketAddr,
    },
    /// Send bytes on a connection, after everything sent before; report `Flushed` when the
    /// runtime's buffer for it is empty again.
    Send {
        /// Which.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Stop reading a connection: leave what arrives in the kernel's buffer (so TCP's window
    /// pushes back on the sender) until [`NetOp::Resume`]. The node pauses a connection whose
    /// answers it cannot queue (its send budget is spent, or the disk is behind).
    Pause {
        /// Which.
        conn: ConnId,
    },
    /// Read a paused connection again, starting with what waited in the kernel meanwhile.
    Resume {
        /// Which.
        conn: ConnId,
    },
    /// Close a connection at once: bytes still queued for it are discarded (the node closes a
    /// connection only when it has nothing more to say on it, or nothing more to hear: an idle,
    /// stalled, refused or misbehaving peer, or shutdown). No input about it is expected
    /// afterwards.
    Close {
        /// Which.
        conn: ConnId,
    },
}

/// Disk work, performed in the order the node asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOp {
    /// Read `len` bytes at `offset`; answer with `ReadDone`.
    Read {
        /// The id to answer with.
        read: ReadId,
        /// Which file.
        source: ReadSource,
        /// Offset.
        offset: u64,
        /// Length.
        len: u32,
    },
    /// Open (or create) the hidden partial file of a download; answer with `PartialOpened`.
    OpenPartial {
        /// Which download.
        content: ContentId,
        /// The file's name (checked with `check_name`).
        name: String,
        /// The file's size.
        size: u64,
    },
    /// Write a verified chunk into the partial file; answer with `Written`.
    Write {
        /// Which download.
        content: ContentId,
        /// Which chunk.
        index: u32,
        /// Byte offset.
        offset: u64,
        /// The verified bytes.
        data: Vec<u8>,
    },
    /// Every chunk is written: check the whole partial file against `file_hash` and, only if it
    /// matches, rename it into place as `dl_<name>` without overwriting anything; answer with
    /// `Finished`.
    Finish {
        /// Which download.
        content: ContentId,
        /// The file's name.
        name: String,
        /// Its size.
        size: u64,
        /// Its SHA-256.
        file_hash: Digest,
        /// The manifest its chunks were verified against (none for a Python peer's file, which
        /// has none): once the file is in place, a store that shares files hands it to
        /// its scanner ([`crate::disk::Storage::placed`]), so the file is shared under it
        /// without being read a third time.
        manifest: Option<Arc<Manifest>>,
    },
    /// The download stopped: close the partial file (keep it, for resume).
    ClosePartial {
        /// Which download.
        content: ContentId,
    },
}

/// A peer's share of a finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The peer.
    pub peer: PeerId,
    /// Its address, if still known.
    pub addr: Option<SocketAddr>,
    /// Verified chunks it delivered.
    pub chunks: u32,
    /// Verified bytes it delivered.
    pub bytes: u64,
}

/// What the user may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new peer (or a restarted one).
    PeerFound {
        /// Which.
        peer: PeerId,
        /// Its transfer address.
        addr: SocketAddr,
    },
    /// A peer went quiet or said goodbye.
    PeerLost {
        /// Which.
        peer: PeerId,
        /// Its transfer address.
        addr: SocketAddr,
    },
    /// A peer's catalog arrived.
    CatalogUpdated {
        /// Which.
        peer: PeerId,
        /// How many files it shares.
        files: usize,
    },
    /// The manifest is verified; chunks are being fetched.
    DownloadStarted {
        /// Which.
        content: ContentId,
        /// Its name.
        name: String,
        /// Its size.
        size: u64,
    },
    /// Another chunk is verified on disk.
    Progress {
        /// Which.
        content: ContentId,
        /// Verified bytes on disk.
        done: u64,
        /// File size.
        total: u64,
        /// Peers with requests in flight.
        peers: usize,
    },
    /// A chunk failed its hash; its sender is no longer asked for this file.
    ChunkRejected {
        /// Which download.
        content: ContentId,
        /// The sender.
        peer: PeerId,
        /// Which chunk.
        index: u32,
    },
    /// The file is verified and in place.
    DownloadDone {
        /// Which.
        content: ContentId,
        /// Its final name in the shared folder.
        file: String,
        /// Its size.
        size: u64,
        /// Its SHA-256.
        file_hash: Digest,
        /// Bytes fetched over the network.
        fetched: u64,
        /// Chunks found valid on disk from an earlier run.
        reused: u32,
        /// Chunks rejected for a bad hash.
        rejected: u32,
        /// Who delivered what.
        sources: Vec<Source>,
    },
    /// The download stopped without a file.
    DownloadFailed {
        /// Which.
        content: ContentId,
        /// Its name.
        name: String,
        /// Why.
        reason: FailReason,
    },
}
