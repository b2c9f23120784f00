//! `p2pshare link NAME`: the link to a file or a folder this peer shares (the format:
//! `p2pshare_proto::share_link`), as one line with this peer's addresses and a second line
//! with its key alone (the short form).
//!
//! The addresses are those of every up interface, both families, with the peer's transfer
//! port ([`p2pshare_host::interfaces::link_ips`]): link-local IPv6 addresses are left out (they
//! mean nothing on another machine), and so is loopback, unless the host has nothing else (a
//! link that then works on this host only, which is said). At most
//! [`MAX_LINK_PEERS`](p2pshare_proto::share_link::MAX_LINK_PEERS) addresses, IPv4 first;
//! before them, the addresses given with `--at` (a router's forwarded port, a VPN's or NAT's
//! address: where this peer can be dialled though no interface shows it).
//!
//! Like the other one-shots it asks the running peer of the folder when there is one (its key,
//! its port, what it shares: `control::Ask::Link`); else it works from the folder itself,
//! under the folder's lock: its key (made on first use, as `id` does), a scan of what it
//! shares (through the scan cache, so only new or changed files are hashed), and the port
//! the options give, where a peer started on the folder will listen.

use std::net::SocketAddr;

use p2pshare_host::{FolderLock, Scanner, Snapshot};
use p2pshare_proto::name::is_under;
use p2pshare_proto::node::DEFAULT_TRANSFER_PORT;
use p2pshare_proto::share_link::{LinkAddr, LinkPeer, MAX_LINK_PEERS, ShareLink, Target};
use p2pshare_proto::{ContentId, PeerId};
use serde_json::json;

use crate::args::Opts;
use crate::control::{self, Answer, Ask};

/// A link made for one of our files or folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// With this peer's addresses.
    pub long: ShareLink,
    /// With its key alone.
    pub short: ShareLink,
    /// True when the addresses are loopback ones: the link works on this host only.
    pub loopback_only: bool,
}

impl Made {
    /// What `link` prints: the long form, then the short one.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.long, self.short)
    }

    /// What `link --json` prints.
    pub fn json(&self) -> serde_json::Value {
        let target = match self.long.target() {
            Target::Content(c) => json!({ "content": c.to_hex() }),
            Target::Folder(f) => json!({ "folder": format!("{f}/") }),
        };
        json!({
            "version": control::VERSION,
            "link": self.long.to_string(),
            "short": self.short.to_string(),
            "target": target,
            "note": self.note(),
        })
    }

    /// What to say besides the link, if anything.
    pub fn note(&self) -> Option<String> {
        self.loopback_only.then(|| {
            "this host has no address beyond loopback: the link works on this host only".into()
        })
    }
}

/// What `name` designates among `files` (name, content) that we share: the file of that
/// name, else the folder of that path (with or without a closing `/`) if a file lies under
/// it. `None` when neither.
pub fn target_of<'a>(
    mut files: impl Iterator<Item = (&'a str, ContentId)>,
    name: &str,
) -> Option<Target> {
    let folder = name.trim_end_matches('/');
    let mut under = false;
    for (n, c) in files.by_ref() {
        if n == name {
            return Some(Target::Content(c));
        }
        under |= is_under(n, folder);
    }
    under.then(|| Target::Folder(folder.to_owned()))
}

/// The addresses `--at` names (`IP:PORT`, `[IPv6]:PORT`, or an IP alone for `port`), in
/// order, each once; a link-local one is refused (it names an interface of this machine).
pub fn parse_at(specs: &[String], port: u16) -> Result<Vec<LinkAddr>, String> {
    let mut out: Vec<LinkAddr> = Vec::new();
    for s in specs {
        let addr = match s.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => match p2pshare_proto::addr::parse_literal(s) {
                Ok(lit) if lit.zone.is_none() => lit.addr,
                Ok(_) => {
                    return Err(format!(
                        "bad --at {s:?}: a link-local address means nothing on another machine"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "bad --at {s:?}: {e} (expected IP:PORT, [IPv6]:PORT or an IP)"
                    ));
                }
            },
        };
        let at = LinkAddr::new(addr, None).map_err(|e| format!("bad --at {s:?}: {e}"))?;
        if !out.contains(&at) {
            out.push(at);
        }
    }
    if out.len() > MAX_LINK_PEERS {
        return Err(format!(
            "{} addresses with --at: a link names at most {MAX_LINK_PEERS}",
            out.len()
        ));
    }
    Ok(out)
}

/// The link to `target` for the peer with key `me` listening on `port`: at the addresses
/// `at` (`--at`) first, then at this host's (see the module doc).
pub fn make(me: PeerId, port: u16, target: Target, at: &[LinkAddr]) -> Result<Made, String> {
    let (ips, loopback_only) = p2pshare_host::interfaces::link_ips();
    let mine = ips
        .into_iter()
        .filter_map(|ip| LinkAddr::new(SocketAddr::new(ip, port), None).ok())
        .filter(|a| !at.contains(a));
    let peers = at.iter().cloned().chain(mine).map(|a| LinkPeer {
        key: me,
        at: Some(a),
    });
    let long =
        ShareLink::new(target.clone(), peers.take(MAX_LINK_PEERS)).map_err(|e| e.to_string())?;
    let short =
        ShareLink::new(target, [LinkPeer { key: me, at: None }]).map_err(|e| e.to_string())?;
    Ok(Made {
        long,
        short,
        loopback_only: loopback_only && at.is_empty(),
    })
}

/// The link to `name` as the running peer whose state is `s` shares it: the control socket's
/// answer and the prompt's.
pub fn of_snapshot(s: &Snapshot, name: &str, at: &[String]) -> Result<Made, String> {
    let at = parse_at(at, s.transfer_port)?;
    let files = s.shared.iter().map(|f| (f.name.as_str(), f.content));
    let target = target_of(files, name).ok_or_else(|| unknown(name))?;
    make(s.me, s.transfer_port, target, &at)
}

fn unknown(name: &str) -> String {
    format!("you share no file or folder named {name:?}")
}

/// `p2pshare link NAME [--at ADDR]… [--json]`.
pub fn run(
    opts: &Opts,
    port: Option<u16>,
    name: &str,
    at: &[String],
    as_json: bool,
) -> Result<(), String> {
    let print = |made: &Made| {
        if as_json {
            println!("{}", made.json());
        } else {
            println!("{}", made.text());
        }
    };
    if let Some(stream) = control::connect(&opts.shared)? {
        return control::ask(
            stream,
            Ask::Link {
                name: name.to_owned(),
                at: at.to_vec(),
            },
            || Ok(()),
            |a| match a {
                Answer::View { text, json } => {
                    if as_json {
                        println!("{json}");
                    } else {
                        println!("{text}");
                    }
                    if let Some(note) = json["note"].as_str().filter(|_| !opts.quiet) {
                        eprintln!("p2pshare: {note}");
                    }
                    Ok(())
                }
                Answer::Failed { error, .. } => Err(error),
                other => Err(format!("the running peer answered {other:?}")),
            },
        );
    }
    // No peer runs: the folder itself, under its lock (no peer may start meanwhile). A bad
    // `--at` is said before anything is locked or scanned.
    let port = port.unwrap_or(DEFAULT_TRANSFER_PORT);
    let at = parse_at(at, port)?;
    let lock = FolderLock::acquire(&opts.shared).map_err(|e| e.to_string())?;
    let key = p2pshare_host::keyfile::load_or_create(&lock)
        .map_err(|e| e.to_string())?
        .identity
        .key();
    let scan = Scanner::new(&opts.shared)
        .and_then(|mut s| s.scan())
        .map_err(|e| e.to_string())?;
    let files = scan
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.manifest.id()));
    let target = target_of(files, name).ok_or_else(|| unknown(name))?;
    let made = make(key, port, target, &at)?;
    drop(lock);
    print(&made);
    if !opts.quiet {
        eprintln!(
            "p2pshare: no peer runs on {} now: the link names port {port}, where `p2pshare \
             serve` (or the prompt) on it will listen",
            opts.shared.display()
        );
        if let Some(note) = made.note() {
            eprintln!("p2pshare: {note}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_file_or_the_folder_files_lie_under() {
        let files = [
            ("a.txt", ContentId([1; 32])),
            ("photos/2024/x.jpg", ContentId([2; 32])),
            ("photos/y.jpg", ContentId([3; 32])),
        ];
        let of = |name| target_of(files.iter().map(|(n, c)| (*n, *c)), name);
        assert_eq!(of("a.txt"), Some(Target::Content(ContentId([1; 32]))));
        assert_eq!(
            of("photos/y.jpg"),
            Some(Target::Content(ContentId([3; 32])))
        );
        assert_eq!(of("photos"), Some(Target::Folder("photos".into())));
        assert_eq!(of("photos/"), Some(Target::Folder("photos".into())));
        assert_eq!(
            of("photos/2024/"),
            Some(Target::Folder("photos/2024".into()))
        );
        assert_eq!(of("photo"), None);
        assert_eq!(of("a.txt/"), None);
        assert_eq!(of("b.txt"), None);
    }

    #[test]
    fn at_names_an_address_no_interface_shows_first() {
        let at = parse_at(
            &[
                "203.0.113.7:4000".into(),
                "198.51.100.1".into(),
                "[2001:db8::7]:4001".into(),
                "203.0.113.7:4000".into(),
            ],
            10000,
        )
        .unwrap();
        let addrs: Vec<String> = at.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "203.0.113.7:4000",
                "198.51.100.1:10000",
                "[2001:db8::7]:4001"
            ]
        );
        let made = make(PeerId([7; 32]), 10000, Target::Folder("f".into()), &at).unwrap();
        let named: Vec<&LinkAddr> = made
            .long
            .peers()
            .iter()
            .filter_map(|p| p.at.as_ref())
            .collect();
        assert_eq!(named[..3], [&at[0], &at[1], &at[2]]);
        assert!(
            !made.loopback_only,
            "an --at address reaches beyond this host"
        );
        for (bad, why) in [
            ("nowhere", "expected IP:PORT"),
            ("[fe80::1%eth0]:10000", "link-local"),
            ("10.0.0.1:0", "bad --at"),
            ("224.0.0.1:5", "bad --at"),
        ] {
            let e = parse_at(&[bad.into()], 10000).unwrap_err();
            assert!(e.contains(why) && !e.contains('\n'), "{bad}: {e}");
        }
        let many: Vec<String> = (1..=17).map(|i| format!("198.51.100.{i}:1")).collect();
        assert!(parse_at(&many, 1).unwrap_err().contains("at most 16"));
    }

    #[test]
    fn a_link_names_this_host_and_its_short_form_the_key_alone() {
        let me = PeerId([7; 32]);
        let made = make(me, 10000, Target::Content(ContentId([1; 32])), &[]).unwrap();
        assert!(!made.long.peers().is_empty());
        assert!(made.long.peers().iter().all(|p| {
            p.key == me
                && p.at
                    .as_ref()
                    .is_some_and(|a| a.addr().port() == 10000 && a.zone().is_none())
        }));
        assert_eq!(made.short.peers(), &[LinkPeer { key: me, at: None }]);
        let text = made.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(ShareLink::parse(lines[0]).as_ref(), Ok(&made.long));
        assert_eq!(ShareLink::parse(lines[1]).as_ref(), Ok(&made.short));
        assert_eq!(made.json()["link"], lines[0]);
    }
}
