//! Where grok-pull builds new clones (and parks repositories it is about to
//! delete) so that nobody ever sees a half-made repository at its real
//! path.
//!
//! The staging directory is `.grok-pull.staging` at the top level (or, for a
//! target on another filesystem mounted inside the top level, beside the
//! target, because a rename cannot cross filesystems). Two things keep its
//! contents from being taken for repositories:
//!
//! - The name starts with a dot: cgit's `scan-path` skips hidden
//!   directories, and our own walks skip this name outright.
//! - A clone in progress keeps its objects in `objects.staging` instead of
//!   `objects` (git is pointed there with `GIT_OBJECT_DIRECTORY`). Every
//!   walker that decides "is this a repository?" by looking for `objects/`,
//!   `refs/` and `HEAD` (grokmirror 2.x's own, which does descend into
//!   hidden directories, cgit's, even git's own discovery) sees a plain
//!   directory. Only when the fetch is done is it renamed to `objects`,
//!   moments before the whole repository is renamed into place.
//!
//! Every entry has a lock file (`.<entry>.lock`, the usual repository lock
//! naming) held while it is worked on, so a run can tell a live entry of a
//! concurrent run from a leftover of a killed one and clean up only the
//! latter.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::lock;

/// Name of the staging directory.
pub const STAGING_DIR_NAME: &str = ".grok-pull.staging";
/// Where a staged clone keeps its objects until it is complete.
pub const STAGED_OBJECTS_DIR: &str = "objects.staging";

/// Whether a directory entry is a staging directory (never a repository,
/// never to be descended into by tree walks).
pub fn is_staging_name(name: &OsStr) -> bool {
    name == STAGING_DIR_NAME
}

/// The staging directory for the top level.
pub fn staging_root(toplevel: &Path) -> PathBuf {
    toplevel.join(STAGING_DIR_NAME)
}

/// Remove every entry of `root` that nobody holds the lock of: leftovers
/// of runs that were killed. Returns the entries removed.
pub fn sweep(root: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        if name.to_string_lossy().starts_with('.') {
            // Lock files; each goes with its entry below, and an orphaned
            // one (its entry already gone) is harmless but tidied up.
            let entry_name = name.to_string_lossy();
            if let Some(base) = entry_name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".lock"))
            {
                if !root.join(base).exists() {
                    if let Ok(Some(_held)) = lock::FileLock::try_acquire(&path) {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            continue;
        }
        let Some(guard) = lock::try_lock_repo(&path).map_err(io::Error::other)? else {
            continue;
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path)?,
            Ok(_) => fs::remove_file(&path)?,
            Err(_) => {}
        }
        let lock_path = guard.path().to_path_buf();
        drop(guard);
        let _ = fs::remove_file(lock_path);
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_unlocked_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(STAGING_DIR_NAME);
        fs::create_dir_all(root.join("dead.git/refs")).unwrap();
        fs::create_dir_all(root.join("live.git/refs")).unwrap();
        fs::write(root.join(".gone.git.lock"), "").unwrap();
        let _live = lock::lock_repo(&root.join("live.git")).unwrap();
        let removed = sweep(&root).unwrap();
        assert_eq!(removed, vec![root.join("dead.git")]);
        assert!(root.join("live.git").exists());
        assert!(!root.join(".dead.git.lock").exists());
        assert!(!root.join(".gone.git.lock").exists());
        assert!(sweep(&dir.path().join("missing")).unwrap().is_empty());
    }
}
