//! # lantern-io
//!
//! The one atomic file write of the workspace. Every crate that writes a result (the engine's
//! activation caches, figures, learned states, experiment JSON/CSV) goes through it, so a crash
//! or a failed write never leaves a half-written file where a reader expects a whole one.
//!
//! It depends on the standard library only: the analysis crates (lantern-plot, lantern-states)
//! must never pull in candle, and the engine must not depend on them, so this is the lowest
//! place all of them can share.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically: see [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)?;
        f.write_all(bytes)
    })
}

/// Writes `path` by calling `write` on a temporary file in the same folder, syncing it to disk
/// and renaming it over `path`. Readers see the old file or the whole new one, never a part.
/// On any failure the temporary file is removed and `path` is left as it was.
///
/// The temporary name is unique per process and call (`.<name>.<pid>.<n>.tmp`), so concurrent
/// writers of the same path never share one. Errors do not name `path`; callers wrap them in
/// their own error type with the path.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_sibling(path)?;
    let result = write(&tmp)
        .and_then(|()| fs::OpenOptions::new().write(true).open(&tmp)?.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `<folder>/.<name>.<pid>.<n>.tmp` next to `path`; fails when `path` has no file name or its
/// folder does not exist.
fn temp_sibling(path: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("folder {} does not exist", folder.display()),
        ));
    }
    Ok(folder.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lantern-io-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("a.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names(&dir), vec!["a.json"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = scratch("fail");
        let path = dir.join("a.json");
        write_atomic(&path, b"old").unwrap();
        let e = write_atomic_with(&path, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&dir), vec!["a.json"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = scratch("missing");
        let e = write_atomic(&dir.join("no/such/a.json"), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no/such"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }
}
