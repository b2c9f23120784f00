//! File names as they travel between peers: relative paths inside a shared folder.
//!
//! A name is one or more components joined by `/` (`photos/2024/a.jpg`); a plain file name is
//! a path of one component. Invariant: a name that passes [`check_name`] is not empty, does not
//! start with `/`, has at most [`MAX_PATH_DEPTH`] components and [`MAX_PATH_LEN`] bytes, and
//! every component passes [`check_component`]: not empty, not `.`/`..`, no leading dot (hidden
//! files, including our own partial downloads, are never shared), no `/` or `\`, no control
//! character, no bidirectional control and no zero-width character (which would let a name
//! look like another in a listing: `movie\u{202E}4pm.exe`), and at most [`MAX_NAME_LEN`] bytes.
//! So, opened beneath the shared folder component by component (never joined as a string:
//! see `host::beneath`), it names a file inside that folder and nowhere else. Both sides apply
//! it: the sender to what it shares, the receiver to every name a peer sends.

use std::fmt;

/// The longest component accepted, in bytes (the common file-system limit).
pub const MAX_NAME_LEN: usize = 255;
/// The longest whole path accepted, in bytes: a quarter of Linux's `PATH_MAX`, so a path with
/// its `dl_` prefix still fits beneath a deep shared folder, and 100,000 of them stay within a
/// peer's catalog budget.
pub const MAX_PATH_LEN: usize = 1024;
/// The most components a path may have: deeper trees are rare, and this bounds the scanner's
/// recursion and the folders one download may create.
pub const MAX_PATH_DEPTH: usize = 16;
/// The most entries (files and folders) the scanner walks in one shared folder: twice the
/// 100,000-file folder a catalog is tested with, so a rescan's stats stay bounded in time and
/// memory even if a huge tree is dropped into the folder.
pub const MAX_TREE_ENTRIES: usize = 200_000;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name, or one of its components, is empty (`a//b`, a trailing `/`).
    Empty,
    /// A component is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The whole path is longer than [`MAX_PATH_LEN`] bytes.
    PathTooLong,
    /// More than [`MAX_PATH_DEPTH`] components.
    TooDeep,
    /// Starts with `/`.
    Absolute,
    /// A component contains `/` or `\` (only [`check_component`] reports `/`).
    Separator,
    /// A component is `.`, `..`, or starts with a dot.
    Dot,
    /// Contains NUL or another control character.
    Control,
    /// Contains a bidirectional control or a zero-width character: the name would not read as
    /// what it is.
    Invisible,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the name or one of its folders is empty"),
            NameError::TooLong => {
                write!(f, "a part of the name is longer than {MAX_NAME_LEN} bytes")
            }
            NameError::PathTooLong => write!(f, "the path is longer than {MAX_PATH_LEN} bytes"),
            NameError::TooDeep => write!(f, "the path has more than {MAX_PATH_DEPTH} levels"),
            NameError::Absolute => f.write_str("the path starts with /"),
            NameError::Separator => f.write_str("the name contains a path separator"),
            NameError::Dot => f.write_str("a part of the name starts with a dot"),
            NameError::Control => f.write_str("the name contains a control character"),
            NameError::Invisible => {
                f.write_str("the name contains a direction-changing or zero-width character")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a relative path that may be shared, requested or written: call on
/// every name before it is listed, stored, asked for or opened (see the module doc).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_PATH_LEN {
        return Err(NameError::PathTooLong);
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    let mut depth = 0;
    for c in name.split('/') {
        depth += 1;
        if depth > MAX_PATH_DEPTH {
            return Err(NameError::TooDeep);
        }
        check_component(c)?;
    }
    Ok(())
}

/// Checks one component of a path: a plain file or folder name. Call on each directory entry
/// before it goes into a path (the scanner does).
pub fn check_component(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let bytes = name.as_bytes();
    if bytes.is_ascii() {
        // Nearly every name: one pass over its bytes, where the general path decodes every
        // character three times. A catalog of 100,000 names is judged on the event loop, and
        // in a debug build the general path took most of its time.
        let (mut separator, mut control) = (false, false);
        for &b in bytes {
            separator |= b == b'/' || b == b'\\';
            control |= b < 0x20 || b == 0x7f;
        }
        return if separator {
            Err(NameError::Separator)
        } else if bytes[0] == b'.' {
            Err(NameError::Dot)
        } else if control {
            Err(NameError::Control)
        } else {
            Ok(())
        };
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

/// The components of a name that passed [`check_name`], first to last.
pub fn components(name: &str) -> impl Iterator<Item = &str> {
    name.split('/')
}

/// The last component of a name: the file's own name (`a.jpg` of `photos/2024/a.jpg`).
pub fn file_part(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// True when `name` lies under the folder `folder` (given with or without a trailing `/`):
/// `photos/2024/a.jpg` is under `photos` and `photos/2024/`, not under `photo`.
pub fn is_under(name: &str, folder: &str) -> bool {
    let folder = folder.trim_end_matches('/');
    !folder.is_empty()
        && name.len() > folder.len() + 1
        && name.starts_with(folder)
        && name.as_bytes()[folder.len()] == b'/'
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
/// `.dl_<file>.<content id>.part`, with the file's own name (the last component of `name`) and
/// the full 64-digit id. It lives directly in the shared folder whatever the depth of `name`.
/// Hidden, so it is never shared; keyed by the whole content id, so two different files with
/// one name never mix their chunks (a 48-bit prefix could be made to collide).
pub fn partial_name(name: &str, content: &crate::ContentId) -> String {
    format!(".dl_{}.{}.part", file_part(name), content.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hostile corpus of the issue, and more.
    fn hostile() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            ".",
            "..",
            "../x",
            "x/..",
            "a/../../b",
            "a/./b",
            "./a",
            "/etc/passwd",
            "/",
            "a//b",
            "a/",
            "/a",
            "a\\b",
            "..\\x",
            "a\0b",
            "a/b\0",
            "a\nb",
            "d/e\r",
            ".hidden",
            "a/.hidden/b",
            "a/.git",
            "movie\u{202E}4pm.exe",
            "dir\u{202E}/x",
            "a\u{200B}b",
            "a/\u{FEFF}bom",
            "x\u{2066}y",
            "y\u{061C}z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("x".repeat(4096));
        v.push(format!("a/{}", "b".repeat(256)));
        v.push(["d"; 17].join("/"));
        v.push(["abcdefghij"; 100].join("/"));
        v
    }

    #[test]
    fn refuses_hostile_paths() {
        for bad in hostile() {
            assert!(check_name(&bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_name("/etc/passwd"), Err(NameError::Absolute));
        assert_eq!(check_name("a//b"), Err(NameError::Empty));
        assert_eq!(check_name("a/../../b"), Err(NameError::Dot));
        assert_eq!(check_name(&"x".repeat(4096)), Err(NameError::PathTooLong));
        assert_eq!(check_name(&["d"; 17].join("/")), Err(NameError::TooDeep));
        assert_eq!(check_name(&"x".repeat(256)), Err(NameError::TooLong));
        assert_eq!(check_component("a/b"), Err(NameError::Separator));
    }

    #[test]
    fn accepts_plain_names_and_paths() {
        assert_eq!(check_name(&"x".repeat(255)), Ok(()));
        assert_eq!(check_name(&["d"; 16].join("/")), Ok(()));
        for good in [
            "a.txt",
            "My File (1).pdf",
            "ünïcødé",
            "a..b",
            "photos/2024/a.jpg",
            "a/b/c/d",
            "dl_x/y",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?} refused");
        }
        let long = [&*"c".repeat(255), &"c".repeat(255), &"c".repeat(255), "d"].join("/");
        assert_eq!(long.len(), 769);
        assert_eq!(check_name(&long), Ok(()));
    }

    #[test]
    fn folders_and_file_parts() {
        assert!(is_under("photos/2024/a.jpg", "photos"));
        assert!(is_under("photos/2024/a.jpg", "photos/"));
        assert!(is_under("photos/2024/a.jpg", "photos/2024/"));
        assert!(!is_under("photos/2024/a.jpg", "photo"));
        assert!(!is_under("photos", "photos"));
        assert!(!is_under("photos/", "photos"));
        assert!(!is_under("a", ""));
        assert_eq!(file_part("photos/2024/a.jpg"), "a.jpg");
        assert_eq!(file_part("a.jpg"), "a.jpg");
        let id = crate::ContentId([7; 32]);
        assert!(partial_name("photos/2024/a.jpg", &id).starts_with(".dl_a.jpg."));
    }

    /// [`check_component`] without its ASCII path: the reference it must agree with.
    fn by_chars(name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            Err(NameError::Empty)
        } else if name.len() > MAX_NAME_LEN {
            Err(NameError::TooLong)
        } else if name.contains(['/', '\\']) {
            Err(NameError::Separator)
        } else if name.starts_with('.') {
            Err(NameError::Dot)
        } else if name.chars().any(char::is_control) {
            Err(NameError::Control)
        } else if name.chars().any(is_invisible) {
            Err(NameError::Invisible)
        } else {
            Ok(())
        }
    }

    fn component() -> impl Strategy<Value = String> {
        // Printable characters of several scripts, dots and spaces included.
        "[a-zA-Z0-9 ._()\\-éü漢]{1,40}"
    }

    proptest! {
        #[test]
        fn accepted_paths_round_trip(parts in prop::collection::vec(component(), 1..20)) {
            let path = parts.join("/");
            if check_name(&path).is_ok() {
                let back: Vec<&str> = components(&path).collect();
                prop_assert_eq!(back.join("/"), path.clone());
                prop_assert!(back.len() <= MAX_PATH_DEPTH && path.len() <= MAX_PATH_LEN);
                for c in back {
                    prop_assert!(check_component(c).is_ok());
                    prop_assert!(c != "." && c != ".." && !c.starts_with('.'));
                }
                prop_assert_eq!(file_part(&path), parts[parts.len() - 1].as_str());
            } else {
                prop_assert!(parts.len() > MAX_PATH_DEPTH
                    || path.len() > MAX_PATH_LEN
                    || parts.iter().any(|p| check_component(p).is_err()));
            }
        }

        #[test]
        fn a_hostile_component_anywhere_is_refused(
            before in prop::collection::vec("[a-z]{1,8}", 0..4),
            after in prop::collection::vec("[a-z]{1,8}", 0..4),
            bad in prop::sample::select(vec!["", ".", "..", ".x", "a\0", "b\u{202E}", "c\u{200B}", "a\\b", "\n"]),
        ) {
            let mut parts = before.clone();
            parts.push(bad.to_owned());
            parts.extend(after);
            let path = parts.join("/");
            prop_assert!(check_name(&path).is_err(), "{:?} accepted", path);
        }

        #[test]
        fn any_string_is_judged_without_panic(s in "\\PC{0,64}") {
            let _ = check_name(&s);
        }

        #[test]
        fn the_ascii_path_judges_as_the_general_one(
            s in "[ -~\\x00-\\x1f\\x7f]{1,40}|\\PC{1,40}",
        ) {
            prop_assert_eq!(check_component(&s), by_chars(&s), "{:?}", s);
        }
    }
}
