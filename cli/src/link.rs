//! `p2pshare link NAME`: the link to a file or a folder this peer shares (the format:
//! `p2pshare_proto::share_link`), as one line with this peer's addresses and a second line
//! with its key alone (the short form).
//!
//! The addresses are those of every up interface, both families, with the peer's transfer
//! port ([`p2pshare_host::interfaces::link_ips`]): link-local IPv6 addresses are left out (they
//! mean nothing on another machine), and so is loopback, unless the host has nothing else (a
//! link that then works on this host only, which is said). At most
//! [`MAX_LINK_PEERS`](p2pshare_proto::share_link::MAX_LINK_PEERS) addresses, IPv4 first.
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

/// The link to `target` for the peer with key `me` listening on `port` at this host's
/// addresses (see the module doc).
pub fn make(me: PeerId, port: u16, target: Target) -> Result<Made, String> {
    let (ips, loopback_only) = p2pshare_host::interfaces::link_ips();
    let peers = ips.into_iter().filter_map(|ip| {
        let at = LinkAddr::new(SocketAddr::new(ip, port), None).ok()?;
        Some(LinkPeer {
            key: me,
            at: Some(at),
        })
    });
    let long =
        ShareLink::new(target.clone(), peers.take(MAX_LINK_PEERS)).map_err(|e| e.to_string())?;
    let short =
        ShareLink::new(target, [LinkPeer { key: me, at: None }]).map_err(|e| e.to_string())?;
    Ok(Made {
        long,
        short,
        loopback_only,
    })
}

/// The link to `name` as the running peer whose state is `s` shares it: the control socket's
/// answer and the prompt's.
pub fn of_snapshot(s: &Snapshot, name: &str) -> Result<Made, String> {
    let files = s.shared.iter().map(|f| (f.name.as_str(), f.content));
    let target = target_of(files, name).ok_or_else(|| unknown(name))?;
    make(s.me, s.transfer_port, target)
}

fn unknown(name: &str) -> String {
    format!("you share no file or folder named {name:?}")
}

/// `p2pshare link NAME [--json]`.
pub fn run(opts: &Opts, port: Option<u16>, name: &str, as_json: bool) -> Result<(), String> {
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
    // No peer runs: the folder itself, under its lock (no peer may start meanwhile).
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
    let port = port.unwrap_or(DEFAULT_TRANSFER_PORT);
    let made = make(key, port, target)?;
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
    fn a_link_names_this_host_and_its_short_form_the_key_alone() {
        let me = PeerId([7; 32]);
        let made = make(me, 10000, Target::Content(ContentId([1; 32]))).unwrap();
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
