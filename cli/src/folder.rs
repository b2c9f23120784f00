//! Getting a folder: every file under it, from all its holders, as one job with one progress
//! bar, each file verified and placed on its own (`photos/2024/a.jpg` lands as
//! `<shared>/dl_photos/2024/a.jpg`).
//!
//! Invariants: the plan is a [`FolderJob`] (proto), which says which file starts when; every
//! file ends in exactly one outcome, and one file's failure never stops the others; a file
//! already in place (our own scan lists its destination path with the same content) is not
//! fetched again, so a second `get` of the folder fetches only what is missing, and the
//! partial files of the rest resume; a signal or the deadline cancels what runs and keeps the
//! partials.
//!
//! A folder is the union of what every peer lists under its path, so a stranger can make it
//! as big as it likes (issue 27, item 7). Before anything is fetched, [`Preview`] says what
//! will be (files, bytes, holders): a job that needs more than the shared folder's file
//! system has free (less [`KEEP_FREE`]) is refused, and one over [`CONFIRM_BYTES`] or
//! [`CONFIRM_FILES`] is asked about at the prompt, and refused by a one-shot without `--yes`.
//! (The web page's Get of a folder shows its size and file count on the row it is clicked on,
//! and is refused only for room.) The host removes partial files nobody completes
//! (`Store::sweep_partials`).

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use p2pshare_host::store::{download_path, partial_file_name};
use p2pshare_host::{Controller, Handle, Notice, Request, Snapshot, hash_beneath};
use p2pshare_proto::folder::{FileState, FolderJob, JobFile};
use p2pshare_proto::name::is_under;
use p2pshare_proto::{ContentId, Event};
use serde_json::json;

use crate::args::Opts;
use crate::commands::notice_line;
use crate::download::{Done, RESUME, Stop, outcome, plural};
use crate::format;
use crate::progress::Progress;
use crate::signals::{self, Signals};

/// The label of a job's one progress bar (no content has this id in practice).
const BAR: ContentId = ContentId([0xff; 32]);

/// A folder download whose files to fetch weigh more than this (or number more than
/// [`CONFIRM_FILES`]) is shown and confirmed first: at the prompt a question, for a one-shot
/// `--yes`. 1 GiB is more than a folder of documents or an afternoon's photos, and a minute
/// and a half of a 100 Mbit/s LAN: past it, a folder a stranger filled should not start
/// writing on a typo.
pub const CONFIRM_BYTES: u64 = 1 << 30;
/// ... or number more than this: more files than a screen of `list --all` shows.
pub const CONFIRM_FILES: usize = 1_000;
/// What a folder download always leaves free on the shared folder's file system: room for the
/// manifest cache, the lock and the machine's other programs.
pub const KEEP_FREE: u64 = 64 << 20;

/// What a folder job is about to fetch: shown before it starts, and checked against the room
/// on the disk. See the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The folder, as `photos/`.
    pub label: String,
    /// Files to fetch.
    pub files: usize,
    /// Files in place already.
    pub skipped: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes still to write: `bytes` less what their partial files hold already.
    pub need: u64,
    /// Peers that hold them.
    pub peers: usize,
    /// Bytes free for us on the shared folder's file system (`None`: unknown).
    pub free: Option<u64>,
}

impl Preview {
    /// The line shown before a folder download starts.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: {} file{}, {} to fetch from {} peer{}",
            self.label,
            self.files,
            plural(self.files),
            format::size(self.bytes),
            self.peers,
            plural(self.peers)
        );
        if self.need < self.bytes {
            line.push_str(&format!(
                " ({} on disk already)",
                format::size(self.bytes - self.need)
            ));
        }
        if self.skipped > 0 {
            line.push_str(&format!("; {} in place already", self.skipped));
        }
        line
    }

    /// True when it is over [`CONFIRM_BYTES`] or [`CONFIRM_FILES`]: ask first.
    pub fn big(&self) -> bool {
        self.bytes > CONFIRM_BYTES || self.files > CONFIRM_FILES
    }

    /// Why it must not start for want of room on `shared`'s file system, if so.
    pub fn room(&self, shared: &Path) -> Result<(), String> {
        match self.free {
            Some(free) if self.need.saturating_add(KEEP_FREE) > free => Err(format!(
                "not enough room for {}: it needs {}, and {} has {} free ({} are kept free)",
                self.label,
                format::size(self.need),
                shared.display(),
                format::size(free),
                format::size(KEEP_FREE)
            )),
            _ => Ok(()),
        }
    }

    /// What a one-shot says when it is [`big`](Preview::big) and not confirmed.
    pub fn unconfirmed(&self) -> String {
        format!(
            "{} is {} in {} file{} (over {} or {} files); pass --yes to fetch it",
            self.label,
            format::size(self.bytes),
            self.files,
            plural(self.files),
            format::size(CONFIRM_BYTES),
            CONFIRM_FILES
        )
    }
}

/// What `job` (the folder `folder`, as `s` lists it) is about to fetch into `shared`.
pub fn preview(s: &Snapshot, shared: &Path, folder: &str, job: &FolderJob) -> Preview {
    use std::os::unix::fs::MetadataExt;
    let (mut files, mut skipped, mut bytes, mut need) = (0, 0, 0u64, 0u64);
    let mut holders = std::collections::BTreeSet::new();
    for (f, st) in job.files() {
        if *st == FileState::Skipped {
            skipped += 1;
            continue;
        }
        files += 1;
        bytes += f.size;
        // What a partial of it holds already (allocated: a partial is written at chunk
        // offsets, so its length may run ahead of its blocks).
        let held = std::fs::symlink_metadata(shared.join(partial_file_name(&f.name, &f.content)))
            .ok()
            .filter(|m| m.file_type().is_file())
            .map_or(0, |m| m.blocks().saturating_mul(512));
        need += f.size.saturating_sub(held);
        if let Some(r) = s.remote.iter().find(|r| r.content == f.content) {
            holders.extend(r.holders.iter().copied());
        }
    }
    Preview {
        label: format!("{}/", folder.trim_end_matches('/')),
        files,
        skipped,
        bytes,
        need,
        peers: holders.len(),
        free: p2pshare_host::local::free_bytes(shared).ok(),
    }
}

/// The peers a folder job gets its bytes from, as its bar counts them: the peers that
/// delivered a file of it so far, or, when more, the most peers one running file has requests
/// out to now. (Counting only requests in flight, as a single file's bar does, says `0 peers`
/// for a folder of small files: a one-chunk file has none out by the time it reports.)
#[derive(Debug, Default)]
pub struct Senders {
    delivered: std::collections::BTreeSet<p2pshare_proto::PeerId>,
    in_flight: std::collections::BTreeMap<ContentId, usize>,
}

impl Senders {
    /// Counts what one event of a file of the job says: requests in flight, who delivered.
    pub fn on_event(&mut self, e: &Event) {
        match e {
            Event::Progress { content, peers, .. } => {
                self.in_flight.insert(*content, *peers);
            }
            Event::DownloadDone {
                content, sources, ..
            } => {
                self.in_flight.remove(content);
                let delivered = sources.iter().filter(|s| s.chunks > 0).map(|s| s.peer);
                self.delivered.extend(delivered);
            }
            Event::DownloadFailed { content, .. } => {
                self.in_flight.remove(content);
            }
            _ => {}
        }
    }

    /// The number the bar shows.
    pub fn count(&self) -> usize {
        let now = self.in_flight.values().copied().max().unwrap_or(0);
        now.max(self.delivered.len())
    }
}

/// True when `name` designates a folder: it ends with `/`, or no peer lists a file of exactly
/// that name and some list files under it.
pub fn is_folder(s: &Snapshot, name: &str) -> bool {
    if name.ends_with('/') {
        return true;
    }
    let exact = s.remote.iter().any(|f| f.names.iter().any(|n| n == name));
    !exact
        && s.remote
            .iter()
            .any(|f| f.names.iter().any(|n| is_under(n, name)))
}

/// The files other peers list under `folder`, one per path.
pub fn files_under(s: &Snapshot, folder: &str) -> Vec<JobFile> {
    let mut out = Vec::new();
    for f in s.remote.iter().filter(|f| !f.holders.is_empty()) {
        for n in f.names.iter().filter(|n| is_under(n, folder)) {
            out.push(JobFile {
                name: n.clone(),
                content: f.content,
                size: f.size,
            });
        }
    }
    out
}

/// The job for `folder`: what peers list under it, minus what is in place already in the
/// shared folder `shared` (its destination path holds that content: as our last scan shows, or,
/// for a file placed since, as hashing it now shows).
pub fn plan(s: &Snapshot, shared: &Path, folder: &str) -> FolderJob {
    FolderJob::new(files_under(s, folder), |f| {
        let dest = download_path(&f.name);
        match s.shared.iter().find(|l| l.name == dest) {
            Some(l) => l.content == f.content,
            None => {
                let root = p2pshare_host::beneath::open_root(shared);
                let size = root
                    .ok()
                    .and_then(|r| p2pshare_host::beneath::stat(r.as_fd(), &dest).ok());
                size.is_some_and(|st| st.st_size as u64 == f.size)
                    && hash_beneath(shared, &dest).is_ok_and(|m| m.id() == f.content)
            }
        }
    })
}

/// Runs `job` (the folder `folder`) to its end, drawing one bar; returns what to print, and
/// `Err` with that text when a file failed.
pub fn run(
    opts: &Opts,
    handle: &Handle,
    folder: &str,
    mut job: FolderJob,
    deadline: Instant,
    signals: &Signals,
) -> Result<Result<Done, Done>, Stop> {
    let start = Instant::now();
    remove_stale_partials(&opts.shared, &job);
    let mut progress = Progress::new(opts.quiet);
    let label = format!("{}/", folder.trim_end_matches('/'));
    progress.add(BAR, &label);
    let mut fetched = 0u64;
    let mut senders = Senders::default();
    let start_more = |job: &mut FolderJob| -> Result<(), Stop> {
        while let Some(f) = job.next_start() {
            handle
                .get(f.content, Some(f.name.clone()))
                .map_err(|e| Stop::Failed(e.to_string()))?;
        }
        Ok(())
    };
    start_more(&mut job)?;
    let show = |progress: &mut Progress, job: &FolderJob, peers: usize| {
        let t = job.totals();
        progress.set_note(
            &BAR,
            format!(
                "{}/{} files{}",
                t.done + t.skipped,
                t.files,
                if t.failed > 0 {
                    format!(", {} failed", t.failed)
                } else {
                    String::new()
                }
            ),
        );
        progress.update(&BAR, t.bytes_done, t.bytes, peers);
    };
    show(&mut progress, &job, senders.count());
    while !job.is_finished() {
        if let Some(sig) = signals.take() {
            for c in job.stop("interrupted") {
                let _ = handle.request(Request::Cancel(c));
            }
            progress.clear();
            return Err(Stop::Interrupted(sig));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            for c in job.stop(&format!("timed out; {RESUME}")) {
                let _ = handle.request(Request::Cancel(c));
            }
            break;
        }
        let notice = match handle.next_notice(left.min(signals::POLL)) {
            Ok(Some(n)) => n,
            Ok(None) => {
                progress.tick();
                continue;
            }
            Err(e) => {
                progress.clear();
                return Err(Stop::Failed(e.to_string()));
            }
        };
        if let Some(line) = notice_line(opts, &notice) {
            progress.println(&line);
        }
        let Notice::Event(e) = notice else { continue };
        senders.on_event(&e);
        match e {
            Event::Progress { content, done, .. } => job.on_progress(&content, done),
            Event::ChunkRejected { .. } => progress.rejected(&BAR),
            Event::DownloadDone {
                content,
                ref file,
                fetched: f,
                ..
            } => {
                let file = file.clone();
                if job.on_done(&content, file).is_some() {
                    fetched += f;
                }
            }
            Event::DownloadFailed { content, .. } => {
                let reason = match outcome(&opts.shared, e.clone(), (0.0, None)) {
                    Err(r) => r,
                    Ok(_) => "failed".into(),
                };
                job.on_failed(&content, reason);
            }
            _ => continue,
        }
        start_more(&mut job)?;
        show(&mut progress, &job, senders.count());
    }
    progress.clear();
    Ok(summary(
        &opts.shared,
        &label,
        &job,
        fetched,
        start.elapsed().as_secs_f64(),
    ))
}

/// A download killed between placing its file and removing its partial leaves the partial
/// behind; its file is in place (skipped by `job`), so the partial is garbage: removed.
fn remove_stale_partials(shared: &Path, job: &FolderJob) {
    for (f, s) in job.files() {
        if *s == FileState::Skipped {
            let _ = std::fs::remove_file(shared.join(partial_file_name(&f.name, &f.content)));
        }
    }
}

/// Runs `job` (the folder `folder`) for a client of the running peer's control socket or its
/// web page: each file through [`Controller::get_watched`]. `progress` is told the job and the
/// peers it gets bytes from (see [`Senders`]) with `true` after every event, and with `false`
/// at least every 100 ms when nothing happened; it returns why to stop when the client went
/// away or cancelled (then what runs is cancelled, partials kept, and each file not done fails
/// with that reason). Returns the summary, as `Err` when a file failed or the job was stopped.
pub fn run_watched(
    ctl: &Controller,
    shared: &Path,
    folder: &str,
    mut job: FolderJob,
    mut progress: impl FnMut(&FolderJob, usize, bool) -> Result<(), String>,
) -> Result<Done, Done> {
    let start = Instant::now();
    remove_stale_partials(shared, &job);
    let label = format!("{}/", folder.trim_end_matches('/'));
    let mut watched: Vec<(ContentId, Receiver<Event>)> = Vec::new();
    let mut fetched = 0u64;
    let mut senders = Senders::default();
    let mut quiet_since = Instant::now();
    while !job.is_finished() {
        while let Some(f) = job.next_start() {
            let (content, name) = (f.content, f.name.clone());
            match ctl.get_watched(content, Some(name)) {
                Ok(rx) => watched.push((content, rx)),
                Err(e) => {
                    job.on_failed(&content, e.to_string());
                }
            }
        }
        let mut any = false;
        let mut ended = Vec::new();
        for (content, rx) in &watched {
            loop {
                let e = match rx.try_recv() {
                    Ok(e) => e,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        job.on_failed(content, "the peer stopped".into());
                        ended.push(*content);
                        break;
                    }
                };
                any = true;
                senders.on_event(&e);
                match e {
                    Event::Progress { done, .. } => job.on_progress(content, done),
                    Event::DownloadDone {
                        ref file,
                        fetched: f,
                        ..
                    } => {
                        if job.on_done(content, file.clone()).is_some() {
                            fetched += f;
                        }
                        ended.push(*content);
                        break;
                    }
                    Event::DownloadFailed { .. } => {
                        let reason = outcome(shared, e, (0.0, None)).err().unwrap_or_default();
                        job.on_failed(content, reason);
                        ended.push(*content);
                        break;
                    }
                    _ => {}
                }
            }
        }
        watched.retain(|(c, _)| !ended.contains(c));
        let quiet = quiet_since.elapsed() >= Duration::from_millis(100);
        if (any || quiet)
            && let Err(why) = progress(&job, senders.count(), any)
        {
            for c in job.stop(&format!("{why}; {RESUME}")) {
                let _ = ctl.request(Request::Cancel(c));
            }
        }
        if any || quiet {
            quiet_since = Instant::now();
        }
        if !any {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    summary(shared, &label, &job, fetched, start.elapsed().as_secs_f64())
}

/// What to say when `job` ended: one line of counts, then one line per failed file.
fn summary(
    shared: &Path,
    label: &str,
    job: &FolderJob,
    fetched: u64,
    secs: f64,
) -> Result<Done, Done> {
    let t = job.totals();
    let dest = shared.join(download_path(&format!("{label}x")));
    let dest = dest
        .parent()
        .map_or_else(|| dest.clone(), |p| p.to_path_buf());
    if t.files == t.skipped {
        let line = format!(
            "Nothing to fetch: all {} file{} of {label} are in {}/ already",
            t.files,
            plural(t.files),
            dest.display()
        );
        let json = json!({
            "version": crate::control::VERSION, "folder": label,
            "path": dest.display().to_string(), "files": t.files, "done": 0,
            "skipped": t.skipped, "fetched_bytes": 0, "seconds": secs, "failed": [], "placed": [],
        });
        return Ok(Done { line, json });
    }
    let mut line = format!(
        "Saved {} of {} file{} of {label} under {}/ ({}) in {secs:.1} s ({})",
        t.done,
        t.files - t.skipped,
        plural(t.files - t.skipped),
        dest.display(),
        format::size(fetched),
        format::rate(fetched, secs),
    );
    if t.skipped > 0 {
        line.push_str(&format!("; {} already there", t.skipped));
    }
    let failed: Vec<(&str, &str)> = job
        .files()
        .filter_map(|(f, s)| match s {
            FileState::Failed(r) => Some((f.name.as_str(), r.as_str())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        line.push_str(&format!(
            "\n{} file{} failed:",
            failed.len(),
            plural(failed.len())
        ));
        for (name, why) in &failed {
            line.push_str(&format!("\n  {name}: {why}"));
        }
    }
    let json = json!({
        "version": crate::control::VERSION,
        "folder": label,
        "path": dest.display().to_string(),
        "files": t.files,
        "done": t.done,
        "skipped": t.skipped,
        "fetched_bytes": fetched,
        "seconds": secs,
        "failed": failed.iter().map(|(n, r)| json!({"name": n, "reason": r})).collect::<Vec<_>>(),
        "placed": job.files().filter_map(|(f, s)| match s {
            FileState::Done(p) => Some(json!({"name": f.name, "path": p})),
            _ => None,
        }).collect::<Vec<_>>(),
    });
    let done = Done { line, json };
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pshare_proto::PeerId;
    use p2pshare_proto::Source;

    fn preview_of(bytes: u64, files: usize, need: u64, free: Option<u64>) -> Preview {
        Preview {
            label: "photos/".into(),
            files,
            skipped: 2,
            bytes,
            need,
            peers: 3,
            free,
        }
    }

    #[test]
    fn a_folder_is_shown_asked_about_when_big_and_refused_without_room() {
        let p = preview_of(5 << 20, 3, 4 << 20, Some(10 << 30));
        assert_eq!(
            p.line(),
            "photos/: 3 files, 5.0 MiB to fetch from 3 peers (1.0 MiB on disk already); 2 in \
             place already"
        );
        assert!(!p.big());
        assert!(p.room(Path::new("/s")).is_ok());
        assert!(preview_of(CONFIRM_BYTES + 1, 1, 0, None).big());
        assert!(preview_of(1, CONFIRM_FILES + 1, 0, None).big());
        assert!(!preview_of(CONFIRM_BYTES, CONFIRM_FILES, 0, None).big());
        let e = preview_of(3 << 30, 10, 3 << 30, Some(2 << 30))
            .room(Path::new("/s"))
            .unwrap_err();
        assert_eq!(
            e,
            "not enough room for photos/: it needs 3.0 GiB, and /s has 2.0 GiB free (64.0 MiB \
             are kept free)"
        );
        // Room for it, but not for it and what is kept free.
        let tight = preview_of(100, 1, 100, Some(KEEP_FREE + 99));
        assert!(tight.room(Path::new("/s")).is_err());
        assert!(preview_of(100, 1, 100, None).room(Path::new("/s")).is_ok());
        assert_eq!(
            preview_of(3 << 30, 10, 0, None).unconfirmed(),
            "photos/ is 3.0 GiB in 10 files (over 1.0 GiB or 1000 files); pass --yes to fetch it"
        );
    }

    fn done(c: u8, from: &[u8]) -> Event {
        Event::DownloadDone {
            content: ContentId([c; 32]),
            file: format!("dl_{c}"),
            size: 10,
            file_hash: [0; 32],
            fetched: 10,
            reused: 0,
            rejected: 0,
            sources: from
                .iter()
                .map(|p| Source {
                    peer: PeerId([*p; 32]),
                    addr: None,
                    chunks: 1,
                    bytes: 10,
                })
                .collect(),
        }
    }

    fn progress(c: u8, peers: usize) -> Event {
        Event::Progress {
            content: ContentId([c; 32]),
            done: 10,
            total: 10,
            peers,
        }
    }

    #[test]
    fn a_folder_of_small_files_counts_the_peers_that_sent_them() {
        let mut s = Senders::default();
        assert_eq!(s.count(), 0);
        // One-chunk files report with no request out: the old bar said 0 peers throughout.
        s.on_event(&progress(1, 0));
        assert_eq!(s.count(), 0, "nothing delivered yet");
        s.on_event(&done(1, &[7]));
        s.on_event(&progress(2, 0));
        s.on_event(&done(2, &[7, 8]));
        assert_eq!(s.count(), 2);
        // A big file with three peers busy counts them while it runs.
        s.on_event(&progress(3, 3));
        assert_eq!(s.count(), 3);
        s.on_event(&Event::DownloadFailed {
            content: ContentId([3; 32]),
            name: "x".into(),
            reason: p2pshare_proto::FailReason::Cancelled,
        });
        assert_eq!(s.count(), 2);
    }
}
