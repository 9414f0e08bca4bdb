//! File errors in words a user can act on, and the check of an output path before a run.
//!
//! Rust's `io::ErrorKind` displays as "entity not found" and an OS error as "No such file or
//! directory (os error 2)"; a user who named a file wants `path: no such file or directory`.
//! [`describe`] and [`describe_kind`] give that wording (strerror's, lower case, without the
//! error number), so every message that names a file reads the same. [`check_output`] checks
//! that a file can be written at a path without creating it: run before a replay reads its
//! first byte, it turns a typo in `--report-md` into one line at start rather than an error
//! after hours of work.

use std::io::{self, ErrorKind};
use std::path::Path;

/// What went wrong, in words, for an error kind (an error without an OS code, or a kind kept
/// alone as in `capture::CaptureError::Io`). The kinds whose own text is unclear ("entity not
/// found") are spelled as strerror(3) spells them; the rest keep Rust's text, which is already
/// words ("is a directory", "not a directory").
pub fn describe_kind(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::NotFound => "no such file or directory".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::AlreadyExists => "file exists".into(),
        ErrorKind::UnexpectedEof => "unexpected end of file".into(),
        ErrorKind::BrokenPipe => "broken pipe (the reader went away)".into(),
        ErrorKind::InvalidInput | ErrorKind::InvalidData => "invalid data".into(),
        ErrorKind::Other => "input/output error".into(),
        kind => kind.to_string(),
    }
}

/// What went wrong, in words: the system's message for an OS error (without "(os error N)"),
/// else the words for its kind.
pub fn describe(e: &io::Error) -> String {
    if e.raw_os_error().is_some() {
        let text = e.to_string();
        let text = match text.rfind(" (os error ") {
            Some(at) => text.get(..at).unwrap_or(&text).to_string(),
            None => text,
        };
        // strerror capitalises its first word; the messages here are `path: what`.
        let mut chars = text.chars();
        return match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => describe_kind(e.kind()),
        };
    }
    match e.kind() {
        ErrorKind::Other | ErrorKind::InvalidData | ErrorKind::InvalidInput => e.to_string(),
        kind => describe_kind(kind),
    }
}

/// `path: what went wrong`.
pub fn at(path: &Path, e: &io::Error) -> String {
    format!("{}: {}", path.display(), describe(e))
}

/// Checks that a file can be written at `path` without creating it: the path is not a
/// directory, its directory exists and is a directory, and the file (if it exists) or else its
/// directory is writable by this process. Returns `path: what is wrong`.
pub fn check_output(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(format!("{shown}: is a directory")),
        Ok(_) => {
            return writable(path).map_err(|e| format!("{shown}: {}", describe(&e)));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {}", describe(&e))),
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(format!("{shown}: {} is not a directory", dir.display())),
        Ok(_) => writable(dir).map_err(|e| {
            format!(
                "{shown}: cannot create files in {}: {}",
                dir.display(),
                describe(&e)
            )
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(format!("{shown}: no such directory {}", dir.display()))
        }
        Err(e) => Err(format!("{shown}: {}: {}", dir.display(), describe(&e))),
    }
}

/// Whether this process may write at `path`: an existing file is opened for appending (which
/// changes nothing in it), a directory is probed by creating and removing an empty file in it
/// (the only way to learn it without `unsafe` access(2): root ignores permission bits, and a
/// read-only mount or an ACL decides as well).
fn writable(path: &Path) -> io::Result<()> {
    if !path.is_dir() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop);
    }
    let probe = path.join(format!(".ksensor-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_words_without_numbers() {
        let e = std::fs::File::open("/nonexistent/ksensor-test").unwrap_err();
        assert_eq!(describe(&e), "no such file or directory");
        assert_eq!(at(Path::new("/x/y"), &e), "/x/y: no such file or directory");
        assert_eq!(
            describe_kind(ErrorKind::NotFound),
            "no such file or directory"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let e = std::fs::File::open(dir.path().join("x/y")).unwrap_err();
        assert_eq!(describe(&e), "no such file or directory");
        assert_eq!(
            describe(&io::Error::from(ErrorKind::PermissionDenied)),
            "permission denied"
        );
    }

    #[test]
    fn output_paths_are_checked_without_creating_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("report.md");
        assert_eq!(check_output(&fresh), Ok(()));
        assert!(!fresh.exists(), "the check created the file");
        std::fs::write(&fresh, "x").expect("write");
        assert_eq!(check_output(&fresh), Ok(()));
        let err = check_output(dir.path()).unwrap_err();
        assert!(err.ends_with(": is a directory"), "{err}");
        let err = check_output(&dir.path().join("nodir/report.md")).unwrap_err();
        assert!(err.contains("no such directory"), "{err}");
        let err = check_output(&fresh.join("below")).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
        assert_eq!(check_output(Path::new("relative-in-cwd.md")), Ok(()));
    }
}
