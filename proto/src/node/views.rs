//! Read-only views of a node for the user interface, and its counters of dropped input.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::download::Phase;
use crate::ids::{ContentId, PeerId};
use crate::wire::CatalogEntry;

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
    /// The mark (instance, sequence) of the newest signed announcement believed from it:
    /// only a newer one is believed. `None` for a peer known only from a hello, or a Python
    /// peer.
    pub mark: Option<crate::wire::signed::Mark>,
    /// How it came into view (an original Python peer: by broadcast).
    pub found: crate::discovery::Found,
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

/// Other peers' files as a node holds them, taken by [`crate::Node::remote_view`] without
/// copying a catalog entry; [`RemoteView::files`] groups them, on whichever thread calls it.
#[derive(Debug, Clone, Default)]
pub struct RemoteView {
    pub(crate) catalogs: Vec<(PeerId, Arc<Vec<CatalogEntry>>)>,
    pub(crate) local: BTreeSet<ContentId>,
    pub(crate) python: Vec<RemoteFile>,
}

/// One file of a view, borrowed for the length of a [`Walk::walk`] callback: what a listing
/// that shows a thousand rows of a hundred thousand files looks at, without a copy of any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef<'a> {
    /// Its content id.
    pub content: ContentId,
    /// Its size (a Python peer's: the upper bound, see [`RemoteFile::python`]).
    pub size: u64,
    /// The names peers share it under (sorted, distinct).
    pub names: &'a [&'a str],
    /// Peers that have it (sorted, distinct).
    pub holders: &'a [PeerId],
    /// True when this peer shares the same content too.
    pub local: bool,
    /// Held by original Python peers only.
    pub python: bool,
}

impl FileRef<'_> {
    /// The file as an owned [`RemoteFile`]: call for the few a caller keeps.
    pub fn to_file(&self) -> RemoteFile {
        RemoteFile {
            content: self.content,
            size: self.size,
            names: self.names.iter().map(|n| (*n).to_owned()).collect(),
            holders: self.holders.to_vec(),
            local: self.local,
            python: self.python,
        }
    }
}

/// Files that can be walked one at a time, grouped by content: a node's [`RemoteView`]
/// (grouped as it is walked, at 8 bytes an entry) or files already grouped.
pub trait Walk {
    /// Calls `f` with each file, in the order of [`RemoteView::files`].
    fn walk(&self, f: &mut dyn FnMut(FileRef<'_>));
}

impl Walk for Vec<RemoteFile> {
    fn walk(&self, f: &mut dyn FnMut(FileRef<'_>)) {
        let mut names: Vec<&str> = Vec::new();
        for r in self {
            names.clear();
            names.extend(r.names.iter().map(String::as_str));
            f(FileRef {
                content: r.content,
                size: r.size,
                names: &names,
                holders: &r.holders,
                local: r.local,
                python: r.python,
            });
        }
    }
}

impl Walk for RemoteView {
    fn walk(&self, f: &mut dyn FnMut(FileRef<'_>)) {
        self.walk_order(&self.order(|_| true), f);
    }
}

impl RemoteView {
    /// Files other peers share, grouped by content, by content id; names sorted, holders by
    /// peer id; then the Python peers' files. Built in O(n log n) over the n catalog entries by
    /// sorting one vector of positions and grouping runs of it: no map node per content, so
    /// a view of a hundred thousand files costs little more than the files themselves. What
    /// needs only some of them walks the view instead ([`Walk`]).
    pub fn files(self) -> Vec<RemoteFile> {
        self.grouped(|_| true)
    }

    /// Only the files one of whose names `keep` (given the name and the content id) accepts,
    /// each with all its names and holders, grouped as [`RemoteView::files`] does. One pass
    /// over the entries and a view only as big as the answer: what resolving the name of a
    /// `get` needs, where the whole view of a big LAN would cost memory for nothing.
    pub fn files_where(mut self, keep: impl Fn(&str, &ContentId) -> bool) -> Vec<RemoteFile> {
        let wanted: BTreeSet<ContentId> = self
            .catalogs
            .iter()
            .flat_map(|(_, files)| files.iter())
            .filter(|e| keep(&e.name, &e.content))
            .map(|e| e.content)
            .collect();
        self.python
            .retain(|f| f.names.iter().any(|n| keep(n, &f.content)));
        self.grouped(|e| wanted.contains(&e.content))
    }

    fn grouped(self, include: impl Fn(&CatalogEntry) -> bool) -> Vec<RemoteFile> {
        let order = self.order(include);
        // Sized once (a vector grown by doubling would hold up to twice the view at its
        // last step, and a view of a LAN may hold a hundred thousand files).
        let groups = usize::from(!order.is_empty())
            + order
                .windows(2)
                .filter(|w| self.entry(w[0]).content != self.entry(w[1]).content)
                .count();
        let mut out: Vec<RemoteFile> = Vec::with_capacity(groups + self.python.len());
        self.walk_order(&order, &mut |f| out.push(f.to_file()));
        out
    }

    fn entry(&self, (catalog, at): (u32, u32)) -> &CatalogEntry {
        &self.catalogs[catalog as usize].1[at as usize]
    }

    /// The positions (catalog, entry) of the entries `include` accepts, sorted by content,
    /// name and peer.
    fn order(&self, include: impl Fn(&CatalogEntry) -> bool) -> Vec<(u32, u32)> {
        let mut order: Vec<(u32, u32)> = self
            .catalogs
            .iter()
            .enumerate()
            .flat_map(|(c, (_, files))| {
                files
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| include(e))
                    .map(move |(i, _)| (c as u32, i as u32))
            })
            .collect();
        order.sort_unstable_by(|&a, &b| {
            let (ea, eb) = (self.entry(a), self.entry(b));
            (ea.content, &ea.name, self.catalogs[a.0 as usize].0).cmp(&(
                eb.content,
                &eb.name,
                self.catalogs[b.0 as usize].0,
            ))
        });
        order
    }

    /// Calls `f` with each run of `order` of one content, then with each Python peers' file.
    fn walk_order(&self, order: &[(u32, u32)], f: &mut dyn FnMut(FileRef<'_>)) {
        let mut names: Vec<&str> = Vec::new();
        let mut holders: Vec<PeerId> = Vec::new();
        for run in order.chunk_by(|&a, &b| self.entry(a).content == self.entry(b).content) {
            names.clear();
            holders.clear();
            for &at in run {
                let name = self.entry(at).name.as_str();
                if names.last() != Some(&name) {
                    names.push(name);
                }
                holders.push(self.catalogs[at.0 as usize].0);
            }
            holders.sort_unstable();
            holders.dedup();
            let first = self.entry(run[0]);
            f(FileRef {
                content: first.content,
                size: first.size,
                names: &names,
                holders: &holders,
                local: self.local.contains(&first.content),
                python: false,
            });
        }
        self.python.walk(f);
    }
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
    /// Datagrams from an unspecified source address (`0.0.0.0`, `::`: a host with no usable
    /// address yet): no peer can be reached there, so none is listed there.
    pub datagrams_unanswerable: u64,
    /// Frames with a body we could not read (unknown kind or message).
    pub frames_unreadable: u64,
    /// Well-formed frames nobody asked for: a catalog we did not request, a second hello.
    pub frames_unsolicited: u64,
    /// New peers ignored because the peer table was full.
    pub peers_table_full: u64,
    /// Discovery datagrams dropped unverified because their mark is not newer than what we
    /// believe of their key: replays, duplicates, late ones, an old instance's.
    pub announcements_stale: u64,
    /// Discovery datagrams dropped unverified because their source address (or the node) had
    /// spent its budget of signature checks: a flood.
    pub datagrams_unverified: u64,
    /// Discovery datagrams whose signature did not verify: forged, altered, or signed by
    /// another key than the one they name.
    pub datagrams_forged: u64,
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
    /// Connections whose first bytes were `P2PT` version 2: an old, unencrypted p2pshare
    /// peer, which cannot talk to us.
    pub handshake_old_version: u64,
    /// Connections we dialled to a peer whose key we knew, where another key answered (an
    /// impostor, or another peer at that address now): closed before we said who we are.
    pub handshake_wrong_peer: u64,
    /// Peers the user (or the known-peers store) asked us to dial that we refused: our own
    /// key, an address nothing can reach, a known peer without a key, more than the node holds.
    pub peers_add_refused: u64,
    /// Handshakes that failed otherwise: not our protocol, an unknown version, a forged,
    /// altered, truncated or replayed message, a bad identity, our own key.
    pub handshake_failed: u64,
    /// Hellos refused: naming another key than the one the connection's handshake proved
    /// (an impostor claiming a peer's id), or our own.
    pub hellos_refused: u64,
    /// Connections closed because a sealed record failed (altered, replayed, reordered, or
    /// cut inside a record).
    pub records_failed: u64,
    /// Connections refused because too many were open.
    pub connections_refused: u64,
    /// Names refused (in catalogs received or files offered).
    pub bad_names: u64,
    /// Chunk requests refused (unknown content, bad index, busy).
    pub requests_refused: u64,
    /// Catalog, manifest, chunk and swarm requests refused because the asker's key is not
    /// allowed (`--allow`), and Python requests while sharing privately.
    pub requests_not_allowed: u64,
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
    /// Kept peers' connections closed because their pings went unanswered (a half-open
    /// connection), and dialled again.
    pub closed_unanswered: u64,
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
    /// Times the folder's file of known peers could not be read or was damaged, and was
    /// started afresh (`host::known`).
    pub known_peers_reset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::catalogs::tests::entry;

    fn view() -> RemoteView {
        let a = vec![entry("a.txt", 1), entry("docs/b.txt", 2), entry("c.txt", 3)];
        let b = vec![entry("other-a.txt", 1), entry("d.txt", 4)];
        RemoteView {
            catalogs: vec![
                (PeerId([1; 32]), Arc::new(a)),
                (PeerId([2; 32]), Arc::new(b)),
            ],
            local: [ContentId([3; 32])].into_iter().collect(),
            python: Vec::new(),
        }
    }

    #[test]
    fn files_groups_every_content_with_its_names_and_holders() {
        let all = view().files();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].names, ["a.txt", "other-a.txt"]);
        assert_eq!(all[0].holders, [PeerId([1; 32]), PeerId([2; 32])]);
        assert!(all[2].local && !all[0].local);
    }

    #[test]
    fn files_where_keeps_only_what_a_name_matches_but_all_of_it() {
        let some = view().files_where(|n, _| n == "a.txt" || n.starts_with("docs/"));
        // The content named a.txt keeps its other name and its other holder.
        assert_eq!(some.len(), 2);
        assert_eq!(some[0].names, ["a.txt", "other-a.txt"]);
        assert_eq!(some[0].holders.len(), 2);
        assert_eq!(some[1].names, ["docs/b.txt"]);
        assert!(view().files_where(|_, _| false).is_empty());
        assert_eq!(view().files_where(|_, _| true), view().files());
    }
}
