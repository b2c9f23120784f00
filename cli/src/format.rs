//! How things look on the terminal and in JSON.

use std::net::IpAddr;

use p2pshare_host::Snapshot;
use p2pshare_host::interfaces::{LanInterface, lan_interfaces};
use p2pshare_proto::{RemoteFile, Stats, hex};
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
        frames_unreadable,
        frames_unsolicited,
        peers_table_full,
        announcements_stale,
        peers_per_ip_full,
        claims_elsewhere,
        peers_unreachable,
        connects_deferred,
        protocol_errors,
        connections_refused,
        bad_names,
        requests_refused,
        chunks_served,
        chunks_rejected,
        catalog_entries_dropped,
        answers_delayed,
        answers_dropped,
        connections_paused,
        closed_not_reading,
        requests_expired,
        python_datagrams_dropped,
        python_files_rejected,
        python_peers_full,
        python_requests_malformed,
        python_requests_refused,
        python_chunks_served,
    } = s;
    format!(
        "datagrams_foreign={datagrams_foreign} datagrams_malformed={datagrams_malformed} \
         datagrams_unknown_version={datagrams_unknown_version} \
         frames_unreadable={frames_unreadable} frames_unsolicited={frames_unsolicited} \
         peers_table_full={peers_table_full} announcements_stale={announcements_stale} \
         peers_per_ip_full={peers_per_ip_full} claims_elsewhere={claims_elsewhere} \
         peers_unreachable={peers_unreachable} \
         connects_deferred={connects_deferred} \
         protocol_errors={protocol_errors} \
         connections_refused={connections_refused} bad_names={bad_names} \
         requests_refused={requests_refused} chunks_served={chunks_served} \
         chunks_rejected={chunks_rejected} \
         catalog_entries_dropped={catalog_entries_dropped} answers_delayed={answers_delayed} \
         answers_dropped={answers_dropped} \
         connections_paused={connections_paused} closed_not_reading={closed_not_reading} \
         requests_expired={requests_expired} \
         python_datagrams_dropped={python_datagrams_dropped} \
         python_files_rejected={python_files_rejected} python_peers_full={python_peers_full} \
         python_requests_malformed={python_requests_malformed} \
         python_requests_refused={python_requests_refused} \
         python_chunks_served={python_chunks_served}"
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

/// The `list` table, or `No files available.`.
pub fn list(s: &Snapshot) -> String {
    let files = available(s);
    if files.is_empty() {
        return "No files available.".into();
    }
    let more = files.len().saturating_sub(LIST_ROWS);
    let files = &files[..files.len().min(LIST_ROWS)];
    let cells: Vec<String> = files.iter().map(|f| names_cell(&f.names)).collect();
    let width = cells
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, NAME_COLUMN);
    let mut out = format!("{:<width$}  {:>10}  {:>5}  ID", "NAME", "SIZE", "PEERS");
    for (f, cell) in files.iter().zip(cells) {
        out.push_str(&format!(
            "\n{:<width$}  {:>10}  {:>5}  {}",
            cell,
            list_size(f),
            f.holders.len(),
            f.content.short()
        ));
        if f.python {
            out.push_str("  (python)");
        }
    }
    if more > 0 {
        out.push_str(&format!(
            "\n… and {more} more files (`list --json` shows them all; `get NAME` finds any)"
        ));
    }
    out
}

/// The SIZE cell: a Python peer's file shows its upper bound (it announces only its number of
/// 1 KiB chunks), marked `≤`, and `(python)` after the id says who holds it.
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
fn names_cell(names: &[String]) -> String {
    let shown = names[..names.len().min(NAMES_SHOWN)].join(", ");
    match names.len().saturating_sub(NAMES_SHOWN) {
        0 => shown,
        more => format!("{shown}, … (+{more} more)"),
    }
}

/// `list --json`.
pub fn list_json(s: &Snapshot) -> String {
    let files: Vec<_> = available(s)
        .iter()
        .map(|f| {
            json!({
                "names": f.names,
                "size": f.size,
                "peers": f.holders.len(),
                "content": f.content.to_hex(),
                "python": f.python,
            })
        })
        .collect();
    json!({ "version": crate::control::VERSION, "files": files }).to_string()
}

/// The `peers` lines (`ip:port`), or `No peers found.`.
pub fn peers(s: &Snapshot) -> String {
    if s.peers.is_empty() {
        return "No peers found.".into();
    }
    s.peers
        .iter()
        .map(|p| {
            if p.python {
                format!("{}  (python)", p.addr)
            } else {
                p.addr.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The interface a peer at `ip` is heard on: the LAN interface whose subnet holds it.
fn interface_of(ifaces: &[LanInterface], ip: IpAddr) -> Option<&str> {
    let IpAddr::V4(v4) = ip else { return None };
    if v4.is_loopback() {
        return Some("lo");
    }
    ifaces
        .iter()
        .find(|i| i.contains(v4))
        .map(|i| i.name.as_str())
}

/// `peers -v`: each peer with the interface it is heard on.
pub fn peers_verbose(s: &Snapshot) -> String {
    if s.peers.is_empty() {
        return "No peers found.".into();
    }
    let ifaces = lan_interfaces();
    s.peers
        .iter()
        .map(|p| {
            let kind = if p.python { ", python" } else { "" };
            match interface_of(&ifaces, p.addr.ip()) {
                Some(i) => format!("{}  (on {i}{kind})", p.addr),
                None => format!("{}  (routed{kind})", p.addr),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `status`: who we are, the peers, our shared files, the downloads, the counters.
pub fn status(s: &Snapshot) -> String {
    let mut out = format!("peer {} on TCP port {}\n", s.me.short(), s.transfer_port);
    out.push_str(&format!("peers: {}\n", s.peers.len()));
    for p in &s.peers {
        let files = p.files.map_or_else(|| "?".into(), |n| n.to_string());
        out.push_str(&format!("  {}  {files} files\n", p.addr));
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
    let peers: serde_json::Value = serde_json::from_str::<serde_json::Value>(&peers_json(s))
        .map_or(serde_json::Value::Null, |v| v["peers"].clone());
    json!({
        "version": crate::control::VERSION,
        "me": hex(&s.me.0),
        "transfer_port": s.transfer_port,
        "peers": peers,
        "shared": shared,
        "downloads": downloads,
        "stats": s.stats,
        "notices_dropped": s.notices_dropped,
    })
    .to_string()
}

/// `peers --json`.
pub fn peers_json(s: &Snapshot) -> String {
    let ifaces = lan_interfaces();
    let peers: Vec<_> = s
        .peers
        .iter()
        .map(|p| {
            json!({
                "addr": p.addr.to_string(),
                "id": hex(&p.id.0),
                "files": p.files,
                "interface": interface_of(&ifaces, p.addr.ip()),
                "python": p.python,
            })
        })
        .collect();
    json!({ "version": crate::control::VERSION, "peers": peers }).to_string()
}

#[cfg(test)]
mod tests {
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
}
