//! File names as they travel between peers: plain names, never paths.
//!
//! Invariant: a name that passes [`check_name`] has no path separator, is not `.`/`..`, does not
//! start with a dot (hidden files, including our own partial downloads, are never shared), has no
//! control character, and is at most [`MAX_NAME_LEN`] bytes. Joined onto the shared folder it
//! names a file directly inside that folder, and nowhere else. Both sides apply it: the sender
//! to what it shares, the receiver to every name a peer sends.

use std::fmt;

/// The longest name accepted, in bytes (the common file-system limit).
pub const MAX_NAME_LEN: usize = 255;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// Contains `/` or `\`.
    Separator,
    /// `.`, `..`, or starts with a dot.
    Dot,
    /// Contains NUL or another control character.
    Control,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "the name is empty",
            NameError::TooLong => "the name is longer than 255 bytes",
            NameError::Separator => "the name contains a path separator",
            NameError::Dot => "the name starts with a dot",
            NameError::Control => "the name contains a control character",
        })
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a plain file name that may be shared, requested or written.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    if name.starts_with('.') {
        return Err(NameError::Dot);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(())
}

/// The hidden partial file a download writes into until it is verified:
/// `.dl_<name>.<short content id>.part`. Hidden, so it is never shared; keyed by content, so two
/// different files with one name never mix their chunks.
pub fn partial_name(name: &str, content: &crate::ContentId) -> String {
    format!(".dl_{name}.{}.part", content.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_and_controls() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            ".hidden",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_name(&"x".repeat(100 * 1024)), Err(NameError::TooLong));
        assert_eq!(check_name(&"x".repeat(255)), Ok(()));
        for good in ["a.txt", "My File (1).pdf", "ünïcødé", "a..b"] {
            assert_eq!(check_name(good), Ok(()), "{good:?} refused");
        }
    }
}
