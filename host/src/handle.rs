//! The small API every runtime gives the CLI: a [`Handle`] to a running peer.
//!
//! The CLI does not know which runtime runs the peer: it sends [`Request`]s, asks for
//! [`Snapshot`]s, and reads [`Notice`]s. Dropping the handle shuts the peer down.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use p2pshare_proto::{
    ContentId, DownloadView, Event, Found, PeerId, PeerView, RemoteFile, RemoteView, Stats,
    TargetView,
};

/// What the CLI asks of a running peer.
#[derive(Debug)]
pub enum Request {
    /// Download this content, saved under `name` if given (else the name most holders use).
    Get {
        /// Which.
        content: ContentId,
        /// The name the user asked for.
        name: Option<String>,
    },
    /// Download this content like [`Request::Get`], and send its events (progress, done,
    /// failed) to `events` as well as to the notices: how a caller other than the CLI's own
    /// loop (the control socket) follows the download it asked for.
    GetWatched {
        /// Which.
        content: ContentId,
        /// The name the user asked for.
        name: Option<String>,
        /// Where its events go; the sender is dropped after the last one.
        events: Sender<Event>,
    },
    /// Dial a peer at `addr` and keep it (`p2pshare_proto::Command::AddPeer`): a link's peer
    /// (`found: Link`), `peers add` (`Static`). With `remember` (and a key), it is also kept in
    /// the folder's known peers ([`crate::known`]), so a later start looks for it there.
    AddPeer {
        /// Its transfer address.
        addr: std::net::SocketAddr,
        /// The key it must present.
        key: Option<PeerId>,
        /// Why it is dialled.
        found: Found,
        /// Keep it among the folder's known peers too.
        remember: bool,
    },
    /// Stop downloading it (the partial file is kept).
    Cancel(ContentId),
    /// Do not put this download in place until [`Request::Release`], even once complete
    /// (`p2pshare_proto::Command::Hold`): send right after the `Get`.
    Hold(ContentId),
    /// Put a held download in place as soon as it is complete.
    Release(ContentId),
    /// Send back a [`Snapshot`], its file list still to be grouped ([`Taken::finish`]).
    Snapshot(Sender<Taken>),
    /// Send back a [`Snapshot`] without the other peers' files (`remote` empty): the loop
    /// takes no view of their catalogs at all.
    State(Sender<Snapshot>),
    /// Send back the counters alone (cheap: no views are built), and the notices dropped.
    Counters(Sender<(Stats, u64)>),
    /// Send a copy of every notice from now on to this channel too, through an outbox of its
    /// own (a full channel drops chatter and holds what commands wait for, as for the CLI's):
    /// how a second user interface (the web page) follows the peer.
    Observe(SyncSender<Notice>),
    /// Look this content's holders up beyond the LAN, in the DHT (`--dht`; a peer without
    /// it ignores this): a `get` found no holder on the LAN. Holders found come as
    /// [`Notice::Dht`] and are dialled as peers found by the DHT.
    Lookup(ContentId),
    /// Look a peer's address record up in the DHT (`--dht`): a link names its key and its
    /// addresses (if any) do not answer. The addresses it gives become targets expecting that
    /// key. Within the DHT's lookup bounds; ignored without a DHT node.
    Resolve(PeerId),
    /// Say goodbye and stop.
    Shutdown,
}

/// One of our own shared files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// Its name.
    pub name: String,
    /// Its content id.
    pub content: ContentId,
    /// Its size.
    pub size: u64,
}

/// The peer's state at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Our id.
    pub me: PeerId,
    /// Our transfer port.
    pub transfer_port: u16,
    /// Known peers.
    pub peers: Vec<PeerView>,
    /// The addresses dialled without having been heard (`--peer`, `peers add`, links' peers,
    /// probes of known peers) and what came of their dials.
    pub targets: Vec<TargetView>,
    /// The native peers in `peers` this folder had not met before this run (its memory of the
    /// peers it met: [`crate::known`]): `peers` marks them new.
    pub new_peers: std::collections::BTreeSet<p2pshare_proto::PeerId>,
    /// Files other peers share.
    pub remote: Vec<RemoteFile>,
    /// Downloads in progress.
    pub downloads: Vec<DownloadView>,
    /// Our shared files.
    pub shared: Vec<SharedFile>,
    /// Counters of dropped input.
    pub stats: Stats,
    /// Notices dropped because the CLI did not keep up (see [`crate::outbox`]).
    pub notices_dropped: u64,
    /// True once the first scan of the shared folder is done.
    pub scanned: bool,
    /// True once the view of the LAN has settled (`Node::is_settled`).
    pub settled: bool,
    /// True once the peers had time to answer our first announcement
    /// (`Node::has_been_answered`).
    pub answered: bool,
    /// True once a Python peer, or a p2pshare peer announcing to Python peers, was heard: the
    /// LAN has Python peers, which announce only every 5 s (`Node::python_around`).
    pub python_around: bool,
    /// Sharing privately with this many keys (`--allow`, the allow files), or with everyone
    /// (`None`).
    pub allowed: Option<usize>,
    /// What the DHT node did (`--dht`; `None` without it).
    pub dht: Option<crate::dht::DhtStatus>,
}

/// A [`Snapshot`] as the event loop takes it: everything but the other peers' files, which
/// come as the node's [`RemoteView`] (a reference to each catalog). The loop pays per peer;
/// grouping the files, O(n log n) in the entries a remote peer may grow to hundreds of
/// thousands, is left to [`Taken::finish`] on the asking thread, so a `list` or a web page
/// asking for the view never holds up the loop (and a newcomer's answer) for it.
#[derive(Debug)]
pub struct Taken {
    /// The snapshot, with `remote` empty.
    pub(crate) snapshot: Snapshot,
    /// The other peers' files, to be grouped.
    pub(crate) remote: RemoteView,
}

impl Taken {
    /// Groups the other peers' files into the snapshot: call on the thread that asked.
    pub fn finish(self) -> Snapshot {
        Snapshot {
            remote: self.remote.files(),
            ..self.snapshot
        }
    }

    /// As [`Taken::finish`], with only the files `keep` accepts by one of their names
    /// ([`RemoteView::files_where`]).
    pub fn finish_where(self, keep: impl Fn(&str, &ContentId) -> bool) -> Snapshot {
        Snapshot {
            remote: self.remote.files_where(keep),
            ..self.snapshot
        }
    }
}

/// What the peer tells the CLI as it happens.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A protocol event.
    Event(Event),
    /// A scan of the shared folder changed what we share.
    Scanned {
        /// Files shared now.
        files: usize,
        /// Files hashed by this scan.
        hashed_files: usize,
        /// Bytes hashed by this scan.
        hashed_bytes: u64,
    },
    /// Something the user should know that is not an error of a command (e.g. the folder
    /// could not be scanned this time).
    Warning(String),
    /// What the DHT node did (`--dht`): holders found, a lookup ended, an announce.
    Dht(crate::dht::Report),
}

/// The peer has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the peer has stopped")
    }
}

impl std::error::Error for Stopped {}

/// A way to drive a running peer from another thread (the control socket): requests and
/// snapshots, but no notices and no shutdown. Cheap to clone.
#[derive(Clone)]
pub struct Controller {
    requests: Sender<Request>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Controller")
    }
}

impl Controller {
    /// Sends a request to the peer.
    pub fn request(&self, r: Request) -> Result<(), Stopped> {
        self.requests.send(r).map_err(|_| Stopped)?;
        (self.wake)();
        Ok(())
    }

    /// Sends the request `make` builds around a reply channel, and waits for the reply.
    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T, Stopped> {
        let (tx, rx) = mpsc::channel();
        self.request(make(tx))?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| Stopped)
    }

    /// The peer's current state.
    pub fn snapshot(&self) -> Result<Snapshot, Stopped> {
        self.ask(Request::Snapshot).map(Taken::finish)
    }

    /// The peer's current state without the other peers' files (`remote` empty): what
    /// `peers` and `status` show, at no cost in the size of the LAN's catalogs.
    pub fn state(&self) -> Result<Snapshot, Stopped> {
        self.ask(Request::State)
    }

    /// The other peers' files as the node holds them, ungrouped (a reference to each
    /// catalog): what a `list` walks ([`p2pshare_proto::Walk`]) to show its thousand rows
    /// without a grouped copy of every file on the LAN.
    pub fn remote(&self) -> Result<RemoteView, Stopped> {
        self.ask(Request::Snapshot).map(|t| t.remote)
    }

    /// The peer's current state with only the other peers' files `keep` accepts by one of
    /// their names (and content id): enough to resolve what a `get` names, without the
    /// memory of a view of every file on the LAN.
    pub fn snapshot_where(
        &self,
        keep: impl Fn(&str, &ContentId) -> bool,
    ) -> Result<Snapshot, Stopped> {
        self.ask(Request::Snapshot).map(|t| t.finish_where(keep))
    }

    /// The counters of dropped input and the notices dropped, without building the views
    /// (what `serve -v` polls every second, however big the other peers' catalogs are).
    pub fn counters(&self) -> Result<(Stats, u64), Stopped> {
        self.ask(Request::Counters)
    }

    /// A copy of every notice from now on (see [`Request::Observe`]); the receiver should be
    /// read promptly, or chatter (progress, peers found) is dropped.
    pub fn observe(&self) -> Result<Receiver<Notice>, Stopped> {
        let (tx, rx) = mpsc::sync_channel(crate::outbox::NOTICES);
        self.request(Request::Observe(tx))?;
        Ok(rx)
    }

    /// Starts downloading `content` (saved under `name` if given); its events come on the
    /// receiver, which ends after `DownloadDone` or `DownloadFailed`.
    pub fn get_watched(
        &self,
        content: ContentId,
        name: Option<String>,
    ) -> Result<Receiver<Event>, Stopped> {
        let (events, rx) = mpsc::channel();
        self.request(Request::GetWatched {
            content,
            name,
            events,
        })?;
        Ok(rx)
    }
}

/// A running peer. Dropping it shuts the peer down and waits for it.
pub struct Handle {
    ctl: Controller,
    notices: Receiver<Notice>,
    thread: Option<JoinHandle<()>>,
    transfer_port: u16,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("transfer_port", &self.transfer_port)
            .finish()
    }
}

impl Handle {
    /// Assembles a handle: a runtime calls this once its loop thread runs.
    pub fn new(
        requests: Sender<Request>,
        wake: Arc<dyn Fn() + Send + Sync>,
        notices: Receiver<Notice>,
        thread: JoinHandle<()>,
        transfer_port: u16,
    ) -> Handle {
        Handle {
            ctl: Controller { requests, wake },
            notices,
            thread: Some(thread),
            transfer_port,
        }
    }

    /// The TCP port the peer serves on.
    pub fn transfer_port(&self) -> u16 {
        self.transfer_port
    }

    /// Sends a request to the peer.
    pub fn request(&self, r: Request) -> Result<(), Stopped> {
        self.ctl.request(r)
    }

    /// A [`Controller`] for this peer, for another thread.
    pub fn controller(&self) -> Controller {
        self.ctl.clone()
    }

    /// Starts downloading `content`, saved under `name` (the name the user asked for) or,
    /// without one, the name most holders use; follow it through [`Handle::next_notice`].
    pub fn get(&self, content: ContentId, name: Option<String>) -> Result<(), Stopped> {
        self.request(Request::Get { content, name })
    }

    /// The peer's current state.
    pub fn snapshot(&self) -> Result<Snapshot, Stopped> {
        self.ctl.snapshot()
    }

    /// The peer's current state without the other peers' files ([`Controller::state`]).
    pub fn state(&self) -> Result<Snapshot, Stopped> {
        self.ctl.state()
    }

    /// The other peers' files, ungrouped ([`Controller::remote`]).
    pub fn remote(&self) -> Result<RemoteView, Stopped> {
        self.ctl.remote()
    }

    /// The peer's current state with only some of the other peers' files
    /// ([`Controller::snapshot_where`]).
    pub fn snapshot_where(
        &self,
        keep: impl Fn(&str, &ContentId) -> bool,
    ) -> Result<Snapshot, Stopped> {
        self.ctl.snapshot_where(keep)
    }

    /// The counters of dropped input and the notices dropped (see [`Controller::counters`]).
    pub fn counters(&self) -> Result<(Stats, u64), Stopped> {
        self.ctl.counters()
    }

    /// Waits up to `timeout` for the next notice.
    pub fn next_notice(&self, timeout: Duration) -> Result<Option<Notice>, Stopped> {
        match self.notices.recv_timeout(timeout) {
            Ok(n) => Ok(Some(n)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Stopped),
        }
    }

    /// Says goodbye to the other peers, stops, and waits for the loop to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.request(Request::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop();
    }
}
