//! Native sessions: opening them to peers on demand (our links), the handshake, routing their
//! frames, and cleaning up when one ends.
//!
//! Invariant: a peer has at most one outbound connection of ours at a time (its [`Link`]),
//! which carries our requests; requests from others are served on whatever connection they
//! arrive. A failed link is retried with exponential backoff (1 s … 10 s) while the peer is
//! known.
//!
//! [`Link`]: super::link::Link

use std::net::SocketAddr;
use std::time::Instant;

use super::conns::Conn;
use super::fetch::Answer;
use super::{Admission, Event, NetOp, Node, Output};
use crate::budget::{MAX_DIALS_PER_IP, UNREACHABLE_FOR};
use crate::discovery::Found;
use crate::ids::PeerId;
use crate::noise::{Channel, ChannelError, HandshakeError};
use crate::python::Sniff;
use crate::session::{CloseReason, ConnId, HelloError, Session, State};
use crate::wire::Announce;
use crate::wire::frame::{ErrorCode, Frame, Message, encode_message};

impl Node {
    /// Sends `data` (whole frames) on session `conn`, sealed.
    pub(super) fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        self.send_parts(conn, &[&data]);
    }

    /// Sends `parts` (frames, or a frame in pieces: a chunk's header and its payload) on
    /// session `conn`, sealed into one buffer: each byte is copied once, by the seal. A
    /// session whose handshake is not done has nothing to seal with: nothing is sent (no
    /// caller sends before the hello, which follows the handshake).
    pub(super) fn send_parts(&mut self, conn: ConnId, parts: &[&[u8]]) {
        #[cfg(feature = "bugs")]
        if let Some(t) = &mut self.tamper {
            let plain = (t.0)(conn, parts.concat());
            let Some(s) = self.conns.session_mut(&conn) else {
                return;
            };
            let mut data = Vec::with_capacity(crate::noise::sealed_len(plain.len()));
            // (Nothing left is still a send: the runtime reports it flushed, as a liar's
            // runtime would report the bytes it did send.)
            if s.seal(&plain, &mut data).is_err() {
                return;
            }
            s.sent(self.now, data.len());
            self.out.push_back(Output::Net(NetOp::Send { conn, data }));
            return;
        }
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        let len: usize = parts
            .iter()
            .map(|p| crate::noise::sealed_len(p.len()))
            .sum();
        let mut data = Vec::with_capacity(len);
        for p in parts {
            if s.seal(p, &mut data).is_err() {
                // Only before the handshake or after a failure, and no caller sends then.
                return;
            }
        }
        s.sent(self.now, data.len());
        self.out.push_back(Output::Net(NetOp::Send { conn, data }));
    }

    /// Sends the handshake bytes session `conn` has ready, in clear.
    fn send_handshake(&mut self, conn: ConnId) {
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        let mut data = Vec::new();
        s.transmit(&mut data);
        if !data.is_empty() {
            s.sent(self.now, data.len());
            self.out.push_back(Output::Net(NetOp::Send { conn, data }));
        }
    }

    pub(super) fn send_msg(&mut self, conn: ConnId, msg: &Message) {
        self.send(conn, encode_message(msg));
    }

    fn hello(&self) -> Message {
        Message::Hello {
            peer: self.identity.key(),
            instance: self.cfg.instance,
            port: self.cfg.transfer_port,
            revision: self.revision,
        }
    }

    pub(super) fn open_session(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        peer: Option<PeerId>,
    ) -> ConnId {
        let conn = self.ids.outbound();
        let mut s = Session::new(conn, addr, peer, now);
        s.set_bugs(self.cfg.bugs);
        self.conns.insert(conn, Conn::Native(s));
        self.out
            .push_back(Output::Net(NetOp::Connect { conn, addr }));
        conn
    }

    /// The connection is up (we dialled it) or its first bytes are ours (we accepted it): its
    /// Noise handshake starts, with our preamble. A dial to a known peer expects its key.
    pub(super) fn start_handshake(&mut self, now: Instant, conn: ConnId) {
        let seed = self.key_rng.seed();
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        let channel = if conn.is_inbound() {
            Channel::accept(&self.keys, self.cfg.aes, seed)
        } else {
            let expected = s.peer().filter(|_| !self.cfg.bugs.skip_identity_check());
            Channel::dial(&self.keys, expected, self.cfg.aes, seed)
        };
        s.start_handshake(now, channel);
        self.send_handshake(conn);
    }

    /// The handshake of `conn` is done: our hello goes out, sealed.
    fn handshake_done(&mut self, conn: ConnId) {
        let hello = encode_message(&self.hello());
        self.send(conn, hello);
    }

    /// The channel of `conn` failed: counted by kind, and the session ends.
    fn channel_failed(&mut self, now: Instant, conn: ConnId, e: ChannelError) {
        let why = match e {
            ChannelError::Handshake(HandshakeError::WrongPeer { .. }) => {
                self.stats.handshake_wrong_peer += 1;
                CloseReason::WrongPeer
            }
            ChannelError::Handshake(HandshakeError::OldVersion) => {
                self.stats.handshake_old_version += 1;
                CloseReason::Protocol
            }
            ChannelError::Handshake(_) => {
                self.stats.handshake_failed += 1;
                CloseReason::Protocol
            }
            ChannelError::Transport(_) => {
                self.stats.records_failed += 1;
                CloseReason::Protocol
            }
        };
        self.end_session(now, conn, why, true);
    }

    pub(super) fn on_accepted(&mut self, now: Instant, remote: SocketAddr) -> Admission {
        let from_ip = self.accepted_from(remote.ip());
        let full = self.conns.budgeted() >= self.cfg.max_connections;
        if full || from_ip >= self.cfg.max_connections_per_ip {
            self.stats.connections_refused += 1;
            // Only the address's share spent: room may come when one of its connections ends.
            return if full {
                Admission::Refused
            } else {
                Admission::Later
            };
        }
        let conn = self.ids.inbound();
        let mut s = Session::new(conn, remote, None, now);
        s.set_bugs(self.cfg.bugs);
        // Our hello waits for the first bytes (at most PY_SNIFF): a Python request must get
        // nothing but its answer (see `python::serve`).
        let sniff = Sniff::new(now);
        self.conns
            .insert(conn, Conn::Sniffing { session: s, sniff });
        Admission::Accepted(conn)
    }

    /// Accepted connections from `ip` open now: our sessions and Python requests.
    pub(super) fn accepted_from(&self, ip: std::net::IpAddr) -> usize {
        self.conns.accepted_from(ip)
    }

    /// Bytes arrived on the session `conn`: its frames, in order.
    pub(super) fn on_session_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        let received = s.on_bytes(now, data);
        if let Some(p) = s.open_peer() {
            self.discovery.touch(now, &p, s.remote().ip());
        }
        self.send_handshake(conn);
        match received {
            Ok(None) => {}
            Ok(Some(_)) => self.handshake_done(conn),
            Err(e) => return self.channel_failed(now, conn, e),
        }
        loop {
            let Some(s) = self.conns.session_mut(&conn) else {
                return;
            };
            match s.next_frame() {
                Ok(Some(frame)) => self.on_frame(now, conn, frame),
                Ok(None) => {
                    // Refusals and pongs spend the send budget too: a reader that only asks
                    // for what we do not have is paused like any other.
                    self.update_pause(conn);
                    return;
                }
                Err(_) => {
                    self.stats.protocol_errors += 1;
                    self.end_session(now, conn, CloseReason::Protocol, true);
                    return;
                }
            }
        }
    }

    fn on_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let Some(s) = self.conns.session(&conn) else {
            return;
        };
        let state = s.state();
        match (state, frame) {
            (
                State::Handshaking { .. },
                Frame::Message(Message::Hello {
                    peer,
                    instance,
                    port,
                    revision,
                }),
            ) => self.on_hello(
                now,
                conn,
                Announce {
                    peer,
                    instance,
                    port,
                    revision,
                    bye: false,
                },
            ),
            (State::Open { .. }, Frame::Message(msg)) => self.on_message(now, conn, msg),
            (
                State::Open { .. },
                Frame::Chunk {
                    content,
                    index,
                    data,
                },
            ) => self.on_answer(now, conn, content, Answer::Chunk { index, data }),
            (State::Open { .. }, Frame::Unreadable) => self.stats.frames_unreadable += 1,
            _ => {
                self.stats.protocol_errors += 1;
                self.end_session(now, conn, CloseReason::Protocol, true);
            }
        }
    }

    fn on_hello(&mut self, now: Instant, conn: ConnId, a: Announce) {
        let Some(s) = self.conns.session_mut(&conn) else {
            return;
        };
        // The hello must name the key the handshake proved (a planted bug skips that).
        let proven = s.proven() == Some(a.peer) || self.cfg.bugs.skip_identity_check();
        let opened = if a.peer == self.identity.key() || !proven {
            Err(HelloError::WrongPeer)
        } else {
            s.open(a.peer, a.instance)
        };
        if opened.is_err() {
            self.stats.hellos_refused += 1;
            self.end_session(now, conn, CloseReason::WrongPeer, true);
            return;
        }
        let remote = s.remote();
        let inbound = conn.is_inbound();
        // A hello is as good as an announcement: this is how static peers (and peers that
        // reach us across routers) enter the table; and a peer speaks at that address.
        self.discovery.vouch(crate::addr::with_port(remote, a.port));
        let target = self.targets.iter_mut().find(|t| t.is(conn));
        // A probe is kept only where its key is listed; a `--peer` or a link's peer wherever
        // the user (or the link) said; a holder the DHT named never: its connection serves
        // the download that looked it up, and closes once nothing passes on it.
        let pinned = target.as_ref().map(|t| !t.is_probe());
        let claim = target.as_ref().is_some_and(|t| t.found() == Found::Dht);
        if inbound {
            self.discovery.heard_inbound_hello(now, &a, remote);
        } else if let Some(t) = target {
            t.opened();
            self.discovery.heard_via(now, &a, remote, t.found());
        } else {
            self.discovery.heard(now, &a, remote);
        }
        self.discovery.confirm(&a.peer, remote.ip(), !inbound);
        self.drain_discovery(now);
        if inbound {
            return;
        }
        let listed_there = self
            .discovery
            .peer(&a.peer)
            .is_some_and(|p| p.addr.ip() == remote.ip());
        if pinned != Some(true) && !listed_there {
            // A dial to a rival address whose hello came after the id was decided elsewhere,
            // or a probe of a known peer heard meanwhile at another address.
            self.end_session(now, conn, CloseReason::PeerGone, true);
            return;
        }
        if pinned.is_some()
            && !claim
            && let Some(s) = self.conns.session_mut(&conn)
        {
            s.pin();
        }
        if self.links.entry(a.peer).or_default().opened(conn) {
            self.link_ready(now, a.peer);
        }
    }

    /// A hello on a session already open: the peer's catalog revision changed, and it tells
    /// the peers that may not hear its datagrams (across a router) on their connection
    /// ([`Node::tell_revision`]). The same peer and instance as the session's first hello, or
    /// it is counted (`frames_unsolicited`) and ignored.
    fn on_hello_again(&mut self, now: Instant, conn: ConnId, a: Announce) {
        let Some(s) = self.conns.session(&conn) else {
            return;
        };
        if s.open_peer() != Some(a.peer) || s.instance() != Some(a.instance) {
            self.stats.frames_unsolicited += 1;
            return;
        }
        let remote = s.remote();
        if conn.is_inbound() {
            self.discovery.heard_inbound_hello(now, &a, remote);
        } else {
            self.discovery.heard(now, &a, remote);
        }
        self.drain_discovery(now);
    }

    /// Our catalog has a new revision: every peer we have a connection with hears of it as a
    /// hello on that connection, one per peer, besides our announcement. Hearing a peer's
    /// datagrams does not mean it hears ours (a router between, a host relaying its genuine
    /// announcements to us): a peer listed as found by broadcast may be beyond our broadcast,
    /// and a hello costs a few dozen bytes per peer and revision.
    pub(super) fn tell_revision(&mut self) {
        let mut told = std::collections::BTreeSet::new();
        let conns: Vec<ConnId> = self
            .conns
            .sessions()
            .filter_map(|s| Some((s.id(), s.open_peer()?)))
            .filter(|&(_, p)| told.insert(p))
            .map(|(c, _)| c)
            .collect();
        for conn in conns {
            let hello = self.hello();
            self.send_msg(conn, &hello);
        }
    }

    fn on_message(&mut self, now: Instant, conn: ConnId, msg: Message) {
        match msg {
            Message::Hello {
                peer,
                instance,
                port,
                revision,
            } => {
                let a = Announce {
                    peer,
                    instance,
                    port,
                    revision,
                    bye: false,
                };
                self.on_hello_again(now, conn, a);
            }
            Message::Ping if self.over_budget(conn) => self.stats.answers_dropped += 1,
            Message::Ping => self.send_msg(conn, &Message::Pong),
            Message::Pong => {}
            Message::CatalogRequest { page } if !self.allowed(conn) => {
                self.refuse_catalog(conn, page)
            }
            Message::ManifestRequest { content } if !self.allowed(conn) => {
                self.stats.requests_not_allowed += 1;
                self.refuse(conn, ErrorCode::NotFound, content, None);
            }
            Message::ChunkRequest { content, index } if !self.allowed(conn) => {
                self.stats.requests_not_allowed += 1;
                self.refuse(conn, ErrorCode::NotFound, content, Some(index));
            }
            Message::Interested { .. } if !self.allowed(conn) => {
                // Our bitfield would say what we download: not for strangers.
                self.stats.requests_not_allowed += 1;
            }
            Message::CatalogRequest { page } => self.serve_catalog(conn, page),
            Message::ManifestRequest { content } => self.serve_manifest(conn, content),
            Message::ChunkRequest { content, index } => self.serve_chunk(conn, content, index),
            Message::Catalog {
                revision,
                page,
                pages,
                files,
            } => self.on_catalog(now, conn, revision, page, pages, files),
            Message::Manifest { content, bytes } if self.vouch_answer(conn, &content) => {
                self.on_vouch_answer(conn, content, Some(&bytes));
            }
            Message::Error {
                content,
                index: None,
                ..
            } if self.vouch_answer(conn, &content) => self.on_vouch_answer(conn, content, None),
            Message::Manifest { content, bytes } => {
                self.on_answer(now, conn, content, Answer::Manifest(bytes))
            }
            Message::Error {
                code,
                content,
                index,
            } => self.on_answer(now, conn, content, Answer::Refused { code, index }),
            Message::Interested { content } => self.on_interested(now, conn, content),
            Message::Bitfield { content, bits } => self.on_bitfield(now, conn, content, bits),
            Message::Have { content, indices } => self.on_have(now, conn, content, indices),
        }
    }

    /// Ends a session: `notify` when the node decided it (the runtime must close the socket).
    pub(super) fn end_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        why: CloseReason,
        notify: bool,
    ) {
        let Some(s) = self.conns.remove_session(&conn) else {
            return;
        };
        if notify {
            self.out.push_back(Output::Net(NetOp::Close { conn }));
        }
        match why {
            CloseReason::NotReading => self.stats.closed_not_reading += 1,
            CloseReason::Unanswered => self.stats.closed_unanswered += 1,
            _ => {}
        }
        // What it owed is free for the connections that waited for it.
        if s.owed() > 0 && why != CloseReason::Shutdown {
            self.pump_starved();
            self.repause_ip(s.remote().ip());
        }
        let interval = self.cfg.interval;
        for t in &mut self.targets {
            if t.is(conn) {
                t.closed(now, interval, why == CloseReason::WrongPeer);
            }
        }
        let Some(peer) = s.peer() else { return };
        let remote = s.remote();
        if !conn.is_inbound()
            && s.instance().is_none()
            && self.discovery.is_rival(&peer, remote)
            && self.links.get(&peer).is_none_or(|l| !l.is(conn))
        {
            // A dial to a contested id's rival address ended without the hello that would
            // have decided for it: that address does not speak for the id. Nothing there
            // speaking our protocol at all shuns it too; another peer's hello does not.
            let shun = (why != CloseReason::WrongPeer).then_some(now + UNREACHABLE_FOR);
            self.discovery.reject_rival(&peer, remote, shun);
            return;
        }
        let clean = why.is_clean();
        if let Some(link) = self.links.get_mut(&peer)
            && link.is(conn)
        {
            let ended = link.closed(now, clean);
            if ended.catalog_lost {
                self.remote.abandon(&peer);
            }
            self.peer_down_downloads(now, peer, false);
            if ended.unreachable {
                // Never reached, again and again: refused, silent, or not our protocol. Forget
                // it (its downloads lose it) and ignore its address for a while.
                self.discovery
                    .forget_unreachable(now, &peer, now + UNREACHABLE_FOR);
            }
        }
    }

    /// Closes every connection to or from `peer` (it left), or, with `keep` set to its new
    /// instance (it restarted), those whose hello named another instance: a connection the new
    /// instance opened, or answered, survives its own hello.
    pub(super) fn drop_peer_connections(&mut self, now: Instant, peer: PeerId, keep: Option<u64>) {
        let conns: Vec<ConnId> = self
            .conns
            .sessions()
            .filter(|s| s.peer() == Some(peer))
            .filter(|s| keep.is_none() || s.instance().is_some_and(|i| Some(i) != keep))
            .map(Session::id)
            .collect();
        for c in conns {
            self.end_session(now, c, CloseReason::PeerGone, true);
        }
    }

    /// Closes every connection of `peer` whose other end is not at `ip` (it moved there).
    pub(super) fn drop_peer_connections_elsewhere(
        &mut self,
        now: Instant,
        peer: PeerId,
        ip: std::net::IpAddr,
    ) {
        let conns: Vec<ConnId> = self
            .conns
            .sessions()
            .filter(|s| s.peer() == Some(peer) && s.remote().ip() != ip)
            .map(Session::id)
            .collect();
        for c in conns {
            self.end_session(now, c, CloseReason::PeerGone, true);
        }
    }

    /// Makes sure we have (or are opening) an outbound connection to `peer`.
    pub(super) fn ensure_link(&mut self, now: Instant, peer: PeerId) {
        let Some(addr) = self.discovery.peer(&peer).map(|p| p.addr) else {
            return;
        };
        // A connection there already (a `--peer`'s, a probe's, a link's peer's) carries the
        // link too: no second one, and no backoff to wait for (nothing is dialled).
        let already = self
            .conns
            .sessions()
            .find(|s| !s.id().is_inbound() && s.remote() == addr && s.peer() == Some(peer))
            .map(|s| (s.id(), s.is_open()));
        if let Some((conn, open)) = already {
            let link = self.links.entry(peer).or_default();
            if link.conn().is_none() {
                link.dialled(conn);
                // Open already: its hello came and went, so it is ready now.
                if open && link.opened(conn) {
                    self.link_ready(now, peer);
                }
            }
            return;
        }
        let room = self.room_to_dial(addr.ip());
        let link = self.links.entry(peer).or_default();
        if !link.may_dial(now) {
            return;
        }
        if !room {
            // Try again in a second (the retry timer asks only while something waits for it).
            link.put_off(now);
            self.stats.connects_deferred += 1;
            return;
        }
        let conn = self.open_session(now, addr, Some(peer));
        if let Some(link) = self.links.get_mut(&peer) {
            link.dialled(conn);
        }
    }

    /// Dials `addr`, where contested `peer` is also announced: the hello decides where the id
    /// is (see `discovery`). Within the same dial budgets as a link; past them the rival is
    /// left undecided (it still takes the id's place if the listed address goes).
    pub(super) fn dial_rival(&mut self, now: Instant, peer: PeerId, addr: SocketAddr) {
        if !self.discovery.is_rival(&peer, addr) {
            return;
        }
        let already = self
            .conns
            .sessions()
            .any(|s| !s.id().is_inbound() && s.remote() == addr && s.peer() == Some(peer));
        if already {
            return;
        }
        if !self.room_to_dial(addr.ip()) {
            self.stats.connects_deferred += 1;
            return;
        }
        self.open_session(now, addr, Some(peer));
    }

    /// True while a new outbound connection to `ip` stays within `max_outbound` and within
    /// `MAX_DIALS_PER_IP` connections being opened to one address.
    pub(super) fn room_to_dial(&self, ip: std::net::IpAddr) -> bool {
        let outbound = self
            .conns
            .sessions()
            .filter(|s| !s.id().is_inbound())
            .count();
        let dialing = self
            .conns
            .sessions()
            .filter(|s| !s.id().is_inbound() && !s.is_open())
            .filter(|s| s.remote().ip() == ip)
            .count();
        outbound < self.cfg.max_outbound && dialing < MAX_DIALS_PER_IP
    }

    /// Our outbound connection to `peer` is open: send what waited for it.
    pub(super) fn link_ready(&mut self, now: Instant, peer: PeerId) {
        self.send_catalog_request(now, peer);
        self.peer_ready_downloads(now, peer);
    }

    /// Fetches `peer`'s catalog: now if our link to it is open (and the gap since the last
    /// fetch has passed), else once it is.
    pub(super) fn fetch_catalog(&mut self, now: Instant, peer: PeerId) {
        self.links.entry(peer).or_default().want_catalog();
        if self.link_conn(&peer).is_some() {
            self.send_catalog_request(now, peer);
        } else {
            self.ensure_link(now, peer);
        }
    }

    fn send_catalog_request(&mut self, now: Instant, peer: PeerId) {
        let Some(conn) = self.link_conn(&peer) else {
            return;
        };
        if self
            .links
            .get_mut(&peer)
            .is_some_and(|link| link.start_catalog_fetch(now))
        {
            self.request_catalog_page(now, peer, conn, 0);
        }
    }

    /// Asks `peer` for catalog page `page` on its link `conn`.
    pub(super) fn request_catalog_page(
        &mut self,
        now: Instant,
        peer: PeerId,
        conn: ConnId,
        page: u32,
    ) {
        if let Some(link) = self.links.get_mut(&peer) {
            link.catalog_asked(page);
        }
        if let Some(s) = self.conns.session_mut(&conn) {
            s.request_sent(now, 2 * crate::wire::CATALOG_PAGE_BYTES);
        }
        self.send_msg(conn, &Message::CatalogRequest { page });
    }

    /// The outbound connection to `peer`, once its handshake is done.
    pub(super) fn link_conn(&self, peer: &PeerId) -> Option<ConnId> {
        let conn = self.links.get(peer)?.conn()?;
        self.conns
            .session(&conn)
            .filter(|s| s.is_open())
            .map(|_| conn)
    }

    /// True when something waits for a connection to `peer`.
    pub(super) fn peer_wanted(&self, peer: &PeerId) -> bool {
        self.links.get(peer).is_some_and(|l| l.catalog_wanted())
            || self
                .downloads
                .values()
                .any(|d| d.usable_peers().any(|p| p == peer))
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }
}
