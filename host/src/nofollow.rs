//! Opening files in the shared folder without following symlinks and without blocking.
//!
//! A path in the shared folder may change between the moment it was listed and the moment it is
//! opened: a symlink or a FIFO can be swapped in. Every open here uses `O_NOFOLLOW` (a symlink
//! as the last component fails instead of being followed) and `O_NONBLOCK` (opening a FIFO
//! returns at once instead of waiting for a writer, which would stall the disk thread), then
//! checks with `fstat` on the open descriptor that it is a regular file. `O_NONBLOCK` changes
//! nothing for reads and writes of regular files. A file opened for writing must also have no
//! other name (`st_nlink == 1`): a hard link planted in the folder (anyone who can write there
//! can link to any file of the same file system they can see, say `/etc/passwd`) would
//! otherwise have the lock's pid or a download's chunks written through it.
//!
//! The folder's own owner-only state files (the key, the known peers, the allow list) are
//! written the same careful way ([`write_private`], [`replace_private`]).
//!
//! Invariant: a `File` returned here is a regular file that was opened through no symlink in its
//! last component; one opened for writing is the only name of its file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens the regular file at `path` for reading.
pub fn open_read(path: &Path) -> io::Result<File> {
    regular(options().read(true).open(path)?)
}

/// Opens the existing regular file at `path` for reading and writing; refused if the file has
/// another name (a hard link).
pub fn open_read_write(path: &Path) -> io::Result<File> {
    only_name(regular(options().read(true).write(true).open(path)?)?)
}

/// Creates a new file at `path` for reading and writing; fails if anything exists there, a
/// symlink included (`O_CREAT | O_EXCL` never follows one).
pub fn create_new(path: &Path) -> io::Result<File> {
    options().read(true).write(true).create_new(true).open(path)
}

/// Opens the regular file at `path` for reading and writing, creating it if it is missing; a
/// symlink there is refused, not followed, and so is a file with another name (a hard link).
pub fn open_or_create(path: &Path) -> io::Result<File> {
    only_name(regular(
        options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?,
    )?)
}

/// Writes `bytes` to a new owner-only (0600) file at `temp` and syncs it: call before putting
/// it in place (a rename, or a link that never replaces). A file a crash left at `temp`, or a
/// symlink planted there, is removed first (unlinking never follows), and `O_CREAT | O_EXCL |
/// O_NOFOLLOW` never writes through one. On failure nothing is left at `temp`.
pub fn write_private(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::remove_file(temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if written.is_err() {
        let _ = fs::remove_file(temp);
    }
    written
}

/// Replaces `path` with `bytes`, whole or not at all, through [`write_private`] at `temp` and a
/// rename: a crash leaves the old file or the new one, and rename(2) replaces the name itself
/// (a symlink there included), never what it points at.
pub fn replace_private(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_private(temp, bytes)?;
    let renamed = fs::rename(temp, path);
    if renamed.is_err() {
        let _ = fs::remove_file(temp);
    }
    renamed
}

/// Why one of the folder's private state files could not be opened ([`open_private`]).
#[derive(Debug)]
pub enum PrivateError {
    /// A symlink is where the file should be (never followed).
    Symlink,
    /// Something other than a regular file is there (a FIFO, a folder, a device).
    NotAFile,
    /// It could not be opened or looked at.
    Io(io::Error),
}

/// Opens the folder's private state file at `path` (the key, the known peers, an allow file)
/// for reading, with its metadata read on the open descriptor, or `Ok(None)` when there is
/// none. The callers check owner, mode and length on that metadata, each by its own rules.
pub fn open_private(path: &Path) -> Result<Option<(File, fs::Metadata)>, PrivateError> {
    let file = match options().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(PrivateError::Symlink),
        Err(e) => return Err(PrivateError::Io(e)),
    };
    let meta = file.metadata().map_err(PrivateError::Io)?;
    if !meta.is_file() {
        return Err(PrivateError::NotAFile);
    }
    Ok(Some((file, meta)))
}

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    o
}

/// `file` if no other name links to it (checked on the descriptor).
fn only_name(file: File) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let links = file.metadata()?.nlink();
    if links == 1 {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it has {links} names (hard links); refusing to write through it"),
        ))
    }
}

/// `file` if it is a regular file (checked on the descriptor, so nothing can be swapped in).
fn regular(file: File) -> io::Result<File> {
    if file.metadata()?.file_type().is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_fifos_and_folders_are_refused_regular_files_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("file"), b"data").unwrap();
        std::os::unix::fs::symlink(dir.join("file"), dir.join("link")).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        // mkfifo(1), since this crate forbids the unsafe call.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());

        assert!(open_read(&dir.join("file")).is_ok());
        assert!(open_read_write(&dir.join("file")).is_ok());
        assert!(
            open_read(&dir.join("link")).is_err(),
            "a symlink is not followed"
        );
        assert!(open_read_write(&dir.join("link")).is_err());
        assert!(open_or_create(&dir.join("link")).is_err());
        assert!(create_new(&dir.join("link")).is_err());
        assert!(open_read(&dir.join("sub")).is_err(), "a folder is no file");
        assert!(made, "mkfifo(1) made the FIFO");
        // Without O_NONBLOCK this open would wait for a writer forever.
        let e = open_read(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(create_new(&dir.join("new")).is_ok());
        assert!(
            create_new(&dir.join("new")).is_err(),
            "never over an existing path"
        );
        assert!(open_or_create(&dir.join("made")).is_ok());
    }

    #[test]
    fn a_file_with_another_name_is_not_opened_for_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, b"keep me").unwrap();
        std::fs::hard_link(&elsewhere, dir.join("planted")).unwrap();
        let e = open_read_write(&dir.join("planted")).unwrap_err();
        assert!(e.to_string().contains("hard links"), "{e}");
        assert!(open_or_create(&dir.join("planted")).is_err());
        assert!(
            open_read(&dir.join("planted")).is_ok(),
            "reading is harmless"
        );
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"keep me");
    }
}
