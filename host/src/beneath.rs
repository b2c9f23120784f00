//! Files beneath the shared folder, reached component by component and never through a symlink.
//!
//! A name from the network is data: it is checked with [`check_name`] and then walked one
//! component at a time from a descriptor of the shared folder, never joined onto a path as a
//! string. Every folder on the way is opened with `openat(O_DIRECTORY | O_NOFOLLOW)` relative
//! to the one before, so a component that is a symlink (to anywhere, inside the folder or out)
//! fails with `ELOOP`/`ENOTDIR` instead of being followed; the file itself is opened with
//! `O_NOFOLLOW | O_NONBLOCK` and checked to be a regular file on its descriptor (as in
//! [`crate::nofollow`]). A folder swapped for a symlink between two operations is therefore
//! refused at the next walk, and a descriptor already held keeps pointing at the folder it was
//! opened on, never at what replaced it.
//!
//! Invariant: every descriptor returned here lies beneath the shared folder's descriptor, by a
//! chain of real folders whose names passed [`check_component`]. The shared folder itself is
//! opened by its path (following symlinks in it: that path is the user's choice, not a peer's).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use p2pshare_proto::check_name;
use p2pshare_proto::name::{check_component, components};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

/// Permissions of a folder a download creates (before the umask).
const DIR_MODE: u32 = 0o755;

/// Opens the shared folder `dir` itself: call before walking beneath it.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the folder `dirs` (components, first to last) beneath `root`; with `create`, makes the
/// folders that are missing. An empty `dirs` is `root` itself (a new descriptor). A component
/// that is a symlink, a file or anything but a real folder is an error, never followed.
pub fn open_dir(root: BorrowedFd<'_>, dirs: &[&str], create: bool) -> io::Result<OwnedFd> {
    let mut cur = rustix::io::dup(root)?;
    for c in dirs {
        check_component(c).map_err(refused)?;
        cur = match open_sub(cur.as_fd(), c) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                match rustix::fs::mkdirat(cur.as_fd(), *c, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_sub(cur.as_fd(), c)?
            }
            other => other?,
        };
    }
    Ok(cur)
}

fn open_sub(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // O_NOFOLLOW on a symlink: say what it is.
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a folder (a symlink or a file); refusing to go through it"),
        ),
        e => e.into(),
    })
}

/// Splits a checked `name` into its folders and its file part.
fn split(name: &str) -> io::Result<(Vec<&str>, &str)> {
    check_name(name).map_err(refused)?;
    let mut parts: Vec<&str> = components(name).collect();
    let file = parts.pop().unwrap_or(name);
    Ok((parts, file))
}

/// Opens the regular file `name` (a relative path) beneath `root` for reading.
pub fn open_read(root: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let (dirs, file) = split(name)?;
    let dir = open_dir(root, &dirs, false)?;
    open_file_at(dir.as_fd(), file)
}

/// Opens the regular file `file` (one component) in the folder `dir` for reading, without
/// following a symlink or waiting on a FIFO.
pub fn open_file_at(dir: BorrowedFd<'_>, file: &str) -> io::Result<File> {
    check_component(file).map_err(refused)?;
    let fd = rustix::fs::openat(
        dir,
        file,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{file} is a symlink; not followed"),
        ),
        e => e.into(),
    })?;
    let f = File::from(fd);
    if f.metadata()?.file_type().is_file() {
        Ok(f)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// The stat of `name` beneath `root` itself (a symlink is reported as one, never followed).
pub fn stat(root: BorrowedFd<'_>, name: &str) -> io::Result<Stat> {
    let (dirs, file) = split(name)?;
    let dir = open_dir(root, &dirs, false)?;
    Ok(rustix::fs::statat(
        dir.as_fd(),
        file,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// True when `st` is a regular file.
pub fn is_file(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

fn refused(e: p2pshare_proto::NameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("refused name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_real_folders_only() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/b/f"), b"inside").unwrap();
        fs::write(outside.path().join("f"), b"secret").unwrap();
        fs::create_dir(outside.path().join("b")).unwrap();
        fs::write(outside.path().join("b/f"), b"secret").unwrap();
        symlink(outside.path(), dir.join("out")).unwrap();
        symlink(dir.join("a"), dir.join("in")).unwrap();
        symlink(outside.path(), dir.join("a/b/l")).unwrap();
        let root = open_root(dir).unwrap();
        let r = root.as_fd();
        assert_eq!(
            io::read_to_string(open_read(r, "a/b/f").unwrap()).unwrap(),
            "inside"
        );
        for bad in [
            "out/f",
            "in/b/f",
            "a/b/l/f",
            "out/b/f",
            "../f",
            "a/../a/b/f",
            "/etc/passwd",
        ] {
            assert!(open_read(r, bad).is_err(), "{bad} opened");
        }
        // A file is not a folder; a folder is not a file.
        assert!(open_read(r, "a/b/f/x").is_err());
        assert!(open_read(r, "a/b").is_err());
        // Creating stops at a symlink too, and makes nothing outside.
        assert!(open_dir(r, &["out", "new"], true).is_err());
        assert!(!outside.path().join("new").exists());
        let made = open_dir(r, &["x", "y", "z"], true).unwrap();
        assert!(dir.join("x/y/z").is_dir());
        drop(made);
        assert!(
            open_dir(r, &["x", "y", "z"], true).is_ok(),
            "existing folders are reused"
        );
        assert!(is_file(&stat(r, "a/b/f").unwrap()));
        assert!(
            !is_file(&stat(r, "a/b/l").unwrap()),
            "a symlink is stat'ed as itself"
        );
    }

    #[test]
    fn a_held_folder_survives_a_swap_for_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir(dir.join("d")).unwrap();
        let root = open_root(dir).unwrap();
        let held = open_dir(root.as_fd(), &["d"], false).unwrap();
        // Swap: d moves away, a symlink to outside takes its name.
        fs::rename(dir.join("d"), dir.join("moved")).unwrap();
        symlink(outside.path(), dir.join("d")).unwrap();
        // The next walk refuses it...
        assert!(open_dir(root.as_fd(), &["d"], true).is_err());
        // ...and the held descriptor still points at the real folder.
        rustix::fs::mkdirat(held.as_fd(), "sub", Mode::from_raw_mode(0o755)).unwrap();
        assert!(dir.join("moved/sub").is_dir());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
