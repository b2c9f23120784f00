//! One peer per shared folder: an exclusive lock on `<folder>/.p2pshare.lock`.
//!
//! Two peers on one folder would serve each other's half-written downloads and race on the
//! same partial files, so a peer takes this lock before anything else and holds it for its whole
//! life. It is an advisory `flock` (std's [`File::try_lock`]) on a hidden file, hence never
//! shared (hidden names fail `check_name`).
//!
//! Invariants: while a [`FolderLock`] lives, no other `FolderLock` on the same folder can be
//! acquired, in this process or another one (flock locks belong to the open file description,
//! so a second open in the same process conflicts too). Dropping it — or the process dying in
//! any way — releases the lock. The lock file itself is left in place (deleting it would let a
//! third peer lock a new file while a second still holds the old one); it holds the owner's pid,
//! for the error message only.

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the shared folder.
pub const LOCK_FILE: &str = ".p2pshare.lock";

/// Why the shared folder could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another peer (this process or another) holds the folder.
    Busy {
        /// The shared folder.
        dir: PathBuf,
        /// The holder's pid, if its lock file says so.
        pid: Option<u32>,
    },
    /// The path exists but is not a folder.
    NotAFolder(PathBuf),
    /// The folder is missing and could not be created.
    Create(PathBuf, io::Error),
    /// The folder cannot be listed (permissions?).
    Unreadable(PathBuf, io::Error),
    /// The lock file cannot be created or opened (read-only folder?).
    LockFile(PathBuf, io::Error),
    /// The OS refused the lock for another reason than "already locked".
    Lock(PathBuf, io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy { dir, pid } => {
                write!(f, "another p2pshare peer")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                write!(
                    f,
                    " already uses {}; give each peer its own folder with --shared",
                    dir.display()
                )
            }
            LockError::NotAFolder(d) => write!(f, "{} exists but is not a folder", d.display()),
            LockError::Create(d, e) => write!(f, "cannot create folder {}: {e}", d.display()),
            LockError::Unreadable(d, e) => write!(f, "cannot read folder {}: {e}", d.display()),
            LockError::LockFile(p, e) => write!(f, "cannot open {}: {e}", p.display()),
            LockError::Lock(p, e) => write!(f, "cannot lock {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// Exclusive ownership of a shared folder; released on drop. See the module doc.
#[derive(Debug)]
pub struct FolderLock {
    dir: PathBuf,
    _file: File,
}

impl FolderLock {
    /// Takes the shared folder `dir` for this peer: call once at start, before scanning, and keep
    /// the value alive as long as the peer runs. Creates `dir` (and its parents) if missing.
    /// Never blocks: a folder already taken gives [`LockError::Busy`].
    pub fn acquire(dir: &Path) -> Result<FolderLock, LockError> {
        if let Err(e) = fs::create_dir_all(dir) {
            return Err(if dir.exists() && !dir.is_dir() {
                LockError::NotAFolder(dir.to_path_buf())
            } else {
                LockError::Create(dir.to_path_buf(), e)
            });
        }
        if !dir.is_dir() {
            return Err(LockError::NotAFolder(dir.to_path_buf()));
        }
        if let Err(e) = fs::read_dir(dir) {
            return Err(LockError::Unreadable(dir.to_path_buf(), e));
        }
        let path = dir.join(LOCK_FILE);
        // A symlink at the lock's path is refused, never followed, and so is a file with
        // another name (a hard link to a file elsewhere would have our pid written into it).
        let mut file = crate::nofollow::open_or_create(&path)
            .map_err(|e| LockError::LockFile(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Lock(path, e)),
        }
        // Best effort: the pid is only for the other peer's error message.
        let _ = write_pid(&mut file);
        Ok(FolderLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The folder this lock holds.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_busy_until_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        let lock = FolderLock::acquire(&dir).unwrap();
        assert!(dir.is_dir(), "missing folder is created");
        assert_eq!(lock.dir(), dir);
        let err = FolderLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(err, LockError::Busy { pid: Some(p), .. } if p == std::process::id()),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("another p2pshare peer"), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(msg.contains("--shared"), "{msg}");
        drop(lock);
        let again = FolderLock::acquire(&dir).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_linked_to_a_file_elsewhere_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        fs::create_dir(&dir).unwrap();
        let victim = tmp.path().join("passwd");
        fs::write(&victim, b"root:x:0:0\n").unwrap();
        fs::hard_link(&victim, dir.join(LOCK_FILE)).unwrap();
        let err = FolderLock::acquire(&dir).unwrap_err();
        assert!(matches!(err, LockError::LockFile(..)), "{err:?}");
        assert!(err.to_string().contains("hard links"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"root:x:0:0\n");
    }

    #[test]
    fn two_folders_lock_independently() {
        let tmp = tempfile::tempdir().unwrap();
        let _a = FolderLock::acquire(&tmp.path().join("a")).unwrap();
        let _b = FolderLock::acquire(&tmp.path().join("b")).unwrap();
    }

    #[test]
    fn file_in_the_way_is_not_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"x").unwrap();
        let err = FolderLock::acquire(&path).unwrap_err();
        assert!(matches!(err, LockError::NotAFolder(_)), "{err:?}");
        assert!(err.to_string().contains("not a folder"));
        let err = FolderLock::acquire(&path.join("sub")).unwrap_err();
        assert!(err.to_string().starts_with("cannot create folder"), "{err}");
    }
}
