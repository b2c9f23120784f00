//! How things look on the terminal and in JSON.

use p2pshare_host::Snapshot;
use p2pshare_host::interfaces::{self, Route, show};
use p2pshare_proto::{RemoteFile, Stats, Walk, hex};
use serde_json::json;

/// `1.5 MiB`-style sizes.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The input counters as one line of `name=value` pairs (what `serve -v` prints).
pub fn stats(s: &Stats) -> String {
    let Stats {
        datagrams_foreign,
        datagrams_malformed,
        datagrams_unknown_version,
        datagrams_unanswerable,
        datagrams_unverified,
        datagrams_forged,
        frames_unreadable,
        frames_unsolicited,
        peers_table_full,
        announcements_stale,
        peers_per_ip_full,
        claims_elsewhere,
        peers_unreachable,
        connects_deferred,
        protocol_errors,
        handshake_old_version,
        handshake_wrong_peer,
        peers_add_refused,
        handshake_failed,
        hellos_refused,
        records_failed,
        connections_refused,
        bad_names,
        requests_refused,
        requests_not_allowed,
        chunks_served,
        chunks_rejected,
        catalog_entries_dropped,
        answers_delayed,
        answers_dropped,
        connections_paused,
        closed_not_reading,
        closed_unanswered,
        requests_expired,
        claims_refused,
        claim_strikes,
        claimants_disbelieved,
        chunks_served_partial,
        requests_spread,
        python_datagrams_dropped,
        python_files_rejected,
        python_peers_full,
        python_requests_malformed,
        python_requests_refused,
        python_chunks_served,
        python_files_over_budget,
        python_claims_elsewhere,
        python_vouches_believed,
        python_vouches_refuted,
        python_vouch_checks_over_budget,
        connections_parked_dropped,
        known_peers_reset,
    } = s;
    format!(
        "datagrams_foreign={datagrams_foreign} datagrams_malformed={datagrams_malformed} \
         datagrams_unknown_version={datagrams_unknown_version} \
         datagrams_unanswerable={datagrams_unanswerable} \
         datagrams_unverified={datagrams_unverified} datagrams_forged={datagrams_forged} \
         frames_unreadable={frames_unreadable} frames_unsolicited={frames_unsolicited} \
         peers_table_full={peers_table_full} announcements_stale={announcements_stale} \
         peers_per_ip_full={peers_per_ip_full} claims_elsewhere={claims_elsewhere} \
         peers_unreachable={peers_unreachable} \
         connects_deferred={connects_deferred} \
         protocol_errors={protocol_errors} \
         handshake_old_version={handshake_old_version} \
         handshake_wrong_peer={handshake_wrong_peer} handshake_failed={handshake_failed} \
         peers_add_refused={peers_add_refused} \
         hellos_refused={hellos_refused} records_failed={records_failed} \
         connections_refused={connections_refused} bad_names={bad_names} \
         requests_refused={requests_refused} requests_not_allowed={requests_not_allowed} \
         chunks_served={chunks_served} \
         chunks_rejected={chunks_rejected} \
         catalog_entries_dropped={catalog_entries_dropped} answers_delayed={answers_delayed} \
         answers_dropped={answers_dropped} \
         connections_paused={connections_paused} closed_not_reading={closed_not_reading} \
         closed_unanswered={closed_unanswered} \
         requests_expired={requests_expired} claims_refused={claims_refused} \
         claim_strikes={claim_strikes} claimants_disbelieved={claimants_disbelieved} \
         chunks_served_partial={chunks_served_partial} \
         requests_spread={requests_spread} \
         python_datagrams_dropped={python_datagrams_dropped} \
         python_files_rejected={python_files_rejected} python_peers_full={python_peers_full} \
         python_requests_malformed={python_requests_malformed} \
         python_requests_refused={python_requests_refused} \
         python_chunks_served={python_chunks_served} \
         python_files_over_budget={python_files_over_budget} \
         python_claims_elsewhere={python_claims_elsewhere} \
         python_vouches_believed={python_vouches_believed} \
         python_vouches_refuted={python_vouches_refuted} \
         python_vouch_checks_over_budget={python_vouch_checks_over_budget} \
         connections_parked_dropped={connections_parked_dropped} \
         known_peers_reset={known_peers_reset}"
    )
}

/// `12.3 MB/s`-style rates.
pub fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{:.1} MB/s", bytes as f64 / secs / 1e6)
}

/// The files of other peers that we do not have ourselves.
pub fn available(s: &Snapshot) -> Vec<&RemoteFile> {
    s.remote.iter().filter(|f| !f.local).collect()
}

/// The `list` table (`No files available.` when empty) of what lies under `prefix` (a folder;
/// everything when `None`): the files at that level, each folder below it summarised in one row
/// (`photos/  1.2 GiB  124 files`); with `all`, every file under it with its full path instead.
/// Walks the files once ([`Walk`]: a node's view is grouped as it goes, at 8 bytes an entry);
/// it keeps the folder rows and at most [`LIST_ROWS`] files, so a list of a LAN with a hundred
/// thousand files costs its rows, not a copy of every file.
pub fn list_under(files: &dyn Walk, prefix: Option<&str>, all: bool) -> String {
    let prefix = prefix
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    // The part of a name below `prefix`, if it lies under it.
    let below = |n: &'_ str| -> Option<usize> {
        match prefix {
            Some(p) => p2pshare_proto::name::is_under(n, p).then_some(p.len() + 1),
            None => Some(0),
        }
    };
    // A name shown as a file row at this level.
    let here = |n: &str| below(n).is_some_and(|at| all || !n[at..].contains('/'));
    // The first file rows (at most all the rows shown), and how many there are in all.
    let mut shown_files: Vec<RemoteFile> = Vec::new();
    let mut file_rows = 0usize;
    // Folder path (no trailing '/') → (files, bytes, most holders).
    let mut folders: std::collections::BTreeMap<String, (usize, u64, usize)> =
        std::collections::BTreeMap::new();
    files.walk(&mut |f| {
        if f.local {
            return;
        }
        let mut shown = false;
        for n in f.names {
            let Some(at) = below(n) else { continue };
            match n[at..].find('/') {
                Some(i) if !all => {
                    let path = &n[..at + i];
                    let e = match folders.get_mut(path) {
                        Some(e) => e,
                        None => folders.entry(path.to_owned()).or_default(),
                    };
                    e.0 += 1;
                    e.1 += f.size;
                    e.2 = e.2.max(f.holders.len());
                }
                _ => shown = true,
            }
        }
        if shown {
            file_rows += 1;
            if shown_files.len() < LIST_ROWS {
                shown_files.push(f.to_file());
            }
        }
    });
    let rows = folders.len() + file_rows;
    if rows == 0 {
        return match prefix {
            Some(p) => format!("No files available under {p}/."),
            None => "No files available.".into(),
        };
    }
    let more = rows.saturating_sub(LIST_ROWS);
    let folder_cells = folders.iter().map(|(name, (n, bytes, peers))| {
        (
            format!("{name}/"),
            size(*bytes),
            *peers,
            format!("{n} file{}", if *n == 1 { "" } else { "s" }),
        )
    });
    let file_cells = shown_files.iter().map(|f| {
        let names: Vec<&str> = f
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| here(n))
            .collect();
        let id = match f.python {
            true => format!("{}  (python, unauthenticated)", f.content.short()),
            false => f.content.short(),
        };
        (names_cell(&names), list_size(f), f.holders.len(), id)
    });
    let cells: Vec<(String, String, usize, String)> =
        folder_cells.chain(file_cells).take(LIST_ROWS).collect();
    let width = cells
        .iter()
        .map(|c| c.0.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, NAME_COLUMN);
    let mut out = format!("{:<width$}  {:>10}  {:>5}  ID", "NAME", "SIZE", "PEERS");
    for (name, sz, peers, id) in cells {
        out.push_str(&format!("\n{name:<width$}  {sz:>10}  {peers:>5}  {id}"));
    }
    if more > 0 {
        out.push_str(&format!(
            "\n… and {more} more rows (`list --json` shows them all; `get NAME` finds any)"
        ));
    }
    out
}

/// The SIZE cell: a Python peer's file shows its upper bound (it announces only its number of
/// 1 KiB chunks), marked `≤`, and `(python, unauthenticated)` after the id says who holds it (a Python peer has no key).
fn list_size(f: &p2pshare_proto::RemoteFile) -> String {
    if f.python {
        format!("≤{}", size(f.size))
    } else {
        size(f.size)
    }
}

/// Most rows `list` prints: a peer can list hundreds of thousands of files, a terminal cannot
/// show them (`list --json` has them all).
const LIST_ROWS: usize = 1000;

/// The widest the NAME column is padded to: a longer cell overflows its own row instead of
/// widening every row (a peer can list names of any length).
const NAME_COLUMN: usize = 60;
/// Names shown for one file; the others are counted (a peer can list thousands for one file).
const NAMES_SHOWN: usize = 3;

/// The NAME cell of a file: its first names, and how many more it has.
fn names_cell<S: AsRef<str>>(names: &[S]) -> String {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let shown = names[..names.len().min(NAMES_SHOWN)].join(", ");
    match names.len().saturating_sub(NAMES_SHOWN) {
        0 => shown,
        more => format!("{shown}, … (+{more} more)"),
    }
}

/// `list PREFIX/ --json`: every file with a path under `prefix` (all files when `None`).
pub fn list_json_under(s: &Snapshot, prefix: Option<&str>) -> String {
    list_json_value(s, prefix).to_string()
}

/// [`list_json_under`] as a value: what the control socket and the web page send on, without
/// printing it and parsing it back.
pub fn list_json_value(s: &Snapshot, prefix: Option<&str>) -> serde_json::Value {
    let prefix = prefix
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    let files: Vec<_> = available(s)
        .iter()
        .filter(|f| {
            prefix.is_none_or(|p| f.names.iter().any(|n| p2pshare_proto::name::is_under(n, p)))
        })
        .map(|f| {
            json!({
                "names": f.names,
                "size": f.size,
                "peers": f.holders.len(),
                "holders": f.holders.iter().map(|h| hex(&h.0)).collect::<Vec<_>>(),
                "content": f.content.to_hex(),
                "python": f.python,
            })
        })
        .collect();
    json!({ "version": crate::control::VERSION, "files": files })
}

/// The `peers` lines (`ip:port` and the peer's id, short: the first 12 hex digits of its
/// key), or `No peers found.`.
pub fn peers(s: &Snapshot) -> String {
    if s.peers.is_empty() {
        return "No peers found.".into();
    }
    s.peers
        .iter()
        .map(|p| {
            if p.python {
                format!("{}  (python, unauthenticated)", show(p.addr))
            } else {
                format!("{}  {}{}", show(p.addr), p.id.short(), new_mark(s, p))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `  new` after a peer this folder had not met before this run, else nothing.
fn new_mark(s: &Snapshot, p: &p2pshare_proto::PeerView) -> &'static str {
    if s.new_peers.contains(&p.id) {
        "  new"
    } else {
        ""
    }
}

/// `on eth0` (the peer is on that interface's subnet or link), `routed via eth0` (a router is
/// between), or nothing (no route now).
fn reach(route: Option<&Route>) -> Option<String> {
    route.map(|r| {
        if r.routed {
            format!("routed via {}", r.interface)
        } else {
            format!("on {}", r.interface)
        }
    })
}

/// `peers -v`: each peer with its whole key, the interface it is reached over and how it was
/// found: `10.0.0.5:10000  <key>  (on eth0, broadcast)`.
pub fn peers_verbose(s: &Snapshot) -> String {
    if s.peers.is_empty() {
        return "No peers found.".into();
    }
    let assigned = interfaces::assigned();
    s.peers
        .iter()
        .map(|p| {
            let (id, kind) = if p.python {
                (String::new(), ", python, unauthenticated")
            } else {
                (format!("  {}{}", p.id.to_hex(), new_mark(s, p)), "")
            };
            let how = match reach(interfaces::route_to(p.addr, &assigned).as_ref()) {
                Some(r) => format!("{r}, {}", p.found),
                None => p.found.to_string(),
            };
            format!("{}{id}  ({how}{kind})", show(p.addr))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `status`: who we are, the peers, our shared files, the downloads, the counters.
pub fn status(s: &Snapshot) -> String {
    let mut out = format!("peer {} on TCP port {}\n", s.me.short(), s.transfer_port);
    if let Some(n) = s.allowed {
        out.push_str(&format!(
            "sharing privately: only with {n} allowed key{}\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(d) = &s.dht {
        out.push_str(&dht_status(d));
    }
    out.push_str(&format!("peers: {}\n", s.peers.len()));
    for p in &s.peers {
        let files = p.files.map_or_else(|| "?".into(), |n| n.to_string());
        let id = if p.python {
            "python, unauthenticated".into()
        } else {
            p.id.short()
        };
        out.push_str(&format!(
            "  {}  {id}  {files} files  {}{}\n",
            show(p.addr),
            p.found,
            new_mark(s, p)
        ));
    }
    out.push_str(&format!("shared: {}\n", s.shared.len()));
    for f in s.shared.iter().take(50) {
        out.push_str(&format!(
            "  {}  {}  {}\n",
            f.name,
            size(f.size),
            f.content.short()
        ));
    }
    if s.shared.len() > 50 {
        out.push_str(&format!("  … (+{} more)\n", s.shared.len() - 50));
    }
    out.push_str(&format!("downloads: {}\n", s.downloads.len()));
    for d in &s.downloads {
        let total = d.size.map_or_else(|| "?".into(), size);
        out.push_str(&format!(
            "  {}  {} / {}  {:?}  {} peers  {} rejected\n",
            d.name,
            size(d.done),
            total,
            d.phase,
            d.peers,
            d.rejected
        ));
    }
    out.push_str(&format!(
        "stats: {} notices_dropped={}",
        stats(&s.stats),
        s.notices_dropped
    ));
    out
}

/// `status`'s DHT lines: the node's address, the announces, the lookups; our address record
/// (last put, its seq, how many addresses) and the peers' records looked up.
fn dht_status(d: &p2pshare_host::dht::DhtStatus) -> String {
    let record = match &d.record {
        Some(r) => format!(
            "record put {} s ago, seq {}, {} address{} ({} bytes)",
            r.ago.as_secs(),
            r.seq,
            r.addrs,
            if r.addrs == 1 { "" } else { "es" },
            r.bytes
        ),
        None => "record not put yet".into(),
    };
    let records = format!(
        "dht: {record}; {} puts ({} failed); {} peers looked up, {} addresses found\n",
        d.record_puts, d.record_failures, d.resolves, d.peer_addrs_found
    );
    let local = d.local.map_or_else(|| "?".into(), |a| a.to_string());
    let last = d
        .last_announce
        .map_or_else(String::new, |t| format!(", last {} s ago", t.as_secs()));
    format!(
        "dht: node on UDP {local}, {} nodes in its routing table; {} shared, {} announces \
         ({} failed{last}); {} lookups ({} refused), {} holders found\n",
        d.routing,
        d.shared,
        d.announced,
        d.announce_failures,
        d.lookups,
        d.lookups_refused,
        d.holders_found
    ) + &records
}

/// `status --json`.
pub fn status_json(s: &Snapshot) -> String {
    let downloads: Vec<_> = s
        .downloads
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "content": d.content.to_hex(),
                "size": d.size,
                "done": d.done,
                "phase": format!("{:?}", d.phase).to_lowercase(),
                "peers": d.peers,
                "rejected": d.rejected,
            })
        })
        .collect();
    let shared: Vec<_> = s
        .shared
        .iter()
        .map(|f| json!({ "name": f.name, "size": f.size, "content": f.content.to_hex() }))
        .collect();
    let peers = peers_value(s);
    json!({
        "version": crate::control::VERSION,
        "me": hex(&s.me.0),
        "transfer_port": s.transfer_port,
        "allowed": s.allowed,
        "dht": s.dht.as_ref().map(|d| json!({
            "local": d.local.map(|a| a.to_string()),
            "routing": d.routing,
            "shared": d.shared,
            "announced": d.announced,
            "announce_failures": d.announce_failures,
            "last_announce_seconds": d.last_announce.map(|t| t.as_secs_f64()),
            "lookups": d.lookups,
            "lookups_refused": d.lookups_refused,
            "holders_found": d.holders_found,
            "record": d.record.map(|r| json!({
                "seq": r.seq,
                "addrs": r.addrs,
                "bytes": r.bytes,
                "put_seconds_ago": r.ago.as_secs_f64(),
            })),
            "record_puts": d.record_puts,
            "record_failures": d.record_failures,
            "resolves": d.resolves,
            "peer_addrs_found": d.peer_addrs_found,
        })),
        "peers": peers,
        "shared": shared,
        "downloads": downloads,
        "stats": s.stats,
        "notices_dropped": s.notices_dropped,
    })
    .to_string()
}

/// `peers --json`: `interface` is the one a peer is reached over (null: no route now),
/// `routed` whether a router is between, `found` how it came into view.
pub fn peers_json(s: &Snapshot) -> String {
    json!({ "version": crate::control::VERSION, "peers": peers_value(s) }).to_string()
}

/// The peers as `peers --json` and `status --json` list them.
fn peers_value(s: &Snapshot) -> serde_json::Value {
    let assigned = interfaces::assigned();
    let peers: Vec<_> = s
        .peers
        .iter()
        .map(|p| {
            let route = interfaces::route_to(p.addr, &assigned);
            json!({
                "addr": show(p.addr),
                "id": hex(&p.id.0),
                "files": p.files,
                "interface": route.as_ref().map(|r| r.interface.as_str()),
                "routed": route.as_ref().map(|r| r.routed),
                "found": p.found.as_str(),
                "python": p.python,
                "new": s.new_peers.contains(&p.id),
            })
        })
        .collect();
    serde_json::Value::Array(peers)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(1 << 30), "1.0 GiB");
    }

    #[test]
    fn a_file_with_many_long_names_keeps_the_table_bounded() {
        let names: Vec<String> = (0..10_000).map(|i| format!("{i:0>200}")).collect();
        let cell = names_cell(&names);
        assert!(cell.ends_with(", … (+9997 more)"), "{cell}");
        assert!(cell.chars().count() < 3 * 202 + 20);
        assert_eq!(
            names_cell(&names[..2]),
            format!("{}, {}", names[0], names[1])
        );
    }

    /// A snapshot of a settled view with `files` (names, size, content byte), each held by
    /// `PeerId([1; 32])`: for the tests of this crate.
    pub(crate) fn snapshot(files: &[(&[&str], u64, u8)]) -> Snapshot {
        Snapshot {
            me: p2pshare_proto::PeerId([0; 32]),
            transfer_port: 1,
            peers: Vec::new(),
            new_peers: Default::default(),
            remote: files
                .iter()
                .map(|(names, size, c)| RemoteFile {
                    content: p2pshare_proto::ContentId([*c; 32]),
                    size: *size,
                    names: names.iter().map(|n| n.to_string()).collect(),
                    holders: vec![p2pshare_proto::PeerId([1; 32])],
                    local: false,
                    python: false,
                })
                .collect(),
            downloads: Vec::new(),
            shared: Vec::new(),
            stats: Stats::default(),
            notices_dropped: 0,
            scanned: true,
            settled: true,
            answered: true,
            python_around: false,
            allowed: None,
            dht: None,
            targets: Vec::new(),
        }
    }

    #[test]
    fn peers_met_for_the_first_time_are_marked_new() {
        let peer = |n: u8, port: u16| p2pshare_proto::PeerView {
            id: p2pshare_proto::PeerId([n; 32]),
            addr: std::net::SocketAddr::from(([10, 0, 0, n], port)),
            files: Some(1),
            last_seen: std::time::Instant::now(),
            confirmed: true,
            mark: None,
            found: p2pshare_proto::Found::Broadcast,
            python: false,
        };
        let mut known = peer(2, 10002);
        known.found = p2pshare_proto::Found::Known;
        let s = Snapshot {
            peers: vec![peer(1, 10001), known],
            new_peers: [p2pshare_proto::PeerId([2; 32])].into_iter().collect(),
            ..snapshot(&[])
        };
        let text = peers(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].ends_with("new"), "{text}");
        assert!(lines[1].ends_with("  new"), "{text}");
        assert!(peers_verbose(&s).lines().nth(1).unwrap().contains(" new "));
        let json: serde_json::Value = serde_json::from_str(&peers_json(&s)).unwrap();
        assert_eq!(json["peers"][0]["new"], false);
        assert_eq!(json["peers"][1]["new"], true);
        // How each was found: in -v's parentheses, in the JSON, and in `status`.
        let verbose = peers_verbose(&s);
        let lines: Vec<&str> = verbose.lines().collect();
        assert!(lines[0].ends_with("broadcast)"), "{verbose}");
        assert!(lines[1].ends_with("known)"), "{verbose}");
        assert_eq!(json["peers"][0]["found"], "broadcast");
        assert_eq!(json["peers"][1]["found"], "known");
        assert!(status(&s).contains("1 files  known  new"), "{}", status(&s));
    }

    #[test]
    fn a_peer_on_loopback_is_on_lo_and_not_routed() {
        let p = p2pshare_proto::PeerView {
            id: p2pshare_proto::PeerId([7; 32]),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 10007)),
            files: None,
            last_seen: std::time::Instant::now(),
            confirmed: true,
            mark: None,
            found: p2pshare_proto::Found::Static,
            python: false,
        };
        let s = Snapshot {
            peers: vec![p],
            ..snapshot(&[])
        };
        let verbose = peers_verbose(&s);
        assert!(verbose.ends_with("(on lo, static)"), "{verbose}");
        let json: serde_json::Value = serde_json::from_str(&peers_json(&s)).unwrap();
        assert_eq!(json["peers"][0]["interface"], "lo");
        assert_eq!(json["peers"][0]["routed"], false);
        assert_eq!(json["peers"][0]["found"], "static");
    }

    /// The folder summaries the page's JavaScript is tested with too (`web/test/cases.json`).
    #[test]
    fn the_page_summarises_folders_like_list() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../web/test/cases.json")).unwrap();
        let list = &cases["list"];
        let remote: Vec<RemoteFile> = list["files"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, f)| RemoteFile {
                content: p2pshare_proto::ContentId([i as u8 + 1; 32]),
                size: f["size"].as_u64().unwrap(),
                names: f["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
                    .collect(),
                holders: (0..f["peers"].as_u64().unwrap())
                    .map(|p| p2pshare_proto::PeerId([p as u8; 32]))
                    .collect(),
                local: false,
                python: f["python"].as_bool().unwrap(),
            })
            .collect();
        let s = Snapshot {
            remote,
            ..snapshot(&[])
        };
        for level in list["levels"].as_array().unwrap() {
            let prefix = level["prefix"].as_str().unwrap();
            let text = list_under(&s.remote, Some(prefix).filter(|p| !p.is_empty()), false);
            let got: Vec<Vec<String>> = text
                .lines()
                .skip(1)
                .map(|row| {
                    let cells: Vec<String> = row
                        .split("  ")
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .collect();
                    let keep = if cells[0].ends_with('/') { 4 } else { 3 };
                    cells.into_iter().take(keep).collect()
                })
                .collect();
            let want: Vec<Vec<String>> = level["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|c| match c {
                            serde_json::Value::String(t) => t.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            assert_eq!(got, want, "level {prefix:?}:\n{text}");
        }
    }

    #[test]
    fn folders_are_summarised_one_level_at_a_time() {
        let s = snapshot(&[
            (&["photos/2024/a.jpg"], 1000, 1),
            (&["photos/2024/b.jpg", "top.jpg"], 2000, 2),
            (&["photos/c.jpg"], 48, 3),
            (&["readme"], 5, 4),
        ]);
        let top = list_under(&s.remote, None, false);
        let rows: Vec<&str> = top.lines().collect();
        assert_eq!(rows.len(), 4, "{top}");
        assert!(
            rows[1].starts_with("photos/") && rows[1].contains("3.0 KiB"),
            "{top}"
        );
        assert!(rows[1].ends_with("3 files"), "{top}");
        assert!(top.contains("top.jpg") && top.contains("readme"), "{top}");
        assert!(!top.contains("a.jpg"), "{top}");
        let under = list_under(&s.remote, Some("photos/"), false);
        assert!(
            under.contains("photos/2024/ ") && under.contains("2 files"),
            "{under}"
        );
        assert!(under.contains("photos/c.jpg"), "{under}");
        assert!(
            !under.contains("top.jpg") && !under.contains("readme"),
            "{under}"
        );
        let all = list_under(&s.remote, None, true);
        assert!(
            all.contains("photos/2024/a.jpg") && all.contains("photos/2024/b.jpg, top.jpg"),
            "{all}"
        );
        assert_eq!(
            list_under(&s.remote, Some("nope"), false),
            "No files available under nope/."
        );
        let json: serde_json::Value =
            serde_json::from_str(&list_json_under(&s, Some("photos/2024"))).unwrap();
        assert_eq!(json["files"].as_array().unwrap().len(), 2);
    }
}
