//! The one-shot subcommands, and the download procedure the prompt shares with `get`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use p2pshare_host::store::partial_file_name;
use p2pshare_host::{Handle, Notice, Request, Snapshot};
use p2pshare_proto::node::DEFAULT_TRANSFER_PORT;
use p2pshare_proto::{ContentId, Event, hex};

use crate::Failure;
use crate::args::Opts;
use crate::control::{self, Answer, Ask};
use crate::format;
use crate::peer::{self, Mode};
use crate::signals::{self, Signals};

/// `p2pshare serve`: share and serve until SIGINT or SIGTERM, then say goodbye.
pub fn serve(opts: &Opts, port: Option<u16>, signals: &Signals) -> Result<(), Failure> {
    let (handle, _control) = peer::start_sharing(opts, port)?;
    // With -v, the counters of dropped and refused input are printed whenever they changed,
    // at most once a second: the only window on hostile or broken peers a `serve` gives.
    let mut last_stats = (p2pshare_proto::Stats::default(), 0);
    let mut next_stats = Instant::now();
    loop {
        if let Some(sig) = signals.take() {
            handle.shutdown();
            return Err(Failure::Signal(sig));
        }
        let wait = if opts.verbose > 0 {
            next_stats.saturating_duration_since(Instant::now())
        } else {
            signals::POLL
        };
        match handle.next_notice(wait.min(signals::POLL)) {
            Ok(Some(n)) => report(opts, &n),
            Ok(None) => {}
            Err(e) => return Err(e.to_string().into()),
        }
        if opts.verbose > 0 && Instant::now() >= next_stats {
            next_stats = Instant::now() + Duration::from_secs(1);
            let s = handle.snapshot().map_err(|e| e.to_string())?;
            let stats = (s.stats, s.notices_dropped);
            if stats != last_stats {
                eprintln!(
                    "stats: {} notices_dropped={}",
                    format::stats(&stats.0),
                    stats.1
                );
                last_stats = stats;
            }
        }
    }
}

/// Prints a notice when it matters to the user (more of them with -v).
pub fn report(opts: &Opts, n: &Notice) {
    match n {
        Notice::Warning(w) => eprintln!("p2pshare: warning: {w}"),
        Notice::Event(e) if opts.verbose > 0 => match e {
            Event::PeerFound { addr, .. } => eprintln!("peer found: {addr}"),
            Event::PeerLost { addr, .. } => eprintln!("peer lost: {addr}"),
            Event::CatalogUpdated { peer, files } => {
                eprintln!("catalog of {peer}: {files} files")
            }
            Event::ChunkRejected { peer, index, .. } => {
                eprintln!("chunk {index} from {peer} failed its SHA-256: rejected")
            }
            _ => {}
        },
        Notice::Scanned {
            files,
            hashed_files,
            hashed_bytes,
        } if opts.verbose > 0 => eprintln!(
            "sharing {files} files (hashed {hashed_files} files, {})",
            format::size(*hashed_bytes)
        ),
        _ => {}
    }
}

/// Runs a looking-only peer for `wait` seconds, then prints what it saw as `text` renders it, or
/// with `json` as `as_json` does.
fn observe(
    opts: &Opts,
    port: Option<u16>,
    wait: f64,
    json: bool,
    text: fn(&Snapshot) -> String,
    as_json: fn(&Snapshot) -> String,
    ask: Ask,
) -> Result<(), String> {
    let wait = peer::seconds("--wait", wait)?;
    // The running peer of the folder knows already: no need to listen.
    if let Some(stream) = control::connect(&opts.shared) {
        return print_view(stream, ask, json);
    }
    let handle = peer::start(opts, port.unwrap_or(0), Mode::Observe)?;
    std::thread::sleep(wait);
    let snap = handle.snapshot().map_err(|e| e.to_string())?;
    handle.shutdown();
    let render = if json { as_json } else { text };
    println!("{}", render(&snap));
    Ok(())
}

/// `p2pshare list`.
pub fn list(opts: &Opts, port: Option<u16>, wait: f64, json: bool) -> Result<(), String> {
    observe(
        opts,
        port,
        wait,
        json,
        format::list,
        format::list_json,
        Ask::List,
    )
}

/// Prints the running peer's answer to `ask` (a view: list, peers, status).
fn print_view(stream: std::os::unix::net::UnixStream, ask: Ask, json: bool) -> Result<(), String> {
    control::ask(
        stream,
        ask,
        || Ok(()),
        |a| match a {
            Answer::View { text, json: j } => {
                if json {
                    println!("{j}");
                } else {
                    println!("{text}");
                }
                Ok(())
            }
            Answer::Failed { error, .. } => Err(error),
            other => Err(format!("the running peer answered {other:?}")),
        },
    )
}

/// `p2pshare status`: what the running peer of the folder is doing.
pub fn status(opts: &Opts, json: bool) -> Result<(), String> {
    match control::connect(&opts.shared) {
        Some(stream) => print_view(stream, Ask::Status, json),
        None => Err(format!(
            "no peer runs on {} (start one with `p2pshare serve` or the prompt)",
            opts.shared.display()
        )),
    }
}

/// `p2pshare peers`.
pub fn peers(opts: &Opts, port: Option<u16>, wait: f64, json: bool) -> Result<(), String> {
    let text = if opts.verbose > 0 {
        format::peers_verbose
    } else {
        format::peers
    };
    observe(opts, port, wait, json, text, format::peers_json, Ask::Peers)
}

/// `p2pshare get NAME`: waits for a peer that shares NAME, downloads it, exits 0 only when the
/// verified file is in place.
pub fn get(
    opts: &Opts,
    port: Option<u16>,
    name: &str,
    timeout: f64,
    signals: &Signals,
) -> Result<(), Failure> {
    let timeout = peer::seconds("--timeout", timeout)?;
    let deadline = Instant::now() + timeout;
    if let Some(stream) = control::connect(&opts.shared) {
        return get_through(stream, name, signals);
    }
    let handle = peer::start(opts, port.unwrap_or(DEFAULT_TRANSFER_PORT), Mode::Share)?;
    // Start as soon as one holder lists the file: the download begins on its manifest, and
    // the other holders join as their catalogs arrive. Only a name that several files carry
    // waits until the view of the LAN has settled (a partial of one of them may decide).
    let pick = loop {
        if let Some(sig) = signals.take() {
            handle.shutdown();
            return Err(Failure::Signal(sig));
        }
        let snap = handle.snapshot().map_err(|e| e.to_string())?;
        let early = !snap.settled && Instant::now() < deadline;
        match content_by_name(&snap, name, &opts.shared) {
            // A partial of another file of that name is here: its holder may not have
            // answered yet.
            Ok(pick) if early && other_partial(&opts.shared, name, &pick.content) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(pick) => break pick,
            Err(Unresolved::Ambiguous(_)) if early => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(Unresolved::Ambiguous(a)) => {
                println!("{}:\n{}", a.what, a.list);
                handle.shutdown();
                return Err(format!("{}; use `get <id prefix>`", a.what).into());
            }
            Err(Unresolved::Have(msg)) => {
                println!("{msg}");
                return Ok(());
            }
            Err(Unresolved::Unknown(msg)) => {
                if Instant::now() >= deadline {
                    return Err(msg.into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    match download(opts, &handle, pick, deadline, signals) {
        Ok(line) => println!("{line}"),
        Err(Stop::Failed(e)) => return Err(e.into()),
        Err(Stop::Interrupted(sig)) => {
            eprintln!("p2pshare: download cancelled; {RESUME}");
            handle.shutdown();
            return Err(Failure::Signal(sig));
        }
    }
    handle.shutdown();
    Ok(())
}

/// True when `shared` holds a partial download named `name` of another content than
/// `content`.
fn other_partial(shared: &Path, name: &str, content: &ContentId) -> bool {
    let mine = partial_file_name(name, content);
    let stem = format!(".dl_{name}.");
    std::fs::read_dir(shared).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let f = e.file_name();
            let f = f.to_string_lossy();
            f.starts_with(&stem) && f.ends_with(".part") && *f != mine
        })
    })
}

/// `get` through the running peer of the folder: same output and exit status as standalone.
fn get_through(
    stream: std::os::unix::net::UnixStream,
    name: &str,
    signals: &Signals,
) -> Result<(), Failure> {
    let bar = ProgressBar::new();
    let mut interrupted = None;
    let result = control::ask(
        stream,
        Ask::Get {
            name: name.to_owned(),
        },
        || match signals.take() {
            // Closing the connection makes the running peer cancel the download.
            Some(sig) => {
                interrupted = Some(sig);
                Err("interrupted".into())
            }
            None => Ok(()),
        },
        |a| match a {
            Answer::Progress { done, total, peers } => {
                bar.draw(done, total, peers);
                Ok(())
            }
            Answer::Done { line } => {
                bar.clear();
                println!("{line}");
                Ok(())
            }
            Answer::Said { text } => {
                println!("{text}");
                Ok(())
            }
            Answer::Failed { error, detail } => {
                bar.clear();
                if let Some(d) = detail {
                    println!("{d}");
                }
                Err(error)
            }
            Answer::View { .. } => Err("the running peer answered a view to a get".into()),
        },
    );
    if let Some(sig) = interrupted {
        bar.clear();
        eprintln!("p2pshare: download cancelled; {RESUME}");
        return Err(Failure::Signal(sig));
    }
    result.map_err(Failure::from)
}

/// What to tell the user about a stopped download.
pub const RESUME: &str = "the partial file is kept: `get` it again to resume";

/// Why [`download`] returned without the file.
#[derive(Debug)]
pub enum Stop {
    /// It failed, or timed out (the message says why).
    Failed(String),
    /// SIGINT or SIGTERM came: the download was cancelled, its partial file kept.
    Interrupted(i32),
}

/// Several different files that one name designates.
#[derive(Debug)]
pub struct Ambiguity {
    /// One line: how many, and the name.
    pub what: String,
    /// One numbered line per file: id, size, holders.
    pub list: String,
    /// The files, in the list's order.
    pub choices: Vec<Pick>,
}

/// Why a name did not resolve to one remote file.
#[derive(Debug)]
pub enum Unresolved {
    /// No peer shares it (yet).
    Unknown(String),
    /// Several different files carry that name.
    Ambiguous(Ambiguity),
    /// We share that content already.
    Have(String),
}

/// A remote file the user picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Its content.
    pub content: ContentId,
    /// The name the user asked for (to save it under), or `None` when picked by id prefix
    /// (then the peer saves it under the name most holders use).
    pub name: Option<String>,
}

/// Finds the one remote file `name` designates: by name, else by content-id prefix. When
/// several different files carry that name and the shared folder `shared` holds a partial
/// download of exactly one of them, that one (getting it again resumes it).
pub fn content_by_name(s: &Snapshot, name: &str, shared: &Path) -> Result<Pick, Unresolved> {
    let by_name: Vec<_> = s
        .remote
        .iter()
        .filter(|f| f.names.iter().any(|n| n == name))
        .collect();
    let named = !by_name.is_empty();
    let candidates = if by_name.is_empty() && name.len() >= 4 {
        let prefix = name.to_ascii_lowercase();
        s.remote
            .iter()
            .filter(|f| f.content.to_hex().starts_with(&prefix))
            .collect()
    } else {
        by_name
    };
    match candidates.as_slice() {
        [] => {
            if let Some(f) = s.shared.iter().find(|f| f.name == name) {
                return Err(Unresolved::Have(format!(
                    "{} is in your shared folder already ({})",
                    f.name,
                    f.content.short()
                )));
            }
            Err(Unresolved::Unknown(format!(
                "no peer shares a file named {name:?} (see `list`)"
            )))
        }
        [f] if f.local => {
            let mine = s
                .shared
                .iter()
                .find(|x| x.content == f.content)
                .map(|x| x.name.clone());
            Err(Unresolved::Have(format!(
                "you already share this file as {}",
                mine.unwrap_or_else(|| f.content.short())
            )))
        }
        [f] => Ok(Pick {
            content: f.content,
            name: named.then(|| name.to_owned()),
        }),
        many => {
            let partial: Vec<_> = many
                .iter()
                .filter(|f| shared.join(partial_file_name(name, &f.content)).exists())
                .collect();
            if named && let [f] = partial.as_slice() {
                return Ok(Pick {
                    content: f.content,
                    name: Some(name.to_owned()),
                });
            }
            let list: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    format!(
                        "  {}. {}  {}  {} peer{}",
                        i + 1,
                        f.content.short(),
                        format::size(f.size),
                        f.holders.len(),
                        if f.holders.len() == 1 { "" } else { "s" }
                    )
                })
                .collect();
            Err(Unresolved::Ambiguous(Ambiguity {
                what: format!("{} different files are named {name:?}", many.len()),
                list: list.join("\n"),
                choices: many
                    .iter()
                    .map(|f| Pick {
                        content: f.content,
                        name: named.then(|| name.to_owned()),
                    })
                    .collect(),
            }))
        }
    }
}

/// Downloads `pick`, drawing progress on a terminal; returns the line to print on success.
pub fn download(
    opts: &Opts,
    handle: &Handle,
    pick: Pick,
    deadline: Instant,
    signals: &Signals,
) -> Result<String, Stop> {
    let start = Instant::now();
    let content = pick.content;
    handle
        .get(content, pick.name)
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let bar = ProgressBar {
        shown: std::io::stderr().is_terminal(),
        start,
    };
    let end = wait_for_outcome(opts, handle, content, deadline, &bar, signals);
    bar.clear();
    summary(opts, end?, start.elapsed().as_secs_f64()).map_err(Stop::Failed)
}

/// Reports notices and draws progress until `content`'s download ends; returns its last event,
/// `DownloadDone` or `DownloadFailed`. Errors: the deadline passed or a signal came (the
/// download is cancelled, its partial file kept), or the peer stopped.
fn wait_for_outcome(
    opts: &Opts,
    handle: &Handle,
    content: ContentId,
    deadline: Instant,
    bar: &ProgressBar,
    signals: &Signals,
) -> Result<Event, Stop> {
    loop {
        if let Some(sig) = signals.take() {
            let _ = handle.request(Request::Cancel(content));
            return Err(Stop::Interrupted(sig));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = handle.request(Request::Cancel(content));
            return Err(Stop::Failed(format!("timed out; {RESUME}")));
        }
        let notice = match handle.next_notice(left.min(signals::POLL)) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => return Err(Stop::Failed(e.to_string())),
        };
        report(opts, &notice);
        let Notice::Event(e) = notice else { continue };
        match e {
            Event::Progress {
                content: c,
                done,
                total,
                peers,
            } if c == content => bar.draw(done, total, peers),
            Event::DownloadDone { content: c, .. } | Event::DownloadFailed { content: c, .. }
                if c == content =>
            {
                return Ok(e);
            }
            _ => {}
        }
    }
}

/// What to print when a download ended with `end`: for `DownloadDone`, where the file is, its
/// hash and who sent what; for `DownloadFailed`, why, as the error.
fn summary(opts: &Opts, end: Event, secs: f64) -> Result<String, String> {
    summary_in(&opts.shared, end, secs)
}

/// [`summary`] for a download into the folder `shared`.
pub fn summary_in(shared: &Path, end: Event, secs: f64) -> Result<String, String> {
    let Event::DownloadDone {
        file,
        size,
        file_hash,
        fetched,
        reused,
        rejected,
        sources,
        ..
    } = end
    else {
        return Err(match end {
            Event::DownloadFailed { name, reason, .. } => {
                format!("download of {name} failed: {reason}")
            }
            other => format!("the download ended without a result: {other:?}"),
        });
    };
    let mut line = format!(
        "Saved {} ({}, sha256 {}) from {} peer{} in {:.1} s ({})",
        shared.join(&file).display(),
        format::size(size),
        hex(&file_hash),
        sources.len(),
        plural(sources.len()),
        secs,
        format::rate(fetched, secs),
    );
    if reused > 0 {
        line.push_str(&format!("; resumed: {reused} chunks were already on disk"));
    }
    if rejected > 0 {
        line.push_str(&format!(
            "; rejected {rejected} corrupt chunk{}",
            plural(rejected as usize)
        ));
    }
    for s in &sources {
        let who = s.addr.map_or_else(|| s.peer.to_string(), |a| a.to_string());
        line.push_str(&format!(
            "\n  {who}: {} chunk{}",
            s.chunks,
            plural(s.chunks as usize)
        ));
    }
    Ok(line)
}

/// `"s"` unless there is exactly one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The progress line of one download on stderr, drawn only when stderr is a terminal.
pub struct ProgressBar {
    shown: bool,
    start: Instant,
}

impl ProgressBar {
    /// A bar starting now, shown when stderr is a terminal.
    pub fn new() -> ProgressBar {
        ProgressBar {
            shown: std::io::stderr().is_terminal(),
            start: Instant::now(),
        }
    }

    /// Redraws the line: `done` of `total` bytes, from `peers` peers.
    pub fn draw(&self, done: u64, total: u64, peers: usize) {
        if !self.shown {
            return;
        }
        const WIDTH: usize = 30;
        let secs = self.start.elapsed().as_secs_f64();
        let frac = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let filled = (frac * WIDTH as f64) as usize;
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 {
            (total - done) as f64 / rate
        } else {
            0.0
        };
        eprint!(
            "\r\x1b[2K[{}{}] {} / {}  {}  ETA {:.0} s  {} peer{}",
            "=".repeat(filled),
            " ".repeat(WIDTH - filled),
            format::size(done),
            format::size(total),
            format::rate(done, secs),
            eta,
            peers,
            plural(peers)
        );
        let _ = std::io::stderr().flush();
    }

    /// Erases the line, before the outcome is printed.
    pub fn clear(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}
