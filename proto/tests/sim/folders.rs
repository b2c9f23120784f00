//! Folder downloads in the simulation (issue 12): a host that wants files of a folder asks for
//! the folder as one job (`FolderJob`), as `get album/` does, instead of file by file.
//!
//! Which wants are folder wants is decided without the RNG (by the seed's parity and the
//! file's path), so every seed's world is drawn as before. A job starts at most
//! `MAX_FILES_IN_FLIGHT` files, each a `Get` of its content saved under its path; each end
//! goes to the job, which starts the next. The files that failed are asked again (the user's
//! next `get` of the folder, which fetches only what is missing) once the job has ended, within
//! the usual retry window; a crash drops
//! the job (the `get` dies with its peer) and the restarted host asks for the folder again.
//! The job's invariants are checked after every event (a broken one is a `NodeInvariant`
//! failure), and the usual checks apply to every file: byte-identical, never stuck, liveness.

use p2pshare_proto::folder::{FileState, FolderJob, JobFile};
use p2pshare_proto::{Command, ContentId, Input};

use super::{Kind, RETRY_WINDOW, Res, SEC, Sim};

/// The folder whose files are fetched as one job.
pub const FOLDER: &str = "album/";

impl Sim {
    /// True when want `w` is fetched through its host's folder job.
    pub(super) fn is_folder_want(&self, w: usize) -> bool {
        self.seed.is_multiple_of(2) && self.files[self.wants[w].file].name.starts_with(FOLDER)
    }

    /// The user asks for the folder of want `w` (its host runs, is not paused, and `w` is
    /// not done): joins the running job, or starts a new one of every folder want of the host
    /// not done yet.
    pub(super) fn folder_get(&mut self, w: usize) -> Res {
        let h = self.wants[w].host;
        let name = self.files[self.wants[w].file].name.clone();
        if let Some(job) = self.jobs.get(&h)
            && !job.is_finished()
        {
            // The running job has it: still to come (then the user is still waiting), coming,
            // or failed (then the job's end asks again).
            let waiting = job
                .files()
                .any(|(f, s)| f.name == name && *s == FileState::Waiting);
            self.wants[w].get_pending = waiting;
            return Ok(());
        }
        let mine: Vec<usize> = (0..self.wants.len())
            .filter(|&x| self.wants[x].host == h && !self.wants[x].done && self.is_folder_want(x))
            .collect();
        let files = mine
            .iter()
            .map(|&x| {
                let f = &self.files[self.wants[x].file];
                JobFile {
                    name: f.name.clone(),
                    content: f.manifest.id(),
                    size: f.manifest.size(),
                }
            })
            .collect();
        for &x in &mine {
            self.wants[x].get_pending = true;
        }
        self.jobs.insert(h, FolderJob::new(files, |_| false));
        self.folder_pump(h)
    }

    /// Starts what host `h`'s job allows.
    fn folder_pump(&mut self, h: usize) -> Res {
        loop {
            let Some(job) = self.jobs.get_mut(&h) else {
                return Ok(());
            };
            let Some(f) = job.next_start() else { break };
            let (name, content) = (f.name.clone(), f.content);
            for x in 0..self.wants.len() {
                if self.wants[x].host == h && self.files[self.wants[x].file].name == name {
                    let want = &mut self.wants[x];
                    want.get_pending = false;
                    want.attempt = Some(self.now);
                    want.attempts += 1;
                }
            }
            let busy = self.hosts[h]
                .node
                .as_ref()
                .is_none_or(|n| n.download(&content).is_some());
            if !busy {
                self.feed(
                    h,
                    Input::Command(Command::Get {
                        content,
                        name: Some(name),
                    }),
                    None,
                )?;
            }
        }
        self.folder_check(h)
    }

    /// A download of `content` on host `h` ended (`placed` when done): its job learns it.
    pub(super) fn folder_ended(
        &mut self,
        h: usize,
        content: &ContentId,
        placed: Option<String>,
    ) -> Res {
        let Some(job) = self.jobs.get_mut(&h) else {
            return Ok(());
        };
        match placed {
            Some(p) => job.on_done(content, p),
            None => job.on_failed(content, "failed".into()),
        };
        self.folder_pump(h)?;
        // The job ended with files missing: the user gets the folder again (within the usual
        // window), which fetches only those.
        if self.jobs.get(&h).is_some_and(FolderJob::is_finished) {
            for x in 0..self.wants.len() {
                let want = &self.wants[x];
                if want.host == h
                    && !want.done
                    && !want.get_pending
                    && self.is_folder_want(x)
                    && self.now < self.heal_at + RETRY_WINDOW
                {
                    self.wants[x].get_pending = true;
                    let at = self.now + SEC;
                    self.ask_again(at, x);
                }
            }
        }
        Ok(())
    }

    /// Host `h` crashed: its job dies with it; what it still wanted is asked again at restart.
    pub(super) fn folder_crashed(&mut self, h: usize) {
        if self.jobs.remove(&h).is_some() {
            for x in 0..self.wants.len() {
                if self.wants[x].host == h && self.is_folder_want(x) && !self.wants[x].done {
                    self.wants[x].get_pending = false;
                }
            }
        }
    }

    fn folder_check(&mut self, h: usize) -> Res {
        if let Some(job) = self.jobs.get(&h)
            && let Err(e) = job.check_invariants()
        {
            return Err(self.fail(Kind::NodeInvariant, format!("h{h} folder job: {e}")));
        }
        Ok(())
    }
}
