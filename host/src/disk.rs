//! The disk thread: performs the node's disk requests off the event loop, one at a time, in
//! the order the node made them.
//!
//! Writing a chunk into the page cache, reading one to serve it, and the final check of a
//! download take as long as receiving and verifying it; on their own thread they run beside
//! the event loop instead of stalling it.
//!
//! Invariants: jobs are performed in submission order (so a write precedes the finish that
//! needs it; what is shared is set by the driver in the [`SharedFiles`] cache before the node
//! hears of it, so the reads that rely on it find it); [`Disk::submit`] never
//! blocks, so the event loop never waits on the disk (a slow disk, a long final check): the
//! queue is bounded by the node instead, which asks for no more work than its budgets allow
//! (`p2pshare_proto::budget`: reads within the send budgets, writes within the write
//! budgets, a few re-verification reads per download); every request's answer comes back
//! exactly once through [`Disk::try_result`], and the runtime is woken for it; the thread ends
//! when the [`Disk`] is dropped. Between jobs, at start and every [`SWEEP_EVERY`], it removes
//! the partial files nobody completes ([`Store::sweep_partials`]; never one a download has
//! open: the store knows which).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use p2pshare_proto::{DiskOp, Input};

use crate::files::SharedFiles;
use crate::scan::Adoption;
use crate::store::{PARTIAL_MAX_AGE, Store};

/// How often the disk thread looks for stale partial files (and once at start): partials age
/// in days, so an hour late costs nothing.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Work for the disk thread.
#[derive(Debug)]
pub enum Job {
    /// A disk request of the node.
    Node(DiskOp),
    /// Replace the folder's file of known peers (`dir`) with these bytes
    /// ([`crate::known::write`]). Nothing answers it: a failed save leaves the old file, and
    /// the next save tries again.
    SaveKnown {
        /// The shared folder.
        dir: std::path::PathBuf,
        /// The file's new contents.
        bytes: Vec<u8>,
    },
}

/// The handle to the disk thread.
pub struct Disk {
    jobs: Option<Sender<Job>>,
    results: Receiver<Input>,
}

impl Disk {
    /// Starts the disk thread for the shared folder of `files` (the cache the runtime sends
    /// from too); it calls `wake` after each answer, and sends each download it puts in place
    /// to `adopt` (the scanner's, if there is one).
    pub fn start(
        files: SharedFiles,
        wake: Arc<dyn Fn() + Send + Sync>,
        adopt: Option<Sender<Adoption>>,
    ) -> std::io::Result<Disk> {
        let (jobs, rx) = mpsc::channel();
        let (tx, results) = mpsc::channel();
        let store = Store::with_files(files);
        thread::Builder::new()
            .name("p2pshare-disk".into())
            .spawn(move || run(store, rx, tx, wake, adopt))?;
        Ok(Disk {
            jobs: Some(jobs),
            results,
        })
    }

    /// Queues a job; never blocks.
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // Fails only if the thread is gone, and then there is nobody to answer anyway.
            let _ = jobs.send(job);
        }
    }

    /// The next answer, if one is ready.
    pub fn try_result(&self) -> Option<Input> {
        self.results.try_recv().ok()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has done what was queued.
        self.jobs = None;
    }
}

fn run(
    mut store: Store,
    jobs: Receiver<Job>,
    results: mpsc::Sender<Input>,
    wake: Arc<dyn Fn() + Send + Sync>,
    adopt: Option<Sender<Adoption>>,
) {
    let mut next_sweep = Instant::now();
    loop {
        if Instant::now() >= next_sweep {
            store.sweep_partials(SystemTime::now(), PARTIAL_MAX_AGE);
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        let wait = next_sweep.saturating_duration_since(Instant::now());
        let job = match jobs.recv_timeout(wait) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let answer = match job {
            Job::Node(op) => p2pshare_proto::disk::perform(&mut store, op),
            Job::SaveKnown { dir, bytes } => {
                let _ = crate::known::write(&dir, &bytes);
                None
            }
        };
        for a in store.take_adoptions() {
            if let Some(adopt) = &adopt {
                // Fails only if the scanner is gone; then the file is merely hashed again
                // by the next start's first scan.
                let _ = adopt.send(a);
            }
        }
        if let Some(input) = answer {
            if results.send(input).is_err() {
                return;
            }
            wake();
        }
    }
}
