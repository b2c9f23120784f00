//! The shared folder's identity: its Ed25519 key pair, in `<folder>/.p2pshare-key`.
//!
//! A peer is its key (issue 28): other peers remember it, check it on every connection, and
//! (later) allow it by it. So the key is made once per folder, on the first start, and read on
//! every start after. The file sits beside the folder's other state (the lock, the scan cache):
//! a hidden name, so the scanner never lists it and no peer can ask for it.
//!
//! Format (text, so a person can read their own id; 162 bytes):
//!
//! ```text
//! p2pshare identity v1
//! secret <64 hex digits: the Ed25519 secret seed>
//! key <64 hex digits: the public key, the peer's id>
//! ```
//!
//! Invariants:
//! - created owner-only and atomically: written to a temporary file opened with `O_CREAT |
//!   O_EXCL | O_NOFOLLOW` and mode 0600 given at open (the umask can only take bits away, so
//!   there is no moment when others may read it), synced, then hard-linked to its name (which
//!   never replaces a file) and the folder synced. A crash leaves either no key file or a whole
//!   one, never a torn one. Callers hold the [`FolderLock`], so no second peer races the
//!   creation.
//! - the secret comes from the OS (`getrandom`), never from a fallback: no key is made when the
//!   OS has no randomness to give ([`KeyFileError::NoEntropy`]).
//! - read without following a symlink, only as a regular file owned by us and readable by
//!   nobody else (as ssh treats private keys), at most 4 KiB, and only when the public key in it
//!   is the one its secret gives.
//! - a key file that exists but cannot be used is an error, never replaced. Deciding: a new
//!   identity is what other peers see as a different peer (their allow lists and known-peer
//!   records no longer match), and a damaged or too-open key file may mean someone tampered
//!   with it or read it: the person decides. The error says what to do (`chmod 600 FILE`, or
//!   remove FILE to start as a new peer). A key file that was *lost* is simply made anew:
//!   losing it means a new identity, nothing worse.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::{Identity, PeerId, hex};

use crate::lock::FolderLock;

/// The key file's name inside the shared folder (hidden, so never shared).
pub const KEY_FILE: &str = ".p2pshare-key";
/// Where a new key file is written before it takes its name.
const TEMP_FILE: &str = ".p2pshare-key.new";
const HEADER: &str = "p2pshare identity v1";
/// A key file larger than this is not read (it is not ours).
const MAX_LEN: u64 = 4096;

/// Why the folder's identity could not be had.
#[derive(Debug)]
pub enum KeyFileError {
    /// The key file exists but cannot be read (permissions, I/O error, a symlink).
    Unreadable(PathBuf, io::Error),
    /// Something other than a regular file has the key file's name.
    NotAFile(PathBuf),
    /// Others (group or world) may read the key file.
    TooOpen(PathBuf, u32),
    /// The key file belongs to another user.
    NotOwned(PathBuf, u32),
    /// The key file is not one we wrote, or is damaged.
    Corrupt(PathBuf, &'static str),
    /// A new key file could not be written.
    Create(PathBuf, io::Error),
    /// The OS gave no randomness for a new key.
    NoEntropy(String),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remove = "remove it to start as a new peer (others will see a new id)";
        match self {
            KeyFileError::Unreadable(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            KeyFileError::NotAFile(p) => {
                write!(f, "{} is not a regular file; {remove}", p.display())
            }
            KeyFileError::TooOpen(p, mode) => write!(
                f,
                "{} is readable by others (mode {:o}): whoever reads it can be this peer; \
                 run chmod 600 on it, or {remove}",
                p.display(),
                mode & 0o777
            ),
            KeyFileError::NotOwned(p, uid) => write!(
                f,
                "{} belongs to user {uid}, not to the user running p2pshare; {remove}",
                p.display()
            ),
            KeyFileError::Corrupt(p, why) => {
                write!(f, "{} is damaged ({why}); {remove}", p.display())
            }
            KeyFileError::Create(p, e) => write!(f, "cannot create {}: {e}", p.display()),
            KeyFileError::NoEntropy(e) => {
                write!(
                    f,
                    "the system gave no randomness for a new identity key: {e}"
                )
            }
        }
    }
}

impl std::error::Error for KeyFileError {}

/// The folder's identity, and whether this start made it.
#[derive(Debug)]
pub struct Loaded {
    /// The key pair.
    pub identity: Identity,
    /// True when there was no key file and a new identity was made now.
    pub created: bool,
}

/// Reads the folder's identity, or makes and stores one if the folder has none: call once at
/// start, after taking the folder's lock and before the node starts.
pub fn load_or_create(lock: &FolderLock) -> Result<Loaded, KeyFileError> {
    let path = lock.dir().join(KEY_FILE);
    match read(&path) {
        Ok(identity) => {
            return Ok(Loaded {
                identity,
                created: false,
            });
        }
        Err(ReadError::Missing) => {}
        Err(ReadError::Bad(e)) => return Err(e),
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::NoEntropy(e.to_string()))?;
    let identity = Identity::generate(&mut KeyRng::new(seed));
    seed.fill(0);
    create(lock.dir(), &path, &identity)?;
    Ok(Loaded {
        identity,
        created: true,
    })
}

/// The identity of the folder `dir` for a command that runs no peer (`p2pshare id`, `pair`):
/// made under the folder's lock if the folder has none yet, or read as it is while a running
/// peer holds the lock.
pub fn of_folder(dir: &Path) -> Result<Identity, String> {
    match FolderLock::acquire(dir) {
        Ok(lock) => load_or_create(&lock)
            .map(|l| l.identity)
            .map_err(|e| e.to_string()),
        Err(crate::lock::LockError::Busy { .. }) => match read(&dir.join(KEY_FILE)) {
            Ok(identity) => Ok(identity),
            Err(ReadError::Missing) => Err(format!(
                "{} has no key file yet, and a running peer holds the folder",
                dir.display()
            )),
            Err(ReadError::Bad(e)) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// 32 bytes from the operating system's generator: the seed of the node's
/// [`KeyRng`] (its Noise static key and every handshake's ephemeral key). No weak fallback.
pub fn key_seed() -> Result<[u8; 32], KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::NoEntropy(e.to_string()))?;
    Ok(seed)
}

/// A new identity that is stored nowhere, for a peer that uses no folder (a one-shot `list` or
/// `peers`): it only looks, so no one needs to recognise it again.
pub fn ephemeral() -> Result<Identity, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::NoEntropy(e.to_string()))?;
    let identity = Identity::generate(&mut KeyRng::new(seed));
    seed.fill(0);
    Ok(identity)
}

enum ReadError {
    Missing,
    Bad(KeyFileError),
}

fn read(path: &Path) -> Result<Identity, ReadError> {
    let bad = |e| Err(ReadError::Bad(e));
    use crate::nofollow::{PrivateError, open_private};
    let (mut file, meta) = match open_private(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Err(ReadError::Missing),
        Err(PrivateError::Symlink | PrivateError::NotAFile) => {
            return bad(KeyFileError::NotAFile(path.to_path_buf()));
        }
        Err(PrivateError::Io(e)) => return bad(KeyFileError::Unreadable(path.to_path_buf(), e)),
    };
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return bad(KeyFileError::NotOwned(path.to_path_buf(), meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return bad(KeyFileError::TooOpen(path.to_path_buf(), meta.mode()));
    }
    let mut text = String::new();
    if let Err(e) = (&mut file).take(MAX_LEN + 1).read_to_string(&mut text) {
        return bad(if e.kind() == io::ErrorKind::InvalidData {
            KeyFileError::Corrupt(path.to_path_buf(), "not text")
        } else {
            KeyFileError::Unreadable(path.to_path_buf(), e)
        });
    }
    parse(&text).map_err(|why| ReadError::Bad(KeyFileError::Corrupt(path.to_path_buf(), why)))
}

/// The key file's text for `identity`.
fn format(identity: &Identity) -> String {
    format!(
        "{HEADER}\nsecret {}\nkey {}\n",
        hex(&identity.secret_bytes()),
        identity.key().to_hex()
    )
}

/// The identity in a key file's text, or what is wrong with it.
fn parse(text: &str) -> Result<Identity, &'static str> {
    if text.len() as u64 > MAX_LEN {
        return Err("too long");
    }
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(HEADER) {
        return Err("not a p2pshare key file");
    }
    let secret = lines
        .next()
        .and_then(|l| l.strip_prefix("secret "))
        .and_then(PeerId::from_hex)
        .ok_or("no secret")?;
    let key = lines
        .next()
        .and_then(|l| l.strip_prefix("key "))
        .and_then(PeerId::from_hex)
        .ok_or("no public key")?;
    if lines.next().is_some() || !text.ends_with('\n') {
        return Err("unexpected text at the end");
    }
    let identity = Identity::from_secret_bytes(&secret.0);
    if identity.key() != key {
        return Err("its public key does not match its secret");
    }
    Ok(identity)
}

/// Writes a new key file for `identity` at `path` in `dir` (see the module doc).
fn create(dir: &Path, path: &Path, identity: &Identity) -> Result<(), KeyFileError> {
    let temp = dir.join(TEMP_FILE);
    let err = |e| KeyFileError::Create(path.to_path_buf(), e);
    // A temporary file left by a crash during an earlier creation is replaced (we hold the
    // folder lock, so no one else writes it).
    crate::nofollow::write_private(&temp, format(identity).as_bytes()).map_err(err)?;
    // A link never replaces: a key file that appeared meanwhile is kept.
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    linked.map_err(err)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn folder() -> (tempfile::TempDir, FolderLock) {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = FolderLock::acquire(dir.path()).expect("lock");
        (dir, lock)
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("stat").mode() & 0o777
    }

    #[test]
    fn made_on_first_start_and_reused_after() {
        let (dir, lock) = folder();
        let first = load_or_create(&lock).expect("created");
        assert!(first.created);
        let path = dir.path().join(KEY_FILE);
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.path().join(TEMP_FILE).exists());
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.len(), 162);
        assert!(text.contains(&first.identity.key().to_hex()));
        let again = load_or_create(&lock).expect("loaded");
        assert!(!again.created);
        assert_eq!(again.identity.key(), first.identity.key());
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            text,
            "never rewritten"
        );
        // Another folder, another identity.
        let (_other, lock2) = folder();
        let other = load_or_create(&lock2).expect("created");
        assert_ne!(other.identity.key(), first.identity.key());
    }

    #[test]
    fn the_key_file_is_never_shared() {
        assert!(p2pshare_proto::check_name(KEY_FILE).is_err());
        assert!(p2pshare_proto::check_name(TEMP_FILE).is_err());
    }

    #[test]
    fn a_lost_key_file_means_a_new_identity() {
        let (dir, lock) = folder();
        let first = load_or_create(&lock).expect("created");
        fs::remove_file(dir.path().join(KEY_FILE)).expect("rm");
        let second = load_or_create(&lock).expect("created again");
        assert!(second.created);
        assert_ne!(second.identity.key(), first.identity.key());
    }

    #[test]
    fn a_damaged_key_file_is_an_error_and_left_alone() {
        let (dir, lock) = folder();
        let good = format(&load_or_create(&lock).expect("created").identity);
        let path = dir.path().join(KEY_FILE);
        let mut other_key = good.clone();
        // The last hex digit of the public key, changed.
        let at = other_key.len() - 2;
        let digit = if &other_key[at..at + 1] == "0" {
            "1"
        } else {
            "0"
        };
        other_key.replace_range(at..at + 1, digit);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "not a p2pshare key file"),
            (good[..good.len() / 2].into(), "no secret"),
            (good[..good.len() - 1].into(), "unexpected text at the end"),
            (format!("{good}more\n").into(), "unexpected text at the end"),
            (other_key.into(), "its public key does not match its secret"),
            (good.replace("secret ", "secret x").into(), "no secret"),
            (vec![0xff, 0xfe, 0], "not text"),
            (vec![b'a'; 5000], "too long"),
        ];
        for (bytes, why) in cases {
            fs::write(&path, &bytes).expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
            let err = load_or_create(&lock).expect_err("damaged");
            assert!(
                matches!(err, KeyFileError::Corrupt(_, w) if w == why),
                "{err} (wanted {why})"
            );
            assert!(err.to_string().contains("remove it"), "{err}");
            assert_eq!(fs::read(&path).expect("read"), bytes, "left as it was");
        }
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let (dir, lock) = folder();
        load_or_create(&lock).expect("created");
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&lock).expect_err("too open");
        assert!(matches!(err, KeyFileError::TooOpen(..)), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(
            load_or_create(&lock).is_ok(),
            "read-only for the owner is fine"
        );
    }

    #[test]
    fn a_key_file_of_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            return; // only root can give a file away
        }
        let (dir, lock) = folder();
        load_or_create(&lock).expect("created");
        let path = dir.path().join(KEY_FILE);
        std::os::unix::fs::chown(&path, Some(4242), None).expect("chown");
        let err = load_or_create(&lock).expect_err("not ours");
        assert!(matches!(err, KeyFileError::NotOwned(_, 4242)), "{err}");
    }

    #[test]
    fn symlinks_and_folders_are_not_followed() {
        let (dir, lock) = folder();
        // A valid key file elsewhere, and a symlink to it in the folder.
        let (elsewhere, lock2) = folder();
        let real = load_or_create(&lock2).expect("created");
        let path = dir.path().join(KEY_FILE);
        std::os::unix::fs::symlink(elsewhere.path().join(KEY_FILE), &path).expect("symlink");
        let err = load_or_create(&lock).expect_err("symlink");
        assert!(matches!(err, KeyFileError::NotAFile(_)), "{err}");
        fs::remove_file(&path).expect("rm");
        fs::create_dir(&path).expect("mkdir");
        let err = load_or_create(&lock).expect_err("folder");
        assert!(
            matches!(
                err,
                KeyFileError::NotAFile(_) | KeyFileError::Unreadable(..)
            ),
            "{err}"
        );
        drop(real);
    }

    #[test]
    fn a_temporary_file_left_by_a_crash_is_replaced() {
        let (dir, lock) = folder();
        let temp = dir.path().join(TEMP_FILE);
        fs::write(&temp, b"half a key").expect("write");
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).expect("chmod");
        let loaded = load_or_create(&lock).expect("created");
        assert!(loaded.created);
        assert!(!temp.exists());
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
        // And a symlink in the temporary file's place is removed, not written through.
        let target = dir.path().join("victim");
        fs::write(&target, b"keep").expect("write");
        fs::remove_file(dir.path().join(KEY_FILE)).expect("rm");
        std::os::unix::fs::symlink(&target, &temp).expect("symlink");
        load_or_create(&lock).expect("created");
        assert_eq!(fs::read(&target).expect("read"), b"keep");
    }
}
