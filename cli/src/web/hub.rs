//! The page's live state, on a thread of its own: it follows the peer's notices (a copy of
//! what the prompt gets, [`Controller::observe`]), keeps one row per download with its
//! [`Meter`], and pushes what changed to every open page as server-sent events.
//!
//! What a page is sent, each as one event whose data is one JSON object:
//! - `view`: this peer (`me`) and the control socket's `status --json` (`status`): the one
//!   source of truth for peers, shared files and counters;
//! - `files`: the control socket's `list --json` files (at most [`FILES_SHOWN`]) and how many
//!   there are;
//! - `downloads`: one row per download, running or ended (the [`ENDED_KEPT`] last), with the
//!   same figures the prompt's bar shows: bytes, size, rate, ETA and peers from the [`Meter`],
//!   rejected chunks; a folder fetched from the page is one row, as at the prompt;
//! - `notes`: the last [`NOTES_KEPT`] errors and warnings (a `get` that found no peer, a scan
//!   that failed).
//!
//! Invariants: nothing is polled while nothing happens (a snapshot is taken only after a
//! notice said the view changed, and at most every [`VIEW_EVERY`]; rows are pushed at most
//! every [`LIVE_EVERY`], and only while a download runs or when one changed); a part is sent
//! only when its text differs from what was sent last; a page that does not keep up (its queue
//! of [`QUEUE`] events is full) is dropped, never waited for, and at most [`MAX_PAGES`] pages
//! are followed (a new one pushes out the oldest).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use p2pshare_host::{Controller, Notice, Request, Snapshot};
use p2pshare_proto::folder::Totals;
use p2pshare_proto::{ContentId, Event, FailReason};
use serde_json::{Value, json};

use super::http;
use crate::download::{Done, Timer, outcome};
use crate::format;
use crate::meter::Meter;

/// Most files a page is sent (a LAN can list hundreds of thousands; the page says how many
/// more there are).
pub const FILES_SHOWN: usize = 10_000;
/// Ended downloads kept on the page.
pub const ENDED_KEPT: usize = 50;
/// Errors and warnings kept on the page.
pub const NOTES_KEPT: usize = 20;
/// Most pages followed at once.
pub const MAX_PAGES: usize = 8;
/// Events that may wait for one page.
pub const QUEUE: usize = 64;
/// Least time between two snapshots for the pages.
pub const VIEW_EVERY: Duration = Duration::from_millis(500);
/// Least time between two pushes of the download rows.
pub const LIVE_EVERY: Duration = Duration::from_millis(250);

/// What the hub is told.
pub enum Msg {
    /// A notice of the peer.
    Notice(Notice),
    /// A page opened its event stream: send it everything, then what changes.
    Subscribe(Page),
    /// Send back the whole state as one JSON object (`GET /api/state`).
    State(Sender<String>),
    /// The page asked for this file.
    Asked {
        /// Which.
        content: ContentId,
        /// Its name, as shown.
        name: String,
    },
    /// The page started a folder job.
    FolderStarted {
        /// The folder, with a trailing `/`.
        label: String,
        /// The contents of its files.
        contents: Vec<ContentId>,
        /// Set to stop it.
        cancel: Arc<AtomicBool>,
        /// Its counts at the start.
        totals: Totals,
    },
    /// A folder job moved.
    FolderProgress {
        /// Which.
        label: String,
        /// Its counts.
        totals: Totals,
        /// The peers it gets bytes from (`folder::Senders`).
        peers: usize,
    },
    /// A folder job ended; `Err` when a file failed or it was stopped.
    FolderEnded {
        /// Which.
        label: String,
        /// Its summary.
        result: Result<Done, Done>,
    },
    /// Stop the download with this key (a content id, or `folder:` and the folder).
    Cancel(String),
    /// Forget the ended downloads.
    Clear,
    /// Show this error on every page.
    Note(String),
}

/// A page's event stream, as the hub holds it.
#[derive(Debug)]
pub struct Page {
    /// Its events, each ready to write (an empty one: stop).
    pub tx: SyncSender<Arc<str>>,
    /// Set when the hub lets the page go (it did not keep up, or a newer page took its place):
    /// the stream ends, and the page reconnects and starts afresh.
    pub dropped: Arc<AtomicBool>,
}

impl Page {
    fn drop_it(&self) {
        self.dropped.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(Arc::from(""));
    }
}

/// Where a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Manifest,
    Opening,
    Running,
    Finishing,
    Done,
    Failed,
    Cancelled,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Manifest => "manifest",
            Phase::Opening => "opening",
            Phase::Running => "running",
            Phase::Finishing => "finishing",
            Phase::Done => "done",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }

    fn ended(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }

    fn of(p: p2pshare_proto::Phase) -> Phase {
        use p2pshare_proto::Phase as P;
        match p {
            P::Manifest => Phase::Manifest,
            P::Opening => Phase::Opening,
            P::Running => Phase::Running,
            P::Finishing => Phase::Finishing,
        }
    }
}

/// One download on the page.
struct Row {
    seq: u64,
    name: String,
    folder: bool,
    done: u64,
    total: Option<u64>,
    rejected: u32,
    /// A folder's files: done (or already there), all, failed.
    files: Option<(usize, usize, usize)>,
    phase: Phase,
    meter: Meter,
    reported: bool,
    timer: Timer,
    /// What the prompt prints when it ended: the `Saved …` line, or the error.
    line: Option<String>,
    /// `get --json` of a finished file.
    result: Value,
    cancel: Option<Arc<AtomicBool>>,
}

impl Row {
    fn new(seq: u64, name: String) -> Row {
        Row {
            seq,
            name,
            folder: false,
            done: 0,
            total: None,
            rejected: 0,
            files: None,
            phase: Phase::Manifest,
            meter: Meter::default(),
            reported: false,
            timer: Timer::start(),
            line: None,
            result: Value::Null,
            cancel: None,
        }
    }

    fn json(&self, key: &str, now: Instant) -> Value {
        let running = !self.phase.ended();
        let rate = self.meter.rate(now).filter(|_| running);
        json!({
            "key": key,
            "name": self.name,
            "folder": self.folder,
            "done": self.done,
            "total": self.total,
            "rate": rate.map(|r| r as u64),
            "eta": self.meter.eta(now, self.total).filter(|_| running),
            "peers": if running { self.meter.peers(now) } else { 0 },
            "rejected": self.rejected,
            "phase": self.phase.name(),
            "files": self.files.map(|(d, a, f)| json!({"done": d, "all": a, "failed": f})),
            "line": self.line,
            "sha256": self.result.get("sha256"),
            "path": self.result.get("path"),
        })
    }
}

/// What this peer is, beyond `status`: set once at start.
#[derive(Debug, Clone)]
pub struct Me {
    /// The shared folder, as given.
    pub folder: PathBuf,
    /// Where the page is served.
    pub web: std::net::SocketAddr,
    /// The discovery port.
    pub discovery_port: u16,
}

/// The page's live state. See the module doc.
pub struct Hub {
    ctl: Controller,
    me: Me,
    rows: BTreeMap<String, Row>,
    seq: u64,
    /// The files of folder jobs started from the page: their events go to the folder's row.
    in_folder: HashMap<ContentId, String>,
    notes: VecDeque<Value>,
    pages: Vec<Page>,
    view_dirty: bool,
    live_dirty: bool,
    notes_dirty: bool,
    last_view: Option<Instant>,
    last_live: Option<Instant>,
    last_tick: Instant,
    /// The data last sent of each kind.
    sent: HashMap<&'static str, String>,
}

/// A content's key on the page.
fn key(c: &ContentId) -> String {
    c.to_hex()
}

/// A folder job's key on the page.
fn folder_key(label: &str) -> String {
    format!("folder:{label}")
}

impl Hub {
    /// The hub of the peer `ctl` drives.
    pub fn new(ctl: Controller, me: Me) -> Hub {
        Hub {
            ctl,
            me,
            rows: BTreeMap::new(),
            seq: 0,
            in_folder: HashMap::new(),
            notes: VecDeque::new(),
            pages: Vec::new(),
            view_dirty: true,
            live_dirty: false,
            notes_dirty: false,
            last_view: None,
            last_live: None,
            last_tick: Instant::now(),
            sent: HashMap::new(),
        }
    }

    /// Runs until every sender of `rx` is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let now = Instant::now();
            let first = match self.next_wake(now) {
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                },
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(now)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            if let Some(m) = first {
                self.on(m);
                // What came meanwhile, in one turn (bounded, so pushes still go out).
                for m in rx.try_iter().take(4096) {
                    self.on(m);
                }
            }
            self.tick(Instant::now());
        }
    }

    fn running(&self) -> bool {
        self.rows.values().any(|r| !r.phase.ended())
    }

    /// When to look again with nothing received; `None`: only when something comes.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut soon = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if self.running() {
            soon(self.last_tick + LIVE_EVERY);
        }
        if !self.pages.is_empty() {
            if self.view_dirty {
                soon(self.last_view.map_or(now, |t| t + VIEW_EVERY));
            }
            if self.live_dirty {
                soon(self.last_live.map_or(now, |t| t + LIVE_EVERY));
            }
            if self.notes_dirty {
                soon(now);
            }
        }
        at
    }

    /// Records the meters of running downloads and pushes what is due.
    fn tick(&mut self, now: Instant) {
        if self.running() && now >= self.last_tick + LIVE_EVERY {
            self.last_tick = now;
            for r in self.rows.values_mut() {
                if r.reported && !r.phase.ended() {
                    r.meter.record(now, r.done);
                }
            }
            self.live_dirty = true;
        }
        if self.pages.is_empty() {
            return;
        }
        if self.view_dirty && self.last_view.is_none_or(|t| now >= t + VIEW_EVERY) {
            self.push_view(now, None);
        }
        if self.live_dirty && self.last_live.is_none_or(|t| now >= t + LIVE_EVERY) {
            self.push_live(now, None);
        }
        if self.notes_dirty {
            self.push_notes(None);
        }
    }

    fn on(&mut self, m: Msg) {
        match m {
            Msg::Notice(n) => self.on_notice(n),
            Msg::Subscribe(page) => {
                if self.pages.len() >= MAX_PAGES {
                    self.pages.remove(0).drop_it();
                }
                self.pages.push(page);
                let newcomer = self.pages.len() - 1;
                let now = Instant::now();
                self.push_view(now, Some(newcomer));
                self.push_live(now, Some(newcomer));
                self.push_notes(Some(newcomer));
            }
            Msg::State(tx) => {
                let snap = self.ctl.snapshot().ok();
                let now = Instant::now();
                let (view, files) = match &snap {
                    Some(s) => (self.view_json(s), self.files_json(s)),
                    None => (Value::Null, Value::Null),
                };
                let all = json!({
                    "version": crate::control::VERSION,
                    "view": view,
                    "files": files,
                    "downloads": self.live_json(now),
                    "notes": self.notes_json(),
                });
                let _ = tx.send(all.to_string());
            }
            Msg::Asked { content, name } => {
                let k = key(&content);
                if self.rows.get(&k).is_none_or(|r| r.phase.ended()) {
                    self.seq += 1;
                    self.rows.insert(k, Row::new(self.seq, name));
                }
                self.live_dirty = true;
            }
            Msg::FolderStarted {
                label,
                contents,
                cancel,
                totals,
            } => {
                for c in contents {
                    self.in_folder.insert(c, label.clone());
                }
                self.seq += 1;
                let mut row = Row::new(self.seq, label.clone());
                row.folder = true;
                row.phase = Phase::Running;
                row.cancel = Some(cancel);
                Self::folder_totals(&mut row, &totals);
                self.rows.insert(folder_key(&label), row);
                self.live_dirty = true;
            }
            Msg::FolderProgress {
                label,
                totals,
                peers,
            } => {
                if let Some(row) = self.rows.get_mut(&folder_key(&label)) {
                    Self::folder_totals(row, &totals);
                    row.reported = true;
                    row.meter.report(Instant::now(), row.done, peers);
                    self.live_dirty = true;
                }
            }
            Msg::FolderEnded { label, result } => {
                self.in_folder.retain(|_, l| *l != label);
                if let Some(row) = self.rows.get_mut(&folder_key(&label)) {
                    let cancelled = row
                        .cancel
                        .as_ref()
                        .is_some_and(|c| c.load(Ordering::Relaxed));
                    let (phase, done) = match result {
                        Ok(d) => (Phase::Done, d),
                        Err(d) if cancelled => (Phase::Cancelled, d),
                        Err(d) => (Phase::Failed, d),
                    };
                    row.phase = phase;
                    row.line = Some(done.line);
                    row.cancel = None;
                }
                self.ended();
            }
            Msg::Cancel(k) => match self.rows.get(&k) {
                Some(Row {
                    cancel: Some(flag), ..
                }) => flag.store(true, Ordering::Relaxed),
                _ => {
                    if let Some(c) = ContentId::from_hex(&k) {
                        let _ = self.ctl.request(Request::Cancel(c));
                    }
                }
            },
            Msg::Clear => {
                self.rows.retain(|_, r| !r.phase.ended());
                self.live_dirty = true;
            }
            Msg::Note(text) => self.note("error", text),
        }
    }

    fn folder_totals(row: &mut Row, t: &Totals) {
        row.done = t.bytes_done;
        row.total = Some(t.bytes);
        row.files = Some((t.done + t.skipped, t.files, t.failed));
    }

    fn note(&mut self, level: &str, text: String) {
        if self.notes.len() >= NOTES_KEPT {
            self.notes.pop_front();
        }
        self.seq += 1;
        self.notes
            .push_back(json!({"id": self.seq, "level": level, "text": text}));
        self.notes_dirty = true;
    }

    /// A download ended: the view changes too (downloads, shared files); old rows go.
    fn ended(&mut self) {
        self.view_dirty = true;
        self.live_dirty = true;
        let mut ended: Vec<(u64, String)> = self
            .rows
            .iter()
            .filter(|(_, r)| r.phase.ended())
            .map(|(k, r)| (r.seq, k.clone()))
            .collect();
        if ended.len() > ENDED_KEPT {
            ended.sort();
            for (_, k) in &ended[..ended.len() - ENDED_KEPT] {
                self.rows.remove(k);
            }
        }
    }

    /// The row of `content`, made if missing (a download started at the prompt).
    fn row(&mut self, content: &ContentId) -> &mut Row {
        let seq = &mut self.seq;
        self.rows.entry(key(content)).or_insert_with(|| {
            *seq += 1;
            Row::new(*seq, String::new())
        })
    }

    fn on_notice(&mut self, n: Notice) {
        let e = match n {
            Notice::Event(e) => e,
            Notice::Scanned { .. } => {
                self.view_dirty = true;
                return;
            }
            Notice::Warning(w) => return self.note("warning", w),
            Notice::Dht(_) => return,
        };
        // A file of a folder job started here: its folder's row says it all, but for this.
        let content = match &e {
            Event::DownloadStarted { content, .. }
            | Event::Progress { content, .. }
            | Event::ChunkRejected { content, .. }
            | Event::DownloadDone { content, .. }
            | Event::DownloadFailed { content, .. } => Some(*content),
            _ => None,
        };
        if let Some(label) = content.and_then(|c| self.in_folder.get(&c)) {
            if matches!(e, Event::ChunkRejected { .. })
                && let Some(row) = self.rows.get_mut(&folder_key(label))
            {
                row.rejected += 1;
                self.live_dirty = true;
            }
            return;
        }
        match e {
            Event::PeerFound { .. } | Event::PeerLost { .. } | Event::CatalogUpdated { .. } => {
                self.view_dirty = true;
            }
            Event::DownloadStarted {
                content,
                name,
                size,
            } => {
                let r = self.row(&content);
                r.name = name;
                r.total = Some(size);
                r.phase = Phase::Opening;
                self.live_dirty = true;
                self.view_dirty = true;
            }
            Event::Progress {
                content,
                done,
                total,
                peers,
            } => {
                let r = self.row(&content);
                r.done = done;
                r.total = Some(total);
                r.reported = true;
                r.meter.report(Instant::now(), done, peers);
                r.timer.progress(done, total);
                r.phase = if done >= total {
                    Phase::Finishing
                } else {
                    Phase::Running
                };
                self.live_dirty = true;
            }
            Event::ChunkRejected { content, .. } => {
                self.row(&content).rejected += 1;
                self.live_dirty = true;
            }
            Event::DownloadDone { content, .. } | Event::DownloadFailed { content, .. } => {
                let cancelled = matches!(
                    e,
                    Event::DownloadFailed {
                        reason: FailReason::Cancelled,
                        ..
                    }
                );
                let folder = self.me.folder.clone();
                let r = self.row(&content);
                if let Event::DownloadFailed { name, .. } = &e
                    && r.name.is_empty()
                {
                    r.name = name.clone();
                }
                match outcome(&folder, e, r.timer.end()) {
                    Ok(done) => {
                        r.phase = Phase::Done;
                        r.done = r.total.unwrap_or(r.done);
                        r.line = Some(done.line);
                        r.result = done.json;
                    }
                    Err(why) => {
                        r.phase = if cancelled {
                            Phase::Cancelled
                        } else {
                            Phase::Failed
                        };
                        r.line = Some(why);
                    }
                }
                self.ended();
            }
        }
    }

    /// Sends `data` as a `kind` event: to every page when it changed since last sent, else
    /// to `newcomer` alone (a page that has nothing yet).
    fn offer(&mut self, kind: &'static str, data: String, newcomer: Option<usize>) {
        let changed = self.sent.get(kind) != Some(&data);
        if !changed && newcomer.is_none() {
            return;
        }
        let text: Arc<str> = Arc::from(http::event(kind, &data));
        let mut i = 0;
        self.pages.retain(|page| {
            let this = i;
            i += 1;
            if !changed && Some(this) != newcomer {
                return true;
            }
            match page.tx.try_send(text.clone()) {
                Ok(()) => true,
                // Full: the page does not keep up; dropped, it reconnects and starts afresh.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    page.drop_it();
                    false
                }
            }
        });
        self.sent.insert(kind, data);
    }

    fn push_view(&mut self, now: Instant, newcomer: Option<usize>) {
        self.view_dirty = false;
        self.last_view = Some(now);
        let Ok(snap) = self.ctl.snapshot() else {
            return;
        };
        self.merge(&snap);
        let view = self.view_json(&snap).to_string();
        let files = self.files_json(&snap).to_string();
        self.offer("view", view, newcomer);
        self.offer("files", files, newcomer);
    }

    /// Downloads the snapshot shows that no event told of yet (one asked for at the prompt
    /// still fetching its manifest) get their row.
    fn merge(&mut self, snap: &Snapshot) {
        for d in &snap.downloads {
            if self.in_folder.contains_key(&d.content) {
                continue;
            }
            let r = self.row(&d.content);
            if r.name.is_empty() {
                r.name = d.name.clone();
            }
            if r.phase == Phase::Manifest {
                r.phase = Phase::of(d.phase);
                r.total = r.total.or(d.size);
            }
        }
        self.live_dirty = true;
    }

    fn push_live(&mut self, now: Instant, newcomer: Option<usize>) {
        self.live_dirty = false;
        self.last_live = Some(now);
        let data = json!({ "downloads": self.live_json(now) }).to_string();
        self.offer("downloads", data, newcomer);
    }

    fn push_notes(&mut self, newcomer: Option<usize>) {
        self.notes_dirty = false;
        let data = json!({ "notes": self.notes_json() }).to_string();
        self.offer("notes", data, newcomer);
    }

    fn view_json(&self, s: &Snapshot) -> Value {
        let ifaces = p2pshare_host::interfaces::lan_interfaces();
        let addresses: Vec<String> = ifaces
            .iter()
            .map(|i| format!("{}:{}", i.ip, s.transfer_port))
            .collect();
        let status: Value = serde_json::from_str(&format::status_json(s)).unwrap_or(Value::Null);
        json!({
            "me": {
                "id": p2pshare_proto::hex(&s.me.0),
                "short": s.me.short(),
                "folder": self.me.folder.display().to_string(),
                "addresses": addresses,
                "transfer_port": s.transfer_port,
                "discovery_port": self.me.discovery_port,
                "web": self.me.web.to_string(),
            },
            "status": status,
        })
    }

    fn files_json(&self, s: &Snapshot) -> Value {
        let mut all: Value = format::list_json_value(s, None);
        let mut files = match all.get_mut("files").map(Value::take) {
            Some(Value::Array(f)) => f,
            _ => Vec::new(),
        };
        let total = files.len();
        files.truncate(FILES_SHOWN);
        json!({ "files": files, "total": total })
    }

    fn live_json(&self, now: Instant) -> Value {
        let mut rows: Vec<(&String, &Row)> = self.rows.iter().collect();
        rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.seq));
        Value::Array(rows.iter().map(|(k, r)| r.json(k, now)).collect())
    }

    fn notes_json(&self) -> Value {
        Value::Array(self.notes.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pshare_host::Handle;
    use p2pshare_proto::{PeerId, Source};

    /// A hub whose peer answers nothing (these tests never ask it for a snapshot).
    fn hub() -> (Hub, Handle) {
        let (requests, _) = std::sync::mpsc::channel();
        let (_, notices) = std::sync::mpsc::sync_channel(1);
        let idle = std::thread::spawn(|| {});
        let handle = Handle::new(requests, Arc::new(|| {}), notices, idle, 1);
        let me = Me {
            folder: PathBuf::from("/shared"),
            web: "127.0.0.1:1".parse().expect("addr"),
            discovery_port: 9999,
        };
        (Hub::new(handle.controller(), me), handle)
    }

    fn ev(e: Event) -> Msg {
        Msg::Notice(Notice::Event(e))
    }

    const C: ContentId = ContentId([7; 32]);

    fn rows(h: &Hub) -> Vec<Value> {
        match h.live_json(Instant::now()) {
            Value::Array(r) => r,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_download_started_elsewhere_gets_a_row_with_the_prompts_figures() {
        let (mut h, _peer) = hub();
        h.on(ev(Event::DownloadStarted {
            content: C,
            name: "big.bin".into(),
            size: 64 << 20,
        }));
        let r = &rows(&h)[0];
        assert_eq!(r["name"], "big.bin");
        assert_eq!(r["phase"], "opening");
        assert_eq!(r["total"], 64 << 20);
        assert_eq!(r["rate"], Value::Null, "no rate before a report");
        for (done, peers) in [(1u64 << 20, 2usize), (2 << 20, 0)] {
            h.on(ev(Event::Progress {
                content: C,
                done,
                total: 64 << 20,
                peers,
            }));
        }
        h.on(ev(Event::ChunkRejected {
            content: C,
            peer: PeerId([1; 32]),
            index: 3,
        }));
        let r = &rows(&h)[0];
        assert_eq!(r["phase"], "running");
        assert_eq!(r["done"], 2 << 20);
        assert_eq!(
            r["peers"], 2,
            "the most busy in the window, as the prompt shows"
        );
        assert_eq!(r["rejected"], 1);
        h.on(ev(Event::DownloadDone {
            content: C,
            file: "dl_big.bin".into(),
            size: 64 << 20,
            file_hash: [0xab; 32],
            fetched: 64 << 20,
            reused: 0,
            rejected: 1,
            sources: vec![Source {
                peer: PeerId([1; 32]),
                addr: None,
                chunks: 64,
                bytes: 64 << 20,
            }],
        }));
        let r = &rows(&h)[0];
        assert_eq!(r["phase"], "done");
        assert_eq!(r["done"], 64 << 20);
        assert_eq!(r["sha256"], "ab".repeat(32));
        assert_eq!(r["path"], "/shared/dl_big.bin");
        let line = r["line"].as_str().expect("the Saved line");
        assert!(
            line.starts_with("Saved /shared/dl_big.bin (64.0 MiB, sha256 abab"),
            "{line}"
        );
        assert_eq!(
            (r["rate"].clone(), r["peers"].clone()),
            (Value::Null, json!(0))
        );
        assert!(h.view_dirty, "shared files and downloads changed");
    }

    #[test]
    fn a_folder_job_is_one_row_and_its_files_are_not_listed() {
        let (mut h, _peer) = hub();
        let cancel = Arc::new(AtomicBool::new(false));
        let totals = Totals {
            files: 2,
            bytes: 20,
            ..Totals::default()
        };
        h.on(Msg::FolderStarted {
            label: "album/".into(),
            contents: vec![C],
            cancel: cancel.clone(),
            totals,
        });
        h.on(ev(Event::DownloadStarted {
            content: C,
            name: "album/a.jpg".into(),
            size: 10,
        }));
        h.on(ev(Event::ChunkRejected {
            content: C,
            peer: PeerId([1; 32]),
            index: 0,
        }));
        h.on(Msg::FolderProgress {
            label: "album/".into(),
            totals: Totals {
                files: 2,
                done: 1,
                bytes: 20,
                bytes_done: 10,
                ..Totals::default()
            },
            peers: 1,
        });
        let all = rows(&h);
        assert_eq!(all.len(), 1, "{all:?}");
        let r = &all[0];
        assert_eq!(r["key"], "folder:album/");
        assert_eq!(r["folder"], true);
        assert_eq!(r["rejected"], 1);
        assert_eq!(r["files"], json!({"done": 1, "all": 2, "failed": 0}));
        assert_eq!(r["peers"], 1);
        // Cancel sets the job's flag; the job ends as cancelled.
        h.on(Msg::Cancel("folder:album/".into()));
        assert!(cancel.load(Ordering::Relaxed));
        let summary = Done {
            line: "Saved 1 of 2 files of album/ …".into(),
            json: Value::Null,
        };
        h.on(Msg::FolderEnded {
            label: "album/".into(),
            result: Err(summary),
        });
        assert_eq!(rows(&h)[0]["phase"], "cancelled");
        assert!(h.in_folder.is_empty());
        h.on(Msg::Clear);
        assert!(rows(&h).is_empty());
    }

    #[test]
    fn ended_rows_are_bounded() {
        let (mut h, _peer) = hub();
        for i in 0..ENDED_KEPT + 10 {
            h.on(ev(Event::DownloadFailed {
                content: ContentId([i as u8; 32]),
                name: format!("f{i}"),
                reason: FailReason::Cancelled,
            }));
        }
        let all = rows(&h);
        assert_eq!(all.len(), ENDED_KEPT);
        assert_eq!(
            all[0]["name"],
            format!("f{}", ENDED_KEPT + 9),
            "newest first"
        );
        assert_eq!(all[0]["phase"], "cancelled");
        assert!(all[0]["line"].as_str().expect("why").contains("cancelled"));
    }

    #[test]
    fn a_page_that_does_not_keep_up_is_let_go_and_nothing_is_sent_twice() {
        let (mut h, _peer) = hub();
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let dropped = Arc::new(AtomicBool::new(false));
        h.pages.push(Page {
            tx,
            dropped: dropped.clone(),
        });
        h.offer("notes", "{\"notes\":[1]}".into(), None);
        h.offer("notes", "{\"notes\":[1]}".into(), None);
        assert_eq!(rx.try_iter().count(), 1, "the same text is not sent again");
        for i in 0..3 {
            h.offer("notes", format!("{{\"notes\":[{i}]}}"), None);
        }
        assert!(h.pages.is_empty(), "its queue was full: let go");
        assert!(dropped.load(Ordering::Relaxed));
    }
}
