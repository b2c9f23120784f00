//! One TCP connection: its handshake, framing, serving queue and timers.
//!
//! Life of a session: an outbound one is `Connecting` until the runtime reports it connected;
//! both ends then run the Noise handshake ([`Channel`]: preambles, three messages, each side's
//! key proven), send a `Hello` sealed and wait for the other's (`Handshaking`, under one
//! deadline); after a valid `Hello` from the key the handshake proved, the session is `Open`
//! and carries requests both ways. Every frame travels sealed: [`Session::on_bytes`] opens the
//! records before the frame decoder sees a byte, [`Session::seal`] seals what goes out.
//!
//! The node drives a session only through its transitions ([`Session::start_handshake`],
//! [`Session::open`], [`Session::request_sent`], [`Session::next_to_serve`], …); its fields are
//! private, so the invariants below hold wherever it is used.
//!
//! Invariants:
//! - every state has a deadline or a liveness rule: connect and handshake time out; an open
//!   session with requests outstanding and no answer for `stall` (no answer frame, and no
//!   byte of a record or frame still arriving) is stalled: pings, pongs, hellos and other
//!   frames that answer nothing do not keep it alive, so a peer that answers our pings but
//!   never our request cannot hold a download forever; an idle one is closed after `idle`
//!   (static-peer sessions are pinged instead, and closed as [`CloseReason::Unanswered`] when
//!   [`UNANSWERED_PINGS`] ping intervals pass with nothing received after a ping). One table,
//!   [`Session::timers`], holds them: both "when to wake" ([`Session::poll_timeout`]) and
//!   "what is due" ([`Session::due`]) read it, so the two cannot drift apart;
//! - a session is `Open` only after a hello from the key its handshake proved (and that key is
//!   the peer it expected, if it expected one); no frame is decoded before the handshake is
//!   done;
//! - the receive buffer holds at most one incomplete frame ([`FrameDecoder`]), of at most
//!   `MAX_HANDSHAKE_FRAME` (1 KiB) until the peer's hello opened the session, then of at most
//!   [`MAX_REQUEST_FRAME`] (4 KiB) or the largest answer we asked for on it;
//! - the serving side queues at most [`MAX_QUEUED_REQUESTS`] chunk requests and
//!   [`MAX_QUEUED_MANIFESTS`] manifest requests, has at most `serve_window` chunks read or sent
//!   but not yet flushed by the runtime, and at most one catalog page and one manifest answer
//!   unflushed; what it sent and has not seen flushed is counted in bytes ([`Session::owed`]),
//!   and a session that keeps bytes unflushed past [`budget::read_deadline`] is closed as
//!   [`CloseReason::NotReading`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::budget::{self, CONN_SEND_BUDGET, MAX_QUEUED_MANIFESTS};
use crate::bugs::Bugs;
use crate::ids::{ContentId, PeerId};
use crate::noise::{Channel, ChannelError};
use crate::wire::frame::{Frame, FrameError};
use crate::wire::{FrameDecoder, MAX_FRAME_LEN};

/// Most chunk requests a peer may queue on one connection; more are answered `Busy`.
pub const MAX_QUEUED_REQUESTS: usize = 256;
/// Longest frame accepted before the peer's `Hello` (a hello is under 100 bytes): a host that
/// has not said who it is cannot make us buffer megabytes (512 connections × 8 MiB).
const MAX_HANDSHAKE_FRAME: usize = 1024;
/// Longest frame a peer may send unasked after its hello (pings, requests, refusals: all under
/// 100 bytes). Bigger frames come only as answers on our own connection, each allowed up to
/// the size of what we asked for ([`Session::request_sent`]): a host cannot make us buffer a
/// frame of megabytes on every connection it opens.
pub const MAX_REQUEST_FRAME: usize = 4096;
/// Contents one connection may follow with `Interested` at once: more downloads at a time
/// than a person starts, not a list every verified chunk must be checked against at length.
pub const MAX_INTERESTS: usize = 64;
/// Ping intervals a pinned session may go with a ping unanswered and nothing received before
/// it is closed as [`CloseReason::Unanswered`]: a kept peer's connection whose other end
/// vanished (a half-open TCP connection writes without error for many minutes) is dialled
/// again after 15 s instead of being listed for ever.
pub const UNANSWERED_PINGS: u32 = 3;

/// Identifies a connection between the node and its runtime. The node numbers every one:
/// outbound ones (in `NetOp::Connect`) with the top bit clear, accepted ones (from
/// `Node::accept`) with it set, so the two never collide and no id is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    const INBOUND: u64 = 1 << 63;

    /// The id of the `n`-th accepted connection.
    pub(crate) fn inbound(n: u64) -> ConnId {
        ConnId(n | Self::INBOUND)
    }

    /// True for accepted connections.
    pub fn is_inbound(self) -> bool {
        self.0 & Self::INBOUND != 0
    }
}

/// Where a session is in its life, with what it knows there (as quinn's connection `State`
/// carries each state's data): who it expects before the hello, who said hello after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Outbound, waiting for the runtime's `Connected` (the connect deadline runs from
    /// `since`).
    Connecting {
        /// The peer it is opened to, if known.
        expected: Option<PeerId>,
        /// When the connect was asked for.
        since: Instant,
    },
    /// Preamble and hello sent, waiting for the other side's (the handshake deadline runs from
    /// `since`).
    Handshaking {
        /// The peer whose hello is expected, if known (an accepted connection expects anyone).
        expected: Option<PeerId>,
        /// When our hello went out (or the connection was accepted).
        since: Instant,
    },
    /// The hello of `peer` arrived.
    Open {
        /// Who said hello.
        peer: PeerId,
        /// The instance its hello named (a peer that restarts gets a new one).
        instance: u64,
    },
}

/// Why the node ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The runtime could not connect.
    ConnectFailed,
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// No valid hello within the handshake timeout.
    HandshakeTimeout,
    /// Requests outstanding and nothing received for the stall timeout.
    Stalled,
    /// Nothing to do for the idle timeout.
    Idle,
    /// The bytes broke the framing, or a frame came that the state does not allow.
    Protocol,
    /// The other side closed or reset.
    Remote,
    /// What we sent stayed unflushed past its deadline: the other side does not read.
    NotReading,
    /// A pinned session's pings went unanswered, nothing at all arriving for
    /// [`UNANSWERED_PINGS`] ping intervals: its other end vanished without closing it (a
    /// half-open connection), so it is closed and its target dialled again.
    Unanswered,
    /// The peer expired or said goodbye.
    PeerGone,
    /// The hello named another peer than expected.
    WrongPeer,
    /// This node is shutting down.
    Shutdown,
}

impl CloseReason {
    /// True when the peer did nothing wrong: its link is not retried with backoff.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            CloseReason::Idle | CloseReason::Shutdown | CloseReason::PeerGone
        )
    }
}

/// Timeouts of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From `Connect` to `Connected`.
    pub connect: Duration,
    /// From sending our hello to receiving theirs.
    pub handshake: Duration,
    /// With requests outstanding, the longest silence before the peer counts as stalled.
    pub stall: Duration,
    /// With nothing outstanding either way, how long before an outbound session is closed
    /// (inbound ones get twice that, static-peer ones never).
    pub idle: Duration,
    /// How often static-peer sessions are pinged.
    pub ping: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            stall: Duration::from_secs(5),
            idle: Duration::from_secs(60),
            ping: Duration::from_secs(5),
        }
    }
}

/// What the timers ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Close the session.
    Close(CloseReason),
    /// Send a ping.
    Ping,
}

/// Why a hello cannot open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// No hello is expected in this state (the session is connecting, or already open).
    NotExpected,
    /// The hello names another peer than the one this session was opened to.
    WrongPeer,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    id: ConnId,
    remote: SocketAddr,
    state: State,
    /// True when this session keeps a static peer (`--peer`) in view: pinged, never idle.
    pinned: bool,
    /// Since when a ping of ours has gone out with nothing received after it.
    ping_unanswered: Option<Instant>,
    /// The connection's handshake and records, from [`Session::start_handshake`] on.
    channel: Option<Channel>,
    /// Plaintext just opened, on its way to the decoder (kept to reuse its allocation).
    plain: Vec<u8>,
    decoder: FrameDecoder,
    last_recv: Instant,
    last_send: Instant,
    /// Our requests on this session not yet answered (chunks, catalog, manifest).
    outstanding: u32,
    /// The longest frame accepted after the hello: [`MAX_REQUEST_FRAME`], or the largest
    /// answer we asked for.
    answer_max: usize,
    /// Since when we wait for an answer with none arriving (stall clock).
    waiting_since: Option<Instant>,
    /// Chunk requests received and not yet read.
    serve_queue: VecDeque<(ContentId, u32)>,
    /// Chunk reads in flight for this connection.
    serving: u32,
    /// Chunks sent since the runtime last reported `Flushed`.
    unflushed: u32,
    /// Bytes sent since the runtime last reported `Flushed`.
    queued_bytes: usize,
    /// Since when bytes have been waiting to be flushed.
    unflushed_since: Option<Instant>,
    /// Bytes of chunk reads in flight for this connection.
    reading_bytes: usize,
    /// A catalog page, and a manifest, are among the unflushed bytes.
    catalog_out: bool,
    manifest_out: bool,
    /// A catalog page asked for while another was unflushed: sent after the flush.
    catalog_queued: Option<u32>,
    /// Manifest requests waiting while another manifest is unflushed.
    manifests_wanted: VecDeque<ContentId>,
    /// We told the runtime to stop reading this connection.
    paused: bool,
    /// Its next answer waits for room in a shared send budget (its address's or the node's):
    /// it is served again when any connection flushes or ends.
    starved: bool,
    /// Contents the peer asked to hear about (`Interested`) while we download them: each
    /// chunk we verify is announced to it with a `Have`.
    interests: std::collections::BTreeSet<ContentId>,
    /// Contents the peer said it downloads (it sent `Interested`): a chunk sent to it may be
    /// refused to others as `Taken`, since it will have and serve that chunk.
    fetching: std::collections::BTreeSet<ContentId>,
    /// Chunks refused to this peer as `Taken`: each at most once, so a peer that takes chunks
    /// and never shares them delays others by one round trip a chunk, not for ever.
    taken: std::collections::BTreeSet<(ContentId, u32)>,
    /// Planted bugs (simulator only): `no_read_deadline` drops the `NotReading` timer.
    bugs: Bugs,
}

impl Session {
    /// A new session; outbound ones start `Connecting`, inbound ones `Handshaking`. `peer` is
    /// the peer an outbound session is opened to, if known.
    pub fn new(id: ConnId, remote: SocketAddr, peer: Option<PeerId>, now: Instant) -> Session {
        Session {
            id,
            remote,
            state: if id.is_inbound() {
                State::Handshaking {
                    expected: peer,
                    since: now,
                }
            } else {
                State::Connecting {
                    expected: peer,
                    since: now,
                }
            },
            pinned: false,
            ping_unanswered: None,
            channel: None,
            plain: Vec::new(),
            decoder: {
                let mut d = FrameDecoder::new();
                d.set_max_len(MAX_HANDSHAKE_FRAME);
                d
            },
            last_recv: now,
            last_send: now,
            outstanding: 0,
            answer_max: MAX_REQUEST_FRAME,
            waiting_since: None,
            serve_queue: VecDeque::new(),
            serving: 0,
            unflushed: 0,
            queued_bytes: 0,
            unflushed_since: None,
            reading_bytes: 0,
            catalog_out: false,
            manifest_out: false,
            catalog_queued: None,
            manifests_wanted: VecDeque::new(),
            paused: false,
            starved: false,
            interests: std::collections::BTreeSet::new(),
            fetching: std::collections::BTreeSet::new(),
            taken: std::collections::BTreeSet::new(),
            bugs: Bugs::default(),
        }
    }

    /// Plants `bugs` in this session (simulator tests only; nothing without the `bugs`
    /// feature).
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    // ---- getters ----

    /// The connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The other end's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Where the session is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once the peer's hello opened the session.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// The peer at the other end: the one that said hello, or the one an outbound session was
    /// opened to.
    pub fn peer(&self) -> Option<PeerId> {
        match self.state {
            State::Connecting { expected, .. } | State::Handshaking { expected, .. } => expected,
            State::Open { peer, .. } => Some(peer),
        }
    }

    /// The peer, once the session is open.
    pub fn open_peer(&self) -> Option<PeerId> {
        match self.state {
            State::Open { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// The instance the peer's hello named.
    pub fn instance(&self) -> Option<u64> {
        match self.state {
            State::Open { instance, .. } => Some(instance),
            _ => None,
        }
    }

    /// Bytes buffered towards the next frame (and the next record or handshake message).
    pub fn buffered(&self) -> usize {
        self.decoder.buffered() + self.channel.as_ref().map_or(0, Channel::buffered)
    }

    /// The key the handshake proved, once it is done.
    pub fn proven(&self) -> Option<PeerId> {
        self.channel.as_ref().and_then(Channel::remote)
    }

    /// Chunk requests waiting to be served.
    pub fn queued_requests(&self) -> usize {
        self.serve_queue.len()
    }

    /// Manifest requests waiting to be answered.
    pub fn queued_manifests(&self) -> usize {
        self.manifests_wanted.len()
    }

    /// Bytes this connection holds of our memory: sent and not yet flushed by the runtime,
    /// plus chunk reads in flight for it. The send budgets are counted in these.
    pub fn owed(&self) -> usize {
        self.queued_bytes + self.reading_bytes
    }

    /// True when we told the runtime to stop reading this connection.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// True when this connection should not be read for now: its own send budget is spent,
    /// or its queues of requests are full (more requests would only be refused).
    pub fn wants_pause(&self) -> bool {
        self.owed() >= CONN_SEND_BUDGET
            || self.serve_queue.len() >= MAX_QUEUED_REQUESTS
            || self.manifests_wanted.len() >= MAX_QUEUED_MANIFESTS
    }

    /// True when a paused connection may be read again: its queues and its own budget are at
    /// most half full (with room to spare, a reader that asks without reading is not woken for
    /// every answer that leaves).
    pub fn may_resume(&self) -> bool {
        self.owed() <= CONN_SEND_BUDGET / 2
            && self.serve_queue.len() <= MAX_QUEUED_REQUESTS / 2
            && self.manifests_wanted.len() < MAX_QUEUED_MANIFESTS
    }

    /// Records that the runtime was told to pause (`true`) or resume reading; false when that
    /// was already so.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        std::mem::replace(&mut self.paused, paused) != paused
    }

    /// True while its next answer waits for room in a shared send budget.
    pub fn is_starved(&self) -> bool {
        self.starved
    }

    /// Records whether its next answer waits for room in a shared send budget.
    pub fn set_starved(&mut self, starved: bool) {
        self.starved = starved;
    }

    // ---- transitions ----

    /// The connection is up (outbound) or was accepted (inbound, and its first bytes are
    /// ours): its handshake starts with `channel` (made to expect [`Session::peer`], if we
    /// dialled a known peer), and the handshake deadline runs from `now`.
    pub fn start_handshake(&mut self, now: Instant, channel: Channel) {
        self.state = State::Handshaking {
            expected: self.peer(),
            since: now,
        };
        self.channel = Some(channel);
    }

    /// Appends the handshake bytes to send now (in clear) to `out`.
    pub fn transmit(&mut self, out: &mut Vec<u8>) {
        if let Some(c) = &mut self.channel {
            c.poll_transmit(out);
        }
    }

    /// Seals `plaintext` (whole frames, or pieces of one in order) into `out`. An error before
    /// the handshake is done, or once the channel failed: the connection must end.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), ChannelError> {
        match &mut self.channel {
            Some(c) => c.seal(plaintext, out),
            None => Err(ChannelError::Transport(
                crate::noise::TransportError::Internal,
            )),
        }
    }

    /// The peer's hello arrived: the session opens, if it was waiting for a hello and the
    /// hello names the peer it expected.
    pub fn open(&mut self, peer: PeerId, instance: u64) -> Result<(), HelloError> {
        let State::Handshaking { expected, .. } = self.state else {
            return Err(HelloError::NotExpected);
        };
        if expected.is_some_and(|p| p != peer) {
            return Err(HelloError::WrongPeer);
        }
        self.state = State::Open { peer, instance };
        self.decoder.set_max_len(MAX_REQUEST_FRAME);
        Ok(())
    }

    /// This session keeps a static peer in view: it is pinged, never closed as idle.
    pub fn pin(&mut self) {
        self.pinned = true;
    }

    /// This session no longer keeps a peer in view (its target gave way to another): it is
    /// closed once idle, as any other.
    pub fn unpin(&mut self) {
        self.pinned = false;
        self.ping_unanswered = None;
    }

    /// A ping went out: unless something arrives within [`UNANSWERED_PINGS`] ping intervals,
    /// the session is closed as [`CloseReason::Unanswered`].
    pub fn ping_sent(&mut self, now: Instant) {
        self.ping_unanswered.get_or_insert(now);
    }

    /// Records received bytes (for the stall and idle clocks), passes them through the
    /// handshake or opens their records, and buffers the plaintext for
    /// [`Session::next_frame`]. Returns the other side's key when these bytes finished the
    /// handshake (from then on it is the peer whose hello is expected); an error ends the
    /// connection.
    pub fn on_bytes(&mut self, now: Instant, data: &[u8]) -> Result<Option<PeerId>, ChannelError> {
        self.last_recv = now;
        self.ping_unanswered = None;
        let Some(channel) = &mut self.channel else {
            return Err(ChannelError::Transport(
                crate::noise::TransportError::Internal,
            ));
        };
        let done = channel.receive(data, &mut self.plain)?;
        if channel.buffered() > 0 && self.waiting_since.is_some() {
            // A record still arriving (a large answer on a slow link) is progress.
            self.waiting_since = Some(now);
        }
        if let (Some(key), State::Handshaking { expected, .. }) = (done, &mut self.state)
            && !self.bugs.skip_identity_check()
        {
            // A dial to a known peer already made the handshake prove that key.
            expected.get_or_insert(key);
        }
        self.decoder.push(&self.plain);
        self.plain.clear();
        Ok(done)
    }

    /// The next whole frame received, if any.
    /// A frame still arriving when the whole ones are taken (a large answer on a slow link)
    /// is progress: the stall clock starts again from its last bytes.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let frame = self.decoder.next_frame();
        if matches!(frame, Ok(None)) && self.decoder.buffered() > 0 && self.waiting_since.is_some()
        {
            self.waiting_since = Some(self.last_recv);
        }
        frame
    }

    /// Records that we sent `bytes` (for the idle and ping clocks and the send budget).
    pub fn sent(&mut self, now: Instant, bytes: usize) {
        self.last_send = now;
        self.queued_bytes += bytes;
        if bytes > 0 && self.unflushed_since.is_none() {
            self.unflushed_since = Some(now);
        }
    }

    /// Records that we sent a request whose answer may be a frame of up to `answer` bytes
    /// (frames that long are accepted from now on; the limit never shrinks back, so a frame
    /// under way is never cut).
    pub fn request_sent(&mut self, now: Instant, answer: usize) {
        if answer > self.answer_max {
            self.answer_max = answer.min(MAX_FRAME_LEN);
            self.decoder.set_max_len(self.answer_max);
        }
        if self.outstanding == 0 {
            self.waiting_since = Some(now);
        }
        self.outstanding += 1;
        self.last_send = now;
    }

    /// Lets frames of up to `answer` bytes arrive (a message we sent may be answered by one)
    /// without counting a request outstanding: what a peer may leave unanswered, such as
    /// `Interested` to a peer that does not know the message, must not make the session stall.
    pub fn allow_answer(&mut self, answer: usize) {
        if answer > self.answer_max {
            self.answer_max = answer.min(MAX_FRAME_LEN);
            self.decoder.set_max_len(self.answer_max);
        }
    }

    /// Records that one outstanding request was answered (or abandoned).
    pub fn request_done(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.waiting_since = (self.outstanding > 0).then_some(self.last_recv);
    }

    // ---- swarming ----

    /// The peer wants `Have`s for `content` on this connection; false (and nothing recorded)
    /// past [`MAX_INTERESTS`].
    pub fn add_interest(&mut self, content: ContentId) -> bool {
        if self.interests.len() >= MAX_INTERESTS && !self.interests.contains(&content) {
            return false;
        }
        self.interests.insert(content);
        true
    }

    /// The peer said it downloads `content` (bounded like the interests).
    pub fn note_fetching(&mut self, content: ContentId) {
        if self.fetching.len() < MAX_INTERESTS {
            self.fetching.insert(content);
        }
    }

    /// True when the peer said it downloads `content`.
    pub fn is_fetching(&self, content: &ContentId) -> bool {
        self.fetching.contains(content)
    }

    /// Whether chunk `index` of `content` may be refused to this peer as `Taken`: true the
    /// first time only (the record is bounded: past 4,096 chunks it starts afresh).
    pub fn take_once(&mut self, content: ContentId, index: u32) -> bool {
        if self.taken.len() >= 4096 {
            self.taken.clear();
        }
        self.taken.insert((content, index))
    }

    /// True when the peer asked for `Have`s of `content` here.
    pub fn is_interested(&self, content: &ContentId) -> bool {
        self.interests.contains(content)
    }

    // ---- serving ----

    /// Queues a chunk request of the peer; false when [`MAX_QUEUED_REQUESTS`] already wait.
    pub fn queue_request(&mut self, content: ContentId, index: u32) -> bool {
        if self.serve_queue.len() >= MAX_QUEUED_REQUESTS {
            return false;
        }
        self.serve_queue.push_back((content, index));
        true
    }

    /// The next queued request to read, while fewer than `window` chunks are read or sent but
    /// not flushed; it stays queued until [`Session::start_serving`].
    pub fn next_to_serve(&self, window: u32) -> Option<(ContentId, u32)> {
        if self.serving + self.unflushed >= window {
            return None;
        }
        self.serve_queue.front().copied()
    }

    /// The request from [`Session::next_to_serve`] is being read (`len` bytes); it counts as
    /// being read until [`Session::served`].
    pub fn start_serving(&mut self, len: u32) {
        if self.serve_queue.pop_front().is_some() {
            self.serving += 1;
            self.reading_bytes += len as usize;
        }
    }

    /// Drops the request from [`Session::next_to_serve`] unread (its content is gone).
    pub fn skip_serving(&mut self) {
        self.serve_queue.pop_front();
    }

    /// A read of `len` bytes for serving finished; `sent` when its chunk went out on this
    /// connection.
    pub fn served(&mut self, sent: bool, len: u32) {
        self.serving = self.serving.saturating_sub(1);
        self.reading_bytes = self.reading_bytes.saturating_sub(len as usize);
        if sent {
            self.unflushed += 1;
        }
    }

    /// The peer asked for catalog page `page`: it is sent when no other page is unflushed
    /// ([`Session::catalog_due`]); a newer ask replaces a waiting one.
    pub fn queue_catalog(&mut self, page: u32) {
        self.catalog_queued = Some(page);
    }

    /// The catalog page to send now, if one is wanted and none is unflushed.
    pub fn catalog_due(&self) -> Option<u32> {
        self.catalog_queued.filter(|_| !self.catalog_out)
    }

    /// The page from [`Session::catalog_due`] went out; it counts as unflushed from here.
    pub fn catalog_sent(&mut self) {
        self.catalog_queued = None;
        self.catalog_out = true;
    }

    /// Queues a manifest request; false when [`MAX_QUEUED_MANIFESTS`] already wait.
    pub fn want_manifest(&mut self, content: ContentId) -> bool {
        if self.manifests_wanted.len() >= MAX_QUEUED_MANIFESTS {
            return false;
        }
        self.manifests_wanted.push_back(content);
        true
    }

    /// The manifest to send now, if one is wanted and none is unflushed.
    pub fn manifest_due(&self) -> Option<ContentId> {
        self.manifests_wanted
            .front()
            .copied()
            .filter(|_| !self.manifest_out)
    }

    /// The answer to [`Session::manifest_due`] went out (`sent`: a manifest, which counts as
    /// unflushed from here; else a small refusal).
    pub fn manifest_answered(&mut self, sent: bool) {
        self.manifests_wanted.pop_front();
        self.manifest_out |= sent;
    }

    /// The runtime flushed everything sent so far.
    pub fn flushed(&mut self) {
        self.unflushed = 0;
        self.queued_bytes = 0;
        self.unflushed_since = None;
        self.catalog_out = false;
        self.manifest_out = false;
    }

    // ---- timers ----

    fn busy(&self) -> bool {
        self.outstanding > 0
            || !self.serve_queue.is_empty()
            || self.serving > 0
            || self.unflushed > 0
            || self.queued_bytes > 0
            || self.catalog_queued.is_some()
            || !self.manifests_wanted.is_empty()
    }

    fn idle_limit(&self, t: &Timeouts) -> Option<Duration> {
        if self.pinned {
            None
        } else if self.id.is_inbound() {
            Some(t.idle * 2)
        } else {
            Some(t.idle)
        }
    }

    /// The session's timer table: each armed timer with its deadline, closes before pings.
    /// The one formula both [`Session::poll_timeout`] and [`Session::due`] read.
    pub fn timers(&self, t: &Timeouts) -> impl Iterator<Item = (Instant, Due)> {
        let close = |at: Instant, why| Some((at, Due::Close(why)));
        let table = match self.state {
            State::Connecting { since, .. } => [
                close(since + t.connect, CloseReason::ConnectTimeout),
                None,
                None,
                None,
                None,
            ],
            State::Handshaking { since, .. } => [
                close(since + t.handshake, CloseReason::HandshakeTimeout),
                None,
                None,
                None,
                None,
            ],
            State::Open { .. } => [
                self.waiting_since
                    .and_then(|w| close(w + t.stall, CloseReason::Stalled)),
                self.unflushed_since
                    .filter(|_| !self.bugs.no_read_deadline())
                    .and_then(|u| {
                        close(
                            // Capped at the budget: bytes that keep coming cannot push the
                            // deadline away.
                            u + budget::read_deadline(
                                t.stall,
                                self.queued_bytes.min(CONN_SEND_BUDGET),
                            ),
                            CloseReason::NotReading,
                        )
                    }),
                self.idle_limit(t)
                    .filter(|_| !self.busy())
                    .and_then(|limit| {
                        close(
                            self.last_recv.max(self.last_send) + limit,
                            CloseReason::Idle,
                        )
                    }),
                self.ping_unanswered
                    .and_then(|p| close(p + t.ping * UNANSWERED_PINGS, CloseReason::Unanswered)),
                self.pinned.then(|| (self.last_send + t.ping, Due::Ping)),
            ],
        };
        table.into_iter().flatten()
    }

    /// The next instant this session's timers have work.
    #[must_use]
    pub fn poll_timeout(&self, t: &Timeouts) -> Option<Instant> {
        self.timers(t).map(|(at, _)| at).min()
    }

    /// What is due at `now`, if anything: the first due entry of [`Session::timers`].
    pub fn due(&self, now: Instant, t: &Timeouts) -> Option<Due> {
        self.timers(t).find(|(at, _)| *at <= now).map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:10000".parse().unwrap()
    }

    fn keys(k: u8) -> crate::noise::LocalKeys {
        let me = crate::Identity::from_secret_bytes(&[k; 32]);
        crate::noise::LocalKeys::new(&me, &mut crate::rng::KeyRng::new([k; 32]))
    }

    /// A channel for `s` that is never completed (tests of what needs no bytes).
    fn channel(s: &Session) -> Channel {
        if s.id().is_inbound() {
            Channel::accept(&keys(1), false, [1; 32])
        } else {
            Channel::dial(&keys(1), None, false, [1; 32])
        }
    }

    /// Starts `s`'s handshake and completes it with a peer holding key `k`; returns that
    /// peer's channel (to seal what it says) and its id.
    fn handshake(s: &mut Session, now: Instant, k: u8) -> (Channel, PeerId) {
        let inbound = s.id().is_inbound();
        s.start_handshake(now, channel(s));
        let mut remote = if inbound {
            Channel::dial(&keys(k), None, true, [k; 32])
        } else {
            Channel::accept(&keys(k), true, [k; 32])
        };
        for _ in 0..4 {
            let mut to_s = Vec::new();
            remote.poll_transmit(&mut to_s);
            s.on_bytes(now, &to_s).unwrap();
            let mut to_remote = Vec::new();
            s.transmit(&mut to_remote);
            remote.receive(&to_remote, &mut Vec::new()).unwrap();
        }
        assert!(remote.is_open());
        let id = s.proven().expect("the handshake is done");
        (remote, id)
    }

    fn sealed(remote: &mut Channel, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        remote.seal(plain, &mut out).unwrap();
        out
    }

    #[test]
    fn connect_and_handshake_deadlines() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let s = Session::new(ConnId(1), addr(), None, t0);
        assert_eq!(
            s.state(),
            State::Connecting {
                expected: None,
                since: t0
            }
        );
        assert_eq!(s.poll_timeout(&t), Some(t0 + t.connect));
        assert_eq!(s.due(t0, &t), None);
        assert_eq!(
            s.due(t0 + t.connect, &t),
            Some(Due::Close(CloseReason::ConnectTimeout))
        );
        let s = Session::new(ConnId::inbound(1), addr(), None, t0);
        assert_eq!(
            s.state(),
            State::Handshaking {
                expected: None,
                since: t0
            }
        );
        assert_eq!(
            s.due(t0 + t.handshake, &t),
            Some(Due::Close(CloseReason::HandshakeTimeout))
        );
    }

    #[test]
    fn stall_clock_runs_only_while_waiting_and_resets_on_answers() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let mut s = Session::new(ConnId(1), addr(), None, t0);
        let (mut remote, id) = handshake(&mut s, t0, 7);
        s.open(id, 1).unwrap();
        s.request_sent(t0, 100);
        assert_eq!(s.poll_timeout(&t), Some(t0 + t.stall));
        // A whole frame that answers nothing (a pong) is no progress.
        let pong = crate::wire::frame::encode_message(&crate::wire::frame::Message::Pong);
        let t_pong = t0 + Duration::from_secs(1);
        s.on_bytes(t_pong, &sealed(&mut remote, &pong)).unwrap();
        assert!(matches!(s.next_frame(), Ok(Some(_))));
        assert!(matches!(s.next_frame(), Ok(None)));
        assert_eq!(s.poll_timeout(&t), Some(t0 + t.stall));
        // The first bytes of a frame still arriving are.
        let t1 = t0 + Duration::from_secs(3);
        s.on_bytes(t1, &sealed(&mut remote, b"P2P")).unwrap();
        assert!(matches!(s.next_frame(), Ok(None)));
        assert_eq!(s.due(t0 + t.stall, &t), None);
        assert_eq!(
            s.due(t1 + t.stall, &t),
            Some(Due::Close(CloseReason::Stalled))
        );
        s.request_done();
        assert_eq!(s.due(t1 + t.stall, &t), None);
        // Idle afterwards.
        assert_eq!(s.poll_timeout(&t), Some(t1 + t.idle));
        assert_eq!(s.due(t1 + t.idle, &t), Some(Due::Close(CloseReason::Idle)));
        s.pin();
        assert_eq!(s.due(t1 + t.idle, &t), Some(Due::Ping));
    }

    #[test]
    fn a_record_still_arriving_keeps_a_waiting_session_from_stalling() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let mut s = Session::new(ConnId(1), addr(), None, t0);
        let (mut remote, id) = handshake(&mut s, t0, 7);
        s.open(id, 1).unwrap();
        s.request_sent(t0, 100_000);
        let record = sealed(&mut remote, &[0u8; 1000]);
        let t1 = t0 + Duration::from_secs(4);
        s.on_bytes(t1, &record[..record.len() / 2]).unwrap();
        assert!(matches!(s.next_frame(), Ok(None)));
        assert_eq!(s.poll_timeout(&t), Some(t1 + t.stall));
    }

    #[test]
    fn a_hello_opens_only_a_handshaking_session_and_only_from_the_expected_peer() {
        let t0 = crate::test_epoch();
        let a = PeerId([1; 32]);
        let mut s = Session::new(ConnId(1), addr(), Some(a), t0);
        assert_eq!(s.open(a, 1), Err(HelloError::NotExpected));
        s.start_handshake(t0, channel(&s));
        assert_eq!(s.open(PeerId([2; 32]), 1), Err(HelloError::WrongPeer));
        assert_eq!(s.open(a, 1), Ok(()));
        assert_eq!(
            (s.state(), s.open_peer(), s.instance()),
            (
                State::Open {
                    peer: a,
                    instance: 1
                },
                Some(a),
                Some(1)
            )
        );
        assert_eq!(s.open(a, 2), Err(HelloError::NotExpected));
    }

    #[test]
    fn the_serve_window_bounds_reads_and_unflushed_chunks() {
        let t0 = crate::test_epoch();
        let mut s = Session::new(ConnId::inbound(1), addr(), None, t0);
        let c = ContentId([3; 32]);
        for i in 0..3 {
            assert!(s.queue_request(c, i));
        }
        assert_eq!(s.next_to_serve(2), Some((c, 0)));
        s.start_serving(100);
        assert_eq!(s.next_to_serve(2), Some((c, 1)));
        s.start_serving(100);
        assert_eq!(s.owed(), 200, "reads in flight count");
        assert_eq!(s.next_to_serve(2), None, "two in flight");
        s.served(true, 100);
        s.sent(t0, 150);
        assert_eq!(s.owed(), 250, "one read, one chunk sent and unflushed");
        assert_eq!(s.next_to_serve(2), None, "one read, one unflushed");
        s.flushed();
        assert_eq!(s.owed(), 100);
        assert_eq!(s.next_to_serve(2), Some((c, 2)));
        s.start_serving(100);
        for i in 0..MAX_QUEUED_REQUESTS as u32 {
            assert!(s.queue_request(c, i));
        }
        assert!(!s.queue_request(c, 0), "the queue is bounded");
    }

    #[test]
    fn one_catalog_page_and_one_manifest_unflushed_and_readers_that_do_not_read_are_closed() {
        let t0 = crate::test_epoch();
        let t = Timeouts::default();
        let mut s = Session::new(ConnId::inbound(1), addr(), None, t0);
        s.start_handshake(t0, channel(&s));
        s.open(PeerId([7; 32]), 1).unwrap();
        s.queue_catalog(0);
        assert_eq!(s.catalog_due(), Some(0));
        s.catalog_sent();
        s.sent(t0, 1000);
        s.queue_catalog(1);
        assert_eq!(s.catalog_due(), None, "one page unflushed at a time");
        let c = ContentId([3; 32]);
        for _ in 0..MAX_QUEUED_MANIFESTS {
            assert!(s.want_manifest(c));
        }
        assert!(!s.want_manifest(c), "the manifest queue is bounded");
        assert!(s.wants_pause(), "a full queue stops reading");
        assert_eq!(s.manifest_due(), Some(c));
        s.manifest_answered(true);
        assert_eq!(s.manifest_due(), None, "one manifest unflushed at a time");
        assert!(!s.wants_pause());
        // Unflushed bytes have a deadline that grows with how many there are.
        let deadline = t0 + budget::read_deadline(t.stall, 1000);
        assert_eq!(
            s.due(deadline, &t),
            Some(Due::Close(CloseReason::NotReading))
        );
        s.flushed();
        assert_eq!((s.catalog_due(), s.manifest_due()), (Some(1), Some(c)));
        assert_eq!(s.due(deadline, &t), None, "flushed: nothing overdue");
        s.sent(t0, CONN_SEND_BUDGET);
        assert!(s.wants_pause(), "a spent budget stops reading");
    }

    #[test]
    fn a_big_frame_before_the_hello_ends_the_session_before_anything_is_buffered() {
        use crate::wire::frame::FrameError;
        let t0 = crate::test_epoch();
        let mut s = Session::new(ConnId::inbound(1), addr(), None, t0);
        let (mut remote, _) = handshake(&mut s, t0, 9);
        let data = sealed(&mut remote, &(8u32 << 20).to_be_bytes());
        s.on_bytes(t0, &data).unwrap();
        assert_eq!(s.next_frame(), Err(FrameError::BadLength(8 << 20)));
        // After the hello, frames up to the full limit are read.
        let mut s = Session::new(ConnId::inbound(2), addr(), None, t0);
        let (mut remote, id) = handshake(&mut s, t0, 9);
        s.open(id, 1).unwrap();
        let data = sealed(
            &mut remote,
            &((MAX_HANDSHAKE_FRAME + 1) as u32).to_be_bytes(),
        );
        s.on_bytes(t0, &data).unwrap();
        assert_eq!(
            s.next_frame(),
            Ok(None),
            "waits for the rest of a big frame"
        );
        // Unasked, a frame over MAX_REQUEST_FRAME is refused; one we asked for is read.
        let big = |remote: &mut Channel, n: usize| sealed(remote, &(n as u32).to_be_bytes());
        let mut s = Session::new(ConnId(3), addr(), None, t0);
        let (mut remote, id) = handshake(&mut s, t0, 9);
        s.open(id, 1).unwrap();
        s.on_bytes(t0, &big(&mut remote, MAX_REQUEST_FRAME + 1))
            .unwrap();
        assert_eq!(
            s.next_frame(),
            Err(FrameError::BadLength(MAX_REQUEST_FRAME as u32 + 1))
        );
        let mut s = Session::new(ConnId(4), addr(), None, t0);
        let (mut remote, id) = handshake(&mut s, t0, 9);
        s.open(id, 1).unwrap();
        s.request_sent(t0, 1 << 20);
        s.on_bytes(t0, &big(&mut remote, 1 << 20)).unwrap();
        assert_eq!(s.next_frame(), Ok(None), "an answer we asked for");
    }

    #[test]
    fn inbound_ids_never_collide_with_outbound() {
        assert!(ConnId::inbound(0).is_inbound());
        assert!(!ConnId(5).is_inbound());
        assert_ne!(ConnId::inbound(5), ConnId(5));
    }
}
