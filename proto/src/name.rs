//! File names as they travel between peers: plain names, never paths.
//!
//! Invariant: a name that passes [`check_name`] has no path separator, is not `.`/`..`, does not
//! start with a dot (hidden files, including our own partial downloads, are never shared), has no
//! control character, no bidirectional control and no zero-width character (which would let a
//! name look like another in a listing: `movie\u{202E}4pm.exe`), and is at most
//! [`MAX_NAME_LEN`] bytes. Joined onto the shared folder it
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
    /// Contains a bidirectional control or a zero-width character: the name would not read as
    /// what it is.
    Invisible,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "the name is empty",
            NameError::TooLong => "the name is longer than 255 bytes",
            NameError::Separator => "the name contains a path separator",
            NameError::Dot => "the name starts with a dot",
            NameError::Control => "the name contains a control character",
            NameError::Invisible => {
                "the name contains a direction-changing or zero-width character"
            }
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
    if name.chars().any(is_invisible) {
        return Err(NameError::Invisible);
    }
    Ok(())
}

/// Bidirectional controls (embeddings, overrides, isolates, marks) and zero-width characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// The hidden partial file a download writes into until it is verified:
/// `.dl_<name>.<content id>.part`, with the full 64-digit id. Hidden, so it is never shared;
/// keyed by the whole content id, so two different files with one name never mix their chunks
/// (a 48-bit prefix could be made to collide).
pub fn partial_name(name: &str, content: &crate::ContentId) -> String {
    format!(".dl_{name}.{}.part", content.to_hex())
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
            "movie\u{202E}4pm.exe",
            "a\u{200B}b",
            "\u{FEFF}bom",
            "x\u{2066}y",
            "y\u{061C}z",
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
