//! The control socket: a running peer (the prompt, `serve`) listens on a Unix socket inside
//! its shared folder, and the one-shot `list`, `peers`, `peers add`, `status`, `link` and
//! `get` given that folder talk to it instead of starting a second peer (which the folder lock
//! would refuse anyway).
//!
//! Protocol: the client sends one JSON line, an [`Ask`] with a `version`; the peer answers
//! with JSON lines ([`Answer`], each with a `version`) and closes. A `get` streams progress
//! and ends with `done` (the verified file is in place) or `failed`.
//!
//! Invariants: the socket is owner-only (0600) from the moment it has its name: it is bound in
//! a fresh private folder beside it (0700, so the umask never opens a window), made 0600 there
//! and renamed into place, which replaces a stale one (the peer was killed) or anything else
//! planted at that name without following it; nothing is ever changed through a path another
//! user could swap. A connection is served only when the kernel says (`SO_PEERCRED`) that its
//! process runs as our user or as root, and a client talks only to a listener of its own user
//! or root, reading at most [`MAX_ANSWER`] bytes per answer line. A request line longer than
//! [`MAX_ASK`] is refused; a client that goes away while its `get` runs cancels that download
//! (the partial file is kept).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use p2pshare_host::local;
use p2pshare_host::{Controller, Request, Snapshot};
use p2pshare_proto::Event;
use serde::{Deserialize, Serialize};

use crate::args::Opts;
use crate::commands::{self, Unresolved};
use crate::format;
use crate::get_link::Resolved;

/// The socket's name in the shared folder (hidden: never scanned, never shared).
pub const SOCKET: &str = ".p2pshare.sock";
/// Version of the protocol (and of the JSON shapes it carries).
pub const VERSION: u32 = 1;
/// Longest a `get LINK` through the socket waits for the link's peers, whatever the client
/// asked: the client may have gone, and nothing tells the running peer until it answers.
pub const MAX_LINK_WAIT: Duration = Duration::from_secs(3600);
/// Longest request line.
pub const MAX_ASK: u64 = 64 << 10;
/// Longest answer line a client reads: a view holds at most what a node keeps of other
/// peers' catalogs (64 MiB, `budget.rs`) twice over, as text and as JSON, with escaping; past
/// this a listener is not a p2pshare peer, and the client stops instead of filling memory.
pub const MAX_ANSWER: u64 = 256 << 20;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Ask {
    /// Peers, shared files, downloads and counters.
    Status,
    /// Other peers' files (under `folder`, if given; every path with `all`).
    List {
        /// Only what lies under this folder.
        #[serde(default)]
        folder: Option<String>,
        /// Every file with its full path.
        #[serde(default)]
        all: bool,
        /// The answer's JSON (every file) rather than its table (the rows a terminal shows):
        /// only the one asked for is built.
        #[serde(default)]
        json: bool,
    },
    /// Known peers (with `verbose`, as `peers -v` prints them: whole keys, the interface each
    /// is reached over and how it was found).
    Peers {
        /// `peers -v`.
        #[serde(default)]
        verbose: bool,
    },
    /// Keep a peer: `peers add LINK|KEY@ADDRESS` (`crate::add_peer`).
    AddPeer {
        /// The link or `KEY@ADDRESS`.
        spec: String,
    },
    /// The link to a file or folder we share (`crate::link`).
    Link {
        /// Its name.
        name: String,
        /// Addresses to name first (`link --at`), as the user wrote them.
        #[serde(default)]
        at: Vec<String>,
    },
    /// Download what a link names (`crate::get_link`), as `Get` does.
    GetLink {
        /// The link.
        link: String,
        /// As `Get`'s.
        #[serde(default)]
        yes: bool,
        /// Milliseconds the link's peers have to answer.
        timeout_ms: u64,
    },
    /// Download a file by name or content-id prefix.
    Get {
        /// The name or prefix.
        name: String,
        /// Fetch a folder over the size or file count a person is asked about
        /// ([`crate::folder::Preview`]); without it such a folder is refused.
        #[serde(default)]
        yes: bool,
    },
}

/// What the peer answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// The answer to `status`, `list` or `peers`: as text and as JSON.
    View {
        /// What the one-shot prints.
        text: String,
        /// What it prints with `--json`.
        json: serde_json::Value,
    },
    /// A `get` is under way.
    Progress {
        /// Verified bytes on disk.
        done: u64,
        /// File size.
        total: u64,
        /// Peers with requests in flight.
        peers: usize,
    },
    /// The file is verified and in place.
    Done {
        /// What the one-shot prints.
        line: String,
        /// What it prints with `--json`.
        json: serde_json::Value,
    },
    /// Nothing to do (we share that file already).
    Said {
        /// What to print.
        text: String,
    },
    /// A line to show before what follows (what a folder download is about to fetch).
    Note {
        /// What to print, on stderr.
        text: String,
    },
    /// The request failed; the one-shot exits 1.
    Failed {
        /// One line.
        error: String,
        /// More lines to print first (the files one name designates).
        detail: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u32,
    #[serde(flatten)]
    body: T,
}

/// The listening socket of a running peer; removed when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on the socket in `opts.shared` for the peer `ctl` drives. Call only while holding
/// the folder lock: whatever is at the socket's name is stale and replaced (never followed).
/// Connections from another user than ours (or root) are closed unanswered.
pub fn serve(opts: &Opts, ctl: Controller) -> std::io::Result<ControlServer> {
    let path = opts.shared.join(SOCKET);
    let listener = bind_private(&opts.shared, &path)?;
    let server = ControlServer { path: path.clone() };
    let shared = opts.shared.clone();
    let interval = opts.interval;
    std::thread::Builder::new()
        .name("p2pshare-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if !local::peer_uid(&stream).is_ok_and(local::trusted) {
                    continue; // another user's process: closed unanswered
                }
                let (ctl, shared) = (ctl.clone(), shared.clone());
                let _ = std::thread::Builder::new()
                    .name("p2pshare-client".into())
                    .spawn(move || client(stream, &ctl, &shared, interval));
            }
        })?;
    Ok(server)
}

/// Binds a listening socket at `path` (in `dir`) that no other user can reach at any moment:
/// bound in a fresh private folder in `dir` (created 0700, whatever the umask: it can only take
/// bits away), made 0600 there (a path only we can write, so no symlink can be swapped in),
/// then renamed to `path`, which atomically replaces a stale socket, or a symlink planted
/// there, without following it. The private folder is removed.
fn bind_private(dir: &Path, path: &Path) -> std::io::Result<UnixListener> {
    let private = dir.join(format!(
        ".p2ps-{:08x}",
        p2pshare_host::seed::random_u64() as u32
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let tmp = private.join("s");
    let bound = UnixListener::bind(&tmp).and_then(|l| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&private);
    bound
}

fn send(w: &mut impl Write, a: Answer) -> std::io::Result<()> {
    let line = serde_json::to_string(&Envelope {
        version: VERSION,
        body: a,
    })?;
    writeln!(w, "{line}")?;
    w.flush()
}

/// Serves one client: one request, its answers (`interval`: the peer's announcement
/// interval, what a link's peers are given to answer in).
fn client(stream: UnixStream, ctl: &Controller, shared: &Path, interval: f64) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    let read = BufReader::new(stream.take(MAX_ASK)).read_line(&mut line);
    let ask = match read {
        Ok(_) => serde_json::from_str::<Envelope<Ask>>(&line).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let answer = match ask {
        Ok(Envelope { version, .. }) if version != VERSION => Answer::Failed {
            error: format!("the running peer speaks control version {VERSION}, not {version}"),
            detail: None,
        },
        Ok(Envelope {
            body: Ask::Get { name, yes },
            ..
        }) => return get(&mut out, ctl, shared, &name, yes),
        Ok(Envelope {
            body:
                Ask::GetLink {
                    link,
                    yes,
                    timeout_ms,
                },
            ..
        }) => {
            let timeout = Duration::from_millis(timeout_ms);
            return get_link(&mut out, ctl, (shared, interval), &link, (yes, timeout));
        }
        Ok(Envelope {
            body: Ask::AddPeer { spec },
            ..
        }) => match crate::add_peer::parse(&spec)
            .and_then(|peers| crate::add_peer::keep_running(ctl, &peers))
        {
            Ok(text) => Answer::Said { text },
            Err(error) => failed(error, None),
        },
        Ok(Envelope {
            body: Ask::Link { name, at },
            ..
        }) => match ctl.state() {
            Ok(s) => match crate::link::of_snapshot(&s, &name, &at) {
                Ok(made) => Answer::View {
                    text: made.text(),
                    json: made.json(),
                },
                Err(error) => failed(error, None),
            },
            Err(e) => failed(e.to_string(), None),
        },
        Ok(Envelope {
            body: Ask::List { folder, all, json },
            ..
        }) => list(ctl, folder.as_deref(), all, json),
        Ok(Envelope { body: ask, .. }) => match ctl.state() {
            Ok(s) => view(&ask, &s),
            Err(e) => Answer::Failed {
                error: e.to_string(),
                detail: None,
            },
        },
        Err(e) => Answer::Failed {
            error: format!("bad request: {e}"),
            detail: None,
        },
    };
    let _ = send(&mut out, answer);
}

/// A list: its table walks the node's view of the other peers' files and keeps only the rows
/// it shows; its JSON (every file) groups them all, and is built only when asked for.
fn list(ctl: &Controller, folder: Option<&str>, all: bool, json: bool) -> Answer {
    let answer = if json {
        ctl.snapshot().map(|s| Answer::View {
            text: String::new(),
            json: format::list_json_value(&s, folder),
        })
    } else {
        ctl.remote().map(|v| Answer::View {
            text: format::list_under(&v, folder, all),
            json: serde_json::Value::Null,
        })
    };
    answer.unwrap_or_else(|e| Answer::Failed {
        error: e.to_string(),
        detail: None,
    })
}

fn view(ask: &Ask, s: &Snapshot) -> Answer {
    let (text, json) = match ask {
        Ask::Peers { verbose: false } => (format::peers(s), format::peers_json(s)),
        Ask::Peers { verbose: true } => (format::peers_verbose(s), format::peers_json(s)),
        _ => (format::status(s), format::status_json(s)),
    };
    Answer::View {
        text,
        json: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
    }
}

/// A `get LINK` through the running peer: its peers dialled, what it names waited for (at
/// most `timeout`, and [`MAX_LINK_WAIT`]), then fetched as a `get` is.
fn get_link(
    out: &mut UnixStream,
    ctl: &Controller,
    (shared, interval): (&Path, f64),
    link: &str,
    (yes, timeout): (bool, Duration),
) {
    let wanted = match crate::get_link::Wanted::read(link) {
        Ok(w) => w,
        Err(e) => return drop(send(out, failed(e, None))),
    };
    let grace = crate::get_link::grace(interval);
    let deadline = Instant::now() + timeout.min(MAX_LINK_WAIT);
    let resolved = crate::get_link::resolve(ctl, &wanted, grace, deadline, None, &mut |line| {
        let _ = send(
            out,
            Answer::Note {
                text: line.to_owned(),
            },
        );
    });
    match resolved {
        Ok(Resolved::Content(content)) => {
            let pick = commands::Pick {
                content,
                name: None,
            };
            get_content(out, ctl, shared, pick);
        }
        Ok(Resolved::Folder(path, snap)) => get_folder(out, ctl, shared, &path, &snap, yes),
        Ok(Resolved::Have(text)) => drop(send(out, Answer::Said { text })),
        Err((e, _)) => drop(send(out, failed(e, None))),
    }
}

/// A `get` through the running peer: resolves the name against its view, starts the
/// download, streams its progress, and ends with its outcome. A folder is shown first, and
/// refused when the disk has no room for it or when it is big and `yes` is not given.
fn get(out: &mut UnixStream, ctl: &Controller, shared: &Path, name: &str, yes: bool) {
    let snap = match ctl.snapshot_where(|n, c| crate::commands::could_mean(name, n, c)) {
        Ok(s) => s,
        Err(e) => return drop(send(out, failed(e.to_string(), None))),
    };
    if crate::folder::is_folder(&snap, name) {
        return get_folder(out, ctl, shared, name, &snap, yes);
    }
    let pick = match commands::content_by_name(&snap, name, shared) {
        Ok(p) => p,
        Err(Unresolved::Unknown(m)) => {
            // With `--dht`, a content id no peer in view holds is looked for there too.
            let mut say = |line: &str| {
                let _ = send(
                    out,
                    Answer::Note {
                        text: line.to_owned(),
                    },
                );
            };
            match commands::through_dht(ctl, shared, name, &mut say, &|| false) {
                Some(p) => p,
                None => return drop(send(out, failed(m, None))),
            }
        }
        Err(Unresolved::Have(m)) => return drop(send(out, Answer::Said { text: m })),
        Err(Unresolved::Ambiguous(a)) => {
            let error = format!("{}; use `get <id prefix>`", a.what);
            let detail = format!("{}:\n{}", a.what, a.list);
            return drop(send(out, failed(error, Some(detail))));
        }
    };
    get_content(out, ctl, shared, pick);
}

/// A failure's answer.
fn failed(error: String, detail: Option<String>) -> Answer {
    Answer::Failed { error, detail }
}

/// The folder `name` as `snap` lists it, fetched as one job: shown first, refused when the
/// disk has no room for it or when it is big and `yes` is not given.
fn get_folder(
    out: &mut UnixStream,
    ctl: &Controller,
    shared: &Path,
    name: &str,
    snap: &Snapshot,
    yes: bool,
) {
    let job = crate::folder::plan(snap, shared, name);
    if job.totals().files == 0 {
        let m = format!("no peer shares a folder named {name:?} (see `list`)");
        return drop(send(out, failed(m, None)));
    }
    let preview = crate::folder::preview(snap, shared, name, &job);
    if send(
        out,
        Answer::Note {
            text: preview.line(),
        },
    )
    .is_err()
    {
        return;
    }
    let refused = match preview.room(shared) {
        Err(e) => Some(e),
        Ok(()) if preview.big() && !yes => Some(preview.unconfirmed()),
        Ok(()) => None,
    };
    if let Some(e) = refused {
        return drop(send(out, failed(e, None)));
    }
    let result = crate::folder::run_watched(ctl, shared, name, job, |job, peers, news| {
        if !news {
            return Ok(());
        }
        let t = job.totals();
        let p = Answer::Progress {
            done: t.bytes_done,
            total: t.bytes,
            peers,
        };
        send(out, p).map_err(|_| "the client went away".to_owned())
    });
    let answer = match result {
        Ok(done) => Answer::Done {
            line: done.line,
            json: done.json,
        },
        Err(done) => {
            let n = done.json["failed"].as_array().map_or(0, Vec::len);
            let error = format!("{n} file{} of {name} failed", crate::download::plural(n));
            failed(error, Some(done.line))
        }
    };
    drop(send(out, answer));
}

/// The download of `pick`: started, its progress streamed, its outcome the last answer.
fn get_content(out: &mut UnixStream, ctl: &Controller, shared: &Path, pick: commands::Pick) {
    let content = pick.content;
    let events = match ctl.get_watched(content, pick.name) {
        Ok(rx) => rx,
        Err(e) => return drop(send(out, failed(e.to_string(), None))),
    };
    let mut timer = crate::download::Timer::start();
    for e in events {
        let answer = match e {
            Event::Progress {
                done, total, peers, ..
            } => {
                timer.progress(done, total);
                Answer::Progress { done, total, peers }
            }
            end @ (Event::DownloadDone { .. } | Event::DownloadFailed { .. }) => {
                let answer = match crate::download::outcome(shared, end, timer.end()) {
                    Ok(done) => Answer::Done {
                        line: done.line,
                        json: done.json,
                    },
                    Err(error) => failed(error, None),
                };
                return drop(send(out, answer));
            }
            _ => continue,
        };
        if send(out, answer).is_err() {
            // The client went away (killed, interrupted): stop its download, keep the partial.
            let _ = ctl.request(Request::Cancel(content));
            return;
        }
    }
}

/// The running peer of `shared`, if one listens (`None`: no one does). A listener that runs
/// as another user than ours (or root) is an error: it is not our peer, and nothing it says
/// can be trusted.
pub fn connect(shared: &Path) -> Result<Option<UnixStream>, String> {
    let Ok(stream) = UnixStream::connect(shared.join(SOCKET)) else {
        return Ok(None);
    };
    match local::peer_uid(&stream) {
        Ok(uid) if local::trusted(uid) => Ok(Some(stream)),
        Ok(uid) => Err(format!(
            "the control socket in {} is another user's (uid {uid}); not talking to it",
            shared.display()
        )),
        Err(e) => Err(format!("the control socket in {}: {e}", shared.display())),
    }
}

/// Sends `ask` on `stream` and calls `each` with every answer until the peer closes; calls
/// `tick` whenever nothing came for [`crate::signals::POLL`], and stops with its error. An
/// answer line longer than [`MAX_ANSWER`], or a close before any answer, is an error.
pub fn ask(
    stream: UnixStream,
    ask: Ask,
    tick: impl FnMut() -> Result<(), String>,
    each: impl FnMut(Answer) -> Result<(), String>,
) -> Result<(), String> {
    ask_within(stream, ask, MAX_ANSWER, tick, each)
}

/// [`ask`], reading at most `limit` bytes per answer line.
fn ask_within(
    stream: UnixStream,
    ask: Ask,
    limit: u64,
    mut tick: impl FnMut() -> Result<(), String>,
    mut each: impl FnMut(Answer) -> Result<(), String>,
) -> Result<(), String> {
    let mut w = stream
        .try_clone()
        .map_err(|e| format!("the running peer: {e}"))?;
    let line = serde_json::to_string(&Envelope {
        version: VERSION,
        body: ask,
    })
    .map_err(|e| e.to_string())?;
    writeln!(w, "{line}").map_err(|e| format!("the running peer: {e}"))?;
    stream
        .set_read_timeout(Some(crate::signals::POLL))
        .map_err(|e| format!("the running peer: {e}"))?;
    let mut r = BufReader::new(stream.take(limit));
    let mut line = Vec::new();
    let mut answered = false;
    loop {
        // Bytes read before a timeout stay in `line`: a line may come in pieces.
        match r.read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() && answered => return Ok(()),
            Ok(0) if line.is_empty() => {
                return Err("the running peer closed the connection without an answer".into());
            }
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) if r.get_ref().limit() == 0 => {
                return Err(format!(
                    "the running peer's answer is longer than {limit} bytes"
                ));
            }
            Ok(_) => return Err("the running peer stopped mid-answer".into()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                tick()?;
                continue;
            }
            Err(e) => return Err(format!("the running peer: {e}")),
        }
        let env: Envelope<Answer> = serde_json::from_slice(&line)
            .map_err(|e| format!("the running peer answered something else: {e}"))?;
        if env.version != VERSION {
            return Err(format!(
                "the running peer speaks control version {}, not {VERSION}",
                env.version
            ));
        }
        line.clear();
        // The limit is per line (what the buffer read ahead was counted already).
        r.get_mut().set_limit(limit);
        answered = true;
        each(env.body)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    /// Names in `dir` other than the socket's.
    fn others(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != SOCKET)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_socket_is_bound_private_and_replaces_what_was_planted_without_following_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let path = dir.join(SOCKET);
        // A symlink planted at the socket's name, to a file of someone else's.
        let victim = dir.join("victim");
        std::fs::write(&victim, b"x").expect("write");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        let listener = bind_private(dir, &path).expect("bound");
        let meta = std::fs::symlink_metadata(&path).expect("socket");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let victim_mode = std::fs::metadata(&victim)
            .expect("victim")
            .permissions()
            .mode();
        assert_eq!(
            victim_mode & 0o777,
            0o644,
            "not chmod'ed through the symlink"
        );
        assert_eq!(
            others(dir),
            vec!["victim".to_owned()],
            "no private folder left"
        );
        let c = UnixStream::connect(&path).expect("connect");
        assert_eq!(local::peer_uid(&c).ok(), Some(local::my_uid()));
        drop(listener);
        // A stale socket is replaced; a folder at that name is an error, left as it is.
        bind_private(dir, &path).expect("over a stale socket");
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir");
        assert!(bind_private(dir, &path).is_err());
        assert!(path.is_dir());
        assert_eq!(others(dir), vec!["victim".to_owned()]);
    }

    #[test]
    fn a_client_reads_a_bounded_line_and_wants_an_answer() {
        // A listener that sends an endless line: the client stops at the limit.
        let (client, mut server) = UnixStream::pair().expect("pair");
        let writer = std::thread::spawn(move || {
            let junk = vec![b'x'; 4096];
            while server.write_all(&junk).is_ok() {}
        });
        let e = ask_within(client, Ask::Status, 1 << 20, || Ok(()), |_| Ok(()));
        assert_eq!(
            e,
            Err("the running peer's answer is longer than 1048576 bytes".into())
        );
        writer.join().expect("writer");
        // One that reads the request and closes without a word.
        let (client, server) = UnixStream::pair().expect("pair");
        server
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let e = ask_within(client, Ask::Status, 1 << 20, || Ok(()), |_| Ok(()));
        assert!(e.is_err_and(|e| e.contains("without an answer")));
        drop(server);
    }

    #[test]
    fn requests_and_answers_are_versioned_json_lines() {
        let a = serde_json::to_string(&Envelope {
            version: VERSION,
            body: Ask::Get {
                name: "x".into(),
                yes: false,
            },
        })
        .unwrap_or_default();
        assert_eq!(a, r#"{"version":1,"cmd":"get","name":"x","yes":false}"#);
        // A client that does not know `yes` asks without it.
        let old: Envelope<Ask> =
            serde_json::from_str(r#"{"version":1,"cmd":"get","name":"x"}"#).expect("old ask");
        assert_eq!(
            old.body,
            Ask::Get {
                name: "x".into(),
                yes: false
            }
        );
        // A client that does not know `verbose` asks for the plain peers.
        let old: Envelope<Ask> =
            serde_json::from_str(r#"{"version":1,"cmd":"peers"}"#).expect("old ask");
        assert_eq!(old.body, Ask::Peers { verbose: false });
        let p = serde_json::to_string(&Envelope {
            version: VERSION,
            body: Answer::Progress {
                done: 1,
                total: 2,
                peers: 3,
            },
        })
        .unwrap_or_default();
        assert_eq!(
            p,
            r#"{"version":1,"kind":"progress","done":1,"total":2,"peers":3}"#
        );
        let back: Envelope<Answer> = serde_json::from_str(&p).expect("round trip");
        assert_eq!(
            back.body,
            Answer::Progress {
                done: 1,
                total: 2,
                peers: 3
            }
        );
    }
}
