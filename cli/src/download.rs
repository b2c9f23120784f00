//! Downloading the files a user picked, several at once, with progress, and what to say when
//! each ends: the procedure the prompt and the one-shot `get` share.
//!
//! Invariants: every download started here ends in exactly one outcome (done, failed, or
//! cancelled with its partial file kept); a signal or the deadline cancels every download
//! still running; notices printed meanwhile go above the progress bars.

use std::path::Path;
use std::time::Instant;

use p2pshare_host::{Handle, Notice, Request};
use p2pshare_proto::{ContentId, Event, hex};
use serde_json::json;

use crate::args::Opts;
use crate::commands::{Pick, notice_line};
use crate::format;
use crate::progress::Progress;
use crate::signals::{self, Signals};

/// What to tell the user about a stopped download.
pub const RESUME: &str = "the partial file is kept: `get` it again to resume";

/// Why downloads stopped before their outcome.
#[derive(Debug)]
pub enum Stop {
    /// The peer stopped, or nothing could start (the message says why).
    Failed(String),
    /// SIGINT or SIGTERM came: every download was cancelled, its partial file kept.
    Interrupted(i32),
}

/// A finished download: what to print, as text and as JSON.
#[derive(Debug, Clone)]
pub struct Done {
    /// The summary line(s).
    pub line: String,
    /// `get --json`'s result.
    pub json: serde_json::Value,
}

/// How long one download took, and how much of that was its finish (the rest of the
/// whole-file SHA-256, the `fsync`, the rename: everything after the last chunk was written).
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    start: Instant,
    all_written: Option<Instant>,
}

impl Timer {
    /// Starts timing: call when the download is asked for.
    pub fn start() -> Timer {
        Timer {
            start: Instant::now(),
            all_written: None,
        }
    }

    /// Call with each progress event of the download: notes when its last byte was written.
    pub fn progress(&mut self, done: u64, total: u64) {
        if done == total {
            self.all_written.get_or_insert_with(Instant::now);
        }
    }

    /// Seconds since the start, and since the last byte was written (if a progress notice
    /// said so: those may be dropped when the CLI falls behind, see `p2pshare_host::outbox`).
    /// Both are measured from one reading of the clock, so the finish is never longer than the
    /// whole.
    pub fn end(&self) -> (f64, Option<f64>) {
        self.end_at(Instant::now())
    }

    /// `end` as of `now`.
    fn end_at(&self, now: Instant) -> (f64, Option<f64>) {
        let since = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        (since(self.start), self.all_written.map(since))
    }
}

/// Downloads every pick at once, drawing progress; returns each one's outcome, in order (a
/// failure as its one-line reason). A signal cancels them all.
pub fn download_many(
    opts: &Opts,
    handle: &Handle,
    picks: &[(Pick, String)],
    deadline: Instant,
    signals: &Signals,
) -> Result<Vec<Result<Done, String>>, Stop> {
    let mut timers = vec![Timer::start(); picks.len()];
    let mut progress = Progress::new(opts.quiet);
    let mut outcomes: Vec<Option<Result<Done, String>>> = vec![None; picks.len()];
    for (pick, label) in picks {
        handle
            .get(pick.content, pick.name.clone())
            .map_err(|e| Stop::Failed(e.to_string()))?;
        progress.add(pick.content, label);
    }
    let slot = |c: &ContentId| picks.iter().position(|(p, _)| p.content == *c);
    let cancel_all = |outcomes: &[Option<Result<Done, String>>]| {
        for (i, (p, _)) in picks.iter().enumerate() {
            if outcomes[i].is_none() {
                let _ = handle.request(Request::Cancel(p.content));
            }
        }
    };
    while outcomes.iter().any(Option::is_none) {
        if let Some(sig) = signals.take() {
            cancel_all(&outcomes);
            progress.clear();
            return Err(Stop::Interrupted(sig));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            cancel_all(&outcomes);
            for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                *o = Some(Err(format!("timed out; {RESUME}")));
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
                total,
                peers,
            } => {
                if let Some(i) = slot(&content) {
                    timers[i].progress(done, total);
                }
                progress.update(&content, done, total, peers)
            }
            Event::DownloadStarted { content, size, .. } => progress.sized(&content, size),
            Event::ChunkRejected { content, .. } => progress.rejected(&content),
            Event::DownloadDone { content, .. } | Event::DownloadFailed { content, .. } => {
                if let Some(i) = slot(&content) {
                    progress.finish(&content);
                    outcomes[i] = Some(outcome(&opts.shared, e, timers[i].end()));
                }
            }
            _ => {}
        }
    }
    progress.clear();
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("no outcome".into())))
        .collect())
}

/// What to say when a download ended with `end`, `(secs, finish)` after it started (see
/// [`Timer::end`]): for `DownloadDone`, where the file is, its hash and who sent what; for
/// `DownloadFailed`, why, as the error.
pub fn outcome(
    shared: &Path,
    end: Event,
    (secs, finish): (f64, Option<f64>),
) -> Result<Done, String> {
    let Event::DownloadDone {
        content,
        file,
        size,
        file_hash,
        fetched,
        reused,
        rejected,
        sources,
    } = end
    else {
        return Err(match end {
            Event::DownloadFailed { name, reason, .. } => {
                format!("download of {name} failed: {reason}")
            }
            other => format!("the download ended without a result: {other:?}"),
        });
    };
    let path = shared.join(&file);
    let mut line = format!(
        "Saved {} ({}, sha256 {}) from {} peer{} in {secs:.1} s ({})",
        path.display(),
        format::size(size),
        hex(&file_hash),
        sources.len(),
        plural(sources.len()),
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
        let who = s
            .addr
            .map_or_else(|| s.peer.to_string(), p2pshare_host::interfaces::show);
        line.push_str(&format!(
            "\n  {who}: {} chunk{}",
            s.chunks,
            plural(s.chunks as usize)
        ));
    }
    let json = json!({
        "version": crate::control::VERSION,
        "path": path.display().to_string(),
        "size": size,
        "sha256": hex(&file_hash),
        "content": content.to_hex(),
        "seconds": secs,
        "finish_seconds": finish,
        "reused_chunks": reused,
        "rejected_chunks": rejected,
        "sources": sources.iter().map(|s| json!({
            "peer": hex(&s.peer.0),
            "addr": s.addr.map(p2pshare_host::interfaces::show),
            "chunks": s.chunks,
            "bytes": s.bytes,
        })).collect::<Vec<_>>(),
    });
    Ok(Done { line, json })
}

/// `"s"` unless there is exactly one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finish_is_timed_from_the_first_complete_progress() {
        let mut t = Timer::start();
        t.progress(5, 10);
        assert_eq!(t.end().1, None, "not every byte is written yet");
        t.progress(10, 10);
        let first = t.all_written;
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A later complete progress (the same download reported again) does not restart it.
        t.progress(10, 10);
        assert_eq!(t.all_written, first);
        let (secs, finish) = t.end();
        let finish = finish.expect("every byte was written");
        assert!(finish >= 0.02 && finish <= secs, "{finish} of {secs}");
    }

    #[test]
    fn the_finish_is_never_longer_than_the_whole() {
        // Written the instant it started, ended later: both spans come from one clock reading,
        // so they are equal, not the finish a few nanoseconds longer (the flake of issue 25).
        let start = Instant::now();
        let t = Timer {
            start,
            all_written: Some(start),
        };
        let (secs, finish) = t.end_at(start + std::time::Duration::from_millis(7));
        assert_eq!(finish, Some(secs));
        assert_eq!(secs, 0.007);
    }
}
