//! Private sharing: the keys a peer serves, from `--allow KEY`, `--allow-file FILE` and the
//! folder's own allow file `<folder>/.p2pshare-allow` (which `p2pshare pair` adds to).
//!
//! Format of an allow file (text, one key a line; what `peers -v` and `status --json` show):
//!
//! ```text
//! # anything after a # is a comment; blank lines are fine
//! 3f1c…(64 hex digits)   # laptop, paired 2026-12-07
//! ```
//!
//! Invariants:
//! - a peer shares privately when any key was given (`--allow`), any `--allow-file` was
//!   given (even an empty one: it means "no one yet"), or the folder's allow file names a key;
//!   otherwise it serves everyone, as before;
//! - an allow file is read only as a regular file of our own user that nobody else may write
//!   (whoever could write it could allow themselves); a line that is not a key is an error
//!   naming the file and the line, never skipped: a typo must not silently open or close the
//!   share;
//! - the files are followed while the peer runs ([`Watch`]): an edit or a pairing takes
//!   effect within [`WATCH_EVERY`], without a restart; a file that turns bad keeps the keys
//!   it had (said once);
//! - the folder's allow file is hidden, so never shared or listed, and rewritten whole
//!   (temporary file, owner-only, then renamed over it) by [`add`].

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p2pshare_proto::PeerId;

use crate::scan::Stamp;

/// The folder's own allow file (hidden, so never shared).
pub const ALLOW_FILE: &str = ".p2pshare-allow";
const TEMP_FILE: &str = ".p2pshare-allow.new";
/// An allow file larger than this is not a list of keys (a thousand keys is 65 KiB).
const MAX_LEN: u64 = 1 << 20;
/// How often the allow files are looked at again while the peer runs (one `stat` each).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Why the allowed keys cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowError(pub String);

impl std::fmt::Display for AllowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AllowError {}

/// The keys in an allow file's text, or the first line that is not one (1-based).
pub fn parse(text: &str) -> Result<BTreeSet<PeerId>, (usize, String)> {
    let mut keys = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let key = parse_key(line).map_err(|why| (n + 1, why))?;
        keys.insert(key);
    }
    Ok(keys)
}

/// A key as a person gives it: 64 hex digits.
pub fn parse_key(s: &str) -> Result<PeerId, String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!(
            "{s:?} is not a key (a key is 64 hex digits, as `p2pshare id` prints)"
        ));
    }
    PeerId::from_hex(s).ok_or_else(|| format!("{s:?} is not a key (not hex digits)"))
}

/// What a file's stat says, to notice an edit.
/// Reads an allow file: its keys and its stamp, `Ok(None)` if it does not exist.
fn read(path: &Path) -> Result<Option<(BTreeSet<PeerId>, Stamp)>, AllowError> {
    let Some((text, meta)) = read_text(path)? else {
        return Ok(None);
    };
    Ok(Some((parse_in(path, &text)?, Stamp::of(&meta))))
}

/// The keys of `text`, read from `path` (named in the error).
fn parse_in(path: &Path, text: &str) -> Result<BTreeSet<PeerId>, AllowError> {
    parse(text).map_err(|(line, why)| AllowError(format!("{}: line {line}: {why}", path.display())))
}

/// An allow file's text and metadata, once it passed every check (see the module doc);
/// `Ok(None)` if it does not exist.
fn read_text(path: &Path) -> Result<Option<(String, fs::Metadata)>, AllowError> {
    use crate::nofollow::{PrivateError, open_private};
    let err = |why: String| AllowError(format!("{}: {why}", path.display()));
    let (mut file, meta) = match open_private(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(PrivateError::Symlink) => return Err(err("is a symlink; give the file itself".into())),
        Err(PrivateError::NotAFile) => return Err(err("is not a regular file".into())),
        Err(PrivateError::Io(e)) => return Err(err(format!("cannot read it: {e}"))),
    };
    let me = rustix::process::geteuid();
    if meta.uid() != me.as_raw() && !me.is_root() {
        return Err(err(format!(
            "belongs to user {}: only the user running p2pshare may say whom it serves",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(err(format!(
            "others may write it (mode {:o}), and so allow themselves; run chmod go-w on it",
            meta.mode() & 0o777
        )));
    }
    if meta.len() > MAX_LEN {
        return Err(err("is too long for a list of keys".into()));
    }
    let mut text = String::new();
    (&mut file)
        .take(MAX_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read it: {e}")))?;
    Ok(Some((text, meta)))
}

/// The stamp of `path` now (`None`: missing or unreadable).
fn stamp(path: &Path) -> Option<Stamp> {
    fs::symlink_metadata(path).ok().map(|m| Stamp::of(&m))
}

/// The allowed keys of a peer, and the files they come from, followed while it runs.
#[derive(Debug)]
pub struct Watch {
    /// From the command line (`--allow`), fixed.
    given: BTreeSet<PeerId>,
    /// True when the command line asked for private sharing (`--allow` or `--allow-file`).
    private: bool,
    /// The folder's allow file (may be missing), then each `--allow-file` (must exist).
    files: Vec<(PathBuf, bool, Option<Stamp>, BTreeSet<PeerId>)>,
}

impl Watch {
    /// Reads the allowed keys at start: `given` from `--allow`, the folder's allow file in
    /// `folder` (if any: `None` for a peer that uses no folder), and `extra` (`--allow-file`,
    /// each of which must exist). A bad file is an error.
    pub fn start(
        given: BTreeSet<PeerId>,
        folder: Option<&Path>,
        extra: &[PathBuf],
    ) -> Result<Watch, AllowError> {
        let mut files = Vec::new();
        for (path, required) in folder
            .map(|f| (f.join(ALLOW_FILE), false))
            .into_iter()
            .chain(extra.iter().map(|p| (p.clone(), true)))
        {
            match read(&path)? {
                Some((keys, stamp)) => files.push((path, required, Some(stamp), keys)),
                None if required => {
                    return Err(AllowError(format!("{}: no such file", path.display())));
                }
                None => files.push((path, required, None, BTreeSet::new())),
            }
        }
        Ok(Watch {
            private: !given.is_empty() || !extra.is_empty(),
            given,
            files,
        })
    }

    /// The keys served now: `None` when everyone is (nothing asked for private sharing).
    pub fn allowed(&self) -> Option<BTreeSet<PeerId>> {
        let mut all = self.given.clone();
        for (_, _, _, keys) in &self.files {
            all.extend(keys.iter().copied());
        }
        (self.private || !all.is_empty()).then_some(all)
    }

    /// Looks at the files again: `Ok(true)` when the keys may have changed (read
    /// [`Watch::allowed`]); an error (once per edit) when a file changed and cannot be used,
    /// and then its keys stay as they were.
    pub fn poll(&mut self) -> Result<bool, AllowError> {
        let mut changed = false;
        for (path, _, old, keys) in &mut self.files {
            let now = stamp(path);
            if now == *old {
                continue;
            }
            *old = now;
            match read(path) {
                Ok(Some((k, s))) => {
                    *old = Some(s);
                    changed |= *keys != k;
                    *keys = k;
                }
                Ok(None) => {
                    changed |= !keys.is_empty();
                    keys.clear();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }
}

/// Adds `key` to the allow file at `path` with a comment (`note`), rewriting it whole (see the
/// module doc). False when the key was already in it.
pub fn add(path: &Path, key: &PeerId, note: &str) -> Result<bool, AllowError> {
    let err = |e: io::Error| AllowError(format!("cannot write {}: {e}", path.display()));
    let mut text = match read_text(path)? {
        Some((text, _)) if parse_in(path, &text)?.contains(key) => return Ok(false),
        Some((text, _)) => text,
        None => "# keys this peer serves (p2pshare --allow); one a line, # for comments\n".into(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let note = note.replace(['\n', '\r'], " ");
    text.push_str(&format!("{}  # {note}\n", key.to_hex()));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ALLOW_FILE.into());
    let temp = dir.join(if name == ALLOW_FILE {
        TEMP_FILE.to_owned()
    } else {
        format!(".{name}.new")
    });
    crate::nofollow::replace_private(&temp, path, text.as_bytes()).map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    #[test]
    fn keys_comments_and_bad_lines() {
        let text = format!(
            "# friends\n\n{}  # laptop\n   {}\n{}\n",
            key(1).to_hex(),
            key(2).to_hex(),
            key(1).to_hex()
        );
        assert_eq!(parse(&text), Ok([key(1), key(2)].into_iter().collect()));
        let bad = format!("{}\nnot-a-key\n", key(1).to_hex());
        let (line, why) = parse(&bad).expect_err("bad");
        assert_eq!(line, 2);
        assert!(why.contains("64 hex digits"), "{why}");
        assert!(parse_key(&"zz".repeat(32)).is_err());
        assert_eq!(parse_key(&key(3).to_hex()), Ok(key(3)));
    }

    #[test]
    fn private_when_asked_for_and_following_the_folder_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Nothing asked: everyone is served.
        let w = Watch::start(BTreeSet::new(), Some(dir.path()), &[]).expect("start");
        assert_eq!(w.allowed(), None);
        // --allow: only that key.
        let w = Watch::start([key(1)].into(), Some(dir.path()), &[]).expect("start");
        assert_eq!(w.allowed(), Some([key(1)].into()));
        // An empty --allow-file: no one yet.
        let empty = dir.path().join("empty");
        fs::write(&empty, "# nobody\n").expect("write");
        let w = Watch::start(BTreeSet::new(), None, std::slice::from_ref(&empty)).expect("start");
        assert_eq!(w.allowed(), Some(BTreeSet::new()));
        // A missing --allow-file is an error; a missing folder file is not.
        let missing = dir.path().join("missing");
        let e = Watch::start(BTreeSet::new(), None, &[missing]).expect_err("missing");
        assert!(e.0.contains("no such file"), "{e}");

        // Pairing adds to the folder's file; the watch sees it.
        let mut w = Watch::start(BTreeSet::new(), Some(dir.path()), &[]).expect("start");
        let path = dir.path().join(ALLOW_FILE);
        assert_eq!(add(&path, &key(5), "paired"), Ok(true));
        assert_eq!(add(&path, &key(5), "paired"), Ok(false), "once");
        assert_eq!(
            fs::symlink_metadata(&path).expect("stat").mode() & 0o777,
            0o600
        );
        assert!(
            p2pshare_proto::check_name(ALLOW_FILE).is_err(),
            "never shared"
        );
        assert_eq!(w.poll(), Ok(true));
        assert_eq!(w.allowed(), Some([key(5)].into()));
        assert_eq!(w.poll(), Ok(false), "unchanged");
        assert_eq!(add(&path, &key(6), "paired"), Ok(true));
        assert_eq!(w.poll(), Ok(true));
        assert_eq!(w.allowed(), Some([key(5), key(6)].into()));
        // An edit that breaks it keeps the keys, and says so once.
        let mut text = fs::read_to_string(&path).expect("read");
        text.push_str("oops\n");
        fs::write(&path, &text).expect("write");
        let e = w.poll().expect_err("bad line");
        assert!(e.0.contains("line 4"), "{e}");
        assert_eq!(w.poll(), Ok(false), "said once");
        assert_eq!(w.allowed(), Some([key(5), key(6)].into()));
    }

    #[test]
    fn a_file_others_may_write_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("allow");
        fs::write(&path, format!("{}\n", key(1).to_hex())).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        let e = Watch::start(BTreeSet::new(), None, std::slice::from_ref(&path)).expect_err("open");
        assert!(e.0.contains("chmod go-w"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let w = Watch::start(BTreeSet::new(), None, &[path]).expect("fine");
        assert_eq!(w.allowed(), Some([key(1)].into()));
    }
}
