//! The one-shot subcommands, and the download procedure the prompt shares with `get`.

use std::path::Path;
use std::time::{Duration, Instant};

use p2pshare_host::store::partial_file_name;
use p2pshare_host::{Controller, Handle, Notice, Request, Snapshot};
use p2pshare_proto::node::DEFAULT_TRANSFER_PORT;
use p2pshare_proto::share_link::ShareLink;
use p2pshare_proto::{ContentId, Event};

use crate::Failure;
use crate::args::Opts;
use crate::control::{self, Answer, Ask};
use crate::download::{RESUME, Stop, download_many};
use crate::folder;
use crate::format;
use crate::get_link::{self, Resolved, Wanted};
use crate::peer::{self, Mode};
use crate::progress::Progress;
use crate::signals::{self, Signals};

/// Longest a one-shot `get` waits for the catalogs of the peers it heard before it starts on
/// the holders it knows (a peer that never answers must not hold it up longer).
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// `p2pshare serve`: share and serve until SIGINT or SIGTERM, then say goodbye. What happens
/// is logged through `tracing` on stderr, with timestamps: warnings always, with `-v` the
/// peers, catalogs, rejected chunks and the counters; `RUST_LOG` chooses otherwise.
pub fn serve(opts: &Opts, port: Option<u16>, signals: &Signals) -> Result<(), Failure> {
    let default = if opts.verbose > 0 { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
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
            Ok(Some(Notice::Warning(w))) => tracing::warn!("{w}"),
            Ok(Some(n)) => {
                if let Some(line) = notice_line(opts, &n) {
                    tracing::info!("{line}");
                }
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string().into()),
        }
        if opts.verbose > 0 && Instant::now() >= next_stats {
            next_stats = Instant::now() + Duration::from_secs(1);
            let stats = handle.counters().map_err(|e| e.to_string())?;
            if stats != last_stats {
                tracing::info!(
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
    if let Some(line) = notice_line(opts, n) {
        eprintln!("{line}");
    }
}

/// The line to print for a notice, if it matters to the user (more of them with -v).
pub fn notice_line(opts: &Opts, n: &Notice) -> Option<String> {
    match n {
        Notice::Warning(w) => Some(format!("p2pshare: warning: {w}")),
        Notice::Event(e) if opts.verbose > 0 => match e {
            Event::PeerFound { addr, .. } => Some(format!(
                "peer found: {}",
                p2pshare_host::interfaces::show(*addr)
            )),
            Event::PeerLost { addr, .. } => Some(format!(
                "peer lost: {}",
                p2pshare_host::interfaces::show(*addr)
            )),
            Event::CatalogUpdated { peer, files } => {
                Some(format!("catalog of {peer}: {files} files"))
            }
            Event::ChunkRejected { peer, index, .. } => Some(format!(
                "chunk {index} from {peer} failed its SHA-256: rejected"
            )),
            _ => None,
        },
        Notice::Scanned {
            files,
            hashed_files,
            hashed_bytes,
        } if opts.verbose > 0 => Some(format!(
            "sharing {files} files (hashed {hashed_files} files, {})",
            format::size(*hashed_bytes)
        )),
        Notice::Dht(r) => dht_line(opts, r),
        _ => None,
    }
}

/// The line for what the DHT did: what a lookup found always (a `get` asked for it), the
/// announces with -v.
fn dht_line(opts: &Opts, r: &p2pshare_host::dht::Report) -> Option<String> {
    use p2pshare_host::dht::Report;
    match r {
        Report::Holders {
            content,
            addrs,
            after,
        } => Some(format!(
            "dht: {} holder{} of {} after {:.3} s: {}",
            addrs.len(),
            if addrs.len() == 1 { "" } else { "s" },
            content.short(),
            after.as_secs_f64(),
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        Report::LookupDone {
            content,
            holders,
            took,
        } if opts.verbose > 0 || *holders == 0 => Some(format!(
            "dht: lookup of {} done in {:.3} s, {holders} holders",
            content.short(),
            took.as_secs_f64()
        )),
        Report::Announced { content, took } if opts.verbose > 0 => Some(format!(
            "dht: announced {} ({:.3} s)",
            content.short(),
            took.as_secs_f64()
        )),
        Report::AnnounceFailed { content, error } if opts.verbose > 0 => Some(format!(
            "dht: announce of {} failed: {error}",
            content.short()
        )),
        Report::PeerAddrs {
            key,
            seq,
            addrs,
            after,
        } => Some(format!(
            "dht: {} is at {} (its record, seq {seq}, after {:.3} s)",
            key.short(),
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            after.as_secs_f64()
        )),
        Report::BadRecord { key, error } => Some(format!(
            "dht: the record of {} is unusable: {error}",
            key.short()
        )),
        Report::ResolveDone {
            key,
            seq,
            addrs,
            took,
        } if opts.verbose > 0 || seq.is_none() => Some(match seq {
            Some(seq) => format!(
                "dht: lookup of {} done in {:.3} s, record seq {seq}, {addrs} addresses",
                key.short(),
                took.as_secs_f64()
            ),
            None => format!(
                "dht: no record of {} found ({:.3} s)",
                key.short(),
                took.as_secs_f64()
            ),
        }),
        Report::Published {
            seq,
            addrs,
            bytes,
            took,
        } if opts.verbose > 0 => Some(format!(
            "dht: record put, seq {seq}, {addrs} addresses, {bytes} bytes ({:.3} s)",
            took.as_secs_f64()
        )),
        Report::PublishFailed { error } if opts.verbose > 0 => {
            Some(format!("dht: record put failed: {error}"))
        }
        _ => None,
    }
}

/// How a view of the LAN is printed.
type Render<'a> = &'a dyn Fn(&Snapshot) -> String;

/// Runs a looking-only peer for `wait` seconds (and, if it saw nothing by `empty` or heard of
/// Python peers, until [`PY_LISTEN`](p2pshare_proto::budget::PY_LISTEN) has passed), then prints what it saw as
/// `text` renders it, or with `json` as `as_json` does.
fn observe(
    opts: &Opts,
    port: Option<u16>,
    wait: f64,
    json: bool,
    (text, as_json): (Render<'_>, Render<'_>),
    ask: Ask,
    empty: fn(&Snapshot) -> bool,
) -> Result<(), String> {
    let wait = peer::seconds("--wait", wait)?;
    // The running peer of the folder knows already: no need to listen.
    if let Some(stream) = control::connect(&opts.shared)? {
        return print_view(stream, ask, json);
    }
    let handle = peer::start(opts, port.unwrap_or(0), Mode::Observe)?;
    let started = Instant::now();
    std::thread::sleep(wait);
    let mut snap = handle.snapshot().map_err(|e| e.to_string())?;
    // Python peers do not answer a newcomer: before saying there is nothing, or when the LAN
    // has Python peers, listen for one of their intervals.
    let py_listen = p2pshare_proto::budget::PY_LISTEN;
    let left = py_listen.saturating_sub(started.elapsed());
    if (empty(&snap) || snap.python_around) && !left.is_zero() {
        std::thread::sleep(left);
        snap = handle.snapshot().map_err(|e| e.to_string())?;
    }
    handle.shutdown();
    let render = if json { as_json } else { text };
    println!("{}", render(&snap));
    Ok(())
}

/// `p2pshare list [FOLDER/] [--all]`.
pub fn list(
    opts: &Opts,
    port: Option<u16>,
    folder: Option<String>,
    all: bool,
    wait: f64,
    json: bool,
) -> Result<(), String> {
    let f = folder.clone();
    observe(
        opts,
        port,
        wait,
        json,
        (
            &|s| format::list_under(&s.remote, f.as_deref(), all),
            &|s| format::list_json_under(s, f.as_deref()),
        ),
        Ask::List { folder, all, json },
        |s| s.remote.is_empty(),
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
    match control::connect(&opts.shared)? {
        Some(stream) => print_view(stream, Ask::Status, json),
        None => Err(format!(
            "no peer runs on {} (start one with `p2pshare serve` or the prompt)",
            opts.shared.display()
        )),
    }
}

/// `p2pshare id`: the folder's key, whole (made on first use).
pub fn id(opts: &Opts) -> Result<(), String> {
    let identity = p2pshare_host::keyfile::of_folder(&opts.shared)?;
    println!("{}", identity.key().to_hex());
    Ok(())
}

/// `p2pshare peers`.
pub fn peers(opts: &Opts, port: Option<u16>, wait: f64, json: bool) -> Result<(), String> {
    let text = if opts.verbose > 0 {
        format::peers_verbose
    } else {
        format::peers
    };
    observe(
        opts,
        port,
        wait,
        json,
        (&text, &format::peers_json),
        Ask::Peers {
            verbose: opts.verbose > 0,
        },
        |s| s.peers.is_empty(),
    )
}

/// `p2pshare get NAME`: waits for a peer that shares NAME, downloads it, exits 0 only when the
/// verified file is in place. `yes`: a folder over the size or file count a person is asked
/// about is fetched (see [`folder::Preview`]); without it, refused.
pub fn get(
    opts: &Opts,
    port: Option<u16>,
    name: &str,
    (timeout, json, yes): (f64, bool, bool),
    signals: &Signals,
) -> Result<(), Failure> {
    let timeout = peer::seconds("--timeout", timeout)?;
    let deadline = Instant::now() + timeout;
    if ShareLink::looks_like(name) {
        return get_link(opts, port, name, (timeout, deadline), (json, yes), signals);
    }
    if let Some(stream) = control::connect(&opts.shared)? {
        let ask = Ask::Get {
            name: name.to_owned(),
            yes,
        };
        return get_through(opts, stream, ask, name, json, signals);
    }
    let handle = peer::start(opts, port.unwrap_or(DEFAULT_TRANSFER_PORT), Mode::Share)?;
    // Start as soon as one holder lists the file, with no fixed wait: the download begins on
    // the first holder whose manifest verifies, and the others join as their catalogs arrive.
    // Only a name that several files carry waits until the view of the LAN has settled (a
    // partial of one of them may decide), and so does a folder (its job is planned once).
    let started = Instant::now();
    let mut dht_ask = DhtAsk::default();
    let (pick, settled, python, python_around) = loop {
        if let Some(sig) = signals.take() {
            handle.shutdown();
            return Err(Failure::Signal(sig));
        }
        let snap = handle
            .snapshot_where(|n, c| could_mean(name, n, c))
            .map_err(|e| e.to_string())?;
        let early = !snap.settled && Instant::now() < deadline;
        if folder::is_folder(&snap, name) {
            // A folder: once every peer heard has had its time to send its catalog (at most
            // a second) and our own scan is in (it says what is in place already).
            let ready = view_ready(&snap, started)
                && snap.scanned
                && !folder::files_under(&snap, name).is_empty();
            if ready {
                return get_folder(opts, handle, name, &snap, deadline, (json, yes), signals);
            }
            if Instant::now() >= deadline {
                handle.shutdown();
                return Err(format!("no peer shares a folder named {name:?} (see `list`)").into());
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match content_by_name(&snap, name, &opts.shared) {
            // A Python peer's file cannot be held back from being put in place (see
            // `provisional`): it waits, as before, until every known peer's catalog is in.
            Ok(pick)
                if is_python(&snap, &pick)
                    && !view_ready(&snap, started)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            // A partial of another file of that name is here: its holder may not have
            // answered yet.
            Ok(pick) if early && other_partial(&opts.shared, name, &pick.content) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(pick) => {
                let python = is_python(&snap, &pick);
                break (pick, snap.settled, python, snap.python_around);
            }
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
                dht_ask.ask(opts, &handle, name, started);
                // Look again as soon as something happens (a catalog arrived), not after a
                // fixed sleep.
                match handle.next_notice(Duration::from_millis(50)) {
                    Ok(Some(n)) => report(opts, &n),
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string().into()),
                }
            }
        }
    };
    // On a LAN with Python peers a settled view may still lack one of their files of that
    // name (they announce only every 5 s): held back from placement until one of their
    // intervals has passed, as an unsettled view is.
    let unheard = python_around && started.elapsed() < p2pshare_proto::budget::PY_LISTEN;
    let handle = if pick.name.is_some() && !python && (!settled || unheard) {
        provisional(opts, handle, name, &pick, started, deadline, signals)?
    } else {
        handle
    };
    fetch(
        opts,
        handle,
        (pick, name.to_owned()),
        deadline,
        json,
        signals,
    )
}

/// Downloads `pick` (shown as its label) with the one-shot's `handle`, stops the peer, and
/// prints the outcome (as JSON with `json`).
fn fetch(
    opts: &Opts,
    handle: p2pshare_host::Handle,
    pick: (Pick, String),
    deadline: Instant,
    json: bool,
    signals: &Signals,
) -> Result<(), Failure> {
    let result = download_many(opts, &handle, &[pick], deadline, signals);
    handle.shutdown();
    match result {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(Ok(done)) if json => println!("{}", done.json),
            Some(Ok(done)) => println!("{}", done.line),
            Some(Err(e)) => return Err(e.into()),
            None => return Err("no outcome".to_owned().into()),
        },
        Err(Stop::Failed(e)) => return Err(e.into()),
        Err(Stop::Interrupted(sig)) => {
            eprintln!("p2pshare: download cancelled; {RESUME}");
            return Err(Failure::Signal(sig));
        }
    }
    Ok(())
}

/// How long a `get` of a content id waits for a holder on the LAN before it asks the DHT too
/// (`--dht`): the LAN's peers answer our first announcement well within this.
pub const DHT_AFTER: Duration = Duration::from_secs(1);

/// A `get`'s asks to the DHT: the first [`DHT_AFTER`] after the start, then every
/// [`LOOKUP_AGAIN_AFTER`](p2pshare_host::dht::LOOKUP_AGAIN_AFTER) while no holder is in view.
#[derive(Debug, Default)]
pub struct DhtAsk {
    last: Option<Instant>,
}

impl DhtAsk {
    /// Asks the DHT for the holders of `name` when it is a whole content id, `--dht` is on
    /// and it is time (see the type's doc); says so the first time.
    pub fn ask(&mut self, opts: &Opts, handle: &Handle, name: &str, started: Instant) {
        let Some(content) = ContentId::from_hex(name) else {
            return;
        };
        let now = Instant::now();
        let due = match self.last {
            None => started + DHT_AFTER,
            Some(t) => t + p2pshare_host::dht::LOOKUP_AGAIN_AFTER,
        };
        if !opts.dht || now < due {
            return;
        }
        if self.last.is_none() && !opts.quiet {
            eprintln!(
                "p2pshare: no holder of {} on the LAN yet; looking in the DHT too",
                content.short()
            );
        }
        self.last = Some(now);
        let _ = handle.request(Request::Lookup(content));
    }
}

/// How long `get` at the prompt or through a running peer waits for a holder the DHT names
/// before it says none was found.
pub const DHT_WAIT: Duration = Duration::from_secs(10);

/// `name`, a whole content id, is held by no peer in view of the peer `ctl` drives: if that
/// peer runs a DHT node (`--dht`), says so through `say`, asks the DHT and waits (at most
/// [`DHT_WAIT`], or until `cancelled`) for a holder it names to list it. The pick, or `None`
/// (no DHT, `name` is no content id, or nothing came in time).
pub fn through_dht(
    ctl: &Controller,
    shared: &Path,
    name: &str,
    say: &mut dyn FnMut(&str),
    cancelled: &dyn Fn() -> bool,
) -> Option<Pick> {
    let content = ContentId::from_hex(name)?;
    ctl.state().ok()?.dht?;
    say(&format!(
        "No holder of {} in view; looking in the DHT (at most {} s).",
        content.short(),
        DHT_WAIT.as_secs()
    ));
    ctl.request(Request::Lookup(content)).ok()?;
    let deadline = Instant::now() + DHT_WAIT;
    while Instant::now() < deadline && !cancelled() {
        let snap = ctl.snapshot_where(|n, c| could_mean(name, n, c)).ok()?;
        if let Ok(pick) = content_by_name(&snap, name, shared) {
            return Some(pick);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// `p2pshare get LINK`: through the running peer of the folder if one listens, else with a
/// peer of its own that dials the link's peers; see [`crate::get_link`].
fn get_link(
    opts: &Opts,
    port: Option<u16>,
    text: &str,
    (timeout, deadline): (Duration, Instant),
    (json, yes): (bool, bool),
    signals: &Signals,
) -> Result<(), Failure> {
    // A bad link is said before anything starts.
    let wanted = Wanted::read(text)?;
    if let Some(stream) = control::connect(&opts.shared)? {
        let ask = Ask::GetLink {
            link: text.to_owned(),
            yes,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        return get_through(opts, stream, ask, &wanted.label(), json, signals);
    }
    let handle = peer::start(opts, port.unwrap_or(DEFAULT_TRANSFER_PORT), Mode::Share)?;
    let grace = get_link::grace(opts.interval);
    let quiet = opts.quiet;
    let resolved = get_link::resolve(
        &handle.controller(),
        &wanted,
        grace,
        deadline,
        Some(signals),
        &mut |line| {
            if !quiet {
                eprintln!("p2pshare: {line}");
            }
        },
    );
    match resolved {
        Ok(Resolved::Content(content)) => {
            let pick = Pick {
                content,
                name: None,
            };
            fetch(
                opts,
                handle,
                (pick, wanted.label()),
                deadline,
                json,
                signals,
            )
        }
        Ok(Resolved::Folder(path, snap)) => {
            get_folder(opts, handle, &path, &snap, deadline, (json, yes), signals)
        }
        Ok(Resolved::Have(msg)) => {
            handle.shutdown();
            println!("{msg}");
            Ok(())
        }
        Err((e, sig)) => {
            handle.shutdown();
            Err(sig.map_or(Failure::Msg(e), Failure::Signal))
        }
    }
}

/// True once the view of the LAN is as complete as a one-shot waits for: every peer heard has
/// had its time to answer, and either all their catalogs are in or [`SETTLE_AT_MOST`] has
/// passed since `started`.
fn view_ready(snap: &Snapshot, started: Instant) -> bool {
    snap.answered && (snap.settled || started.elapsed() >= SETTLE_AT_MOST)
}

/// True when `pick` is a file of Python peers: its download cannot be held
/// (`Command::Hold` applies to our own peers' files only).
fn is_python(snap: &Snapshot, pick: &Pick) -> bool {
    snap.remote
        .iter()
        .any(|f| f.content == pick.content && f.python)
}

/// A one-shot `get` picked `pick` for `name` before the view of the LAN settled (or, on a LAN
/// with Python peers, before one of their intervals passed): starts it at
/// once, held back from being put in place, and waits for the view to settle (at most
/// [`SETTLE_AT_MOST`] after `started`, and, on a LAN with Python peers, one of their intervals,
/// [`PY_LISTEN`](p2pshare_proto::budget::PY_LISTEN)). If another file of that name is in it then and
/// no partial of the picked one was here before (one that was decides, as for any ambiguous
/// name), cancels it, removes the partial file this run began, and fails as an ambiguous name
/// does; otherwise releases it (it finishes as soon as it is complete) and gives the handle
/// back. So the first holder is asked at once, and a small
/// file is still not saved before the other holders could say that the name is not unique.
fn provisional(
    opts: &Opts,
    handle: p2pshare_host::Handle,
    name: &str,
    pick: &Pick,
    started: Instant,
    deadline: Instant,
    signals: &Signals,
) -> Result<p2pshare_host::Handle, Failure> {
    let saved_as = pick.name.as_deref().unwrap_or(name);
    let part = opts.shared.join(partial_file_name(saved_as, &pick.content));
    let began = !part.exists();
    let failed = |e: p2pshare_host::Stopped| Failure::from(e.to_string());
    handle
        .get(pick.content, pick.name.clone())
        .map_err(failed)?;
    handle
        .request(Request::Hold(pick.content))
        .map_err(failed)?;
    loop {
        if let Some(sig) = signals.take() {
            let _ = handle.request(Request::Cancel(pick.content));
            handle.shutdown();
            return Err(Failure::Signal(sig));
        }
        let snap = handle
            .snapshot_where(|n, c| could_mean(name, n, c))
            .map_err(failed)?;
        // Python peers do not answer a newcomer: on a LAN with them, another file of that
        // name may be one of theirs, heard only within one of their intervals.
        let listened =
            !snap.python_around || started.elapsed() >= p2pshare_proto::budget::PY_LISTEN;
        let settled = (view_ready(&snap, started) && listened)
            || (snap.answered && Instant::now() >= deadline);
        if !settled {
            // Judged once the view has settled, as before: a Python peer's copy of the same
            // file shows as another file until a peer of ours proves, with its verified
            // manifest, that its file has that hash.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // Another file of that name, and no partial of ours from before to decide (the
        // partial this run began does not count).
        let other = snap
            .remote
            .iter()
            .any(|f| f.content != pick.content && f.names.iter().any(|n| n == name));
        if other && began {
            let _ = handle.request(Request::Cancel(pick.content));
            handle.shutdown();
            let _ = std::fs::remove_file(&part);
            return match content_by_name(&snap, name, &opts.shared) {
                Err(Unresolved::Ambiguous(a)) => {
                    println!("{}:\n{}", a.what, a.list);
                    Err(format!("{}; use `get <id prefix>`", a.what).into())
                }
                _ => Err(format!("another file named {name:?} showed up; run `get` again").into()),
            };
        }
        handle
            .request(Request::Release(pick.content))
            .map_err(failed)?;
        return Ok(handle);
    }
}

/// The one-shot `get` of a folder, once `snap` shows it: one job, one bar, one summary; fails
/// (after printing the summary) if any file failed.
fn get_folder(
    opts: &Opts,
    handle: p2pshare_host::Handle,
    name: &str,
    snap: &Snapshot,
    deadline: Instant,
    (json, yes): (bool, bool),
    signals: &Signals,
) -> Result<(), Failure> {
    let job = folder::plan(snap, &opts.shared, name);
    // What it is about to fetch (on stderr: stdout is the summary), and whether it may.
    let preview = folder::preview(snap, &opts.shared, name, &job);
    if !opts.quiet {
        eprintln!("{}", preview.line());
    }
    let refused = match preview.room(&opts.shared) {
        Err(e) => Some(e),
        Ok(()) if preview.big() && !yes => Some(preview.unconfirmed()),
        Ok(()) => None,
    };
    if let Some(e) = refused {
        handle.shutdown();
        return Err(e.into());
    }
    let result = folder::run(opts, &handle, name, job, deadline, signals);
    handle.shutdown();
    let print = |d: &crate::download::Done| {
        if json {
            println!("{}", d.json);
        } else {
            println!("{}", d.line);
        }
    };
    match result {
        Ok(Ok(done)) => {
            print(&done);
            Ok(())
        }
        Ok(Err(done)) => {
            print(&done);
            let failed = done.json["failed"].as_array().map_or(0, Vec::len);
            Err(format!(
                "{failed} file{} of {name} failed",
                crate::download::plural(failed)
            )
            .into())
        }
        Err(Stop::Failed(e)) => Err(e.into()),
        Err(Stop::Interrupted(sig)) => {
            eprintln!("p2pshare: download cancelled; {RESUME}");
            Err(Failure::Signal(sig))
        }
    }
}

/// True when `shared` holds a partial download named `name` of another content than
/// `content`.
fn other_partial(shared: &Path, name: &str, content: &ContentId) -> bool {
    let mine = partial_file_name(name, content);
    // Partials are named by the file part of a path, at the top of the folder.
    let stem = format!(".dl_{}.", p2pshare_proto::name::file_part(name));
    std::fs::read_dir(shared).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let f = e.file_name();
            let f = f.to_string_lossy();
            f.starts_with(&stem) && f.ends_with(".part") && *f != mine
        })
    })
}

/// `get` (`ask`: a name or a link, shown as `name` until the running peer has resolved it)
/// through the running peer of the folder: same output and exit status as standalone.
fn get_through(
    opts: &Opts,
    stream: std::os::unix::net::UnixStream,
    ask: Ask,
    name: &str,
    json: bool,
    signals: &Signals,
) -> Result<(), Failure> {
    let mut progress = Progress::new(opts.quiet);
    // The running peer resolves the name; the bar shows it until then.
    let label = ContentId([0; 32]);
    progress.add(label, name);
    let mut interrupted = None;
    let result = control::ask(
        stream,
        ask,
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
                progress.update(&label, done, total, peers);
                Ok(())
            }
            Answer::Done { line, json: j } => {
                progress.clear();
                if json {
                    println!("{j}");
                } else {
                    println!("{line}");
                }
                Ok(())
            }
            Answer::Said { text } => {
                progress.clear();
                println!("{text}");
                Ok(())
            }
            Answer::Note { text } => {
                if !opts.quiet {
                    progress.println(&text);
                }
                Ok(())
            }
            Answer::Failed { error, detail } => {
                progress.clear();
                if let Some(d) = detail {
                    println!("{d}");
                }
                Err(error)
            }
            Answer::View { .. } => Err("the running peer answered a view to a get".into()),
        },
    );
    progress.clear();
    if let Some(sig) = interrupted {
        eprintln!("p2pshare: download cancelled; {RESUME}");
        return Err(Failure::Signal(sig));
    }
    result.map_err(Failure::from)
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

/// True when `get QUERY` could mean the file named `name` with content `content`, as
/// [`content_by_name`] and `folder::is_folder` resolve a query: the name itself, a file under
/// it as a folder, or (4 hex digits or more) a prefix of the content id. What a snapshot for
/// a `get` keeps ([`p2pshare_host::Handle::snapshot_where`]).
pub fn could_mean(query: &str, name: &str, content: &ContentId) -> bool {
    name == query
        || p2pshare_proto::name::is_under(name, query)
        || (query.len() >= 4
            && query.bytes().all(|b| b.is_ascii_hexdigit())
            && content.to_hex().starts_with(&query.to_ascii_lowercase()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_could_mean_the_name_a_file_under_it_or_an_id_prefix() {
        let id = ContentId([0xab; 32]);
        assert!(could_mean("movie.bin", "movie.bin", &id));
        assert!(!could_mean("movie.bin", "movie.bin.part", &id));
        assert!(could_mean("photos", "photos/2024/a.jpg", &id));
        assert!(could_mean("photos/", "photos/a.jpg", &id));
        assert!(!could_mean("photo", "photos/a.jpg", &id));
        assert!(could_mean("ABAB", "x", &id), "an id prefix, in either case");
        assert!(
            !could_mean("aba", "x", &id),
            "fewer than 4 digits is no prefix"
        );
        assert!(!could_mean("abcd", "x", &id));
    }
}
