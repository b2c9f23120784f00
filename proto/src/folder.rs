//! A folder download: every file under a folder fetched as one job.
//!
//! The node downloads one content at a time per content id; a job is the plan above it. It is
//! made from the files a folder holds (path, content id, size), minus those the caller already
//! has in place, and it hands out the next file to start as downloads end.
//!
//! Rules and invariants (checked by [`FolderJob::check_invariants`]):
//! - every file is in exactly one state: waiting, running, done, failed or skipped (already in
//!   place when the job was made);
//! - at most [`MAX_FILES_IN_FLIGHT`] files run at once, and at most one per content id (the
//!   node keeps one download per content, so files with equal bytes run one after another,
//!   each placed under its own path);
//! - each file ends on its own: a failure is recorded with its reason and touches no other file,
//!   and a file never goes back from done or failed;
//! - resumable as a whole: the same job made again later skips what is in place, and the node
//!   resumes the partial files of the rest.

use std::collections::BTreeMap;

use crate::budget::MAX_QUEUED_MANIFESTS;
use crate::ids::ContentId;

/// Files of one job downloading at once: as many as one holder queues manifest requests from
/// one connection ([`MAX_QUEUED_MANIFESTS`]), since every file may ask the same holder and a
/// request past that queue is refused as busy, which would fail a file that only one peer
/// holds; enough to overlap the per-file round trips of a folder of small files.
pub const MAX_FILES_IN_FLIGHT: usize = MAX_QUEUED_MANIFESTS;

/// One file of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    /// Its path as peers list it (passes `check_name`).
    pub name: String,
    /// Its content.
    pub content: ContentId,
    /// Its size as listed.
    pub size: u64,
}

/// Where one file of a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Not started yet.
    Waiting,
    /// Downloading; bytes verified so far.
    Running(u64),
    /// Placed, under this path in the shared folder.
    Done(String),
    /// Ended without a file, for this reason.
    Failed(String),
    /// Already in place when the job was made.
    Skipped,
}

/// Counts over a job, for its progress bar and summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Files in the job (skipped ones included).
    pub files: usize,
    /// Files placed by this job.
    pub done: usize,
    /// Files that failed.
    pub failed: usize,
    /// Files already in place.
    pub skipped: usize,
    /// Files downloading now.
    pub running: usize,
    /// Bytes of the files to fetch (skipped ones excluded).
    pub bytes: u64,
    /// Bytes of those verified or placed so far.
    pub bytes_done: u64,
}

/// The plan of one folder download. See the module doc.
#[derive(Debug, Clone)]
pub struct FolderJob {
    files: Vec<JobFile>,
    states: Vec<FileState>,
    /// The running file of each content.
    running: BTreeMap<ContentId, usize>,
}

impl FolderJob {
    /// A job of `files` (sorted by path, one entry per path kept): those for which `have` is
    /// true are skipped. Call once the catalogs and the shared folder's scan are in.
    pub fn new(mut files: Vec<JobFile>, have: impl Fn(&JobFile) -> bool) -> FolderJob {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.dedup_by(|a, b| a.name == b.name);
        let states = files
            .iter()
            .map(|f| {
                if have(f) {
                    FileState::Skipped
                } else {
                    FileState::Waiting
                }
            })
            .collect();
        FolderJob {
            files,
            states,
            running: BTreeMap::new(),
        }
    }

    /// The files and their states, by path.
    pub fn files(&self) -> impl Iterator<Item = (&JobFile, &FileState)> {
        self.files.iter().zip(&self.states)
    }

    /// The next file to start, now marked running, if the rules allow one: call after the job
    /// is made and after every end, until it gives `None`; then start the download of its
    /// content saved under its name.
    pub fn next_start(&mut self) -> Option<&JobFile> {
        if self.running.len() >= MAX_FILES_IN_FLIGHT {
            return None;
        }
        let i = self.states.iter().enumerate().position(|(i, s)| {
            *s == FileState::Waiting && !self.running.contains_key(&self.files[i].content)
        })?;
        self.states[i] = FileState::Running(0);
        self.running.insert(self.files[i].content, i);
        Some(&self.files[i])
    }

    /// Records progress of the running download of `content` (`done` bytes verified).
    pub fn on_progress(&mut self, content: &ContentId, done: u64) {
        if let Some(&i) = self.running.get(content) {
            self.states[i] = FileState::Running(done.min(self.files[i].size));
        }
    }

    /// The download of `content` placed its file at `placed`: that file is done. Returns its
    /// path as listed, or `None` if no file of this job was running it.
    pub fn on_done(&mut self, content: &ContentId, placed: String) -> Option<&str> {
        let i = self.running.remove(content)?;
        self.states[i] = FileState::Done(placed);
        Some(&self.files[i].name)
    }

    /// The download of `content` failed for `reason`: that file failed, the others go on.
    /// Returns its path as listed, or `None` if no file of this job was running it.
    pub fn on_failed(&mut self, content: &ContentId, reason: String) -> Option<&str> {
        let i = self.running.remove(content)?;
        self.states[i] = FileState::Failed(reason);
        Some(&self.files[i].name)
    }

    /// Ends the job early (interrupted, timed out): every file not ended fails with `reason`.
    /// Returns the contents that were running, for the caller to cancel.
    pub fn stop(&mut self, reason: &str) -> Vec<ContentId> {
        let running: Vec<ContentId> = self.running.keys().copied().collect();
        self.running.clear();
        for s in &mut self.states {
            if matches!(s, FileState::Waiting | FileState::Running(_)) {
                *s = FileState::Failed(reason.to_owned());
            }
        }
        running
    }

    /// True when every file has ended (done, failed or skipped).
    pub fn is_finished(&self) -> bool {
        self.states.iter().all(|s| {
            matches!(
                s,
                FileState::Done(_) | FileState::Failed(_) | FileState::Skipped
            )
        })
    }

    /// The job's counts.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            files: self.files.len(),
            ..Totals::default()
        };
        for (f, s) in self.files() {
            if *s != FileState::Skipped {
                t.bytes += f.size;
            }
            match s {
                FileState::Waiting => {}
                FileState::Running(d) => {
                    t.running += 1;
                    t.bytes_done += d;
                }
                FileState::Done(_) => {
                    t.done += 1;
                    t.bytes_done += f.size;
                }
                FileState::Failed(_) => t.failed += 1,
                FileState::Skipped => t.skipped += 1,
            }
        }
        t
    }

    /// Checks the invariants of the module doc; `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.running.len() > MAX_FILES_IN_FLIGHT {
            return Err(format!("{} files running", self.running.len()));
        }
        let running: Vec<usize> = (0..self.files.len())
            .filter(|&i| matches!(self.states[i], FileState::Running(_)))
            .collect();
        if running.len() != self.running.len() {
            return Err("running files and the running table disagree".into());
        }
        for (c, &i) in &self.running {
            if self.files[i].content != *c || !matches!(self.states[i], FileState::Running(_)) {
                return Err(format!("{} is not running {c}", self.files[i].name));
            }
        }
        if self.files.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err("files not sorted or a path twice".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, c: u8, size: u64) -> JobFile {
        JobFile {
            name: name.into(),
            content: ContentId([c; 32]),
            size,
        }
    }

    #[test]
    fn runs_within_the_window_one_per_content_and_ends_each_file_alone() {
        let mut files: Vec<JobFile> = (0..20)
            .map(|i| file(&format!("d/f{i:02}"), i, 100))
            .collect();
        // Two paths with the same bytes, one file already here, one path listed twice.
        files.push(file("d/same1", 50, 10));
        files.push(file("d/same2", 50, 10));
        files.push(file("d/have", 60, 1000));
        files.push(file("d/f00", 0, 100));
        let mut job = FolderJob::new(files, |f| f.name == "d/have");
        assert_eq!(job.totals().files, 23);
        assert_eq!(job.totals().skipped, 1);
        assert_eq!(job.totals().bytes, 2020);
        let mut started = Vec::new();
        while let Some(f) = job.next_start() {
            started.push(f.clone());
        }
        job.check_invariants().unwrap();
        assert_eq!(started.len(), MAX_FILES_IN_FLIGHT);
        job.on_progress(&started[0].content, 60);
        assert_eq!(job.totals().bytes_done, 60);
        assert_eq!(
            job.on_done(&started[0].content, "dl_d/f00".into()),
            Some("d/f00")
        );
        assert_eq!(
            job.on_failed(&started[1].content, "no peer".into()),
            Some("d/f01")
        );
        assert_eq!(
            job.on_done(&started[1].content, "x".into()),
            None,
            "ended once"
        );
        assert_eq!(job.on_done(&ContentId([99; 32]), "x".into()), None);
        let t = job.totals();
        assert_eq!(
            (t.done, t.failed, t.running, t.bytes_done),
            (1, 1, MAX_FILES_IN_FLIGHT - 2, 100)
        );
        // Run everything to its end, a content at a time.
        let mut guard = 0;
        loop {
            while job.next_start().is_some() {}
            job.check_invariants().unwrap();
            let Some(&c) = job.running.keys().next() else {
                break;
            };
            job.on_done(&c, "placed".into());
            guard += 1;
            assert!(guard < 100);
        }
        assert!(job.is_finished());
        let t = job.totals();
        assert_eq!((t.done, t.failed, t.skipped, t.running), (21, 1, 1, 0));
        let same: Vec<_> = job
            .files()
            .filter(|(f, _)| f.content == ContentId([50; 32]))
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(same, vec![FileState::Done("placed".into()); 2]);
    }

    #[test]
    fn stop_fails_what_did_not_end_and_names_the_running() {
        let mut job = FolderJob::new(
            (0..12).map(|i| file(&format!("f{i:02}"), i, 1)).collect(),
            |_| false,
        );
        while job.next_start().is_some() {}
        job.on_done(&ContentId([0; 32]), "dl_f00".into());
        let running = job.stop("cancelled");
        assert_eq!(running.len(), MAX_FILES_IN_FLIGHT - 1);
        assert!(job.is_finished());
        assert_eq!(job.totals().failed, 11);
        assert!(job.next_start().is_none());
        job.check_invariants().unwrap();
    }
}
