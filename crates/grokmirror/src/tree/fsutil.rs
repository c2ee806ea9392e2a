//! Small filesystem helpers: atomic replacement of files and paths relative
//! to the mirror's top level.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Write `data` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. Readers see either
/// the old file or the new one, never a partial one; a failure (disk full,
/// say) leaves the old file untouched.
///
/// The file is created with mode `0666 & !umask`, as grokmirror does.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(data))
}

/// Like [`write_atomic`], with a closure that writes the contents.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    replace_with(path, true, write)
}

/// Replace `path` atomically (readers see the old or the new contents) but
/// without waiting for the disk: for the small derived files grokmirror
/// keeps in each repository (fingerprint, timestamp, agefile), which are
/// recomputed if lost, and where an fsync per repository would dominate a
/// walk over thousands of them.
pub fn replace_quickly(path: &Path, data: &[u8]) -> io::Result<()> {
    replace_with(path, false, |f| f.write_all(data))
}

fn replace_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    // Mode 0666 at creation lets the process umask decide, as grokmirror's
    // chmod(0666 ^ umask) does. The temp file is removed if we fail.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    // The data is on disk before the rename, so a crash can leave the old
    // file or the new one, never a torn one. The directory entry is not
    // fsynced: losing the rename in a crash only means the previous
    // (complete) version is read next time, which every reader of these
    // files handles, and the extra flush would double a hook's latency.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Remove temporary files that an interrupted [`write_atomic`] of `path`
/// left behind (`.<name>.*.tmp` beside it). Only call this while holding
/// the lock that serializes writers of `path`, or a live writer's temp file
/// could go. Returns how many were removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".tmp")
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Replace `path` with `data` (atomically, without fsync: see
/// [`replace_quickly`]) unless it already holds exactly that. Returns
/// whether it wrote. Saves a write (and an mtime change) on every unchanged
/// repository during a full walk.
pub fn write_if_changed(path: &Path, data: &[u8]) -> io::Result<bool> {
    match fs::read(path) {
        Ok(existing) if existing == data => Ok(false),
        _ => replace_quickly(path, data).map(|_| true),
    }
}

/// The name of a file that goes with `name`: `.<name>.<suffix>` (the
/// lock, state and freshness files grokmirror keeps beside a file or
/// repository).
pub fn companion_name(name: &std::ffi::OsStr, suffix: &str) -> std::ffi::OsString {
    let mut out = std::ffi::OsString::from(".");
    out.push(name);
    out.push(".");
    out.push(suffix);
    out
}

/// The file that goes with `path`, beside it: `/t/m.js.gz` ->
/// `/t/.m.js.gz.<suffix>`.
pub fn companion_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    parent.join(companion_name(name, suffix))
}

/// Python's `os.path.relpath(path, start)` for absolute paths: the path of
/// `path` relative to `start`, with `..` steps when it lies outside.
pub fn relpath(path: &Path, start: &Path) -> PathBuf {
    let path = normalize_lexically(path);
    let start = normalize_lexically(start);
    let p: Vec<_> = path.components().collect();
    let s: Vec<_> = start.components().collect();
    let common = p.iter().zip(&s).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..s.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Resolve `.` and `..` components without following symlinks, the way
/// Python's `os.path.normpath` does.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` made absolute against the current directory, lexically normalized.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        normalize_lexically(path)
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        normalize_lexically(&cwd.join(path))
    }
}

/// The program to run: a path containing `/` as is, otherwise looked up in
/// `PATH`; `None` when it is not an executable file.
pub fn resolve_program(name: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| executable(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.js");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // 0666 minus whatever the umask takes away, never more than 0666.
        assert_eq!(mode & !0o666, 0);
    }

    #[test]
    fn failed_write_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.js");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.js.gz");
        write_atomic(&p, b"x").unwrap();
        fs::write(dir.path().join(".m.js.gz.abc123.tmp"), b"partial").unwrap();
        fs::write(dir.path().join(".m.js.gz.lock"), b"").unwrap();
        fs::write(dir.path().join(".other.abc.tmp"), b"").unwrap();
        assert_eq!(remove_stale_temps(&p), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
