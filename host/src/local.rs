//! What the local machine says about a socket or a folder, for the CLI's local surfaces (the
//! control socket, a folder download): who is at the other end of a Unix socket, whether that
//! user may be trusted, and how much room a folder's file system has.
//!
//! Invariant: a peer of a Unix socket is trusted only when the kernel says (`SO_PEERCRED`,
//! taken when it connected or listened; nothing it sends can change it) that it runs as our
//! own effective user or as root. Everything is a safe call into `rustix` (the workspace
//! forbids `unsafe`).

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// The user id the process at the other end of the Unix socket `s` ran as when it connected
/// (or, for a client, when the listener was set up).
pub fn peer_uid(s: impl AsFd) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(s)?.uid.as_raw())
}

/// Our effective user id.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// True when a socket peer running as `uid` may drive this peer (or, seen from a client, be
/// the running peer of a folder): our own user, or root.
pub fn trusted(uid: u32) -> bool {
    uid == 0 || uid == my_uid()
}

/// Bytes an unprivileged writer may still put on the file system that holds `dir`
/// (`statvfs`: available blocks times the fragment size).
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socket_pair_is_our_own_user() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), my_uid());
        assert_eq!(peer_uid(&b).unwrap(), my_uid());
        assert!(trusted(my_uid()) && trusted(0));
        let other = if my_uid() == 4242 { 4243 } else { 4242 };
        assert!(!trusted(other));
    }

    #[test]
    fn a_folder_has_free_space_and_a_missing_one_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(free_bytes(tmp.path()).unwrap() > 0);
        assert!(free_bytes(&tmp.path().join("missing")).is_err());
    }
}
