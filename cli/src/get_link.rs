//! `get LINK`: a link's peers become targets (dialled at once, each expecting its key:
//! `Request::AddPeer` with `Found::Link`), and the download waits until what the link names
//! can start: a file as soon as any peer lists its content (the link's or one on the LAN: the
//! node asks every holder once the content is wanted); a folder once the link's peers have
//! sent their catalogs, from what *they* list under its path (each file then fetched from
//! whoever holds its content).
//!
//! The wait ends with one line that says why nothing can be fetched, once every peer of the
//! link has had its say ([`judge`]): a peer that answered without it, an address where another
//! key answered (a stale or wrong link: at once), an address where nothing answered (after
//! [`grace`], so a peer's redial gets its turn), a key with no address that is neither listed
//! nor probed (the short form, useful only to a peer that can find that key already).
//!
//! With `--dht` (the running peer has a DHT node), a link to a file whose content no peer in
//! view lists after [`DHT_AFTER`](crate::commands::DHT_AFTER) is looked up in the DHT too
//! (again every `LOOKUP_AGAIN_AFTER` while nothing lists it), and the wait goes on for
//! [`DHT_WAIT`](crate::commands::DHT_WAIT) before it fails: a link by content id alone, with
//! no address, finds a holder anywhere that announced it.
//!
//! With `--dht`, a key of the link that is not in view is looked up in the DHT by its address
//! record ([`p2pshare_host::addr_record`]): at once when the link gives no address for it
//! (the short form), else once its addresses have had [`DHT_AFTER`](crate::commands::DHT_AFTER)
//! or one of them failed ([`to_resolve`]). Each address the record names becomes a target
//! expecting that key, so a peer that moved is found where it is now. The link's keys go
//! first: a file's content is looked up only [`KEYS_FIRST`] later when the link names keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pshare_host::{Controller, Request, Snapshot, Stopped};
use p2pshare_proto::name::is_under;
use p2pshare_proto::share_link::{ShareLink, Target};
use p2pshare_proto::{ContentId, Found, PeerId, Reach};

use crate::signals::{self, Signals};

/// A link read from the command line, its addresses made dialable on this host.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The link.
    pub link: ShareLink,
    /// Each address it names with the key that must answer there (a zone resolved to its
    /// interface).
    pub dials: Vec<(SocketAddr, PeerId)>,
}

impl Wanted {
    /// Reads `text` as a link; the error is one line that says what is wrong with it.
    pub fn read(text: &str) -> Result<Wanted, String> {
        let link = ShareLink::parse(text).map_err(|e| format!("bad link: {e}"))?;
        let mut dials = Vec::new();
        for p in link.peers() {
            let Some(at) = &p.at else { continue };
            let addr = p2pshare_host::interfaces::scoped(
                at.addr(),
                at.zone(),
                p2pshare_host::interfaces::index_of,
            )
            .map_err(|e| format!("bad link: {at}: {e}"))?;
            dials.push((addr, p.key));
        }
        Ok(Wanted { link, dials })
    }

    /// Asks the peer `ctl` drives to dial every address of the link, each expecting its key.
    pub fn add_targets(&self, ctl: &Controller) -> Result<(), Stopped> {
        for &(addr, key) in &self.dials {
            ctl.request(Request::AddPeer {
                addr,
                key: Some(key),
                found: Found::Link,
                remember: false,
            })?;
        }
        Ok(())
    }

    /// What a progress bar calls it.
    pub fn label(&self) -> String {
        match self.link.target() {
            Target::Content(c) => c.short(),
            Target::Folder(f) => format!("{f}/"),
        }
    }
}

/// How long the link's peers have to answer before a silent address counts as unreachable:
/// two announcement intervals (a kept target is dialled at once and again each interval), at
/// least two seconds.
pub fn grace(interval_secs: f64) -> Duration {
    Duration::try_from_secs_f64(interval_secs * 2.0)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(2))
}

/// When a link names keys, how much later than its keys' records its content is looked up in
/// the DHT: a key's record usually answers within a second, and then the file is listed.
pub const KEYS_FIRST: Duration = Duration::from_secs(3);

/// The keys of the link to look up in the DHT now, `waited` after its targets were added: each
/// one not in view (listed) whose link gives no address, whose addresses have not brought it
/// into view within [`DHT_AFTER`](crate::commands::DHT_AFTER), or one of whose addresses
/// failed (nothing, or another key, answered). Pure.
pub fn to_resolve(s: &Snapshot, w: &Wanted, waited: Duration) -> Vec<PeerId> {
    w.link
        .keys()
        .into_iter()
        .filter(|k| !s.peers.iter().any(|p| p.id == *k && !p.python))
        .filter(|k| {
            let addressed = w.dials.iter().any(|(_, key)| key == k);
            let failed = s
                .targets
                .iter()
                .any(|t| t.key == Some(*k) && matches!(t.reach, Reach::Failed | Reach::WrongKey));
            !addressed || failed || waited >= crate::commands::DHT_AFTER
        })
        .collect()
}

/// What a link resolved to: something to download now.
#[derive(Debug)]
pub enum Resolved {
    /// The file, by its content (listed by a holder now).
    Content(ContentId),
    /// The folder (its path), and the view to plan it from: only the files the link's peers
    /// list.
    Folder(String, Box<Snapshot>),
    /// Nothing to fetch: we share that file already (what to say).
    Have(String),
}

/// What [`judge`] decided.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Ready: start.
    Ready,
    /// Not yet: look again.
    Wait,
    /// Nothing can be fetched: why, in one line.
    Fail(String),
}

/// Where one key of the link stands.
#[derive(Debug)]
enum Standing {
    /// Listed, with its catalog: whether it has what the link names.
    Answered(bool),
    /// Being dialled, or listed without its catalog yet.
    Pending,
    /// No dial reached it: where another key answered, where nothing did.
    Unreached(Vec<SocketAddr>, Vec<SocketAddr>),
    /// No address for it, and it is neither listed nor probed.
    Nowhere,
}

/// Judges `s` for the link of `w`, `waited` after the targets were added (see the module
/// doc). Pure: the snapshot says it all.
pub fn judge(s: &Snapshot, w: &Wanted, waited: Duration, grace: Duration) -> Verdict {
    let target = w.link.target();
    let has = |k: &PeerId| match target {
        Target::Content(c) => s
            .remote
            .iter()
            .any(|f| f.content == *c && f.holders.contains(k)),
        Target::Folder(path) => s
            .remote
            .iter()
            .any(|f| f.holders.contains(k) && f.names.iter().any(|n| is_under(n, path))),
    };
    if let Target::Content(c) = target
        && s.remote
            .iter()
            .any(|f| f.content == *c && !f.holders.is_empty())
    {
        return Verdict::Ready;
    }
    let late = waited >= grace;
    let keys = w.link.keys();
    let standings: Vec<(PeerId, Standing)> = keys
        .iter()
        .map(|k| (*k, standing(s, k, has(k), late)))
        .collect();
    let answered = |want: bool| {
        standings
            .iter()
            .any(|(_, st)| matches!(st, Standing::Answered(h) if *h == want))
    };
    let pending = standings
        .iter()
        .any(|(_, st)| matches!(st, Standing::Pending));
    match target {
        // A folder starts once the link's peers that can answer did (or their time is up).
        Target::Folder(_) if answered(true) && (!pending || late) => Verdict::Ready,
        _ if pending || (keys.is_empty() && !late) => Verdict::Wait,
        _ => Verdict::Fail(why(target, &standings)),
    }
}

/// Where key `k` stands in `s`; `has`: its catalog holds what the link names; `late`: its
/// addresses had their time.
fn standing(s: &Snapshot, k: &PeerId, has: bool, late: bool) -> Standing {
    if let Some(p) = s.peers.iter().find(|p| p.id == *k && !p.python) {
        return match p.files {
            Some(_) => Standing::Answered(has),
            None => Standing::Pending,
        };
    }
    let mine: Vec<_> = s.targets.iter().filter(|t| t.key == Some(*k)).collect();
    if mine.is_empty() {
        return if late {
            Standing::Nowhere
        } else {
            Standing::Pending
        };
    }
    if mine
        .iter()
        .any(|t| matches!(t.reach, Reach::Trying | Reach::Open))
    {
        return Standing::Pending;
    }
    let at = |r: Reach| -> Vec<SocketAddr> {
        mine.iter()
            .filter(|t| t.reach == r)
            .map(|t| t.addr)
            .collect()
    };
    let (wrong, silent) = (at(Reach::WrongKey), at(Reach::Failed));
    // Another key at every address is a verdict already; silence may end on a redial.
    if silent.is_empty() || late {
        Standing::Unreached(wrong, silent)
    } else {
        Standing::Pending
    }
}

/// The one line that says why the link's peers cannot give what it names.
fn why(target: &Target, standings: &[(PeerId, Standing)]) -> String {
    let what = match target {
        Target::Content(_) => "the link's file".to_owned(),
        Target::Folder(f) => format!("the link's folder {f}/"),
    };
    if standings.is_empty() {
        return format!("no peer has {what}, and the link names none");
    }
    let shown = |v: &[SocketAddr]| {
        v.iter()
            .map(|a| p2pshare_host::interfaces::show(*a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let each: Vec<String> = standings
        .iter()
        .map(|(k, st)| {
            let k = k.short();
            match st {
                Standing::Answered(_) => match target {
                    Target::Content(_) => format!("{k} does not share it (any more)"),
                    Target::Folder(f) => format!("{k} shares nothing under {f}/"),
                },
                Standing::Unreached(wrong, silent) => {
                    let mut parts = Vec::new();
                    if !wrong.is_empty() {
                        parts.push(format!(
                            "another key answered at {} (the link is stale, or wrong)",
                            shown(wrong)
                        ));
                    }
                    if !silent.is_empty() {
                        parts.push(format!("nothing answered at {}", shown(silent)));
                    }
                    format!("{k}: {}", parts.join("; "))
                }
                Standing::Nowhere => format!(
                    "{k} is not on this network nor among the peers this folder knows, and the \
                     link gives no address for it (a short link works only where its peer can \
                     be found already)"
                ),
                Standing::Pending => format!("{k} did not answer in time"),
            }
        })
        .collect();
    format!("cannot fetch {what}: {}", each.join("; "))
}

/// Adds the link's peers to the peer `ctl` drives and waits until what the link names can
/// start ([`judge`]), until `deadline`, or a signal (`Err(Some(sig))` then). The view it
/// returns for a folder holds only the files the link's peers list. `say` tells the user
/// when the wait looks beyond the LAN (the DHT, see the module doc).
pub fn resolve(
    ctl: &Controller,
    w: &Wanted,
    grace: Duration,
    deadline: Instant,
    signals: Option<&Signals>,
    say: &mut dyn FnMut(&str),
) -> Result<Resolved, (String, Option<i32>)> {
    let fail = |e: String| (e, None);
    if let Target::Content(c) = w.link.target() {
        let state = ctl.state().map_err(|e| fail(e.to_string()))?;
        if let Some(f) = state.shared.iter().find(|f| f.content == *c) {
            return Ok(Resolved::Have(format!(
                "you already share this file as {}",
                f.name
            )));
        }
    }
    w.add_targets(ctl).map_err(|e| fail(e.to_string()))?;
    let started = Instant::now();
    let keys = w.link.keys();
    let target = w.link.target().clone();
    let mut dht_asked: Option<Instant> = None;
    // The link's keys looked up in the DHT, and when last.
    let mut keys_asked: HashMap<PeerId, Instant> = HashMap::new();
    let content_after = if keys.is_empty() {
        crate::commands::DHT_AFTER
    } else {
        crate::commands::DHT_AFTER + KEYS_FIRST
    };
    loop {
        if let Some(sig) = signals.and_then(Signals::take) {
            return Err(("interrupted".into(), Some(sig)));
        }
        let snap = ctl
            .snapshot_where(|n, c| match &target {
                Target::Content(want) => c == want,
                Target::Folder(path) => is_under(n, path),
            })
            .map_err(|e| fail(e.to_string()))?;
        let waited = started.elapsed();
        // The link's keys' records first, when the peer runs a DHT node.
        if snap.dht.is_some() {
            for k in to_resolve(&snap, w, waited) {
                let last = keys_asked.get(&k);
                if last.is_some_and(|t| t.elapsed() < p2pshare_host::dht::LOOKUP_AGAIN_AFTER) {
                    continue;
                }
                if last.is_none() {
                    say(&format!("looking up {} in the DHT", k.short()));
                }
                keys_asked.insert(k, Instant::now());
                ctl.request(Request::Resolve(k))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        // What a key's record names is still being dialled.
        let resolving = keys_asked
            .values()
            .any(|t| t.elapsed() < crate::commands::DHT_WAIT);
        // The DHT too, when the peer runs one and nothing lists the file yet.
        let dht = snap.dht.is_some() && matches!(target, Target::Content(_));
        if let (Target::Content(c), true) = (&target, dht) {
            let due = dht_asked.map_or(started + content_after, |t| {
                t + p2pshare_host::dht::LOOKUP_AGAIN_AFTER
            });
            if Instant::now() >= due {
                if dht_asked.is_none() {
                    say(&format!(
                        "no holder of {} in view yet; looking in the DHT too",
                        c.short()
                    ));
                }
                dht_asked = Some(Instant::now());
                ctl.request(Request::Lookup(*c))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        let dht_wait = content_after + crate::commands::DHT_WAIT;
        match judge(&snap, w, waited, grace) {
            // What the DHT names is still being dialled.
            Verdict::Fail(_)
                if ((dht && waited < dht_wait) || resolving) && Instant::now() < deadline =>
            {
                std::thread::sleep(signals::POLL.min(Duration::from_millis(50)))
            }
            Verdict::Fail(why) if dht_asked.is_some() || !keys_asked.is_empty() => {
                let records = if keys_asked.is_empty() {
                    ""
                } else {
                    "; no address the DHT's records gave answered with it"
                };
                let holders = if dht_asked.is_some() {
                    "; the DHT named no holder that has it"
                } else {
                    ""
                };
                return Err(fail(format!("{why}{records}{holders}")));
            }
            Verdict::Ready => {
                return Ok(match target {
                    Target::Content(c) => Resolved::Content(c),
                    Target::Folder(path) => {
                        let mut snap = snap;
                        snap.remote
                            .retain(|f| f.holders.iter().any(|h| keys.contains(h)));
                        Resolved::Folder(path, Box::new(snap))
                    }
                });
            }
            Verdict::Fail(why) => return Err(fail(why)),
            Verdict::Wait if Instant::now() >= deadline => {
                let why = match judge(&snap, w, waited.max(grace), Duration::ZERO) {
                    Verdict::Fail(why) => why,
                    _ => format!("the link's peers did not answer in time ({})", w.label()),
                };
                return Err(fail(why));
            }
            Verdict::Wait => std::thread::sleep(signals::POLL.min(Duration::from_millis(50))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pshare_proto::share_link::{LinkAddr, LinkPeer};
    use p2pshare_proto::{PeerView, RemoteFile, TargetView};

    fn key(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn wanted(target: Target, peers: &[(u8, Option<&str>)]) -> Wanted {
        let peers: Vec<LinkPeer> = peers
            .iter()
            .map(|(k, a)| LinkPeer {
                key: key(*k),
                at: a.map(|a| LinkAddr::new(a.parse().unwrap(), None).unwrap()),
            })
            .collect();
        let link = ShareLink::new(target, peers).unwrap();
        Wanted::read(&link.to_string()).unwrap()
    }

    fn snap() -> Snapshot {
        let mut s = crate::format::tests::snapshot(&[]);
        s.remote.clear();
        s.peers.clear();
        s
    }

    fn listed(s: &mut Snapshot, k: u8, files: Option<usize>) {
        s.peers.push(PeerView {
            id: key(k),
            addr: "10.0.0.9:10000".parse().unwrap(),
            files,
            last_seen: std::time::Instant::now(),
            confirmed: true,
            mark: None,
            found: Found::Link,
            python: false,
        });
    }

    fn target(s: &mut Snapshot, k: u8, addr: &str, reach: Reach) {
        s.targets.push(TargetView {
            addr: addr.parse().unwrap(),
            key: Some(key(k)),
            found: Found::Link,
            reach,
        });
    }

    fn file(s: &mut Snapshot, name: &str, c: u8, holder: u8) {
        s.remote.push(RemoteFile {
            content: ContentId([c; 32]),
            size: 1,
            names: vec![name.into()],
            holders: vec![key(holder)],
            local: false,
            python: false,
        });
    }

    const A: &str = "10.0.0.2:10000";
    const B: &str = "10.0.0.3:10000";
    const G: Duration = Duration::from_secs(2);

    #[test]
    fn a_file_starts_as_soon_as_anyone_lists_it() {
        let w = wanted(Target::Content(ContentId([5; 32])), &[(1, Some(A))]);
        let mut s = snap();
        target(&mut s, 1, A, Reach::Trying);
        assert_eq!(judge(&s, &w, Duration::ZERO, G), Verdict::Wait);
        // A LAN peer that is not the link's has it: that is enough.
        file(&mut s, "movie.bin", 5, 7);
        assert_eq!(judge(&s, &w, Duration::ZERO, G), Verdict::Ready);
    }

    #[test]
    fn another_key_fails_at_once_and_silence_after_the_grace() {
        let w = wanted(
            Target::Content(ContentId([5; 32])),
            &[(1, Some(A)), (1, Some(B))],
        );
        let mut s = snap();
        target(&mut s, 1, A, Reach::WrongKey);
        target(&mut s, 1, B, Reach::Trying);
        assert_eq!(
            judge(&s, &w, Duration::ZERO, G),
            Verdict::Wait,
            "B may answer"
        );
        s.targets[1].reach = Reach::Failed;
        assert_eq!(
            judge(&s, &w, Duration::ZERO, G),
            Verdict::Wait,
            "B may answer a redial"
        );
        let Verdict::Fail(why) = judge(&s, &w, G, G) else {
            panic!("fails after the grace")
        };
        assert!(
            why.contains("another key answered at 10.0.0.2:10000"),
            "{why}"
        );
        assert!(why.contains("nothing answered at 10.0.0.3:10000"), "{why}");
        assert!(!why.contains('\n'));
        s.targets[1].reach = Reach::WrongKey;
        assert!(matches!(judge(&s, &w, Duration::ZERO, G), Verdict::Fail(_)));
    }

    #[test]
    fn a_peer_that_answered_without_it_and_a_short_link_nobody_can_place() {
        let w = wanted(Target::Content(ContentId([5; 32])), &[(1, Some(A))]);
        let mut s = snap();
        target(&mut s, 1, A, Reach::Open);
        listed(&mut s, 1, None);
        assert_eq!(
            judge(&s, &w, G, G),
            Verdict::Wait,
            "its catalog is on its way"
        );
        s.peers[0].files = Some(3);
        let Verdict::Fail(why) = judge(&s, &w, Duration::ZERO, G) else {
            panic!()
        };
        assert!(why.contains("does not share it"), "{why}");
        let short = wanted(Target::Content(ContentId([5; 32])), &[(2, None)]);
        assert_eq!(judge(&snap(), &short, Duration::ZERO, G), Verdict::Wait);
        let Verdict::Fail(why) = judge(&snap(), &short, G, G) else {
            panic!()
        };
        assert!(why.contains("gives no address"), "{why}");
    }

    #[test]
    fn a_folder_waits_for_the_links_catalogs_and_counts_only_theirs() {
        let w = wanted(
            Target::Folder("photos".into()),
            &[(1, Some(A)), (2, Some(B))],
        );
        let mut s = snap();
        file(&mut s, "photos/a.jpg", 5, 7); // a LAN peer's folder of that name
        listed(&mut s, 1, Some(1));
        target(&mut s, 2, B, Reach::Trying);
        assert_eq!(
            judge(&s, &w, Duration::ZERO, G),
            Verdict::Wait,
            "not ready on a stranger's files"
        );
        file(&mut s, "photos/b.jpg", 6, 1);
        assert_eq!(
            judge(&s, &w, Duration::ZERO, G),
            Verdict::Wait,
            "2 may list more"
        );
        assert_eq!(judge(&s, &w, G, G), Verdict::Ready, "its time is up");
        s.targets[0].reach = Reach::WrongKey;
        assert_eq!(judge(&s, &w, Duration::ZERO, G), Verdict::Ready);
    }

    #[test]
    fn keys_are_looked_up_when_the_link_gives_no_address_or_theirs_fail() {
        let c = Target::Content(ContentId([5; 32]));
        let short = wanted(c.clone(), &[(1, None)]);
        let s = snap();
        assert_eq!(to_resolve(&s, &short, Duration::ZERO), [key(1)], "at once");
        let full = wanted(c, &[(1, Some(A)), (2, Some(B))]);
        let mut s = snap();
        target(&mut s, 1, A, Reach::Trying);
        target(&mut s, 2, B, Reach::Trying);
        assert_eq!(to_resolve(&s, &full, Duration::ZERO), []);
        s.targets[0].reach = Reach::Failed;
        s.targets[1].reach = Reach::WrongKey;
        assert_eq!(to_resolve(&s, &full, Duration::ZERO), [key(1), key(2)]);
        let mut s = snap();
        target(&mut s, 1, A, Reach::Trying);
        target(&mut s, 2, B, Reach::Trying);
        listed(&mut s, 2, None);
        assert_eq!(
            to_resolve(&s, &full, crate::commands::DHT_AFTER),
            [key(1)],
            "silent past DHT_AFTER; a key in view never"
        );
    }

    #[test]
    fn a_bad_link_is_one_line() {
        let e = Wanted::read("p2pshare://xyz").unwrap_err();
        assert!(e.starts_with("bad link: bad content id at char 12"), "{e}");
        let id = ContentId([5; 32]).to_hex();
        let k = key(1).to_hex();
        let e =
            Wanted::read(&format!("p2pshare://{id}?peer={k}@[fe80::1%25nosuch0]:1")).unwrap_err();
        assert!(e.contains("no interface \"nosuch0\""), "{e}");
    }
}
