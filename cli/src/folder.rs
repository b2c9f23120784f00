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
    let mut peers = 0usize;
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
    show(&mut progress, &job, peers);
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
        match e {
            Event::Progress {
                content,
                done,
                peers: p,
                ..
            } => {
                job.on_progress(&content, done);
                peers = peers.max(p);
            }
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
        show(&mut progress, &job, peers);
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

/// Runs `job` (the folder `folder`) for a client of the running peer's control socket: each
/// file through [`Controller::get_watched`]; `progress` is told the job after every event and
/// returns false when the client went away (then what runs is cancelled, partials kept).
/// Returns the summary, as `Err` when a file failed or the client went away.
pub fn run_watched(
    ctl: &Controller,
    shared: &Path,
    folder: &str,
    mut job: FolderJob,
    mut progress: impl FnMut(&FolderJob) -> bool,
) -> Result<Done, Done> {
    let start = Instant::now();
    remove_stale_partials(shared, &job);
    let label = format!("{}/", folder.trim_end_matches('/'));
    let mut watched: Vec<(ContentId, Receiver<Event>)> = Vec::new();
    let mut fetched = 0u64;
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
        if any && !progress(&job) {
            for c in job.stop(&format!("the client went away; {RESUME}")) {
                let _ = ctl.request(Request::Cancel(c));
            }
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
