//! Lock files git leaves behind when it is killed (`config.lock`,
//! `packed-refs.lock`, `refs/.../<ref>.lock`, ...). Git never removes them
//! itself, and while one is there every later change to that file fails,
//! so a single crash would stop all work on a repository for good.
//!
//! Removing a lock file another git still holds would let two writers
//! replace the same file, so only locks that cannot be live are removed:
//! the caller holds the repository's grokmirror lock (every grokmirror-aware
//! writer takes it), and the lock file is older than the caller's own
//! start, so no writer that started after us made it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Git lock files at fixed places in a repository.
const FIXED: &[&str] = &[
    "config.lock",
    "packed-refs.lock",
    "HEAD.lock",
    "shallow.lock",
    "objects/info/commit-graph.lock",
    "objects/info/commit-graphs/commit-graph-chain.lock",
    "objects/pack/multi-pack-index.lock",
];

fn older_than(path: &Path, since: SystemTime) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t < since)
}

fn ref_locks(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            ref_locks(&path, found);
        } else if path.extension().is_some_and(|e| e == "lock") {
            found.push(path);
        }
    }
}

/// Remove the git lock files of `repo` left by processes that died before
/// `since` (the caller's start). Returns what was removed.
///
/// Caller holds `repo`'s grokmirror lock.
pub fn clear_stale(repo: &Path, since: SystemTime) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = FIXED.iter().map(|f| repo.join(f)).collect();
    ref_locks(&repo.join("refs"), &mut candidates);
    let mut removed = Vec::new();
    for lock in candidates {
        if older_than(&lock, since) && fs::remove_file(&lock).is_ok() {
            tracing::warn!("removed {}, left by a git that died", lock.display());
            removed.push(lock);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_locks_older_than_our_start_go() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("refs/heads/topic")).unwrap();
        fs::write(r.join("config.lock"), "").unwrap();
        fs::write(r.join("refs/heads/topic/a.lock"), "").unwrap();
        fs::write(r.join("refs/heads/main"), "").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let start = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(r.join("packed-refs.lock"), "").unwrap();
        let mut removed = clear_stale(r, start);
        removed.sort();
        assert_eq!(
            removed,
            vec![r.join("config.lock"), r.join("refs/heads/topic/a.lock")]
        );
        assert!(r.join("packed-refs.lock").exists(), "made after our start");
        assert!(r.join("refs/heads/main").exists());
    }
}
